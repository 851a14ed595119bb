"""Journeys through the page in real Chromium, one per session type (issue 28): every zoo
classifier, gpt-tiny, toy-regression and an `hf:` ResNet on an image folder.

One dashboard server (session fixture, test mode) and one page serve the zoo journeys: the
page switches through the models the way a person would (Data & model -> New session); the
`hf:` ResNet gets its own server (`--dataset imagefolder:D --model hf:M`) and page. Each
journey moves the sparsity slider (one bar per layer, none past 100%; no kept histogram
bin above the dense one), trains one short epoch to its end, undoes it, watches a longer
run's progress pass 50% while it runs, stops a run, and resets (asked to confirm first).
After every step the status shows no error and the kernel raised nothing (test mode lists
kernel errors in a hidden element). Times of each model switch and of the slider-to-plot
round trip go to test-artifacts/journey_times.txt.
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
from conftest import TEST_MODE_ENV, artifact_path, checkout_env, dashboard_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# (model, data set) in the order the journey visits them; mlp is the page's first model.
JOURNEYS = [("mlp", "digits"), ("lenet300", "mnist-5k"), ("lenet5", "mnist-5k"),
            ("resnet-small", "digits"), ("mlp", "toy-regression"), ("gpt-tiny", "pydoc-text"),
            ("hf-resnet", "imagefolder")]  # the last on its own server (hf_page)
HF = "hf-resnet"
TIMES: list[str] = []


@pytest.fixture(scope="module")
def page(_chromium, dashboard_url):
    """One page for the module (1280x720, a laptop or a projector)."""
    yield from _page(_chromium, dashboard_url)


@pytest.fixture(scope="module")
def hf_page(_chromium, tmp_path_factory):
    """A tiny transformers ResNet on digits PNG class folders, served by the dashboard
    command as a user would open their own model, and a page on it."""
    pytest.importorskip("transformers")
    pytest.importorskip("torch_pruning")
    from hf_util import digits_folder, saved

    root = tmp_path_factory.mktemp("journey-hf")
    data, model = digits_folder(root / "digits", per_class=40), saved("resnet", root, 10)
    env = checkout_env(**TEST_MODE_ENV, HF_HUB_OFFLINE="1")
    with dashboard_server("--preheat", "0", "--dataset", f"imagefolder:{data}",
                          "--model", f"hf:{model}", env=env) as url:
        yield from _page(_chromium, url)


def _page(_chromium, url):
    context = _chromium.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.page_errors = errors
    start = time.monotonic()
    page.goto(url, wait_until="commit", timeout=LOAD_TIMEOUT_MS)
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
def shot(request):
    """A screenshot of the test's page (the shared one, or the one it named) on failure."""
    yield
    page = getattr(request.node, "cx_page", None) or request.node.funcargs.get("page")
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    if failed and page is not None:
        page.screenshot(path=str(artifact_path(f"{request.node.name}-failed.png")))


# What the bars and the histogram draw: each bar's label and where its drawn parts end,
# the kept and the dense histogram bins.
DRAWN_JS = """(sel) => { const gd = document.querySelector(sel);
  const by = (n) => gd.data.find((t) => t.name === n) || {};
  const num = (v) => Array.from(v || [], Number);
  const kept = by("kept"), pruned = by("pruned");
  const base = num(pruned.base), px = num(pruned.x);
  return {labels: Array.from(kept.y || [], String), names: Array.from(kept.customdata || [],
            (r) => String(r[2])), kept_x: num(kept.x), ends: px.map((x, i) => x + base[i]),
          kept: num(by("kept weights").y), dense: num(by("dense original").y)}; }"""


def check_drawn(page, where: str) -> None:
    """One bar per layer, none past 100%; no kept histogram bin above the dense one."""
    d = page.evaluate(DRAWN_JS, MAIN_FIG)
    assert d["labels"] and len(set(d["labels"])) == len(d["labels"]) == len(set(d["names"])), (
        where, d["labels"], d["names"])
    assert max(d["kept_x"] + d["ends"]) <= 1 + 1e-6, (where, d["kept_x"], d["ends"])
    assert len(d["kept"]) == len(d["dense"]) > 0, where
    assert all(k <= g for k, g in zip(d["kept"], d["dense"])), (where, d["kept"], d["dense"])


# The progress bar's filled share (percent) and the status line, when a job is running.
PROGRESS_JS = """() => { const bar = document.querySelector('.cx-progress .progress-bar');
  const status = document.querySelector('.cx-status');
  return bar && status ? [parseFloat(bar.style.width) || 0, status.innerText] : null; }"""


