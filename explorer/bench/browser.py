"""Browser figures for explorer.bench.suite: the served dashboard in headless Chromium.

`explorer dashboard --no-browser --port P` runs as a subprocess; Playwright (sync API)
drives Debian's /usr/bin/chromium. Times are taken inside the page (performance.now())
from the Enter key that commits a slider value to the frame where the sparsity plot
holds the new data, so Playwright's own round trips do not count.
"""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..files import write_text

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
SPARSITY_FIG = ".cx-fig-sparsity.js-plotly-plot"  # class and js-plotly-plot: same element
READOUT = ".cx-prune-slider .widget-readout"
START_TIMEOUT_S = 120.0
ROUNDTRIP_VALUES = (0.3, 0.6, 0.9, 0.2, 0.7, 0.4, 0.8, 0.1, 0.5, 0.95)

# Pruned share of the weights, read from the sparsity bars' data: each bar's customdata
# holds [kept, weights, layer] (the bars themselves show fractions per layer).
FRACTION_JS = """
(sel) => {
  const gd = document.querySelector(sel);
  if (!gd || !gd.data || gd.data.length < 2) return null;
  const rows = gd.data[0].customdata || [];
  let kept = 0, total = 0;
  for (const r of rows) { kept += Number(r[0]); total += Number(r[1]); }
  return total > 0 ? 1 - kept / total : null;
}
"""
READY_JS = f"""
() => {{
  const frac = ({FRACTION_JS})('{SPARSITY_FIG}');
  return frac !== null && document.querySelector('{READOUT}') !== null;
}}
"""
ARM_JS = """
() => {
  if (window.__cxArmed) return;
  window.__cxArmed = true;
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') window.__cxT0 = performance.now();
  }, true);
}
"""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5):
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


PREHEAT_SETTLE_S = 20.0  # after Voila says the pool is filled, before the page opens


def dashboard_command(port: int, preheat: bool) -> tuple[list[str], str]:
    """The command that serves the dashboard, and a line saying which one it is."""
    base = [sys.executable, "-m", "explorer", "dashboard", "--no-browser", "--port", str(port)]
    if not preheat:
        return [*base, "--preheat", "0"], "explorer dashboard --preheat 0"
    return [*base, "--preheat", "1"], "explorer dashboard --preheat 1"


