"""``explorer bench --visitors N``: N Chromium pages open the dashboard at once.

One server runs ``explorer dashboard --preheat N --max-visitors N --cull-idle 0
--pending-per-address N`` on
127.0.0.1; once its pool is warm and its kernels idle, N headless Chromium pages (one
browser, one context each, loopback only) open the page at the same moment. Figures:

- ``visitors_ready_s_p95``: seconds from navigation to an interactive page (the sparsity
  plot holds data and the slider readout exists), p95 over the visitors;
- ``visitors_server_ready_s_p95``: the server's side of that, p95: seconds from the page's
  kernel websocket opening to the first frame on it that carries the sparsity figure's
  data (plotly's ``_widget_data`` with the bars' ``customdata``), both timed as Chromium's
  network layer reports them: the page's own script time before its websocket opens and
  after the data arrives is left out;
- ``visitors_slider_p95_ms``: every page then sets its slider every ``period`` seconds for
  ``duration`` seconds; the round trip (Enter -> the plot shows the new sparsity, timed in
  the page) p95 over all moves of all visitors;
- ``visitors_open_cpu_s``: CPU seconds spent while the pages opened, by the Chromium
  processes, the kernels and the server: on one machine the browsers run beside the room,
  which real visitors do not do;
- ``kernel_rss_mib``: median resident memory of the visitors' kernels, idle after loading.

Everything is bounded: each wait has a ceiling, the sliding phase a fixed length.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from .browser import ARM_JS, CHROMIUM, CHROMIUM_ARGS, FRACTION_JS, READOUT, READY_JS, SPARSITY_FIG
from .browser import Dashboard as _Dashboard
from .kernels import cpu_seconds, kernel_processes, kernel_rss_mib, wait_idle

READY_CEILING_S = 300.0
MOVE_CEILING_MS = 60_000
VALUES = (0.3, 0.6, 0.9, 0.2, 0.7, 0.4, 0.8, 0.1, 0.5, 0.95)


def pct(values: list[float], q: float) -> float:
    import math

    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def _watch_server(page) -> dict:
    """{"ws": when the page's kernel websocket opened, "fig": when the first frame with the
    sparsity figure's data came in on it} (time.perf_counter), filled as they happen."""
    marks: dict[str, float] = {}

    def on_socket(socket) -> None:
        if "/channels" not in socket.url or "ws" in marks:
            return  # the first kernel connection only (a reconnect is the page's problem)
        marks["ws"] = time.perf_counter()

        def on_frame(payload) -> None:
            text = payload if isinstance(payload, str) else payload.decode("latin-1")
            if "fig" not in marks and '"_widget_data"' in text and '"customdata"' in text:
                marks["fig"] = time.perf_counter()
        socket.on("framereceived", on_frame)

    page.on("websocket", on_socket)
    return marks


async def _open(browser, url: str) -> tuple[Any, Any, float, float | None]:
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    marks = _watch_server(page)
    start = time.perf_counter()
    await page.goto(url, wait_until="commit", timeout=READY_CEILING_S * 1000)
    await page.wait_for_function(READY_JS, timeout=READY_CEILING_S * 1000, polling=100)
    ready = time.perf_counter() - start
    server = marks["fig"] - marks["ws"] if {"ws", "fig"} <= marks.keys() else None
    return context, page, ready, server


async def _slide(page, offset: int, duration_s: float, period_s: float,
                 failures: list[str]) -> list[float]:
    """Round trips (ms) of this page's moves; a move that never shows counts as the ceiling
    and its description goes to ``failures`` (the page stops sliding then)."""
    await page.evaluate(ARM_JS)
    readout = page.locator(READOUT)
    times: list[float] = []
    end = time.monotonic() + duration_s
    i = offset
    while time.monotonic() < end:
        began = time.monotonic()
        value = VALUES[i % len(VALUES)]
        i += 1
        await readout.click()
        await page.keyboard.press("Control+A")
        await page.keyboard.type(f"{value}")
        await page.keyboard.press("Enter")
        try:
            waited = await page.wait_for_function(
                f"""() => {{
                  const f = ({FRACTION_JS})('{SPARSITY_FIG}');
                  return f !== null && Math.abs(f - {value}) < 0.006
                    ? performance.now() - window.__cxT0 : false;
                }}""", timeout=MOVE_CEILING_MS, polling="raf")
        except Exception as err:
            shown = await page.evaluate(f"({FRACTION_JS})('{SPARSITY_FIG}')")
            text = await readout.inner_text()
            banner = await page.locator(".cx-session-banner").count()
            failures.append(f"{type(err).__name__}: slider to {value}: the plot shows {shown}, "
                            f"the readout {text!r}, session banner: {bool(banner)}")
            times.append(float(MOVE_CEILING_MS))
            return times
        times.append(float(await waited.json_value()))
        await asyncio.sleep(max(0.0, period_s - (time.monotonic() - began)))
    return times


async def _room(url: str, n: int, duration_s: float, period_s: float, server) -> dict:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            before = cpu_seconds(server.proc)
            opened = await asyncio.gather(*(_open(browser, url) for _ in range(n)))
            after = cpu_seconds(server.proc)
            ready = [seconds for _, _, seconds, _ in opened]
            server_side = [s for *_, s in opened if s is not None]
            wait_idle(server.proc, 120.0)
            rss = kernel_rss_mib(server.proc)
            failures: list[str] = []
            moves = await asyncio.gather(*(_slide(page, i, duration_s, period_s, failures)
                                           for i, (_, page, *_) in enumerate(opened)))
            for context, *_ in opened:
                await context.close()
        finally:
            await browser.close()
    flat = [t for per in moves for t in per]
    return {"visitors": n, "visitors_ready_s": ready,
            "visitors_ready_s_p95": pct(ready, 0.95),
            "visitors_server_ready_s": server_side,
            "visitors_server_ready_s_p95": pct(server_side, 0.95) if server_side else None,
            "visitors_slider_p95_ms": pct(flat, 0.95),
            "visitors_slider_p50_ms": statistics.median(flat),
            "visitors_moves": len(flat), "visitors_failed_moves": failures,
            "visitors_open_cpu_s": {k: round(after[k] - before[k], 1) for k in after},
            "kernel_rss_mib": rss}


def run_visitors(n: int, duration_s: float = 60.0, period_s: float = 2.0,
                 preheat: int | None = None) -> dict:
    """Serve a room of ``n`` (``preheat`` kernels warm, default ``n``), open ``n`` pages at
    once, slide; return the figures."""
    preheat = n if preheat is None else preheat
    if not CHROMIUM.exists():
        raise RuntimeError(f"{CHROMIUM} is missing")
    # All n pages start at once from loopback, before any connects: let one address hold n
    # starting pages (the default, 2, would ask the others to retry in a few seconds).
    server = _Dashboard(preheat=False, extra=["--preheat", str(preheat), "--max-visitors",
                                              str(n), "--cull-idle", "0",
                                              "--pending-per-address", str(n)])
    try:
        server.wait_ready(False)
        deadline = time.monotonic() + READY_CEILING_S
        while preheat and (len(kernel_processes(server.proc)) < preheat or f"is filled with "
                           f"{preheat} kernel" not in server.log.read_text(errors="replace")):
            server._check(deadline)
        if preheat:
            wait_idle(server.proc, READY_CEILING_S)  # the pool has run the notebook
        return asyncio.run(_room(server.url, n, duration_s, period_s, server))
    except Exception as err:
        lines = server.log.read_text(errors="replace").splitlines()
        keep = [line for line in lines if "IPKernelApp" not in line][-40:]
        raise RuntimeError("the room failed; the server's log ends:\n" + "\n".join(keep)) from err
    finally:
        server.stop()
