"""A normal start says nothing alarming: the warnings that are expected are silenced here.

- jupyter_server warns "Notebook dashboard.ipynb is not trusted" on every page: trust is a
  per-user signature of a notebook's outputs, and the notebooks this package ships (in
  ``explorer/resources``) are run by Voila whatever their signature. The warning stays for
  a notebook of your own.
- tornado warns "The websocket_ping_timeout (90000) cannot be longer than the
  websocket_ping_interval (30000)". jupyter_server's websockets ping every 30,000 ms and
  close a socket whose last pong is older than 90,000 ms; tornado reads the same two
  numbers as seconds for its own pinging (every 8 hours: never, in practice) and clamps
  that one. The 90 s are needed: jupyter_server checks the pong before it sends its first
  ping, so a timeout equal to the interval closed every kernel websocket 30 s after it
  opened, and the page reconnected every 30 s, losing what it sent meanwhile (a slider
  move the kernel never got; issue 29, seen with ``explorer bench --visitors 4``). So the
  settings stay jupyter_server's and only the warning about tornado's unused clamp goes.
"""

from __future__ import annotations

import logging
from pathlib import Path

RESOURCES = Path(__file__).resolve().parents[1] / "resources"
NOT_TRUSTED = "Notebook %s is not trusted"
TORNADO_PING_CLAMP = "The websocket_ping_timeout ("  # tornado.websocket, logged once


class PackagedNotTrusted(logging.Filter):
    """Drops the not-trusted warning about a notebook shipped in explorer/resources."""

    def __init__(self, served: str | None) -> None:
        super().__init__()
        path = Path(served).resolve() if served else None
        self.packaged = path is not None and path.parent == RESOURCES

    def filter(self, record: logging.LogRecord) -> bool:
        return not (self.packaged and record.msg == NOT_TRUSTED)


class TornadoPingClamp(logging.Filter):
    """Drops tornado's warning that it clamps its own ping timeout (see the module
    docstring: jupyter_server's milliseconds read as tornado's seconds)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(TORNADO_PING_CLAMP)


def quiet(log: logging.Logger, served: str | None) -> None:
    """Silence the expected warnings of a start that serves `served` (the websocket ping
    settings stay jupyter_server's)."""
    log.addFilter(PackagedNotTrusted(served))
    tornado_log = logging.getLogger("tornado.general")
    if not any(isinstance(f, TornadoPingClamp) for f in tornado_log.filters):
        tornado_log.addFilter(TornadoPingClamp())
