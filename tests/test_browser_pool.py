"""Pages served from a preheated pool of two kernels: every page's plot follows its slider.

The room's first benchmark (issue 20) saw three of four pool pages whose headline followed
the slider while the plot stayed at 0% pruned. Cause: the figures then held NumPy arrays;
when a view first draws, plotly's front end answers with the trace deltas for the widget's
latest edit id. A pooled kernel made all its edits before any page existed, so that
answer matched, plotly's delta handler (`_remove_overlapping_props`) raised on the arrays
and the figure stopped taking updates (see test_front_end_deltas). A page attached while
its kernel was still drawing answered with stale ids, which plotly ignores: that is why the
pool's pages, not fresh ones, froze. This checks the pool end to end in Chromium.
"""

from __future__ import annotations

import re
import time

import pytest
from browser_util import LOAD_TIMEOUT_MS, UPDATE_TIMEOUT_MS, set_readout
from conftest import TEST_MODE_ENV, checkout_env
from test_sharing import kernels, room_server

from explorer.bench.browser import FRACTION_JS, READOUT, READY_JS, SPARSITY_FIG

pytestmark = [pytest.mark.browser, pytest.mark.slow]

KERNEL_ID_JS = "JSON.parse(document.getElementById('jupyter-config-data').textContent).kernelId"
POOL = 2


def kernel_ids(proc) -> set[str]:
    """Ids of the server's kernels, from their connection-file names."""
    found = set()
    for kernel in kernels(proc):
        match = re.search(r"kernel-([0-9a-f-]{36})\.json", " ".join(kernel.cmdline()))
        if match:
            found.add(match.group(1))
    return found


@pytest.fixture(scope="module")
def pool_room():
    with room_server("--preheat", str(POOL), "--max-visitors", "4",
                     env=checkout_env(**TEST_MODE_ENV)) as url_proc:
        yield url_proc


def wait_fraction(page, value: float) -> None:
    """Wait until the sparsity bars' data says `value` of the weights are pruned."""
    page.wait_for_function(
        f"() => {{ const f = ({FRACTION_JS})('{SPARSITY_FIG}');"
        f" return f !== null && Math.abs(f - {value}) < 0.006; }}",
        timeout=UPDATE_TIMEOUT_MS, polling=200)


def test_every_page_from_a_pool_of_two_follows_its_slider(pool_room, _chromium):
    """Two visitors, each served a kernel from the pool: moving each page's slider changes
    that page's bar plot data (not only its headline)."""
    url, proc = pool_room
    pooled: set[str] = set()
    # The pool's kernels exist (and are running or have run the notebook) before any page.
    deadline = time.monotonic() + LOAD_TIMEOUT_MS / 1000
    while len(pooled) < POOL and time.monotonic() < deadline:
        pooled = kernel_ids(proc)
        time.sleep(0.5)  # kernels are starting: there is no event to wait on from here
    assert len(pooled) >= POOL, f"the pool never started: {pooled}"
    contexts, pages = [], []
    try:
        for _ in range(POOL):
            context = _chromium.new_context(viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            contexts.append(context)
            page.goto(url, timeout=LOAD_TIMEOUT_MS)
            page.wait_for_function(READY_JS, timeout=LOAD_TIMEOUT_MS, polling=200)
            pages.append(page)
        served = [page.evaluate(KERNEL_ID_JS) for page in pages]
        assert set(served) <= pooled and len(set(served)) == POOL, (served, pooled)
        for value in (0.6, 0.3):
            for page in pages:  # both pages live at once, each moved in turn
                set_readout(page, READOUT, f"{value}")
            for page in pages:
                wait_fraction(page, value)
    finally:
        for context in contexts:
            context.close()
