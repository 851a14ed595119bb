"""Talk mode and the dark theme in Voila, served the way a speaker would: preheated.

One server runs ``explorer dashboard --talk --theme dark --preheat``. A preheated kernel has
run the notebook before any request exists, so this also shows that theme and talk mode
reach the kernel through the environment rather than the URL.
"""

from __future__ import annotations

import re

import pytest
from browser_util import (
    LOAD_TIMEOUT_MS,
    MAIN_FIG,
    cut_buttons,
    cut_labels,
    in_view,
    our_console_errors,
)
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
    # The talk notebook's explanations are on the page, below the app: nothing above it.
    intro = page.get_by_text("How small can a network get?")
    assert intro.is_visible()
    assert intro.bounding_box()["y"] > app.bounding_box()["y"] + app.bounding_box()["height"] - 5
    # A projector: at 1280x720 the headline, the slider and the first plot are in view,
    # and the controls' labels fit in their larger type.
    page.set_viewport_size({"width": 1280, "height": 720})
    page.evaluate("() => window.scrollTo(0, 0)")
    page.wait_for_timeout(500)  # one layout pass after the resize; nothing to wait on
    assert in_view(page, ".cx-sparsity-label") and in_view(page, ".cx-prune-slider")
    # the whole figure, training curves included (they were half below the fold), and
    # Train beside Stop (issue 28)
    assert in_view(page, MAIN_FIG) and in_view(page, ".cx-train")
    assert not cut_buttons(page), cut_buttons(page)
    size = page.locator(".cx-stop").first.evaluate(
        "(el) => parseFloat(getComputedStyle(el).fontSize)")
    assert size >= 17, size  # talk mode enlarges the controls, not only the plots
    page.screenshot(path=str(artifacts_dir / "talk_dark_1280x720.png"))
    # Voila's own page is dark as well (its JupyterLab dark theme), not just the app's box.
    assert page.locator("body").get_attribute("data-jp-theme-light") == "false"
    app_bg = app.evaluate("(el) => getComputedStyle(el).backgroundColor")
    text = page.locator(".cx-sparsity-label").evaluate("(el) => getComputedStyle(el).color")
    assert luminance(app_bg) < 0.2 and luminance(text) > 0.7, (app_bg, text)
    page.screenshot(path=str(artifacts_dir / "talk_dark.png"), full_page=True)
    # The Distill tab's labels in talk type: no "Tempera...", no "nc" for "none" (issue 28).
    page.set_viewport_size({"width": 1280, "height": 720})
    page.locator(".cx-tabs .lm-TabBar-tab", has_text="Distill").click()
    page.locator(".cx-temperature").wait_for()
    page.wait_for_timeout(300)  # a tab switch is one layout pass; nothing to wait on
    assert not cut_labels(page), cut_labels(page)
    page.screenshot(path=str(artifacts_dir / "talk_dark_distill.png"))
    assert not our_console_errors(page), our_console_errors(page)
