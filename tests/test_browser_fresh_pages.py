"""Fresh pages opened at once all draw their figure's data, and follow the slider.

A blank sparsity figure (issue 29) came from plotly's deltas: a figure's edits go out as
deltas against the state a view starts from, and one that reached a page before its
figure model listened was applied to nothing. Now the page asks for the whole state once
it listens (explorer.ui.served; the kernel's side is tests/test_figure_state_sync.py).
Drawn means the bars hold the Snapshot's values: the pruned share in their customdata is
the slider's. Fresh pages in numbers (20 in a row, 4 at once twice, with and without
preheating) are `explorer bench`'s fresh_pages_drawn: too slow for the suite on two
shared cores.
"""

from __future__ import annotations

import pytest
from browser_util import LOAD_TIMEOUT_MS, set_readout
from conftest import TEST_MODE_ENV, checkout_env
from test_sharing import room_server

from explorer.bench.browser import READOUT
from explorer.bench.pages import DRAWN_JS, open_pages

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
