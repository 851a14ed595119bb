"""The network panel in a real page (issue 28): pruned links fade and structurally removed
neurons vanish as the sparsity slider moves, at 1280x720."""

from __future__ import annotations

import pytest
from browser_util import (
    LOAD_TIMEOUT_MS,
    MAIN_FIG,
    PRUNE_READOUT,
    READ_MAIN_JS,
    UPDATE_TIMEOUT_MS,
    assert_clean,
    main_view,
    set_readout,
)
from conftest import artifact_path

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _wait(page, test_js: str) -> dict:
    page.wait_for_function(
        f"(sel) => {{ const v = ({READ_MAIN_JS.strip()})(sel); return v !== null && "
        f"({test_js}); }}", arg=MAIN_FIG, timeout=UPDATE_TIMEOUT_MS, polling=100)
    return main_view(page)


def test_network_panel_follows_the_slider(_chromium, dashboard_url):
    context = _chromium.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    try:
        page.goto(dashboard_url, timeout=LOAD_TIMEOUT_MS)
        page.wait_for_selector(PRUNE_READOUT, timeout=LOAD_TIMEOUT_MS)
        dense = _wait(page, "v.grid > 0")
        assert dense["pruned_links"] == 0 and dense["hidden"] == 0, dense
        page.locator(MAIN_FIG).scroll_into_view_if_needed()
        page.screenshot(path=str(artifact_path("app2-network-dense.png")))
        set_readout(page, PRUNE_READOUT, "0.90")
        pruned = _wait(page, "v.pruned_links > 0")
        assert pruned["hidden"] == 0, pruned  # unstructured: no neuron is wholly removed
        page.screenshot(path=str(artifact_path("app2-network-pruned.png")))
        page.get_by_text("structured (whole neurons)").click()
        removed = _wait(page, "v.hidden > 0")
        assert removed["grid"] == dense["grid"], removed  # hidden, never re-laid out
        page.screenshot(path=str(artifact_path("app2-network-structured.png")))
        assert_clean(page, "network panel")
    finally:
        context.close()
