"""Journeys through the page in real Chromium, for every zoo model.

One dashboard server (session fixture, test mode) and one page serve the whole module: the
page switches through the models the way a person would (Data & model -> New session), and
for each one moves the sparsity slider, trains one short epoch to its end, undoes it, and
stops a second run. After every step the status shows no error and the kernel raised
nothing (test mode lists kernel errors in a hidden element). Times of each model switch and
of the slider-to-plot round trip go to test-artifacts/journey_times.txt.
"""

from __future__ import annotations

import re
import time

import pytest
from browser_util import (
    JOB_TIMEOUT_MS,
    LOAD_TIMEOUT_MS,
    MAIN_FIG,
    PRUNE_READOUT,
    READ_MAIN_JS,
    UPDATE_TIMEOUT_MS,
    assert_clean,
    cut_buttons,
    in_view,
    job_bar_out_of_view,
    main_view,
    pruned_share,
    set_readout,
    wait_for_status,
)
from conftest import artifact_path

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# (model, data set) in the order the journey visits them; mlp is the page's first model.
JOURNEYS = [("mlp", "digits"), ("lenet300", "mnist-5k"), ("lenet5", "mnist-5k"),
            ("resnet-small", "digits"), ("gpt-tiny", "pydoc-text")]
TIMES: list[str] = []


@pytest.fixture(scope="module")
def page(_chromium, dashboard_url):
    """One page for the module (1280x720, a laptop or a projector)."""
    context = _chromium.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.page_errors = errors
    start = time.monotonic()
    page.goto(dashboard_url, wait_until="commit", timeout=LOAD_TIMEOUT_MS)
    # The loading page says what is happening and for how long (the template's spinner
    # macro), in the first bytes, seconds before the kernel has run the notebook.
    loading = page.wait_for_selector("#loading .cx-load-what", state="attached",
                                     timeout=LOAD_TIMEOUT_MS)
    assert "about 10 seconds" in loading.text_content()
    page.wait_for_selector(MAIN_FIG, timeout=LOAD_TIMEOUT_MS)
    page.wait_for_selector(PRUNE_READOUT, timeout=LOAD_TIMEOUT_MS)
    TIMES.append(f"page load to app: {time.monotonic() - start:.1f} s")
    yield page
    artifact_path("journey_times.txt").write_text("\n".join(TIMES) + "\n")
    context.close()


def tab(page, name: str) -> None:
    page.locator(".cx-tabs .lm-TabBar-tab", has_text=name).click()


def wait_view(page, test_js: str, arg: object = None,
              timeout_ms: int = UPDATE_TIMEOUT_MS) -> dict:
    """Wait until `test_js` (an expression over `v`, the main figure's view, and `arg`)
    holds."""
    page.wait_for_function(
        f"([sel, arg]) => {{ const v = ({READ_MAIN_JS.strip()})(sel);"
        f" return v !== null && ({test_js}); }}",
        arg=[MAIN_FIG, arg], timeout=timeout_ms, polling=100)
    return main_view(page)


def switch_model(page, model: str, dataset: str) -> float:
    """Data & model -> New session (confirming with a second click when asked)."""
    tab(page, "Data & model")
    page.locator(".cx-model select").select_option(model)
    page.locator(".cx-dataset select").select_option(dataset)
    start = time.monotonic()
    page.locator(".cx-new-session").click()
    if "click again" in wait_for_status(page, "click again to confirm|loading|new session",
                                        UPDATE_TIMEOUT_MS):
        page.locator(".cx-new-session").click()  # confirm: a second click, same button
    wait_for_status(page, f"new session: {re.escape(model)} on {re.escape(dataset)}",
                    JOB_TIMEOUT_MS)
    tab(page, "Prune")
    return time.monotonic() - start


# The browser's clock at the Enter that commits a slider value (as explorer bench does).
ARM_ENTER_JS = """() => { if (window.__cxArmed) return; window.__cxArmed = true;
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') window.__cxT0 = performance.now(); }, true); }"""


