"""The Voila dashboard in headless Chromium, used the way a person would.

One dashboard server serves the whole run and one page (one kernel, which ran the notebook
when the page loaded) serves this module's tests, in order.
"""

from __future__ import annotations

import re
import time
from urllib.parse import urlparse

import pytest
from browser_util import (
    JOB_TIMEOUT_MS,
    LOAD_TIMEOUT_MS,
    MAIN_FIG,
    PRUNE_READOUT,
    READ_MAIN_JS,
    UPDATE_TIMEOUT_MS,
    dump,
    main_view,
    our_console_errors,
    pruned_share,
    set_readout,
    traces,
    wait_for_trace,
)
from conftest import artifact_path, kernel_pids

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DISTILL_FIG = ".cx-fig-distill.js-plotly-plot"
TEMPERATURE_READOUT = ".cx-temperature .widget-readout"
SPARSITY_LABEL = ".cx-sparsity-label"
STATUS = ".cx-status"
STEP_STATUS = re.compile(r"training \(teacher\): epoch \d+, step (\d+)")


# Record (browser clock) when Stop is clicked and when the status first says "stopping"
# and "stopped": a MutationObserver sees every change, even one that lasts a frame.
WATCH_STOP_JS = """
([statusSel, stopSel]) => {
  const marks = (window.__cxStop = {});
  const status = document.querySelector(statusSel);
  new MutationObserver(() => {
    const text = status.textContent;
    for (const word of ["stopping", "stopped"]) {
      if (text.includes(word) && !(word in marks)) marks[word] = performance.now();
    }
  }).observe(status, {subtree: true, childList: true, characterData: true});
  document.querySelector(stopSel).addEventListener(
    "click", () => { marks.click = performance.now(); }, {capture: true});
}
"""


def fmt_ms(when: float | None, start: float) -> str:
    return "never seen" if when is None else f"{(when - start) / 1000:.2f} s"


def status_step(page) -> int:
    """The optimizer step the status line reports for the running job."""
    match = STEP_STATUS.search(page.locator(STATUS).inner_text())
    assert match, page.locator(STATUS).inner_text()
    return int(match.group(1))


def open_dashboard(page, url: str) -> float:
    """Load the page and wait until the main figure and the prune slider are there.

    Returns the seconds from navigation to that point."""
    start = time.monotonic()
    page.goto(url, wait_until="commit", timeout=LOAD_TIMEOUT_MS)
    page.wait_for_selector(MAIN_FIG, timeout=LOAD_TIMEOUT_MS)
    page.wait_for_selector(PRUNE_READOUT, timeout=LOAD_TIMEOUT_MS)
    return time.monotonic() - start


@pytest.fixture(scope="module")
def page(_chromium, dashboard):
    """One page for the module, with the console errors it logs (see conftest.browser_page)
    and every request it makes to another host; the last test closes it."""
    context = _chromium.new_context(viewport={"width": 1400, "height": 1800})
    page = context.new_page()
    page.console_errors, page.foreign = [], []
    page.on("console", lambda m: page.console_errors.append(f"console: {m.text}")
            if m.type == "error" else None)
    page.on("pageerror", lambda exc: page.console_errors.append(f"pageerror: {exc}"))
    page.on("request", lambda r: page.foreign.append(r.url)
            if urlparse(r.url).hostname not in (None, "127.0.0.1", "localhost") and
            urlparse(r.url).scheme in ("http", "https", "ws", "wss") else None)
    before = set(kernel_pids(dashboard[1]))
    open_dashboard(page, dashboard[0])
    page.kernels = set(kernel_pids(dashboard[1])) - before
    yield page
    context.close()


def test_page_renders_and_sparsity_updates_bars_and_histogram(page):
    """The page renders without console errors from our code; typing 0.9 in the prune
    slider's readout sets 90% in the label, the sparsity bars and the weight histogram."""
    before = main_view(page)
    assert sum(before["hist"]) > 0, dump(before)
    assert pruned_share(before) == 0.0

    set_readout(page, PRUNE_READOUT, "0.9")
    from playwright.sync_api import expect

    expect(page.locator(SPARSITY_LABEL)).to_contain_text(
        re.compile(r"90\.0%"), timeout=UPDATE_TIMEOUT_MS
    )
    page.wait_for_function(
        f"(sel) => {{ const v = ({READ_MAIN_JS.strip()})(sel);"
        " return v && v.bars.some((r) => r[0] < r[1]); }", arg=MAIN_FIG,
        timeout=UPDATE_TIMEOUT_MS)
    after = main_view(page)
    assert pruned_share(after) == pytest.approx(0.9, abs=0.01), dump(after)
    # The histogram shows the selected (first) layer's surviving weights: its count falls
    # to that layer's kept fraction of the dense original's count.
    kept_fraction = after["bars"][0][0] / after["bars"][0][1]
    dense = sum(traces(page, MAIN_FIG)["dense original"])
    assert sum(after["hist"]) / dense == pytest.approx(kept_fraction, abs=0.01), dump(after)
    assert sum(after["hist"]) < sum(before["hist"])
    raw = page.evaluate("(sel) => document.querySelector(sel).data.length", MAIN_FIG)
    assert raw == len(traces(page, MAIN_FIG))  # readable the way devtools would read it
    assert not our_console_errors(page), our_console_errors(page)


