"""engine.plan (the slider's fast path over graph groups) equals the per-group loops it
replaced, kept here as the reference: masks bit for bit (ties: stable sort, lower index
first; one channel survives), dead channels and the parameter fraction a shrink removes."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("torch_pruning")

from explorer.engine import graph  # noqa: E402
from explorer.engine.attention import graph_of, graph_removed_fraction  # noqa: E402
from explorer.engine.graph import dead_channels, graph_masks, group_scores  # noqa: E402
from explorer.engine.plan import plan_for  # noqa: E402
from explorer.engine.prune import n_to_prune  # noqa: E402
from explorer.models.zoo import build_model  # noqa: E402

SPARSITIES = (0.0, 0.1, 0.3, 0.5, 0.77, 0.95, 1.0)


def reference_masks(params, groups, sparsity, norm):
    """graph_masks as it was: one stable sort and one index_fill per group member."""
    keeps, warnings = {}, []
    for group in groups:
        scores = group_scores(group, params, norm)
        n = group.size
        k = n_to_prune(sparsity, n)
        if k >= n:
            warnings.append(f"{group.name}: removing {k} of {n} {group.kind} would empty it; "
                            "kept the strongest one")
            k = n - 1
        keep = torch.ones(n, dtype=torch.bool)
        keep[torch.sort(scores, stable=True).indices[:k]] = False
        for mem in group.members:
            dims = keeps.setdefault(mem.param, {})
            vec = dims.get(mem.dim, torch.ones(params[mem.param].shape[mem.dim],
                                               dtype=torch.bool))
            dims[mem.dim] = vec.index_fill(0, mem.idx[~keep[mem.root]], False)
    masks = {}
    for name, dims in keeps.items():
        ref = params[name]
        mask = torch.ones(ref.shape, dtype=torch.bool)
        for dim, vec in dims.items():
            mask &= vec.view(*[-1 if d == dim else 1 for d in range(ref.ndim)])
        masks[name] = mask
    return masks, warnings


def reference_fraction(model) -> float:
    """graph_removed_fraction as it was: a full-size mask per parameter."""
    groups, _ = graph_of(model)
    state = dict(model.named_parameters())
    gone = {}
    for group in groups:
        dead = torch.zeros(group.size, dtype=torch.bool)
        dead[dead_channels(group, state)] = True
        for mem in group.members:
            mask = gone.get(mem.param, torch.zeros(state[mem.param].shape, dtype=torch.bool))
            gone[mem.param] = mask.index_fill(mem.dim, mem.idx[dead[mem.root]], True)
    return sum(int(m.sum()) for m in gone.values()) / sum(p.numel() for p in state.values())


def zoo(name: str, seed: int = 1):
    return build_model(name, (64,), 10, image_shape=(1, 8, 8), init="he", seed=seed)


def tied(model):
    """Weights rounded to a coarse grid, so many channel norms tie exactly."""
    with torch.no_grad():
        for p in model.parameters():
            p.copy_((p * 2).round() / 2)
    return model


def assert_same(got, want):
    assert list(got) == list(want)  # the same parameters, in the same order
    for name in want:
        assert got[name].dtype == torch.bool and torch.equal(got[name], want[name]), name


@pytest.mark.parametrize("name", ("mlp", "lenet5", "resnet-small"))
@pytest.mark.parametrize("norm", ("l1", "l2"))
def test_masks_equal_the_per_group_loop(name, norm):
    for model in (zoo(name), tied(zoo(name, seed=2))):
        groups, _ = graph_of(model)
        params = dict(model.named_parameters())
        for s in SPARSITIES:
            masks, notes = graph_masks(params, groups, s, norm)
            want, want_notes = reference_masks(params, groups, s, norm)
            assert_same(masks, want)
            assert notes == want_notes


def test_ranks_follow_changed_weights():
    """The cached ranks are dropped when a ranked weight changes in place."""
    model = zoo("lenet5")
    groups, _ = graph_of(model)
    params = dict(model.named_parameters())
    graph_masks(params, groups, 0.5, "l1")
    with torch.no_grad():
        params["conv1.weight"][0].mul_(100.0)  # channel 0 of conv1 is now the strongest
        params["conv1.weight"][1:].mul_(0.5)
    masks, _ = graph_masks(params, groups, 0.5, "l1")
    assert_same(masks, reference_masks(params, groups, 0.5, "l1")[0])
    assert bool(masks["conv1.weight"][0].all())


def test_new_weights_rank_afresh():
    model = zoo("mlp")
    groups, _ = graph_of(model)
    base = dict(model.named_parameters())
    graph_masks(base, groups, 0.5, "l1")
    other = {n: torch.randn_like(p) for n, p in base.items()}
    assert_same(graph_masks(other, groups, 0.5, "l1")[0],
                reference_masks(other, groups, 0.5, "l1")[0])


@pytest.mark.parametrize("name", ("mlp", "lenet5", "resnet-small"))
def test_dead_channels_and_removed_fraction(name):
    model = zoo(name)
    groups, _ = graph_of(model)
    plan = plan_for(groups)
    for s in (0.0, 0.4, 1.0):
        masks, _ = graph_masks(dict(model.named_parameters()), groups, s, "l1")
        with torch.no_grad():
            for n, p in model.named_parameters():
                if n in masks:
                    p.mul_(masks[n])
        state = dict(model.named_parameters())
        dead = plan.dead(state)
        for group, offset in zip(groups, plan.offsets.tolist()):
            want = dead_channels(group, state)
            got = torch.nonzero(dead[offset:offset + group.size]).flatten()
            assert got.tolist() == want.tolist(), group.name
        assert graph_removed_fraction(model) == reference_fraction(model)


def test_scores_cache_is_not_needed_for_equal_masks():
    model = zoo("resnet-small")
    groups, _ = graph_of(model)
    params = dict(model.named_parameters())
    first, _ = graph_masks(params, groups, 0.3, "l2")
    graph._SCORES.clear()
    plan_for(groups)._ranks.clear()
    assert_same(graph_masks(params, groups, 0.3, "l2")[0], first)


def test_an_emptied_group_keeps_its_last_channel():
    model = zoo("lenet5")
    groups, _ = graph_of(model)
    with torch.no_grad():
        model.conv1.weight.zero_()
        model.conv1.bias.zero_()
        model.conv2.weight.zero_()  # its consumer columns too: then every channel is dead
    state = dict(model.named_parameters())
    dead = plan_for(groups).dead(state)
    group = next(g for g in groups if g.name == "conv1")
    offset = int(plan_for(groups).offsets[[g.name for g in groups].index("conv1")])
    assert torch.nonzero(dead[offset:offset + group.size]).flatten().tolist() == \
        dead_channels(group, state).tolist() == list(range(group.size - 1))
    assert graph_removed_fraction(model) == reference_fraction(model)


@pytest.mark.parametrize("kind", ("resnet", "gpt2"))
def test_hf_masks_equal_the_per_group_loop(tmp_path, kind):
    pytest.importorskip("transformers")
    from hf_util import saved

    from explorer.models.hf import load_hf

    model = load_hf(f"hf:{saved(kind, tmp_path)}")
    groups, _ = graph_of(model)
    params = dict(model.named_parameters())
    for s in (0.25, 0.5, 0.9):
        assert_same(graph_masks(params, groups, s, "l1")[0],
                    reference_masks(params, groups, s, "l1")[0])
    assert graph_removed_fraction(model) == reference_fraction(model)