def move_slider(page, value: float) -> tuple[dict, float]:
    """Type a sparsity into the slider's readout; returns the new view and the seconds
    from the Enter key to the first frame whose bars and histogram show it."""
    before = main_view(page)
    page.evaluate(ARM_ENTER_JS)
    set_readout(page, PRUNE_READOUT, f"{value:.2f}")
    waited = page.wait_for_function(
        f"([sel, arg]) => {{ const v = ({READ_MAIN_JS.strip()})(sel);"
        " if (v === null || !v.bars.length) return false;"
        " const kept = v.bars.reduce((a, r) => a + r[0], 0);"
        " const all = v.bars.reduce((a, r) => a + r[1], 0);"
        " return Math.abs(1 - kept / all - arg[0]) < 0.02 &&"
        " JSON.stringify(v.hist) !== JSON.stringify(arg[1])"
        " ? performance.now() - window.__cxT0 : false; }",
        arg=[MAIN_FIG, [value, before["hist"]]], timeout=UPDATE_TIMEOUT_MS, polling="raf")
    return main_view(page), float(waited.json_value()) / 1000


@pytest.fixture
def shot(page, request):
    """A screenshot of the shared page when a test fails."""
    yield
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
        page.screenshot(path=str(artifact_path(f"{request.node.name}-failed.png")))


@pytest.mark.parametrize("model,dataset", JOURNEYS, ids=[m for m, _ in JOURNEYS])
def test_model_journey(page, shot, model, dataset):
    """Switch to the model, prune, train an epoch, undo it, stop a second run."""
    if model != "mlp":
        seconds = switch_model(page, model, dataset)
        TIMES.append(f"switch to {model} on {dataset}: {seconds:.1f} s")
        view = wait_view(page, "v.bars.length > 0")
        assert_clean(page, f"switch to {model}")
    page.screenshot(path=str(artifact_path(f"journey_{model}.png")))
    view = main_view(page)
    assert pruned_share(view) == pytest.approx(0.0, abs=1e-6), view["bars"]
    assert view["grid"] > 0, "the network view is empty"

    after, seconds = move_slider(page, 0.5)
    TIMES.append(f"{model}: slider to 0.50 -> bars and histogram drawn {seconds:.2f} s "
                 "after Enter")
    assert pruned_share(after) == pytest.approx(0.5, abs=0.02)
    assert after["hist"] != view["hist"]
    assert_clean(page, f"{model}: slider")
    if model == "mlp":  # dragging: ten moves at once; the last one wins, none queue up
        page.locator(".cx-prune-slider .noUi-handle").focus()
        for _ in range(10):
            page.keyboard.press("ArrowRight")
        dragged = wait_view(page, "Math.abs(1 - v.bars.reduce((a, r) => a + r[0], 0) / "
                                  "v.bars.reduce((a, r) => a + r[1], 0) - 0.6) < 0.005")
        assert pruned_share(dragged) == pytest.approx(0.6, abs=0.005)
        after, _ = move_slider(page, 0.5)
        assert_clean(page, "mlp: drag")

    epochs = page.locator(".cx-epochs input")
    epochs.fill("1")
    epochs.press("Enter")
    page.locator(".cx-train").click()
    wait_for_status(page, r"training done \(teacher\)")
    # the curves are redrawn after the status says done: wait for the new steps to show
    trained = wait_view(page, "v.steps > arg", after["steps"])
    assert trained["steps"] > after["steps"], "the step losses did not grow"
    assert pruned_share(trained) == pytest.approx(0.5, abs=0.02)  # masks stayed on
    assert_clean(page, f"{model}: train")

    page.locator(".cx-undo").click()
    wait_for_status(page, r"undone \(teacher\)")
    undone = wait_view(page, "v.steps === arg", after["steps"])
    assert undone["bars"] == after["bars"], "the masks did not come back"
    assert undone["hist"] == after["hist"], "the weights did not come back"
    assert undone["epochs"] == after["epochs"], "the undone epoch stayed on the curves"
    assert_clean(page, f"{model}: undo")

    epochs.fill("1000")
    epochs.press("Enter")
    page.locator(".cx-train").click()
    wait_for_status(page, r"training \(teacher\): epoch \d+, step \d+")
    page.locator(".cx-stop").click()
    text = wait_for_status(page, r"stopped after \d+ steps; kept the weights so far")
    assert "training (teacher)" in text
    assert_clean(page, f"{model}: stop")
    assert not page.page_errors, page.page_errors


