"""Nothing on the page moves by itself (issue 28): a cold page draws the main figure once, at
the width of its box, with its height kept free before (plotly drew it 700 px wide, then
jumped, and what was below it moved down); giving a control focus moves nothing (the Prune
tab's full-width controls overflowed it by their 2 px margins, and a focused readout
scrolled the tab sideways)."""

from __future__ import annotations

import pytest
from browser_util import LOAD_TIMEOUT_MS, MAIN_FIG, PRUNE_READOUT, our_console_errors

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Every animation frame from the page's start: the main figure's drawn width against its
# box while it is visible, and where the cards below it sit inside the app.
RECORD_FRAMES_JS = """
window.__cxFrames = [];
const look = () => {
  const app = document.querySelector('.cx-app');
  const gd = document.querySelector('.cx-fig-main');
  const cards = document.querySelector('.cx-cards');
  if (app && gd && cards) {
    const box = gd.querySelector('.svg-container');
    const svg = gd.querySelector('.main-svg');
    const seen = box && getComputedStyle(box).visibility === 'visible';
    window.__cxFrames.push({drawn: seen && svg ? svg.getBoundingClientRect().width : null,
      box: gd.clientWidth, cards: cards.getBoundingClientRect().top -
        app.getBoundingClientRect().top});
  }
  if (window.__cxFrames.length < 5000) requestAnimationFrame(look);
};
requestAnimationFrame(look);
"""

# Boxes of every shown element of the app, rounded to half pixels.
BOXES_JS = """
() => Array.from(document.querySelectorAll('.cx-app *')).filter((e) => e.offsetParent !== null)
  .map((e) => { const r = e.getBoundingClientRect();
    return [String(e.className).slice(0, 50)].concat([r.x, r.y, r.width, r.height]
      .map((v) => Math.round(v * 2) / 2)); })
"""

# Boxes of the app that could scroll sideways (content wider than an auto/scroll box).
SIDEWAYS_JS = """
() => Array.from(document.querySelectorAll('.cx-app *')).filter((e) => {
  const s = getComputedStyle(e);
  return ['auto', 'scroll'].includes(s.overflowX) && e.scrollWidth > e.clientWidth;
}).map((e) => `${String(e.className).slice(0, 60)}: ${e.scrollWidth} > ${e.clientWidth}`)
"""


def test_cold_page_draws_the_figure_once_and_focus_moves_nothing(dashboard_url, browser_page,
                                                                  artifacts_dir):
    page = browser_page
    page.set_viewport_size({"width": 1280, "height": 720})
    page.add_init_script(RECORD_FRAMES_JS)
    page.goto(dashboard_url, wait_until="commit", timeout=LOAD_TIMEOUT_MS)
    page.wait_for_selector(f"{MAIN_FIG}.cx-fitted", timeout=LOAD_TIMEOUT_MS)
    page.wait_for_timeout(500)  # a few frames after the fit: nothing to wait on
    frames = page.evaluate("() => window.__cxFrames")
    drawn = [f for f in frames if f["drawn"] is not None]
    assert drawn, "the figure was never seen drawn"
    narrow = [f for f in drawn if abs(f["drawn"] - f["box"]) > 2]
    assert not narrow, f"drawn at another width than its box: {narrow[:3]}"
    tops = sorted({round(f["cards"]) for f in frames})
    assert len(tops) == 1, f"the cards below the figure moved: {tops}"
    page.screenshot(path=str(artifacts_dir / "layout_shift_1280x720.png"))

    assert not page.evaluate(SIDEWAYS_JS), page.evaluate(SIDEWAYS_JS)
    before = page.evaluate(BOXES_JS)
    for target in (PRUNE_READOUT, ".cx-prune-slider .noUi-handle", ".cx-epochs input",
                   ".cx-lr input"):
        page.locator(target).first.click()
        moved = [(a, b) for a, b in zip(before, page.evaluate(BOXES_JS)) if a != b]
        assert not moved, f"focus on {target} moved {len(moved)} boxes: {moved[:3]}"
        page.keyboard.press("Escape")
    assert not our_console_errors(page), our_console_errors(page)
