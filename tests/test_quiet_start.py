"""A normal dashboard start prints no expected warnings (issue 28, clean start)."""

from __future__ import annotations

import logging

from explorer.cli.quiet_start import NOT_TRUSTED, RESOURCES, PackagedNotTrusted, quiet


def record(msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("ExplorerVoila", logging.WARNING, __file__, 1, msg, args, None)


def test_not_trusted_is_silenced_only_for_the_packaged_notebooks(tmp_path):
    packaged = PackagedNotTrusted(str(RESOURCES / "dashboard.ipynb"))
    assert not packaged.filter(record(NOT_TRUSTED, "dashboard.ipynb"))
    assert packaged.filter(record("Kernel %s died", "abc"))  # other warnings pass
    own = PackagedNotTrusted(str(tmp_path / "dashboard.ipynb"))  # a notebook of your own
    assert own.filter(record(NOT_TRUSTED, "dashboard.ipynb"))


def test_the_ping_timeout_is_the_interval_tornado_would_clamp_it_to():
    settings: dict = {}
    quiet(logging.getLogger("test-quiet-start"), None, settings)
    assert settings["ws_ping_timeout"] == settings["ws_ping_interval"] == 30_000
    kept = {"ws_ping_interval": 10_000}
    quiet(logging.getLogger("test-quiet-start"), None, kept)
    assert kept["ws_ping_timeout"] == 10_000


def test_the_room_kernels_plain_tcp_warning_is_dropped_and_nothing_else():
    from explorer.cli.room_kernel import PLAIN_TCP, LoopbackPlainTcp

    drop = LoopbackPlainTcp()
    assert not drop.filter(record(PLAIN_TCP + ". All communication ..."))
    assert drop.filter(record("Kernel is running over IPC"))
