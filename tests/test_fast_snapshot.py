"""Fast slider path: compare-pass masks and histograms from sorted values equal the slow ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explorer import Session
from explorer.config import PruneConfig
from explorer.engine.metrics import layer_stats
from explorer.engine.prune import MagnitudeIndex, _mask_dropping, compute_masks


@pytest.fixture(scope="module")
def session() -> Session:
    return Session("digits", "mlp", device="cpu")


def slow_layers(s: Session) -> dict:
    named = dict(s.model.named_parameters())
    slot = s.slot
    return {n: layer_stats(n, named[n], slot.base_counts[n], slot.edges[n], slot.cuts.get(n, 0.0))
            for n in slot.prunable}


@pytest.mark.parametrize("kwargs", [{"sparsity": 0.0}, {"sparsity": 0.5},
                                    {"sparsity": 0.93, "scope": "global"},
                                    {"threshold": 0.05}, {"std": 1.2}, {"sparsity": 1.0}])
def test_fast_snapshot_equals_passes_over_weights(session, kwargs):
    """Counts and survivor histograms read from sorted values equal histc over the weights."""
    snap = session.prune(**kwargs)
    slow = slow_layers(session)
    for layer in snap.layers:
        ref = slow[layer.name]
        assert layer.nonzero == ref.nonzero
        assert np.array_equal(layer.hist_counts, ref.hist_counts), layer.name
        assert layer.hist_counts.min() >= 0 and int(layer.hist_counts.sum()) == layer.nonzero


def test_training_invalidates_the_fast_path(session):
    """After an in-place change of the weights the snapshot falls back to real passes."""
    session.prune(sparsity=0.5)
    with torch.no_grad():
        session.model.layers[0].weight.add_(0.01)  # bumps the tensor's version counter
    snap = session.snapshot()
    ref = slow_layers(session)["layers.0.weight"]
    assert np.array_equal(snap.layer("layers.0.weight").hist_counts, ref.hist_counts)
    assert snap.layer("layers.0.weight").nonzero == ref.nonzero
    session.reset_pruning()


def test_tied_magnitudes_still_prune_exactly_k():
    """With ties at the cut the mask still drops exactly round(s*n), lowest index first."""
    w = torch.tensor([[0.1, -0.1, 0.1, 0.3], [0.1, 0.2, -0.1, 0.5]])
    result = compute_masks(MagnitudeIndex({"w": w}), PruneConfig(sparsity=0.25))
    assert result.exact_cuts and result.ties["w"].tolist() == [2, 4, 6]  # ties kept
    assert int((~result.masks["w"]).sum()) == 2
    assert result.masks["w"].flatten().tolist()[:2] == [False, False]
    clean = compute_masks(MagnitudeIndex({"w": torch.arange(1.0, 9.0).view(2, 4)}),
                          PruneConfig(sparsity=0.25))
    assert clean.exact_cuts and int((~clean.masks["w"]).sum()) == 2


def quantized(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """Weights on a coarse grid: many equal magnitudes, so ties straddle most cuts."""
    g = torch.Generator().manual_seed(seed)
    return torch.round(torch.randn(shape, generator=g) * 8) / 8


@pytest.mark.parametrize("scope", ["layer", "global"])
@pytest.mark.parametrize("sparsity", [0.1, 0.37, 0.5, 0.9])
def test_tie_masks_equal_the_scatter_of_the_k_smallest(scope, sparsity):
    """|w| > cut plus the kept ties is the mask that drops order[:k] (stable order)."""
    weights = {"a": quantized((40, 30), 0), "b": quantized((25, 40), 1)}
    index = MagnitudeIndex(weights)
    result = compute_masks(index, PruneConfig(sparsity=sparsity, scope=scope), min_density=0)
    assert result.ties, "the grid should put ties at the cut"
    if scope == "layer":
        for name, w in weights.items():
            _, order = index.layer(name)
            k = round(sparsity * w.numel())
            assert torch.equal(result.masks[name], _mask_dropping(order, k, w.shape)), name
    else:
        _, order = index.global_()
        n = sum(w.numel() for w in weights.values())
        flat = _mask_dropping(order, round(sparsity * n), torch.Size([n]))
        got = torch.cat([result.masks[name].flatten() for name in weights])
        assert torch.equal(got, flat)


@pytest.mark.parametrize("kwargs", [{"sparsity": 0.37}, {"sparsity": 0.8, "scope": "global"}])
def test_fast_snapshot_with_ties_equals_passes_over_weights(kwargs):
    """Counts and histograms stay exact when equal magnitudes straddle the cut."""
    s = Session("digits", "mlp", device="cpu")
    state = {n: (quantized(tuple(t.shape), i) if n in s.slot.prunable else t)
             for i, (n, t) in enumerate(s.model.state_dict().items())}
    s.slot.set_base(state)
    snap = s.prune(**kwargs)
    assert s.slot.tie_values, "the grid should put ties at the cut"
    slow = slow_layers(s)
    for layer in snap.layers:
        ref = slow[layer.name]
        assert layer.nonzero == ref.nonzero, layer.name
        assert np.array_equal(layer.hist_counts, ref.hist_counts), layer.name


def test_min_density_refill_with_ties_keeps_the_largest_and_says_how_many():
    """A layer global pruning would empty is refilled to its largest weights; the warning
    names the count it would have kept (an int, not the tie indices)."""
    weights = {"big": quantized((40, 30), 0) * 10, "small": quantized((20, 10), 1) / 10}
    index = MagnitudeIndex(weights)
    result = compute_masks(index, PruneConfig(sparsity=0.9, scope="global"), min_density=0.2)
    need = 40  # ceil(0.2 * 200)
    assert int(result.masks["small"].sum()) == need
    assert any(w.startswith("small: global pruning would keep 0 of 200") for w in result.warnings)
