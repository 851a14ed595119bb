"""Fresh pages opened at once all draw their figure's data, and follow the slider.

A blank sparsity figure (issue 29) came from plotly's deltas: a figure's edits go out as
deltas against the state a view starts from, and one that reached a page before its
figure model listened was applied to nothing. Now the page asks for the whole state once
it listens (explorer.ui.served; the kernel's side is tests/test_figure_state_sync.py).
Drawn means the bars hold the Snapshot's values: the pruned share in their customdata is
the slider's. Fresh pages in numbers (20 in a row, 4 at once twice, with and without
preheating) are `explorer bench`'s fresh_pages_drawn: too slow for the suite on two
shared cores. An edit made before the page reads the widgets' states is drawn too: that
test fails when the kernel does not answer the page's request.
"""

from __future__ import annotations

import json

import pytest
from browser_util import LOAD_TIMEOUT_MS, MAIN_FIG, UPDATE_TIMEOUT_MS, main_view, set_readout
from conftest import TEST_MODE_ENV, checkout_env
from test_sharing import room_server

from explorer.bench.browser import READOUT
from explorer.bench.pages import DRAWN_JS, THROTTLE, open_pages

pytestmark = [pytest.mark.browser, pytest.mark.slow]

AT_ONCE = 2


@pytest.fixture(scope="module")
def fresh_room():
    with room_server("--preheat", "0", env=checkout_env(**TEST_MODE_ENV)) as url_proc:
        yield url_proc


def test_fresh_pages_opened_at_once_all_draw_and_follow(fresh_room, _chromium):
    url, _proc = fresh_room
    opened = open_pages(_chromium, url, AT_ONCE)
    try:
        for _context, page in opened:
            page.wait_for_function(DRAWN_JS, timeout=2 * LOAD_TIMEOUT_MS, polling=200)
        page = opened[0][1]
        set_readout(page, READOUT, "0.6")
        page.wait_for_function(f"() => document.querySelector('{READOUT}').textContent === '0.60'",
                               timeout=LOAD_TIMEOUT_MS)
        page.wait_for_function(DRAWN_JS, timeout=2 * LOAD_TIMEOUT_MS, polling=200)
    finally:
        for context, _page in opened:
            context.close()


# The app displayed, then edited before any page could read the widgets' states: Voila runs
# every cell before the page connects, so the second cell's slider move always lands after
# the figure's start state was copied (the race of a late background update, made certain).
# Without the page's state request the bars stay on the start (nothing pruned).
LATE_EDIT_CELLS = (
    "from explorer.ui import ExplorerApp\napp = ExplorerApp.default()\napp",
    "import json\nimport ipywidgets as W\napp.c.slider.value = 0.6\n"
    "expected = W.HTML(json.dumps([[s.nonzero, s.numel, s.name] for s in app.snap.layers]))\n"
    "expected.add_class('cx-expected')\nexpected",
)


@pytest.fixture(scope="module")
def late_edit_room(tmp_path_factory):
    import json

    cells = [{"cell_type": "code", "execution_count": None, "id": f"c{i}", "metadata": {},
              "outputs": [], "source": src} for i, src in enumerate(LATE_EDIT_CELLS)]
    path = tmp_path_factory.mktemp("late-edit") / "late_edit.ipynb"
    path.write_text(json.dumps({"cells": cells, "metadata": {"kernelspec": {
        "display_name": "Python 3", "language": "python", "name": "python3"}},
        "nbformat": 4, "nbformat_minor": 5}))
    with room_server(str(path), "--preheat", "0", env=checkout_env(**TEST_MODE_ENV)) as url_proc:
        yield url_proc


def assert_draws_the_snapshot(page, url: str) -> None:
    """Open `url`; the sparsity bars come to hold the Snapshot's per-layer counts."""
    page.goto(url, wait_until="commit", timeout=LOAD_TIMEOUT_MS)
    page.wait_for_function("() => !!document.querySelector('.cx-expected')",
                           timeout=LOAD_TIMEOUT_MS, polling=200)
    expected = json.loads(page.locator(".cx-expected").inner_text())
    assert expected and sum(k for k, _n, _name in expected) < sum(n for _k, n, _name in expected)
    try:  # the Snapshot's per-layer counts, drawn: [kept, weights, layer] in each bar
        page.wait_for_function("([sel, want]) => { const gd = document.querySelector(sel);"
                               " if (!gd || !gd.data) return false;"
                               " const t = gd.data.find((d) => d.name === 'kept') || {};"
                               " return JSON.stringify((t.customdata || []).map((r) =>"
                               " [Number(r[0]), Number(r[1]), String(r[2])])) === want; }",
                               arg=[MAIN_FIG, json.dumps(expected, separators=(",", ":"))],
                               timeout=UPDATE_TIMEOUT_MS, polling=200)
    except Exception:
        raise AssertionError(f"bars {main_view(page)['bars']} never became the Snapshot's "
                             f"{expected}") from None
    assert page.locator(READOUT).text_content() == "0.60"


def test_an_edit_made_before_the_page_connects_is_drawn(late_edit_room, browser_page):
    assert_draws_the_snapshot(browser_page, late_edit_room[0])


def test_a_page_on_a_cpu_four_times_slower_draws_its_data(late_edit_room, browser_page):
    """A visitor on a slow device (issue 29): Chromium's CPU throttled 4x while the page
    loads, plotly's module compiles and the state request goes out and back."""
    cdp = browser_page.context.new_cdp_session(browser_page)
    cdp.send("Emulation.setCPUThrottlingRate", {"rate": THROTTLE})
    assert_draws_the_snapshot(browser_page, late_edit_room[0])
