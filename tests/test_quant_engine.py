"""Quantization engine (issue 31): k-means weight sharing, uniform symmetric, Huffman
coding, byte counts and the codebook gradient, each against an oracle or an invariant."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.cluster import KMeans

from explorer.engine import huffman, qbytes
from explorer.engine.codebook import centroid_grads, shared_gradients
from explorer.engine.quantize import kmeans_layer, quantize_layer, uniform_layer


@pytest.mark.parametrize("bits", [2, 3, 4])
@pytest.mark.parametrize("seed", [0, 1])
def test_kmeans_equals_sklearn_with_linear_init(bits, seed):
    """Our codebook and assignments equal scikit-learn's Lloyd from the same centroids."""
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(40, 50, generator=gen, dtype=torch.float64)
    lq = kmeans_layer(w, bits)
    k = 2 ** bits - 1
    x = w.numpy().reshape(-1, 1)
    init = np.linspace(x.min(), x.max(), k).reshape(-1, 1)
    assert np.all(np.bincount(lq.indices.numpy().ravel(), minlength=k + 1)[1:] > 0), \
        "precondition: no empty cluster (sklearn relocates empty ones, we keep them)"
    km = KMeans(k, init=init, n_init=1, tol=0, max_iter=1000, algorithm="lloyd").fit(x)
    ref = np.sort(km.cluster_centers_.ravel())
    np.testing.assert_allclose(lq.codebook.numpy(), ref, atol=1e-5)
    nearest = np.argmin(np.abs(x - ref[None]), 1) + 1
    np.testing.assert_array_equal(lq.indices.numpy().ravel(), nearest)


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 8), st.integers(0, 2**16), st.floats(0.0, 0.95), st.integers(1, 400))
def test_kmeans_zero_stays_zero_and_few_values(bits, seed, sparsity, n):
    """Pruned weights stay exactly zero, are never a centroid, and a layer holds at most
    2^bits - 1 distinct nonzero values, each one of its centroids."""
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(n, generator=gen)
    mask = torch.rand(n, generator=gen) >= sparsity
    lq = kmeans_layer(w * mask, bits, mask)
    assert torch.all(lq.values[~mask] == 0) and torch.all(lq.indices[~mask] == 0)
    nonzero = torch.unique(lq.values[lq.values != 0])
    assert nonzero.numel() <= 2 ** bits - 1
    assert set(nonzero.tolist()) <= set(lq.codebook.tolist())
    assert torch.all(lq.indices[mask] >= 1)


def test_kmeans_subsample_fits_then_assigns_all():
    """Above fit_max the centroids come from a subsample, yet every weight is assigned
    to its nearest centroid."""
    w = torch.randn(5000, generator=torch.Generator().manual_seed(3))
    lq = kmeans_layer(w, 3, fit_max=500)
    nearest = torch.argmin((w[:, None] - lq.codebook[None].to(w.dtype)).abs(), 1) + 1
    assert torch.equal(lq.indices, nearest)


def test_uniform_scales_by_hand_and_half_step():
    """Per-channel scales are max|w| / (2^(b-1) - 1); the round trip errs by at most half
    a step; zero maps to zero."""
    w = torch.tensor([[0.7, -0.35, 0.0, 0.1], [-2.0, 1.0, 0.5, 0.0], [0.0, 0.0, 0.0, 0.0]])
    lq = uniform_layer(w, 4)
    assert torch.allclose(lq.codebook, torch.tensor([0.1, 2.0 / 7, 0.0]))
    step = lq.codebook.clamp(min=1e-12)[:, None]
    assert torch.all((lq.values - w).abs() <= step / 2 + 1e-7)
    assert torch.all(lq.values[w == 0] == 0)
    assert torch.allclose(lq.values[0], torch.tensor([0.7, -0.4, 0.0, 0.1]))


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 8), st.sampled_from([None, 32, 64]), st.integers(0, 2**16))
def test_uniform_round_trip_within_half_step(bits, group, seed):
    """For any weights, |w - w_hat| <= scale / 2 per row (or group of inputs)."""
    w = torch.randn(6, 128, generator=torch.Generator().manual_seed(seed)) * 3
    lq = quantize_layer(w, bits, "uniform", group_size=group)
    rows = w.reshape(-1, group or 128)
    scale = rows.abs().amax(1, keepdim=True) / (2 ** (bits - 1) - 1)
    assert torch.allclose(lq.codebook, scale.flatten())
    err = (lq.values.reshape(rows.shape) - rows).abs()
    assert torch.all(err <= scale / 2 * (1 + 1e-5) + 1e-7)


