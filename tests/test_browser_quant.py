"""The bits control in real Chromium (issue 31): prune, move bits to 4, and the histogram
snaps to the codebook drawn as lines; back to 32 bits the lines go and the weights come
back. Screenshots of the histogram with its codebook go to test-artifacts/."""

from __future__ import annotations

import pytest
from browser_util import (
    LOAD_TIMEOUT_MS,
    MAIN_FIG,
    PRUNE_READOUT,
    UPDATE_TIMEOUT_MS,
    assert_clean,
    set_readout,
    traces,
    wait_for_status,
)
from conftest import artifact_path

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CODEBOOK_X_JS = """(sel) => { const gd = document.querySelector(sel);
  const t = gd && gd.data ? gd.data.find((d) => d.name === 'codebook') : null;
  return t ? Array.from(t.x || [], (v) => v === null ? null : Number(v)) : null; }"""


def codebook_lines(page) -> list[float]:
    xs = page.evaluate(CODEBOOK_X_JS, MAIN_FIG) or []
    return sorted({x for x in xs if x is not None})


def test_bits_control_snaps_the_histogram_to_the_codebook(_chromium, dashboard_url):
    """Bits 4 (k-means): at most 15 centroid lines, the kept-weights histogram has at most
    15 nonzero bins, the status says quantized; bits 32: no lines, the histogram as before."""
    context = _chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.page_errors = errors
    try:
        page.goto(dashboard_url, wait_until="commit", timeout=LOAD_TIMEOUT_MS)
        page.wait_for_selector(PRUNE_READOUT, timeout=LOAD_TIMEOUT_MS)
        set_readout(page, PRUNE_READOUT, "0.50")
        wait_for_status(page, r"pruned \(teacher\)", UPDATE_TIMEOUT_MS)
        pruned = traces(page, MAIN_FIG)["kept weights"]
        page.locator(".cx-bits button", has_text="4").first.click()
        wait_for_status(page, r"quantized \(teacher\)", UPDATE_TIMEOUT_MS)
        page.wait_for_function(f"(sel) => {{ const f = {CODEBOOK_X_JS}; const x = f(sel);"
                               " return x !== null && x.length > 0; }", arg=MAIN_FIG,
                               timeout=UPDATE_TIMEOUT_MS, polling=200)
        lines = codebook_lines(page)
        assert 2 <= len(lines) <= 15 and 0.0 not in lines
        snapped = traces(page, MAIN_FIG)["kept weights"]
        assert 0 < sum(1 for y in snapped if y > 0) <= 15 < sum(1 for y in pruned if y > 0)
        assert "Huffman-coded, weights only" in page.locator(".cx-cards").inner_text()
        assert_clean(page, "bits 4")
        page.screenshot(path=str(artifact_path("quant-histogram-4bit.png")))
        page.locator(MAIN_FIG).screenshot(path=str(artifact_path("quant-figure-4bit.png")))

        page.locator(".cx-bits button", has_text="32").first.click()
        wait_for_status(page, r"fp32 \(teacher\)", UPDATE_TIMEOUT_MS)
        page.wait_for_function(f"(sel) => {{ const f = {CODEBOOK_X_JS}; const x = f(sel);"
                               " return x !== null && x.length === 0; }", arg=MAIN_FIG,
                               timeout=UPDATE_TIMEOUT_MS, polling=200)
        assert traces(page, MAIN_FIG)["kept weights"] == pruned
        assert_clean(page, "bits 32")
        assert not errors, errors
    finally:
        context.close()
