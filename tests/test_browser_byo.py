"""Your own model in the page: `explorer dashboard --dataset imagefolder:D --model hf:M`.

A transformers ResNet of 2.2M parameters (over the 2M line where a slider move answers on a
256-sample subset first) on the digits written as PNG class folders, served by the real
dashboard command, driven in Chromium at 1280x720: the headline says which data and model
opened, a typed sparsity prunes the bars, the headline says "subset" and then the full set
follows, and the layer search box picks a layer. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import re

import pytest

pytest.importorskip("transformers")
pytest.importorskip("torch_pruning")

from browser_util import (  # noqa: E402
    LOAD_TIMEOUT_MS,
    MAIN_FIG,
    PRUNE_READOUT,
    READ_MAIN_JS,
    UPDATE_TIMEOUT_MS,
    assert_clean,
    main_view,
    pruned_share,
    set_readout,
    wait_for_text,
)
from conftest import TEST_MODE_ENV, artifact_path, checkout_env, dashboard_server  # noqa: E402
from hf_util import digits_folder, gpt2, gpt2_bpe  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.slow]

HEADLINE = ".cx-sparsity-label"
SELECTED_LAYER_JS = """() => { const s = document.querySelector('.cx-layer select');
  return s.options[s.selectedIndex].textContent; }"""


def resnet_2m(folder):
    """A 4-stage basic-block ResNet of about 2.2M parameters (10 classes), saved."""
    import torch
    import transformers as T

    torch.manual_seed(0)
    cfg = T.ResNetConfig(embedding_size=32, hidden_sizes=[32, 64, 128, 384],
                         depths=[1, 1, 1, 1], layer_type="basic", num_labels=10)
    model = T.ResNetForImageClassification(cfg)
    assert sum(p.numel() for p in model.parameters()) > 2_000_000
    path = folder / "resnet2m"
    model.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("byo-browser")
    data = digits_folder(root / "digits")  # 1,797 images: 360 validation samples > 256
    model = resnet_2m(root)
    env = checkout_env(**TEST_MODE_ENV, HF_HUB_OFFLINE="1")
    with dashboard_server("--preheat", "0", "--dataset", f"imagefolder:{data}",
                          "--model", f"hf:{model}", env=env) as url:
        yield url


def open_page(chromium, url):
    context = chromium.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.page_errors = errors
    page.goto(url, wait_until="commit", timeout=LOAD_TIMEOUT_MS)
    page.wait_for_selector(MAIN_FIG, timeout=LOAD_TIMEOUT_MS)
    page.wait_for_selector(PRUNE_READOUT, timeout=LOAD_TIMEOUT_MS)
    return context, page


@pytest.fixture(scope="module")
def page(_chromium, served):
    context, page = open_page(_chromium, served)
    yield page
    context.close()


def wait_pruned(page, share: float) -> dict:
    """Wait until the bars show `share` of the weights pruned; the main view then."""
    page.wait_for_function(
        "([sel, share]) => { const gd = document.querySelector(sel);"
        " const k = gd && gd.data && gd.data.find((t) => t.name === 'kept');"
        " if (!k || !k.customdata) return false;"
        " const rows = Array.from(k.customdata);"
        " const kept = rows.reduce((a, r) => a + Number(r[0]), 0);"
        " const all = rows.reduce((a, r) => a + Number(r[1]), 0);"
        " return Math.abs(1 - kept / all - share) < 0.02; }",
        arg=[MAIN_FIG, share], timeout=UPDATE_TIMEOUT_MS, polling=100)
    return main_view(page)


def headline(page) -> str:
    return re.sub(r"\s+", " ", page.locator(HEADLINE).inner_text()).strip()


def wait_headline(page, pattern: str, timeout_ms: int = UPDATE_TIMEOUT_MS) -> str:
    if not wait_for_text(page, HEADLINE, pattern, timeout_ms):
        raise AssertionError(f"headline never matched {pattern!r}: {headline(page)!r}")
    return headline(page)


def test_own_resnet_on_an_image_folder_in_the_page(page):
    """The dashboard opened the hf: ResNet on the folder; the slider prunes it, the subset
    answer comes first and the full validation set follows; the layer search picks."""
    page.screenshot(path=str(artifact_path("byo_resnet_open.png")))
    # transformers' "Loading weights" progress bar must not sit above the app
    assert "Loading weights" not in page.locator("body").inner_text()
    before = main_view(page)
    assert before["bars"] and pruned_share(before) == pytest.approx(0.0, abs=1e-6)
    assert any("resnet" in row[2] for row in before["bars"]), before["bars"][:3]
    assert_clean(page, "open")

    set_readout(page, PRUNE_READOUT, "0.50")
    after = wait_pruned(page, 0.5)
    assert pruned_share(after) == pytest.approx(0.5, abs=0.02)
    assert after["hist"] != before["hist"]
    # The first answer is on the seeded subset, said so; the full split replaces it.
    text = wait_headline(page, r"on 256 of \d+ samples \(subset; full set")  # no BatchNorm step
    total = int(re.search(r"on 256 of (\d+) samples", text).group(1))
    assert total > 256
    page.screenshot(path=str(artifact_path("byo_resnet_subset.png")))
    full = wait_headline(page, r"^(?![\s\S]*subset)[\s\S]*accuracy")
    assert "subset" not in full
    page.screenshot(path=str(artifact_path("byo_resnet_pruned.png")))
    assert_clean(page, "slider")
    # structured: the first answer's BatchNorm statistics come from 64 samples, said so
    page.locator(".cx-structured input").check()
    wait_headline(page, r"\(subset, BatchNorm on 64; full set follows\)")
    page.screenshot(path=str(artifact_path("byo_resnet_structured_first.png")))
    wait_headline(page, r"^(?![\s\S]*subset)[\s\S]*accuracy")
    assert_clean(page, "structured")

    search = page.locator(".cx-layer-search input")
    assert search.is_visible(), "a 13-layer model shows the layer search box"
    layers = page.locator(".cx-layer select option").all_inner_texts()
    target = layers[-2]
    assert page.evaluate(SELECTED_LAYER_JS) != target
    shown = page.locator(MAIN_FIG).inner_text()
    search.fill(target)
    search.press("Enter")
    page.wait_for_function(
        f"([t]) => ({SELECTED_LAYER_JS})() === t",
        arg=[target], timeout=UPDATE_TIMEOUT_MS, polling=100)
    # ...the histogram redraws for that layer (its title names the layer's tail) and the
    # bars turn to the page that holds it
    page.wait_for_function(
        "([sel, before]) => document.querySelector(sel).textContent !== before",
        arg=[MAIN_FIG, shown], timeout=UPDATE_TIMEOUT_MS, polling=100)
    page.wait_for_function(
        f"([sel, t]) => {{ const v = ({READ_MAIN_JS.strip()})(sel);"
        " return v !== null && v.bars.some((r) => r[2] === t); }",
        arg=[MAIN_FIG, target], timeout=UPDATE_TIMEOUT_MS, polling=100)
    page.screenshot(path=str(artifact_path("byo_resnet_search.png")))
    assert_clean(page, "layer search")
    page.locator(".cx-tabs .lm-TabBar-tab", has_text="Data & model").click()
    page.wait_for_selector(".cx-new-session", state="visible", timeout=UPDATE_TIMEOUT_MS)
    page.screenshot(path=str(artifact_path("byo_resnet_data_tab.png")))
    shown = [page.locator(f"{sel} select").evaluate(
        "(s) => s.options[s.selectedIndex].textContent.replace(/\\u00a0/g, ' ')")
        for sel in (".cx-dataset", ".cx-model")]  # ipywidgets draws spaces as no-break ones
    assert shown == ["imagefolder: digits", "hf: resnet2m"], shown
    assert_clean(page, "data tab")
    assert not page.page_errors, page.page_errors


def test_own_gpt2_on_text_in_the_page(_chromium, tmp_path):
    """`--dataset pydoc-text --model hf:GPT2`: the headline is perplexity, and the slider
    prunes the model's layers."""
    env = checkout_env(**TEST_MODE_ENV, HF_HUB_OFFLINE="1")
    with dashboard_server("--preheat", "0", "--dataset", "pydoc-text",
                          "--model", f"hf:{gpt2(tmp_path)}", env=env) as url:
        context, page = open_page(_chromium, url)
        try:
            assert "perplexity" in wait_headline(page, "perplexity")
            before = main_view(page)
            set_readout(page, PRUNE_READOUT, "0.50")
            after = wait_pruned(page, 0.5)
            assert after["hist"] != before["hist"]
            wait_headline(page, r"perplexity[\s\S]*vs dense")
            page.screenshot(path=str(artifact_path("byo_gpt2_pruned.png")))
            assert_clean(page, "gpt2 slider")
            assert not page.page_errors, page.page_errors
        finally:
            context.close()


