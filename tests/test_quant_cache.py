"""Issue 31's speed without a change of answer: the per-layer cache (a move back to a
setting is a lookup; a new mask or base is never served stale) and the binned k-means
assignment (exactly np.searchsorted)."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from explorer import Session
from explorer.engine import quantize
from explorer.engine.quantize import nearest_codes, quantize_layer
from explorer.session.quant import cache_of


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(16, 300), st.sampled_from([1e-3, 1.0, 1e4]))
def test_nearest_codes_is_searchsorted(seed, k, scale):
    """Any sorted midpoints (clustered ones included) and values on, next to and far
    outside them: the same codes as the binary search."""
    rng = np.random.default_rng(seed)
    mids = np.sort(np.concatenate([rng.standard_normal(k // 2) * scale,
                                   rng.standard_normal(k - k // 2) * scale * 1e-3]))
    values = np.concatenate([rng.standard_normal(1 << 16) * scale, mids,
                             np.nextafter(mids, np.inf), np.nextafter(mids, -np.inf),
                             [-1e9 * scale, 1e9 * scale]]).astype(np.float32)
    assert np.array_equal(nearest_codes(values, mids),
                          np.searchsorted(mids, values, side="left"))


def test_move_back_is_a_lookup_and_changes_invalidate():
    s = Session("digits", "mlp")
    s.prune(sparsity=0.5)
    s.quantize(bits=4)
    first = dict(s.slot.quant_layers)
    s.quantize(bits=3)
    s.quantize(bits=4)
    assert all(s.slot.quant_layers[n] is lq for n, lq in first.items())  # cached
    s.prune(sparsity=0.7)  # new masks: quantized afresh, pruned weights stay zero
    masks = s.slot.masks
    for name, lq in s.slot.quant_layers.items():
        assert lq is not first[name]
        assert torch.all(s.slot.params()[name][~masks[name]] == 0)
        fresh = quantize_layer(s.slot.base[name] * masks[name], 4, "kmeans", masks[name])
        assert torch.equal(lq.values, fresh.values)
    with torch.no_grad():  # an in-place change of the base bumps its version
        name = s.slot.prunable[0]
        s.slot.base[name].mul_(0.5)
    s.quantize(bits=4)
    assert torch.equal(s.slot.quant_layers[name].values, quantize_layer(
        s.slot.base[name] * masks[name], 4, "kmeans", masks[name]).values)
    cache = cache_of(s.slot)
    assert cache.hits > 0 and cache._held <= cache.max_bytes


@settings(max_examples=12, deadline=None)
@given(st.integers(2, 8), st.integers(0, 2**31 - 1), st.sampled_from([0.0, 0.5, 0.95]),
       st.booleans(), st.booleans())
def test_binned_kmeans_equals_binary_search(bits, seed, sparsity, shifted, snapped):
    """A big layer's k-means by the bin table (pruned zeros in it, survivors beside them
    in zero's bin, survivors all of one sign, weights exactly on a midpoint, masked
    weights not yet zero) gives what
    a binary search per weight gives: the same indices, values and codebook; pruned
    weights index 0 and stay zero."""
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(260, 260, generator=gen) + (3.0 if shifted else 0.0)
    mask = torch.rand(w.shape, generator=gen) >= sparsity
    w.view(-1)[100:110] = torch.linspace(-1e-6, 1e-6, 10)  # survivors in zero's bin
    mask.view(-1)[100:110] = True
    if snapped:  # ties: a weight halfway between two centroids goes to the lower one
        book = quantize_layer(w * mask, bits, "kmeans", mask).codebook.double()
        if book.numel() > 1:
            w.view(-1)[:100] = ((book[1:] + book[:-1]) / 2).float().repeat(100)[:100]
    binned = quantize_layer(w if snapped else w * mask, bits, "kmeans", mask)  # unmasked too
    exact_path = quantize.BINNED_MIN
    quantize.BINNED_MIN = w.numel() + 1
    try:
        exact = quantize_layer(w * mask, bits, "kmeans", mask)
    finally:
        quantize.BINNED_MIN = exact_path
    assert torch.equal(binned.indices, exact.indices)
    assert torch.equal(binned.values, exact.values)
    assert torch.equal(binned.codebook, exact.codebook)
    assert torch.all(binned.indices[~mask] == 0) and torch.all(binned.values[~mask] == 0)
    # the index counts a snapshot reads its histogram from, counted without a pass
    for lq in (binned, exact):
        counts = np.bincount(lq.indices.flatten().numpy(), minlength=lq.codebook.numel() + 1)
        assert np.array_equal(lq.counts, counts)
