"""Fresh pages and what a page costs the browser (issue 29), for explorer.bench.browser.

*Drawn* means the sparsity bars hold the Snapshot's values: the pruned share read from
the bars' customdata equals the slider's value (a page left on the figure's empty start,
or on a stale state, never gets there). Page cost comes from Chromium's own counters
(CDP ``Performance.getMetrics``: ScriptDuration, TaskDuration) from navigation to drawn,
the JavaScript bytes the page received (response bodies of its scripts, the module that
plotly's widget imports included) and the widget models the page was sent (each model's
state carries its ``_model_name``: counted in the kernel websocket's frames).
"""

from __future__ import annotations

import time

from .browser import FRACTION_JS, READOUT, SPARSITY_FIG

DRAWN_JS = f"""
() => {{
  const frac = ({FRACTION_JS})('{SPARSITY_FIG}');
  const readout = document.querySelector('{READOUT}');
  if (frac === null || readout === null) return false;
  const value = Number(readout.textContent);
  return Number.isFinite(value) && Math.abs(frac - value) < 0.006;
}}
"""
VIEWPORT = {"width": 1400, "height": 1000}
SERIAL, AT_ONCE, BATCHES = 20, 4, 2  # the counts: 20 in a row, 4 at once twice


def open_pages(browser, url: str, count: int, init_script: str | None = None) -> list:
    """`count` fresh pages (each its own context: no shared cache or cookies) opening `url`
    at once; [(context, page)]."""
    opened = []
    for _ in range(count):
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        if init_script:
            page.add_init_script(init_script)
        page.goto(url, wait_until="commit", timeout=120_000)
        opened.append((context, page))
    return opened


def drawn(page, deadline: float) -> bool:
    """Whether `page` draws its data before `deadline` (time.monotonic())."""
    left_ms = max(1000.0, (deadline - time.monotonic()) * 1000)
    try:
        page.wait_for_function(DRAWN_JS, timeout=left_ms, polling=200)
        return True
    except Exception:  # playwright's TimeoutError (and a page that crashed): not drawn
        return False


def fresh_pages_drawn(browser, url: str, serial: int = SERIAL, at_once: int = AT_ONCE,
                      batches: int = BATCHES, timeout_s: float = 120.0) -> tuple[int, int]:
    """Open `serial` fresh pages one after another, then `batches` groups of `at_once` at
    the same time; (pages that drew their data, pages opened)."""
    ok = total = 0
    for size in [1] * serial + [at_once] * batches:
        opened = open_pages(browser, url, size)
        deadline = time.monotonic() + timeout_s
        ok += sum(drawn(page, deadline) for _context, page in opened)
        total += size
        for context, _page in opened:
            context.close()
    return ok, total


def _watch_models(page) -> dict:
    """Counts, as the page receives them, the widget model states on its websockets."""
    seen = {"models": 0}

    def on_socket(socket) -> None:
        def on_frame(payload) -> None:
            text = payload if isinstance(payload, str) else payload.decode("latin-1")
            seen["models"] += text.count('"_model_name"')
        socket.on("framereceived", on_frame)

    page.on("websocket", on_socket)
    return seen


# The page's JS as the browser parses it (page_js_bytes is what crossed the wire: the room
# gzips its responses, so that is about a third of this).
JS_DECODED = """() => performance.getEntriesByType('resource')
  .filter((e) => /\\.js(\\?|$)/.test(e.name)).reduce((n, e) => n + e.decodedBodySize, 0)"""


def page_cost(browser, url: str, ready_js: str = DRAWN_JS, cpu_throttle: float = 1.0) -> dict:
    """One fresh page to `ready_js`: {page_script_s, page_task_s, page_js_bytes (transferred),
    page_js_decoded_bytes, page_widget_models, page_ready_s}. `cpu_throttle` > 1 slows the
    page's CPU that many times (CDP Emulation.setCPUThrottlingRate: a slow phone or an old
    laptop)."""
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        scripts: list[int] = []

        def on_finished(request) -> None:
            if request.resource_type == "script":
                try:
                    scripts.append(int(request.sizes()["responseBodySize"]))
                except Exception:  # noqa: S112 - a request gone with its page: not counted
                    return
        page.on("requestfinished", on_finished)
        models = _watch_models(page)
        cdp = context.new_cdp_session(page)
        cdp.send("Performance.enable")
        if cpu_throttle > 1:
            cdp.send("Emulation.setCPUThrottlingRate", {"rate": cpu_throttle})
        start = time.perf_counter()
        page.goto(url, wait_until="commit", timeout=120_000)
        page.wait_for_function(ready_js, timeout=300_000, polling=100)
        ready = time.perf_counter() - start
        metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
        return {"page_script_s": metrics["ScriptDuration"], "page_task_s": metrics["TaskDuration"],
                "page_js_bytes": sum(scripts), "page_js_decoded_bytes": page.evaluate(JS_DECODED),
                "page_widget_models": models["models"], "page_ready_s": ready}
    finally:
        context.close()