class Dashboard:
    """A dashboard subprocess in its own process group, with its log in a temp file."""

    def __init__(self, preheat: bool, extra: list[str] | None = None) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        cmd, self.how = dashboard_command(self.port, preheat)
        if extra is not None:  # the room benchmark's own options instead
            cmd = [*cmd[:cmd.index("--preheat")], *extra]
            self.how = " ".join(["explorer dashboard", *extra])
        root = Path(__file__).resolve().parents[2]  # the checkout that holds explorer/
        env = dict(os.environ, PYTHONUNBUFFERED="1",
                   PYTHONPATH=os.pathsep.join(filter(None, [str(root),
                                                            os.environ.get("PYTHONPATH")])))
        self.log = Path(tempfile.mkstemp(prefix="explorer-bench-", suffix=".log")[1])
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(cmd, cwd=root, env=env, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    def wait_ready(self, preheat: bool) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _answers(f"{self.url}voila/static/"):
            self._check(deadline)
        # A preheated kernel has run the notebook before any page asks: wait for it. Voila
        # logs "filled" once the kernel is up, while the notebook may still be running, so
        # give it the time a presenter gives a server started before the talk.
        while preheat and "is filled with" not in self.log.read_text(errors="replace"):
            self._check(deadline)
        if preheat:
            time.sleep(PREHEAT_SETTLE_S)

    def _check(self, deadline: float) -> None:
        if self.proc.poll() is not None or time.monotonic() > deadline:
            tail = self.log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"dashboard not ready (exit {self.proc.poll()}): {tail}")
        time.sleep(0.25)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(os.getpgid(self.proc.pid), signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(os.getpgid(self.proc.pid), signal.SIGKILL)
        self.log.unlink(missing_ok=True)


def _ready_seconds(browser, url: str, ready_js: str = READY_JS
                   ) -> tuple[float, Any, Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    start = time.perf_counter()
    page.goto(url, wait_until="commit", timeout=120_000)
    page.wait_for_function(ready_js, timeout=120_000, polling=50)
    return time.perf_counter() - start, context, page


# The yardstick for a preheated dashboard: a notebook with one widget, served the same way.
TRIVIAL_NOTEBOOK = {"cells": [{"cell_type": "code", "execution_count": None, "id": "trivial",
                               "metadata": {}, "outputs": [], "source": [
                                   "import ipywidgets as W\n",
                                   "W.IntSlider(description='x').add_class('cx-trivial')"]}],
                    "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                                "name": "python3"}},
                    "nbformat": 4, "nbformat_minor": 5}
TRIVIAL_READY_JS = "() => document.querySelector('.cx-trivial .widget-readout') !== null"


def trivial_preheat_seconds(browser) -> float:
    """Page open to the trivial notebook's widget, on `explorer dashboard NB --preheat 1`."""
    import json

    folder = Path(tempfile.mkdtemp(prefix="explorer-trivial-"))
    notebook = folder / "trivial.ipynb"
    write_text(notebook, json.dumps(TRIVIAL_NOTEBOOK))
    server = Dashboard(True, extra=[str(notebook), "--preheat", "1"])
    try:
        server.wait_ready(True)
        seconds, context, _page = _ready_seconds(browser, server.url, TRIVIAL_READY_JS)
        context.close()
        return seconds
    finally:
        server.stop()


def _roundtrips(page, values: tuple[float, ...]) -> list[float]:
    page.evaluate(ARM_JS)
    times = []
    readout = page.locator(READOUT)
    for value in values:
        readout.click()
        page.keyboard.press("Control+A")
        page.keyboard.type(f"{value}")
        page.keyboard.press("Enter")
        waited = page.wait_for_function(
            f"""() => {{
              const f = ({FRACTION_JS})('{SPARSITY_FIG}');
              return f !== null && Math.abs(f - {value}) < 0.006
                ? performance.now() - window.__cxT0 : false;
            }}""", timeout=60_000, polling="raf")
        times.append(float(waited.json_value()))
    return times


def browser_figures(quick: bool, notes: dict,
                    more: Callable[[Any, bool, dict], dict] | None = None) -> dict:
    """dashboard_ready_s, dashboard_ready_preheat_s (and its ratio to a trivial notebook's
    trivial_ready_preheat_s, served the same way) and browser_roundtrip_p50_ms; then
    `more(browser, quick, notes)`'s figures from the same Chromium (the suite passes
    explorer.bench.pages.page_figures: pages imports this module, not the reverse)."""
    if not CHROMIUM.exists():
        raise RuntimeError(f"{CHROMIUM} is missing")
    from playwright.sync_api import sync_playwright

    out: dict[str, float | None] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            for preheat in (False, True):
                server = Dashboard(preheat)
                try:
                    server.wait_ready(preheat)
                    seconds, context, page = _ready_seconds(browser, server.url)
                    key = "dashboard_ready_preheat_s" if preheat else "dashboard_ready_s"
                    out[key] = seconds
                    notes[key] = server.how
                    if not preheat:
                        from .kernels import kernel_rss_mib, wait_idle

                        wait_idle(server.proc, 60.0)
                        out["kernel_rss_mib"] = kernel_rss_mib(server.proc)
                    if not preheat:
                        _roundtrips(page, ROUNDTRIP_VALUES[:3])  # warm-up
                        values = ROUNDTRIP_VALUES * (1 if quick else 2)
                        out["browser_roundtrip_p50_ms"] = statistics.median(
                            _roundtrips(page, values))
                    context.close()
                finally:
                    server.stop()
            trivial = trivial_preheat_seconds(browser)
            out["trivial_ready_preheat_s"] = trivial
            preheat_s = out["dashboard_ready_preheat_s"]
            out["dashboard_ready_preheat_ratio"] = None if preheat_s is None \
                else preheat_s / trivial
            if more is not None:
                out.update(more(browser, quick, notes))
        finally:
            browser.close()
    return out