def test_layout_at_1280_and_900(page, shot):
    """At 1280x720 the headline, slider and the first plot's upper 350 px are in view, and
    the job bar with Fine-tune settings open or the Distill tab shown; at 1280 and 900 px
    wide no visible button's label is cut off."""
    page.set_viewport_size({"width": 1280, "height": 720})
    page.evaluate("() => window.scrollTo(0, 0)")
    tab(page, "Prune")
    assert in_view(page, ".cx-sparsity-label") and in_view(page, ".cx-prune-slider")
    assert in_view(page, MAIN_FIG, top_px=350)
    # Train, Stop, the progress and the status stay in view whatever is open, and the
    # page scrolls as a whole (item 8 of issue 28: they fell below the fold).
    page.locator(".cx-tabs .lm-TabBar-tab.lm-mod-current").wait_for()
    page.get_by_text("Fine-tune settings", exact=True).click()
    page.get_by_text("Rewind", exact=True).wait_for()
    assert not job_bar_out_of_view(page), job_bar_out_of_view(page)
    tab(page, "Distill")
    page.locator(".cx-sweep-t").wait_for()
    assert not job_bar_out_of_view(page), job_bar_out_of_view(page)
    page.screenshot(path=str(artifact_path("layout_1280x720_distill.png")))
    tab(page, "Prune")
    page.get_by_text("Fine-tune settings", exact=True).click()  # fold it again
    for width in (1280, 900):
        page.set_viewport_size({"width": width, "height": 900})
        for name in ("Prune", "Distill", "Compare", "Data & model"):
            tab(page, name)
            page.wait_for_timeout(300)  # a tab switch is one layout pass; nothing to wait on
            assert not cut_buttons(page), (width, name, cut_buttons(page))
        page.screenshot(path=str(artifact_path(f"layout_{width}.png")), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 720})
    tab(page, "Prune")
    assert_clean(page, "layout")


def test_compare_draws_a_repeated_pin_with_error_bars(page, shot):
    """Compare -> Seeds 3 -> Pin: after the background job the pinned point has the 95%
    interval's error bars in the page's plot, and the table names the seeds."""
    if page.locator(".cx-model select").input_value() != "mlp":
        switch_model(page, "mlp", "digits")
    tab(page, "Prune")
    set_readout(page, PRUNE_READOUT, "0.50")  # default fine-tune settings: 640-image epochs
    wait_for_status(page, r"pruned \(teacher\)")
    tab(page, "Compare")
    page.wait_for_selector(".cx-fig-tradeoff.js-plotly-plot", timeout=UPDATE_TIMEOUT_MS)
    seeds = page.locator(".cx-pin-seeds input")
    seeds.fill("3")
    seeds.press("Enter")
    page.locator(".cx-pin").click()
    wait_for_status(page, r"repeated run \d+ over 3 seeds \(teacher\)")
    bars = page.wait_for_function(
        "() => { const e = document.querySelector('.cx-fig-tradeoff.js-plotly-plot')"
        ".data[3].error_y; return e && e.visible && e.array.length ? e : false; }",
        timeout=UPDATE_TIMEOUT_MS, polling=200).json_value()
    assert bars["array"][-1] > 0 and bars["arrayminus"][-1] > 0, bars
    assert "(3 seeds)" in page.locator(".cx-pinned-table").inner_text()
    tab(page, "Prune")
    assert_clean(page, "repeated pin")
