"""explorer bench says what failed: a null figure shows its note in the table, and the
command exits non-zero when a figure it should have measured is null (issue 29)."""

from __future__ import annotations

import argparse

from explorer.bench import suite
from explorer.bench.suite import BROWSER_KEYS, KEYS, format_table, unmeasured


def _results(**values) -> dict:
    results = {k: 1.0 for k in KEYS}
    results["fresh_pages_drawn"] = "28 of 28"
    for k in ("gpu_epoch_speedup", "visitors_ready_s_p95", "visitors_slider_p95_ms"):
        results[k] = None  # figures this machine or run cannot give
    results.update(values)
    results.setdefault("meta", {"notes": {}, "tiny": False})
    return results


def test_a_failed_browser_figure_prints_its_note_in_the_table():
    note = "failed: TimeoutError: Page.wait_for_function: Timeout 120000ms exceeded"
    results = _results(**dict.fromkeys(BROWSER_KEYS), meta={"notes": {"_browser": note}})
    table = format_table(results)
    line = next(row for row in table.splitlines() if row.startswith("dashboard_ready_s "))
    assert "null" in line and "TimeoutError" in line, line
    assert "28 of 28" not in table and "fresh_pages_drawn" in table


def test_a_string_figure_prints_as_is():
    assert "28 of 28" in format_table(_results())


def test_unmeasured_lists_only_figures_this_run_should_have():
    assert unmeasured(_results()) == []
    assert unmeasured(_results(slider_p50_ms=None)) == ["slider_p50_ms"]
    skipped = _results(**dict.fromkeys(BROWSER_KEYS),
                       meta={"notes": {"browser": "skipped (--quick or tiny run)"}})
    assert unmeasured(skipped) == []
    failed = _results(**dict.fromkeys(BROWSER_KEYS), meta={"notes": {"_browser": "failed: x"}})
    assert set(unmeasured(failed)) == set(BROWSER_KEYS)


def test_bench_exits_non_zero_when_a_figure_is_null(monkeypatch, capsys):
    args = argparse.Namespace(threads=None, soak=False, visitors=None, quick=True, json=None,
                              gpu_check=False, preheat=None)
    monkeypatch.setattr(suite, "run_bench", lambda **kw: _results(page_js_bytes=None))
    assert suite.bench_command(args) == 1
    assert "not measured: page_js_bytes" in capsys.readouterr().out
    monkeypatch.setattr(suite, "run_bench", lambda **kw: _results())
    assert suite.bench_command(args) == 0


class _Emitter:
    def __init__(self, url: str = "") -> None:
        self.url, self.handlers = url, {}

    def on(self, event: str, handler) -> None:
        self.handlers[event] = handler


def test_the_server_side_clock_runs_from_the_kernel_socket_to_the_figure_data():
    """visitors_server_ready_s: from the page's kernel websocket opening to the first frame
    with the sparsity figure's data; other sockets and later frames do not move it."""
    from explorer.bench.visitors import _watch_server

    page = _Emitter()
    marks = _watch_server(page)
    other = _Emitter("ws://h/api/events/subscribe")
    page.handlers["websocket"](other)
    assert marks == {} and not other.handlers
    kernel = _Emitter("ws://h/api/kernels/k/channels?session_id=s")
    page.handlers["websocket"](kernel)
    frame = kernel.handlers["framereceived"]
    frame('{"msg_type": "status"}')
    frame(b'{"_model_name": "ButtonModel"}')
    assert set(marks) == {"ws"}
    frame(b'\x00\x01{"_widget_data": [{"type": "bar", "customdata": [[1, 2, "fc"]]}]}')
    first = dict(marks)
    frame('{"_widget_data": [{"customdata": []}]}')
    assert marks == first and first["fig"] >= first["ws"]