def test_train_streams_curves_and_stop_ends_the_job(page, artifacts_dir):
    """Train adds step losses while it runs; Stop ends the job and says so."""
    from playwright.sync_api import expect

    epochs = page.locator(".cx-epochs input")
    epochs.fill("1000")  # the most allowed: far more than the test waits for; Stop ends it
    epochs.press("Enter")
    n0 = len(traces(page, MAIN_FIG)["train loss (step)"])
    page.locator(".cx-train").click()
    expect(page.locator(STATUS)).to_contain_text(STEP_STATUS, timeout=JOB_TIMEOUT_MS)
    wait_for_trace(
        page, MAIN_FIG, "train loss (step)", f"return y.length > {n0 + 1};", JOB_TIMEOUT_MS
    )
    # Streaming: the status and the curve keep moving without any further input. (The
    # curve's point count stops growing once it is thinned to its maximum, so the step
    # number in the status is the witness.)
    first = status_step(page)
    page.wait_for_function(
        """([sel, first]) => {
             const m = document.querySelector(sel).textContent.match(/step (\\d+)/);
             return m !== null && Number(m[1]) > first;
           }""",
        arg=[STATUS, first],
        timeout=JOB_TIMEOUT_MS,
        polling=200,
    )

    expect(page.locator(".cx-stop")).to_be_enabled(timeout=UPDATE_TIMEOUT_MS)
    page.evaluate(WATCH_STOP_JS, [STATUS, ".cx-stop"])
    page.locator(".cx-stop").click()
    expect(page.locator(STATUS)).to_contain_text(
        re.compile(r"training \(teacher\): stopped after \d+ steps"), timeout=JOB_TIMEOUT_MS
    )
    marks = page.evaluate("() => window.__cxStop")
    ack, done = (marks.get(k) for k in ("stopping", "stopped"))
    note = (
        f"Stop: click -> 'stopping...' shown {fmt_ms(ack, marks['click'])}, "
        f"click -> 'stopped' shown {fmt_ms(done, marks['click'])} "
        "(browser clock; shared, loaded machine)"
    )
    print(note)
    (artifacts_dir / "stop_delay.txt").write_text(note + "\n")
    expect(page.locator(".cx-train")).to_be_enabled(timeout=UPDATE_TIMEOUT_MS)
    assert len(traces(page, MAIN_FIG)["train loss (step)"]) > n0 + 1
    assert not our_console_errors(page), our_console_errors(page)


def test_temperature_slider_updates_soft_probabilities(page):
    """On the Distill tab, a lower temperature sharpens the teacher's softened probabilities."""
    page.locator(".cx-tabs .lm-TabBar-tab", has_text="Distill").click()
    page.wait_for_selector(DISTILL_FIG, timeout=UPDATE_TIMEOUT_MS)
    wait_for_trace(page, DISTILL_FIG, "teacher", "return y.length === 10;")
    hot = traces(page, DISTILL_FIG)["teacher"]
    assert sum(hot) == pytest.approx(1.0, abs=1e-3)

    set_readout(page, TEMPERATURE_READOUT, "1")
    wait_for_trace(page, DISTILL_FIG, "teacher", f"return Math.max(...y) > {max(hot) + 1e-3};")
    cold = traces(page, DISTILL_FIG)["teacher"]
    assert sum(cold) == pytest.approx(1.0, abs=1e-3)
    assert max(cold) > max(hot)  # T=1 is sharper than the default T=4
    assert cold.index(max(cold)) == hot.index(max(hot))  # same top class
    assert not our_console_errors(page), our_console_errors(page)


def test_closing_the_tab_shuts_its_kernel_down_and_nothing_left_the_machine(page, dashboard):
    """Issue 15, items 10 and 11: the page asked no other host for anything (no CDN), and
    closing it shuts its kernel down (Voila's page sends the shutdown with the _xsrf
    cookie, which the dashboard now sets)."""
    assert not page.foreign, page.foreign
    assert "_xsrf" in {c["name"] for c in page.context.cookies()}
    assert len(page.kernels) == 1, page.kernels
    page.screenshot(path=str(artifact_path("dashboard_module.png")), full_page=True)
    start = time.monotonic()
    page.close(run_before_unload=True)
    while page.kernels & set(kernel_pids(dashboard[1])) and time.monotonic() - start < 60:
        time.sleep(0.2)  # polling a process table: there is no event to wait on
    took = time.monotonic() - start
    artifact_path("kernel_shutdown.txt").write_text(f"tab closed -> kernel gone: {took:.1f} s\n")
    assert not page.kernels & set(kernel_pids(dashboard[1])), f"kernel alive after {took:.0f} s"