# The second yardstick: one plotly FigureWidget (the app's own kind, module served the same
# way), served like the dashboard.
ONEFIG_NOTEBOOK = {"cells": [{"cell_type": "code", "execution_count": None, "id": "onefig",
                              "metadata": {}, "outputs": [], "source": [
                                  "from explorer.ui.served import figure_widget\n",
                                  "fig = figure_widget(data=[{'type': 'bar', 'y': [1, 2, 3]}])\n",
                                  "fig.add_class('cx-onefig')\n",
                                  "fig"]}],
                   "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                               "name": "python3"}},
                   "nbformat": 4, "nbformat_minor": 5}
ONEFIG_READY_JS = ("() => { const gd = document.querySelector('.cx-onefig.js-plotly-plot');"
                   " return !!(gd && gd.data && gd.data.length === 1); }")


def _served(notebook: dict | None, preheat: int):
    """A started dashboard: ours (`notebook` None) or a one-cell notebook, preheated."""
    import json
    import tempfile
    from pathlib import Path

    from ..files import write_text
    from .browser import Dashboard

    extra = ["--preheat", str(preheat)]
    if notebook is not None:
        path = Path(tempfile.mkdtemp(prefix="explorer-ref-")) / "ref.ipynb"
        write_text(path, json.dumps(notebook))
        extra = [str(path), *extra]
    server = Dashboard(preheat > 0, extra=extra)
    server.wait_ready(preheat > 0)
    return server


THROTTLE = 4.0  # the slow device


def throttled_ready(browser, notes: dict) -> float | None:
    """Seconds for a preheated page on a CPU 4x slower to draw its data (the bars hold the
    Snapshot's values); None, with a note, when it never did."""
    server = _served(None, 1)
    try:
        return page_cost(browser, server.url, DRAWN_JS, cpu_throttle=THROTTLE)["page_ready_s"]
    except Exception as err:  # playwright's TimeoutError: the slow page never drew
        notes["page_ready_throttled_s"] = f"no drawn page at {THROTTLE:g}x CPU throttling: {err}"
        return None
    finally:
        server.stop()


def page_figures(browser, quick: bool, notes: dict) -> dict:
    """page_* for our preheated page (page_ready_throttled_s: at 4x CPU throttling),
    trivial_*/onefig_* for the two yardsticks, and
    fresh_pages_drawn (k of n, `--preheat 0` and `--preheat 2` servers; a few with quick)."""
    from .browser import TRIVIAL_NOTEBOOK, TRIVIAL_READY_JS

    out: dict = {}
    for prefix, notebook, ready in (("page", None, DRAWN_JS),
                                    ("trivial", TRIVIAL_NOTEBOOK, TRIVIAL_READY_JS),
                                    ("onefig", ONEFIG_NOTEBOOK, ONEFIG_READY_JS)):
        server = _served(notebook, 1)
        try:
            cost = page_cost(browser, server.url, ready)
        finally:
            server.stop()
        out.update({key.replace("page_", f"{prefix}_", 1): value for key, value in cost.items()})
    out["onefig_ready_preheat_s"] = out.pop("onefig_ready_s")
    out.pop("trivial_ready_s")  # trivial_ready_preheat_s is browser_figures' own
    out["page_ready_throttled_s"] = throttled_ready(browser, notes)
    ok = total = 0
    counts = (2, 2, 1) if quick else (SERIAL, AT_ONCE, BATCHES)
    for preheat in (0, 2):
        server = _served(None, preheat)
        try:
            k, n = fresh_pages_drawn(browser, server.url, *counts)
        finally:
            server.stop()
        notes[f"fresh_pages_drawn_preheat{preheat}"] = f"{k} of {n}"
        ok, total = ok + k, total + n
    out["fresh_pages_drawn"] = f"{ok} of {total}"
    return out
