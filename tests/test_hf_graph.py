"""Structured pruning of transformers models through the dependency graph: masked == shrunk."""

from __future__ import annotations

import copy

import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("torch_pruning")

from hf_util import saved  # noqa: E402

from explorer.engine.attention import graph_of, graph_shrink  # noqa: E402
from explorer.engine.graph import graph_masks  # noqa: E402
from explorer.models.hf import load_hf  # noqa: E402

KINDS = ("resnet", "mobilenetv2", "convnext", "vit", "bert", "gpt2")


def masked_copy(model, masks):
    out = copy.deepcopy(model)
    with torch.no_grad():
        for name, p in out.named_parameters():
            if name in masks:
                p.mul_(masks[name])
    return out


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    return {k: saved(k, root) for k in KINDS}


@pytest.mark.parametrize("kind", KINDS)
def test_masked_equals_shrunk(folders, kind):
    """Half of every group removed physically gives the masked model's outputs (1e-4)."""
    model = load_hf(f"hf:{folders[kind]}")
    groups, _ = graph_of(model)
    params = dict(model.named_parameters())
    masks, _ = graph_masks(params, groups, 0.5, "l1")
    masked = masked_copy(model, masks).eval()
    small = graph_shrink(masked).eval()
    x = model.example_input(4)
    with torch.no_grad():
        want, got = masked(x), small(x)
    assert n_params(small) < n_params(model)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    with torch.no_grad():  # the mask did something: the dense outputs differ
        assert not torch.allclose(model.eval()(x), want, atol=1e-4)


@pytest.mark.parametrize("kind", ("vit", "bert", "gpt2"))
def test_heads_are_groups(folders, kind):
    """Every attention module of a transformer becomes one group of its 4 heads."""
    model = load_hf(f"hf:{folders[kind]}")
    groups, _ = graph_of(model)
    heads = [g for g in groups if g.kind == "heads"]
    assert len(heads) == 2 and all(g.size == 4 for g in heads)
    masks, _ = graph_masks(dict(model.named_parameters()), heads, 0.25, "l2")
    small = graph_shrink(masked_copy(model, masks))
    att = small.get_submodule(heads[0].name)
    assert getattr(att, "num_heads", getattr(att, "num_attention_heads", None)) == 3


def test_residual_stream_is_skipped_with_reason(folders):
    """Groups through LayerNorm are refused by name, never masked."""
    model = load_hf(f"hf:{folders['bert']}")
    groups, skipped = graph_of(model)
    assert any("LayerNorm" in s or "Embedding" in s for s in skipped)
    names = {m.param for g in groups for m in g.members}
    assert not any("LayerNorm" in n for n in names)


def test_zero_sparsity_keeps_everything(folders):
    """sparsity 0 masks nothing and the shrink keeps every parameter."""
    model = load_hf(f"hf:{folders['resnet']}")
    groups, _ = graph_of(model)
    masks, _ = graph_masks(dict(model.named_parameters()), groups, 0.0, "l1")
    assert all(bool(m.all()) for m in masks.values())
    assert n_params(graph_shrink(model)) == n_params(model)


@pytest.mark.parametrize("kind", ("resnet", "mobilenetv2", "gpt2"))
def test_removed_fraction_counts_what_the_shrink_removes(folders, kind):
    """The fraction counted from dead channels equals 1 - shrunk / dense parameters."""
    from explorer.engine.attention import graph_removed_fraction

    model = load_hf(f"hf:{folders[kind]}")
    groups, _ = graph_of(model)
    masked = masked_copy(model, graph_masks(dict(model.named_parameters()), groups, 0.5,
                                            "l1")[0])
    want = 1 - n_params(graph_shrink(masked)) / n_params(model)
    assert graph_removed_fraction(masked) == pytest.approx(want, abs=1e-9)


def test_cached_scores_follow_weight_changes(folders):
    """Scores are reused while the weights are untouched and recomputed after an edit."""
    from explorer.engine import graph
    from explorer.engine.graph import group_scores

    model = load_hf(f"hf:{folders['resnet']}")
    group = graph_of(model)[0][0]
    params = dict(model.named_parameters())
    first = group_scores(group, params, "l1")
    assert group_scores(group, params, "l1") is first
    with torch.no_grad():
        params[group.members[0].param].mul_(2.0)  # bumps the version counter
    again = group_scores(group, params, "l1")
    assert not torch.equal(again, first)
    graph._SCORES.clear()
    assert torch.equal(group_scores(group, params, "l1"), again)
