"""Fast slider path: compare-pass masks and histograms from sorted values equal the slow ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explorer import Session
from explorer.config import PruneConfig
from explorer.engine.metrics import layer_stats
from explorer.engine.prune import MagnitudeIndex, compute_masks


@pytest.fixture(scope="module")
def session() -> Session:
    return Session("digits", "mlp", device="cpu")


def slow_layers(s: Session) -> dict:
    named = dict(s.model.named_parameters())
    return {n: layer_stats(n, named[n], s.slot.base_counts[n], s.slot.edges[n], s.cuts.get(n, 0.0))
            for n in s.prunable}


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
    assert not result.exact_cuts
    assert int((~result.masks["w"]).sum()) == 2
    assert result.masks["w"].flatten().tolist()[:2] == [False, False]
    clean = compute_masks(MagnitudeIndex({"w": torch.arange(1.0, 9.0).view(2, 4)}),
                          PruneConfig(sparsity=0.25))
    assert clean.exact_cuts and int((~clean.masks["w"]).sum()) == 2
