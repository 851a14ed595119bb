"""A normal dashboard start prints no expected warnings (issue 28, clean start)."""

from __future__ import annotations

import logging

from jupyter_server.base.websocket import WebSocketMixin

from explorer.cli.quiet_start import NOT_TRUSTED, RESOURCES, PackagedNotTrusted, quiet


def record(msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("ExplorerVoila", logging.WARNING, __file__, 1, msg, args, None)


def test_not_trusted_is_silenced_only_for_the_packaged_notebooks(tmp_path):
    packaged = PackagedNotTrusted(str(RESOURCES / "dashboard.ipynb"))
    assert not packaged.filter(record(NOT_TRUSTED, "dashboard.ipynb"))
    assert packaged.filter(record("Kernel %s died", "abc"))  # other warnings pass
    own = PackagedNotTrusted(str(tmp_path / "dashboard.ipynb"))  # a notebook of your own
    assert own.filter(record(NOT_TRUSTED, "dashboard.ipynb"))


class Socket(WebSocketMixin):
    """jupyter_server's ping logic on a stub connection, with the settings given."""

    def __init__(self, settings: dict, clock: list[float]) -> None:
        self.settings, self.clock, self.closed, self.pings = settings, clock, False, 0
        self.ws_connection = type("Connection", (), {"client_terminated": False})()
        self.ping_callback = None
        self.log = logging.getLogger("test-quiet-start")
        self.last_ping = self.last_pong = clock[0]  # as open() sets them

    def close(self) -> None:
        self.closed = True

    def ping(self, data: bytes) -> None:
        self.pings += 1


def ping_at(socket: Socket, when: float, monkeypatch) -> None:
    from tornado import ioloop

    socket.clock[0] = when
    loop = type("Loop", (), {"time": lambda self: socket.clock[0]})()
    monkeypatch.setattr(ioloop.IOLoop, "current", staticmethod(lambda: loop))
    socket.send_ping()


def test_a_kernel_websocket_survives_its_first_ping(monkeypatch):
    """The first ping check comes one interval after open, before any pong: with a timeout
    equal to the interval (the old setting) every socket closed then, every 30 s."""
    socket = Socket({}, [0.0])  # the room keeps jupyter_server's ping settings
    ping_at(socket, socket.ping_interval / 1e3 + 0.01, monkeypatch)
    assert not socket.closed and socket.pings == 1
    socket.on_pong(b"")
    ping_at(socket, 2 * socket.ping_interval / 1e3 + 0.02, monkeypatch)
    assert not socket.closed and socket.pings == 2
    old = Socket({"ws_ping_interval": 30_000, "ws_ping_timeout": 30_000}, [0.0])
    ping_at(old, 30.01, monkeypatch)
    assert old.closed  # what the room did before


def test_tornados_ping_clamp_warning_is_dropped_and_nothing_else():
    quiet(logging.getLogger("test-quiet-start"), None)
    tornado_log = logging.getLogger("tornado.general")
    clamp = record("The websocket_ping_timeout (90000) cannot be longer than the "
                   "websocket_ping_interval (30000).")
    assert not all(f.filter(clamp) for f in tornado_log.filters)
    assert all(f.filter(record("Uncaught exception")) for f in tornado_log.filters)


def test_the_room_kernels_plain_tcp_warning_is_dropped_and_nothing_else():
    from explorer.cli.room_kernel import PLAIN_TCP, LoopbackPlainTcp

    drop = LoopbackPlainTcp()
    assert not drop.filter(record(PLAIN_TCP + ". All communication ..."))
    assert drop.filter(record("Kernel is running over IPC"))
