"""A k-means bits move's snapshot reads each layer's histogram from the codebook and its
index counts (explorer.engine.metrics.codebook_layer_stats); it must equal histc and
count_nonzero over the quantized weights themselves."""

from __future__ import annotations

import numpy as np
import pytest

from explorer import Session
from explorer.engine import quantize
from explorer.engine.metrics import layer_stats


@pytest.fixture(scope="module")
def session() -> Session:
    return Session("digits", "mlp", device="cpu")


@pytest.fixture(params=[False, True], ids=["small-path", "binned-path"])
def binned(request, monkeypatch):
    """The binned assignment (a big layer's) forced on the small model's layers."""
    if request.param:
        monkeypatch.setattr(quantize, "BINNED_MIN", 1)
    return request.param


@pytest.mark.parametrize("sparsity", [0.0, 0.6, 0.97])
@pytest.mark.parametrize("bits", [2, 4, 8])
def test_codebook_snapshot_equals_passes_over_weights(session, binned, sparsity, bits):
    session.quantize(bits=32)
    session.slot.quant_cache.clear()  # each path quantizes afresh
    session.prune(sparsity=sparsity) if sparsity else session.reset_pruning()
    snap = session.quantize(bits=bits)
    slot, named = session.slot, dict(session.model.named_parameters())
    for layer in snap.layers:
        p = named[layer.name]
        known = slot.known_stats.get(layer.name)
        assert known is not None and known[1:] == (id(p), p._version)  # the fast path ran
        ref = layer_stats(layer.name, p, slot.base_counts[layer.name],
                          slot.edges[layer.name], slot.cuts.get(layer.name, 0.0))
        assert (layer.numel, layer.nonzero, layer.sparsity, layer.cut) == \
            (ref.numel, ref.nonzero, ref.sparsity, ref.cut)
        assert np.array_equal(layer.hist_counts, ref.hist_counts), layer.name
        assert layer.hist_counts.dtype == ref.hist_counts.dtype
        assert np.array_equal(layer.hist_base_counts, ref.hist_base_counts)
        assert np.array_equal(layer.hist_edges, ref.hist_edges)
    session.quantize(bits=32)
    session.reset_pruning()
