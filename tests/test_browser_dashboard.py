"""The Voila dashboard in headless Chromium: a person types a sparsity and sees it applied."""

from __future__ import annotations

import re
import time

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LOAD_TIMEOUT_MS = 120_000
UPDATE_TIMEOUT_MS = 60_000
SPARSITY_FIG = ".cx-fig-sparsity.js-plotly-plot"
PRUNE_READOUT = ".cx-prune-slider .widget-readout"
SPARSITY_LABEL = ".cx-sparsity-label"

# Each trace of the plot as {name, y}; y as plain numbers whether plotly holds it as a list,
# a typed array, or (for binary-encoded data) only decoded in _fullData.
READ_TRACES_JS = """
(gd) => {
  const full = gd._fullData || [];
  return (gd.data || []).map((t, i) => {
    let y = t.y;
    if (!(Array.isArray(y) || ArrayBuffer.isView(y))) {
      const f = full.find((ft) => ft.index === i);
      y = f ? f.y : [];
    }
    return {name: t.name === undefined ? null : String(t.name), y: Array.from(y || [], Number)};
  });
}
"""


def pruned_fraction(traces: list[dict]) -> float:
    """Sum of the "pruned" bars over the sum of "kept" and "pruned" bars."""
    by_name = {t["name"]: t["y"] for t in traces}
    assert {"kept", "pruned"} <= by_name.keys(), f"trace names: {sorted(map(str, by_name))}"
    kept, pruned = sum(by_name["kept"]), sum(by_name["pruned"])
    assert kept + pruned > 0, f"empty sparsity bars: {traces}"
    return pruned / (kept + pruned)


def test_typed_sparsity_reaches_label_and_plot(dashboard_url, browser_page, artifacts_dir):
    """Typing 0.9 in the prune slider's readout sets global sparsity to 90% in label and bars."""
    page = browser_page
    page.goto(dashboard_url, wait_until="commit", timeout=LOAD_TIMEOUT_MS)
    page.wait_for_selector(SPARSITY_FIG, timeout=LOAD_TIMEOUT_MS)
    page.wait_for_selector(PRUNE_READOUT, timeout=LOAD_TIMEOUT_MS)

    readout = page.locator(PRUNE_READOUT)
    readout.click()
    page.keyboard.press("Control+A")
    page.keyboard.type("0.9")
    page.keyboard.press("Enter")

    from playwright.sync_api import expect

    expect(page.locator(SPARSITY_LABEL)).to_contain_text(
        re.compile(r"90\.0%"), timeout=UPDATE_TIMEOUT_MS
    )

    # The label and the figure are updated in the same pass, but give the figure's message
    # a moment to land before judging it.
    fig = page.locator(SPARSITY_FIG).first
    deadline = time.monotonic() + UPDATE_TIMEOUT_MS / 1000
    while True:
        traces = fig.evaluate(READ_TRACES_JS)
        fraction = pruned_fraction(traces)
        if abs(fraction - 0.9) <= 0.01 or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    page.screenshot(path=str(artifacts_dir / "dashboard.png"), full_page=True)
    assert fraction == pytest.approx(0.9, abs=0.01), (
        f"plot shows pruned fraction {fraction:.4f}; traces: {traces}; "
        f"console errors: {page.console_errors}"
    )
    # Also readable the way a person's devtools would read it.
    raw = page.evaluate("(sel) => document.querySelector(sel).data.length", SPARSITY_FIG)
    assert raw == len(traces)
