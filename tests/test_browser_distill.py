"""The Distill tab in real Chromium (issue 25, item 4): Sweep T over 2 seeds, the table's
selected row equals the slider's T (after the sweep and after a move), and no title of the
figure touches another text of it (axis titles, tick labels, the other titles) at
1280x720, at 900 px wide and in talk mode. Screenshots go to test-artifacts/distill_*.png.
"""

from __future__ import annotations

import re

import pytest
from browser_util import (
    JOB_TIMEOUT_MS,
    LOAD_TIMEOUT_MS,
    MAIN_FIG,
    UPDATE_TIMEOUT_MS,
    assert_clean,
    job_bar_out_of_view,
    set_readout,
    status_text,
    wait_for_status,
    wait_for_trace,
)
from conftest import artifact_path, dashboard_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DISTILL_FIG = ".cx-fig-distill.js-plotly-plot"
TEMPERATURE_READOUT = ".cx-temperature .widget-readout"
SELECTED_ROW = ".cx-sweep-table tr.cx-selected"

# Text boxes of the figure that overlap a subplot title (the titles carry the legend words):
# "title ~ other" for each pair whose rectangles intersect by more than 1 px, and titles
# that stick out of the figure.
OVERLAPS_JS = """
(sel) => {
  const gd = document.querySelector(sel);
  const box = gd.getBoundingClientRect();
  const rect = (el) => el.getBoundingClientRect();
  const name = (el) => (el.textContent || el.getAttribute('class') || '').slice(0, 40);
  const titles = Array.from(gd.querySelectorAll('.infolayer .annotation'));
  const others = Array.from(gd.querySelectorAll(
    '.infolayer [class^="g-"][class$="title"] text, .xtick text, .ytick text, .legend'))
    .filter((el) => rect(el).width > 0);
  const hit = (a, b) => Math.min(a.right, b.right) - Math.max(a.left, b.left) > 1 &&
                        Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > 1;
  const out = [];
  titles.forEach((t, i) => {
    const r = rect(t);
    if (r.left < box.left - 1 || r.right > box.right + 1 || r.top < box.top - 1)
      out.push(`${name(t)} sticks out of the figure`);
    titles.forEach((u, j) => {
      if (j > i && hit(r, rect(u))) out.push(`${name(t)} ~ ${name(u)}`); });
    others.forEach((o) => { if (hit(r, rect(o))) out.push(`${name(t)} ~ ${name(o)}`); });
  });
  return {titles: titles.length, overlaps: out};
}
"""

# Every status line the page shows from now on (a job's stages pass quickly).
RECORD_STATUS_JS = """
() => { window.__cxStatuses = []; const el = document.querySelector('.cx-status');
  new MutationObserver(() => window.__cxStatuses.push(el.textContent))
    .observe(el, {childList: true, subtree: true, characterData: true}); }
"""


def tab(page, name: str) -> None:
    page.locator(".cx-tabs .lm-TabBar-tab", has_text=name).click()


def open_distill(page) -> None:
    tab(page, "Distill")
    page.wait_for_selector(DISTILL_FIG, timeout=UPDATE_TIMEOUT_MS)
    wait_for_trace(page, DISTILL_FIG, "teacher", "return y.length === 10;")
    wait_for_trace(page, DISTILL_FIG, "dark knowledge", "return true;")


FITS_JS = """
(sel) => { const gd = document.querySelector(sel);
  const box = gd.closest('.cx-distill-figures').getBoundingClientRect();
  const svg = gd.querySelector('.main-svg').getBoundingClientRect();
  return Math.abs(svg.width - box.width) < 30; }
"""


def check_layout(page, where: str) -> None:
    """The figure fills its column (it is drawn after its tab opens) and no title overlaps
    another text of it."""
    page.locator(DISTILL_FIG).scroll_into_view_if_needed()
    page.wait_for_function(FITS_JS, arg=DISTILL_FIG, timeout=UPDATE_TIMEOUT_MS, polling=200)
    page.wait_for_timeout(400)  # plotly's redraw after the fit; nothing to wait on
    found = page.evaluate(OVERLAPS_JS, DISTILL_FIG)
    assert found["titles"] == 4, found
    assert not found["overlaps"], (where, found["overlaps"])


def readout(page) -> float:
    return float(page.locator(TEMPERATURE_READOUT).inner_text())


def selected_t(page) -> float:
    return float(page.locator(SELECTED_ROW).get_attribute("data-t"))


def fill(page, selector: str, value: str) -> None:
    box = page.locator(selector)
    box.fill(value)
    box.press("Enter")


