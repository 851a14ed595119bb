"""The room's server log (explorer.cli.room): request lines without the token, refusals in
one line.

Tornado's default request log writes ``request.uri`` as it came, so the access token
(``?token=...``) stood in clear on every 4xx/5xx line (successes are logged at INFO, which
the server's log level hides). :func:`log_request` writes the same line with secret query
values replaced by ``[secret]``, and the reason a room refused the request when it gave one.

A refused kernel websocket raised its 403 inside Jupyter Server's ``write_error``, which
renders an HTML template this application has no settings for: about 50 lines of traceback
per refusal. :func:`plain_error` answers with the status line only.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, quote

import tornado.web
from tornado.log import access_log

# a query key containing any of these has its value hidden (as Jupyter Server scrubs them)
SECRET_KEYS = ("token", "auth", "key", "code", "state", "xsrf", "password")
REFUSAL = "_explorer_refusal"  # handler attribute: why the room refused the request


def scrub_uri(uri: str) -> str:
    """``uri`` with the values of secret query keys (token, _xsrf, ...) as ``[secret]``."""
    path, sep, query = uri.partition("?")
    if not sep:
        return uri
    parts = []
    for key, value in parse_qsl(query, keep_blank_values=True):
        if any(secret in key.lower() for secret in SECRET_KEYS):
            value = "[secret]"
        parts.append(f"{quote(key, safe='')}={quote(value, safe='[]')}")
    return f"{path}?{'&'.join(parts)}"


def log_request(handler) -> None:
    """Tornado's request line (same levels and logger), with the token scrubbed."""
    status = handler.get_status()
    if status < 400:
        log = access_log.info
    elif status < 500:
        log = access_log.warning
    else:
        log = access_log.error
    request = handler.request
    line = (f"{status} {request.method} {scrub_uri(request.uri)} ({request.remote_ip}) "
            f"{1000.0 * request.request_time():.2f}ms")
    reason = getattr(handler, REFUSAL, None)
    log(f"{line}: {reason}" if reason else line)


def note_refusal(handler, reason: str) -> None:
    """``reason`` goes on the log line of ``handler``'s request."""
    setattr(handler, REFUSAL, reason)


def refuse(handler, status: int, reason: str) -> tornado.web.HTTPError:
    """The HTTPError that refuses ``handler``'s request; ``reason`` goes on its log line."""
    note_refusal(handler, reason)
    return tornado.web.HTTPError(status)


def plain_error(handler, status_code: int, **kwargs) -> None:
    """``write_error`` that writes the status line (no template, no traceback)."""
    handler.set_header("Content-Type", "text/plain; charset=utf-8")
    handler.finish(f"{status_code} {handler._reason}\n")

