"""The room's Host check: which Host headers the dashboard's server answers (explorer.cli.room).

Like Jupyter Server's ``allow_remote_access=False``: loopback names and addresses, plus the
names given with ``--host`` / ``--allow-host``. Voila itself sets ``allow_remote_access=True``,
so a DNS-rebinding page could otherwise drive the app; a refused request gets 403 before any
handler runs, so it starts no kernel.
"""

from __future__ import annotations

import ipaddress
import logging
import re

import tornado.web

LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")
WILDCARD_HOSTS = ("0.0.0.0", "::", "")
LOG_SETTING = "explorer_log"  # the application setting that holds the server's logger


def split_host(host_header: str) -> str:
    """The host name or address of a Host header, without port or IPv6 brackets, lower-case."""
    match = re.match(r"^(.*?)(:\d+)?$", host_header.strip())
    host = (match.group(1) if match else host_header).lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host.rstrip(".")


def host_allowed(host_header: str, names: frozenset[str], any_address: bool) -> bool:
    """Whether a request with this Host header is for us.

    Loopback addresses and names always; ``names`` (the --host given, --allow-host); any IP
    address literal when we listen on all interfaces (a DNS-rebinding page always sends a
    name, never an address, so addresses are safe to accept there).
    """
    host = split_host(host_header)
    if host in LOOPBACK_NAMES or host in names:
        return True
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return False
    return addr.is_loopback or any_address


class HostCheckedApplication(tornado.web.Application):
    """A tornado application that answers 403 to any Host it does not serve."""

    def find_handler(self, request, **kwargs):
        names = self.settings.get("explorer_allowed_hosts", frozenset())
        any_address = self.settings.get("explorer_any_address", False)
        if not host_allowed(request.host or "", names, any_address):
            self.settings.get(LOG_SETTING, logging.getLogger(__name__)).warning(
                "Refused a request for Host %r (not a name this server answers to)",
                request.host)
            return self.get_handler_delegate(request, tornado.web.ErrorHandler,
                                             {"status_code": 403})
        return super().find_handler(request, **kwargs)
