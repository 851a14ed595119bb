"""A normal start says nothing alarming: the warnings that are expected are silenced here.

- jupyter_server warns "Notebook dashboard.ipynb is not trusted" on every page: trust is a
  per-user signature of a notebook's outputs, and the notebooks this package ships (in
  ``explorer/resources``) are run by Voila whatever their signature. The warning stays for
  a notebook of your own.
- jupyter_server's websockets ping every 30 s and wait ``max(3 x 30 s, 30 s)`` for the
  answer, which tornado refuses ("The websocket_ping_timeout (90000) cannot be longer than
  the websocket_ping_interval (30000)") and clamps to 30 s: we ask for the 30 s it uses.
"""

from __future__ import annotations

import logging
from pathlib import Path

RESOURCES = Path(__file__).resolve().parents[1] / "resources"
NOT_TRUSTED = "Notebook %s is not trusted"
WS_PING_MS = 30_000  # jupyter_server.base.websocket.WS_PING_INTERVAL


class PackagedNotTrusted(logging.Filter):
    """Drops the not-trusted warning about a notebook shipped in explorer/resources."""

    def __init__(self, served: str | None) -> None:
        super().__init__()
        path = Path(served).resolve() if served else None
        self.packaged = path is not None and path.parent == RESOURCES

    def filter(self, record: logging.LogRecord) -> bool:
        return not (self.packaged and record.msg == NOT_TRUSTED)


def quiet(log: logging.Logger, served: str | None, settings: dict) -> None:
    """Silence the expected warnings of a start that serves `served`; `settings` are the
    tornado application's."""
    log.addFilter(PackagedNotTrusted(served))
    settings.setdefault("ws_ping_interval", WS_PING_MS)
    settings.setdefault("ws_ping_timeout", settings["ws_ping_interval"])
