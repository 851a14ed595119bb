"""The app on your own model: a transformers ViT on an image folder, without a browser."""

from __future__ import annotations

import pytest

pytest.importorskip("transformers")
pytest.importorskip("torch_pruning")

import ipywidgets as W  # noqa: E402
from hf_util import digits_folder, saved  # noqa: E402
from ui_util import headline, pruned_fraction  # noqa: E402

from explorer import Session  # noqa: E402
from explorer.ui import ExplorerApp  # noqa: E402
from explorer.ui.layer_search import LayerSearch  # noqa: E402


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    root = tmp_path_factory.mktemp("byo-app")
    data = digits_folder(root / "digits", per_class=12, classes=3)
    return ExplorerApp(Session(f"imagefolder:{data}", f"hf:{saved('vit', root)}"))


@pytest.mark.slow  # building the app takes about 25 s on a loaded 2-core machine
def test_structured_slider_prunes_heads_and_neurons_through_the_graph(app):
    """Structured 50% on a ViT: the bars and the headline follow; heads were removed."""
    app.c.structured.value = True
    app.c.slider.value = 0.5
    assert pruned_fraction(app) > 0.2
    assert "structured" in headline(app)
    small = app.session.shrink()
    att = small.get_submodule("inner.vit.layers.0.attention")
    assert att.num_attention_heads == 2
    app.c.slider.value = 0.0
    assert pruned_fraction(app) == 0


def test_layer_search_sets_the_layer_dropdown():
    """Picking a match in the search box selects that layer; stale text does nothing."""
    names = [f"inner.encoder.layer.{i}.dense" for i in range(120)]
    dropdown = W.Dropdown(options=names, value=names[0])
    search = LayerSearch(dropdown)
    assert search.box.layout.display is None and len(search.box.options) == 120
    search.box.value = names[97]
    assert dropdown.value == names[97]
    dropdown.options = names[:5]
    dropdown.value = names[0]
    search.box.value = names[97]  # no longer a layer: ignored
    assert dropdown.value == names[0] and search.box.layout.display == "none"


def test_data_and_model_panel_names_your_own_folders():
    """The session's imagefolder:/hf: specs join the zoo's options, labelled by folder."""
    from explorer.ui.model_panel import choices

    options, value = choices(("digits", "mnist-5k"), "imagefolder:/data/my digits/", "digits")
    assert value == "imagefolder:/data/my digits/"
    assert options[-1] == ("imagefolder: my digits", value) and len(options) == 3
    assert choices(("mlp", "lenet5"), "hf:/m/resnet18", "mlp")[0][-1] == (
        "hf: resnet18", "hf:/m/resnet18")
    assert choices(("mlp", "lenet5"), "lenet5", "mlp") == (["mlp", "lenet5"], "lenet5")
    assert choices(("mlp",), "SomeModule", "mlp")[1] == "mlp"


def test_layer_search_turns_the_bar_page_to_the_layer():
    """Layer 97 of 120 sits on bar page 9 (ten bars a page): a pick turns to it."""
    names = [f"inner.encoder.layer.{i}.dense" for i in range(120)]
    dropdown = W.Dropdown(options=names, value=names[0])
    page = W.Dropdown(options=[(f"page {i}", i) for i in range(12)], value=0)
    search = LayerSearch(dropdown, page)
    search.box.value = names[97]
    assert dropdown.value == names[97] and page.value == 9
    search.box.value = names[3]
    assert page.value == 0


@pytest.mark.slow  # shares the app above
def test_headline_says_subset_then_the_full_set_follows(app, monkeypatch):
    """A big model's move shows the 256-subset first (said in the headline); the refiner
    then shows the full validation split, and a newer move cancels a pending one."""
    import explorer.session.subsets as subsets
    import explorer.ui.refine as refine

    monkeypatch.setattr(subsets, "FAST_EVAL_MIN_PARAMS", 1)
    monkeypatch.setattr(subsets, "FAST_EVAL_SAMPLES", 4)
    monkeypatch.setattr(refine, "SETTLE_S", 0.0)
    app.c.structured.value = False
    app.c.slider.value = 0.3
    total = len(app.session.data.val)
    assert f"on 4 of {total} samples (subset" in headline(app)
    assert app.refiner.wait()
    assert "subset" not in headline(app)
    assert app.snap.accuracy == pytest.approx(app.session.refine().accuracy)
    app.refiner.after(app.snap)  # a full-set snapshot schedules nothing
    assert app.refiner.generation and app.refiner.wait()