@pytest.fixture(scope="module")
def page(_chromium, dashboard_url):
    context = _chromium.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    page.goto(dashboard_url, wait_until="commit", timeout=LOAD_TIMEOUT_MS)
    page.wait_for_selector(MAIN_FIG, timeout=LOAD_TIMEOUT_MS)
    yield page
    context.close()


def test_sweep_t_with_two_seeds_selects_the_sliders_row(page):
    open_distill(page)
    # 6 epochs: a run of 1 epoch took about 30 ms, so the pump (4 ticks a second) could
    # show no temperature at all (CI saw only "starting", the alone runs and "done")
    fill(page, ".cx-distill-epochs input", "6")
    fill(page, ".cx-distill-seeds input", "2")
    page.evaluate(RECORD_STATUS_JS)
    page.locator(".cx-sweep-t").click()
    text = wait_for_status(page, r"temperature sweep done \(5 temperatures, 2 seeds\)",
                           JOB_TIMEOUT_MS * 3)
    assert_clean(page, "sweep")
    seen = page.evaluate("() => window.__cxStatuses")
    assert any(re.search(r"T = \d+, \d of 5", s) for s in seen), seen[-10:]
    best = float(re.search(r"at T = ([\d.]+)", text).group(1))
    page.wait_for_selector(SELECTED_ROW, timeout=UPDATE_TIMEOUT_MS)
    assert readout(page) == selected_t(page) == best
    assert page.locator(".cx-sweep-table tr.cx-sweep-row").count() == 5
    assert "[" in page.locator(SELECTED_ROW).inner_text()  # 2 seeds: a 95% interval
    assert not job_bar_out_of_view(page), job_bar_out_of_view(page)  # after a Distill run
    students = page.locator(".cx-students").inner_text()
    assert f"distilled student (T = {best:g})" in students, students
    page.screenshot(path=str(artifact_path("distill_sweep_1280x720.png")))
    page.set_viewport_size({"width": 1280, "height": 1700})  # the figure and its tables
    page.screenshot(path=str(artifact_path("distill_sweep_1280_tall.png")))
    page.set_viewport_size({"width": 1280, "height": 720})

    set_readout(page, TEMPERATURE_READOUT, "3")  # snaps to the nearest swept T: 4
    page.wait_for_function(
        "(sel) => { const r = document.querySelector(sel);"
        " return r && r.getAttribute('data-t') === '4'; }", arg=SELECTED_ROW,
        timeout=UPDATE_TIMEOUT_MS)
    page.wait_for_function(
        "(sel) => parseFloat(document.querySelector(sel).textContent) === 4",
        arg=TEMPERATURE_READOUT, timeout=UPDATE_TIMEOUT_MS)
    assert readout(page) == selected_t(page) == 4.0
    assert "distilled student (T = 4)" in page.locator(".cx-students").inner_text()
    assert_clean(page, "slider after the sweep")
    check_layout(page, "1280x720")
    page.locator(DISTILL_FIG).screenshot(path=str(artifact_path("distill_fig_1280.png")))


def test_titles_clear_at_900_px(page):
    if not page.locator(DISTILL_FIG).is_visible():
        open_distill(page)
    page.set_viewport_size({"width": 900, "height": 900})
    check_layout(page, "900 px")
    page.screenshot(path=str(artifact_path("distill_900.png")), full_page=True)
    page.locator(DISTILL_FIG).screenshot(path=str(artifact_path("distill_fig_900.png")))
    page.set_viewport_size({"width": 1280, "height": 720})
    assert "error:" not in status_text(page)


def test_titles_clear_in_talk_mode_dark(_chromium):
    with dashboard_server("--talk", "--theme", "dark") as url:
        context = _chromium.new_context(viewport={"width": 1280, "height": 720})
        page = context.new_page()
        try:
            page.goto(url, wait_until="commit", timeout=LOAD_TIMEOUT_MS)
            page.wait_for_selector(MAIN_FIG, timeout=LOAD_TIMEOUT_MS)
            open_distill(page)
            check_layout(page, "talk mode, 1280x720")
            page.screenshot(path=str(artifact_path("distill_talk_dark_1280x720.png")))
            page.set_viewport_size({"width": 1280, "height": 1400})  # the whole figure
            check_layout(page, "talk mode, 1280 wide")
            page.locator(DISTILL_FIG).screenshot(
                path=str(artifact_path("distill_fig_talk_dark.png")))
        finally:
            context.close()