HALF_DONE_JS = rf"""() => {{ const p = ({PROGRESS_JS})();
  return !!p && p[0] > 50 && p[0] < 100 && /training \(/.test(p[1]); }}"""
# Watches every frame, until the next call, whether a running job was ever shown half done.
WATCH_JS = rf"""() => {{ const half = ({HALF_DONE_JS}); window.__cxHalf = false;
  const run = (window.__cxWatch || 0) + 1; window.__cxWatch = run;
  const tick = () => {{ if (window.__cxWatch !== run) return;
    if (half()) window.__cxHalf = true; requestAnimationFrame(tick); }};
  requestAnimationFrame(tick); }}"""


def check_progress(page, who: str) -> None:
    """A run's progress passes 50% while the job runs (the status still says training):
    seen during the last run (WATCH_JS armed before it), or else in longer runs, each
    stopped once seen and undone (a tiny epoch can end between two of the pump's ticks)."""
    if page.evaluate("() => window.__cxHalf"):
        return
    epochs = page.locator(".cx-epochs input")
    for n in (4, 16, 64, 256):
        epochs.fill(str(n))
        epochs.press("Enter")
        page.evaluate(WATCH_JS)
        page.locator(".cx-train").click()
        seen = page.wait_for_function(
            r"""() => { if (window.__cxHalf) return 'seen';
              const s = document.querySelector('.cx-status').innerText;
              return /training done/.test(s) ? 'done' : false; }""",
            timeout=JOB_TIMEOUT_MS, polling="raf").json_value()
        if seen == "seen":  # Stop, unless the run ended since (then it is disabled)
            page.evaluate("() => { const b = document.querySelector('.cx-stop');"
                          " if (!b.disabled) b.click(); }")
        wait_for_status(page, rf"stopped after|training done \({who}\)")
        page.locator(".cx-undo").click()
        wait_for_status(page, rf"undone \({who}\)")
        if seen == "seen":
            return
    raise AssertionError(f"{who}: 256 epochs ended before the page saw them half done")


def check_reset(page) -> None:
    """Reset asks first (it drops pruning and jobs and cannot be undone), then resets."""
    page.locator(".cx-reset").click()
    wait_for_status(page, "click again to confirm", UPDATE_TIMEOUT_MS)
    assert "Confirm" in page.locator(".cx-reset").inner_text()
    page.locator(".cx-reset").click()
    wait_for_status(page, r"back to the original model")
    back = wait_view(page, "v.bars.length > 0 && v.bars.every((r) => r[0] === r[1])")
    assert pruned_share(back) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("model,dataset", JOURNEYS, ids=[
    m if d != "toy-regression" else d for m, d in JOURNEYS])
def test_model_journey(request, shot, model, dataset):
    """Switch to the model, prune, train an epoch, undo it, see a run pass half way, stop
    a run, reset."""
    page = request.getfixturevalue("hf_page" if model == HF else "page")
    request.node.cx_page = page
    if model != HF and (model, dataset) != JOURNEYS[0]:
        seconds = switch_model(page, model, dataset)
        TIMES.append(f"switch to {model} on {dataset}: {seconds:.1f} s")
        view = wait_view(page, "v.bars.length > 0")
        assert_clean(page, f"switch to {model}")
    name = model if dataset != "toy-regression" else dataset
    page.screenshot(path=str(artifact_path(f"journey_{name}.png")))
    view = main_view(page)
    assert pruned_share(view) == pytest.approx(0.0, abs=1e-6), view["bars"]
    assert view["grid"] > 0, "the network view is empty"
    check_drawn(page, f"{name}: open")

    after, seconds = move_slider(page, 0.5)
    TIMES.append(f"{name}: slider to 0.50 -> bars and histogram drawn {seconds:.2f} s "
                 "after Enter")
    assert pruned_share(after) == pytest.approx(0.5, abs=0.02)
    assert after["hist"] != view["hist"]
    check_drawn(page, f"{name}: slider")
    assert_clean(page, f"{name}: slider")
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
    page.evaluate(WATCH_JS)  # a slow epoch shows its progress pass half way (check_progress)
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
    check_progress(page, "teacher")
    assert main_view(page)["bars"] == after["bars"], "undo after the run lost the masks"
    assert_clean(page, f"{model}: progress")

    epochs.fill("1000")
    epochs.press("Enter")
    page.locator(".cx-train").click()
    wait_for_status(page, r"training \(teacher\): epoch \d+, step \d+")
    page.locator(".cx-stop").click()
    text = wait_for_status(page, r"stopped after \d+ steps; kept the weights so far")
    assert "training (teacher)" in text
    assert_clean(page, f"{model}: stop")
    check_reset(page)
    assert_clean(page, f"{model}: reset")
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
