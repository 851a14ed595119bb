"""Talk mode and the dark theme in Voila, served the way a speaker would: preheated.

One server runs ``explorer dashboard --talk --theme dark --preheat``. A preheated kernel has
run the notebook before any request exists, so this also shows that theme and talk mode
reach the kernel through the environment rather than the URL.
"""

from __future__ import annotations

import re

import pytest
from browser_util import LOAD_TIMEOUT_MS, our_console_errors
from conftest import dashboard_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def talk_dark_url():
    with dashboard_server("--talk", "--theme", "dark", "--preheat") as url:
        yield url


def luminance(css_color: str) -> float:
    """Relative brightness 0..1 of an ``rgb(...)``/``rgba(...)`` colour string."""
    r, g, b = (int(v) for v in re.findall(r"\d+", css_color)[:3])
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255


def test_talk_mode_and_dark_theme_render(talk_dark_url, browser_page, artifacts_dir):
    """The talk notebook renders the app in talk mode and dark colours, on a dark page."""
    page = browser_page
    page.goto(talk_dark_url, wait_until="commit", timeout=LOAD_TIMEOUT_MS)
    app = page.locator(".cx-app")
    app.wait_for(timeout=LOAD_TIMEOUT_MS)
    page.wait_for_selector(".cx-fig-main.js-plotly-plot", timeout=LOAD_TIMEOUT_MS)
    classes = app.get_attribute("class").split()
    assert "cx-theme-dark" in classes and "cx-talk" in classes, classes
    # Talk mode tells the story in order and keeps only the Prune and Distill tabs.
    assert page.locator(".cx-story").is_visible()
    tabs = page.locator(".cx-tabs .lm-TabBar-tab").all_inner_texts()
    assert [t.strip() for t in tabs] == ["Prune", "Distill"], tabs
    # The talk notebook's own explanations are on the page too.
    assert page.get_by_text("How small can a network get?").is_visible()
    # Voila's own page is dark as well (its JupyterLab dark theme), not just the app's box.
    assert page.locator("body").get_attribute("data-jp-theme-light") == "false"
    app_bg = app.evaluate("(el) => getComputedStyle(el).backgroundColor")
    text = page.locator(".cx-sparsity-label").evaluate("(el) => getComputedStyle(el).color")
    assert luminance(app_bg) < 0.2 and luminance(text) > 0.7, (app_bg, text)
    page.screenshot(path=str(artifacts_dir / "talk_dark.png"), full_page=True)
    assert not our_console_errors(page), our_console_errors(page)