def wait_changed(page, selector: str, old: str) -> str:
    """`selector`'s text once it is not `old` and not a placeholder (the sample's)."""
    page.wait_for_function(
        "([sel, old]) => { const e = document.querySelector(sel);"
        " const t = e ? e.innerText : ''; return t && t !== old"
        " && !/generating|updating/.test(t); }",
        arg=[selector, old], timeout=UPDATE_TIMEOUT_MS, polling=100)
    return page.locator(selector).inner_text()


def test_wanda_2_4_on_a_bpe_gpt2_in_the_page(_chromium, tmp_path):
    """A tokenizer-backed hf: GPT-2: Criterion=Wanda and a slider move, then Pattern=2:4;
    each time the perplexity headline, the per-layer bars and the text sample change."""
    env = checkout_env(**TEST_MODE_ENV, HF_HUB_OFFLINE="1")
    with dashboard_server("--preheat", "0", "--dataset", "pydoc-text",
                          "--model", f"hf:{gpt2_bpe(tmp_path)}", env=env) as url:
        context, page = open_page(_chromium, url)
        try:
            text = wait_headline(page, "perplexity")
            sample = page.locator(".cx-sample").inner_text()  # may be empty at open
            view = main_view(page)
            page.locator(".cx-criterion select").select_option(label="Wanda (|w| x input norm)")
            set_readout(page, PRUNE_READOUT, "0.30")
            for share in (0.3, 0.5):
                if share == 0.5:
                    page.locator(".cx-pattern select").select_option(label="2:4 (GPU sparse)")
                now = wait_pruned(page, share)
                assert now["bars"] != view["bars"]
                text = wait_changed(page, HEADLINE, text)
                assert "validation perplexity" in text, text
                sample = wait_changed(page, ".cx-sample", sample)
                view = now
            page.screenshot(path=str(artifact_path("byo_gpt2_wanda_2_4.png")))
            assert_clean(page, "wanda 2:4")
            assert not page.page_errors, page.page_errors
        finally:
            context.close()