def test_bad_scheme_and_group_refused():
    """Bad values raise ValueError naming them."""
    with pytest.raises(ValueError, match="'lloyd'"):
        quantize_layer(torch.ones(3, 4), 4, "lloyd")
    with pytest.raises(ValueError, match="group_size=3"):
        quantize_layer(torch.ones(3, 4), 4, "uniform", group_size=3)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 20), min_size=1, max_size=300))
def test_huffman_kraft_and_bit_exact_decode(symbols):
    """Kraft's sum is exactly 1 (two symbols or more; one symbol gets one bit), decoding
    gives the symbols back bit for bit, and the byte count is the stream's length."""
    arr = np.array(symbols)
    stream, lengths = huffman.encode(arr)
    if len(lengths) == 1:
        assert list(lengths.values()) == [1]
    else:
        assert sum(2.0 ** -n for n in lengths.values()) == 1.0
    assert np.array_equal(huffman.decode(stream, lengths, arr.size), arr)
    assert len(stream) == huffman.encoded_bytes(arr)


def test_huffman_beats_fixed_width_on_skewed_indices():
    """A pruned layer's indices (mostly zero) code in fewer bits than fixed 4-bit ones,
    and never fewer than their entropy."""
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(100, 80, generator=gen)
    mask = w.abs() > 1.5
    lq = kmeans_layer(w * mask, 4, mask)
    flat = lq.indices.numpy().ravel()
    p = np.bincount(flat) / flat.size
    entropy = -(p[p > 0] * np.log2(p[p > 0])).sum() * flat.size
    assert entropy <= huffman.encoded_bits(flat) < 4 * flat.size


def test_sparse_layout_round_trip_and_layer_bytes():
    """The paper's sparse layout (relative indices, fillers) decodes back; the byte
    counts follow their formulas."""
    gen = torch.Generator().manual_seed(1)
    w = torch.randn(50, 300, generator=gen)
    mask = torch.rand(50, 300, generator=gen) > 0.95  # gaps over 32: fillers needed
    lq = kmeans_layer(w * mask, 4, mask)
    vals, rels = qbytes.sparse_layout(lq.indices, 0, qbytes.REL_BITS_FC)
    assert len(vals) > int(mask.sum())  # some fillers
    back = qbytes.from_sparse(vals, rels, w.numel(), 0)
    assert np.array_equal(back, lq.indices.numpy().ravel())
    sizes = qbytes.layer_bytes(w, lq, 4)
    book = 4 * lq.codebook.numel()
    assert sizes["dense_fp32"] == 4 * w.numel()
    assert sizes["quantized"] == math.ceil(w.numel() * 4 / 8) + book
    assert sizes["quantized_sparse"] == math.ceil(len(vals) * (4 + 5) / 8) + book
    assert sizes["huffman"] < sizes["quantized_sparse"] < sizes["quantized"]


def test_centroid_gradient_is_sum_of_its_weights_gradients():
    """By hand on a 2x3 layer: each centroid's gradient is the sum of its weights'; one
    SGD step moves every weight of a cluster to the same new centroid; pruned stay 0."""
    layer = torch.nn.Linear(3, 2, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.5, -0.5, 0.0], [0.5, 0.25, -0.5]]))
    idx = torch.tensor([[3, 1, 0], [3, 2, 1]])  # codebook [-0.5, 0.25, 0.5]; 0: pruned
    x = torch.tensor([[1.0, 2.0, 3.0]])
    upstream = torch.tensor([[1.0, -2.0]])  # d loss / d output
    # by hand: dL/dW[i, j] = upstream[i] * x[j]
    g = upstream.T @ x
    assert torch.allclose(centroid_grads(g, idx, 3),
                          torch.tensor([g[0, 1] + g[1, 2], g[1, 1], g[0, 0] + g[1, 0]]))
    params = {"w": layer.weight}
    opt = torch.optim.SGD(layer.parameters(), lr=0.1)
    with shared_gradients(params, {"w": idx}, {"w": 3}):
        (layer(x) * upstream).sum().backward()
        opt.step()
    w = layer.weight.detach()
    expected = torch.tensor([-0.5, 0.25, 0.5]) - 0.1 * centroid_grads(g, idx, 3)
    assert w[0, 2] == 0
    assert torch.allclose(w[0, 1], expected[0]) and torch.allclose(w[1, 2], expected[0])
    assert torch.allclose(w[1, 1], expected[1])
    assert torch.allclose(w[0, 0], expected[2]) and torch.allclose(w[1, 0], expected[2])
    assert w[0, 1] == w[1, 2] and w[0, 0] == w[1, 0]  # a cluster stays one value
