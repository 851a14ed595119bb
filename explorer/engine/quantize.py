"""Weight quantization, pure PyTorch: k-means weight sharing and uniform symmetric.

Deep Compression (Han, Mao & Dally 2016): each layer's surviving weights share
2^bits - 1 values found by one-dimensional k-means with linear initialisation between
the smallest and largest weight (the paper found it best: it keeps the rare large
weights). Zero is not a centroid: pruned weights keep index 0 and stay exactly zero, so
a layer has at most 2^bits - 1 distinct nonzero values. A centroid that no weight chose
(linear initialisation puts some in the gap pruning leaves around zero) is dropped.
Above KMEANS_FIT_MAX weights the centroids are fitted on a seeded subsample and then
every weight is assigned.

Uniform symmetric quantization per output channel (or per group of `group_size`
consecutive inputs of a row, as language models use): scale = max|w| / (2^(b-1) - 1),
q = round(w / scale) clamped to +-(2^(b-1) - 1), w_hat = q * scale. Zero maps to zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

KMEANS_FIT_MAX = 1 << 15  # weights used to fit one layer's centroids (then assign all)
ASSIGN_BINS = 4096  # bins of explorer.engine.quantize.nearest_codes' lookup table
KMEANS_ITERS = 100  # Lloyd iterations at most (1-d k-means converges in tens)
SCHEMES = ("kmeans", "uniform")


@dataclass(frozen=True)
class LayerQuant:
    """One layer quantized: the values it shows and the integer code of every weight.

    `indices`: int64, the tensor's shape; 0 is zero (pruned) for k-means, and for
    uniform the code is q + qmax (so zero is qmax). `codebook`: the k-means centroids
    (index i >= 1 means codebook[i - 1]); for uniform, the per-row (or per-group) scales.
    """

    values: torch.Tensor
    indices: torch.Tensor
    codebook: torch.Tensor
    n_symbols: int  # how many distinct codes the layout allows (2^bits for both schemes)


def linear_init(x: torch.Tensor, k: int) -> torch.Tensor:
    """k centroids evenly spaced between min(x) and max(x) (Deep Compression's best)."""
    return torch.linspace(float(x.min()), float(x.max()), k, dtype=torch.float64,
                          device=x.device)


def _bounds(xs: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Cluster boundaries in sorted values `xs`: cluster i is xs[b[i]:b[i+1]]. A value
    halfway between two centroids goes to the lower one, as argmin of distances does.
    (NumPy: torch.searchsorted's thread start-up cost 100x more on a busy CPU.)"""
    mids = (centroids[1:] + centroids[:-1]) / 2
    return np.concatenate([[0], np.searchsorted(xs, mids, side="right"), [xs.size]])


def lloyd(x: torch.Tensor, init: torch.Tensor, iters: int = KMEANS_ITERS,
          presorted: bool = False) -> torch.Tensor:
    """One-dimensional k-means (Lloyd) from `init` (sorted); float64 throughout.

    In one dimension the clusters are runs of the sorted values, so an iteration costs
    k binary searches and prefix-sum differences, not a pass over the weights. Stops when
    no assignment changes; an empty cluster keeps its centroid.
    """
    xs = x.detach().to(torch.float64).flatten().cpu().numpy()
    xs = xs if presorted else np.sort(xs)
    prefix = np.concatenate([[0.0], np.cumsum(xs)])
    centroids = init.detach().to(torch.float64).cpu().numpy().copy()
    bounds = None
    for _ in range(iters):
        new = _bounds(xs, centroids)
        if bounds is not None and np.array_equal(new, bounds):
            break
        bounds = new
        counts = np.diff(bounds).astype(np.float64)
        sums = prefix[bounds[1:]] - prefix[bounds[:-1]]
        centroids = np.where(counts > 0, sums / np.maximum(counts, 1), centroids)
        centroids = np.sort(centroids)  # 1-d Lloyd keeps the order; be safe
    return torch.from_numpy(centroids)


def _sorted_codes(xs: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Nearest-centroid index of each of the sorted values `xs`."""
    return np.repeat(np.arange(len(centroids)), np.diff(_bounds(xs, centroids)))


def assign(x: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """Index of the nearest centroid (sorted ascending) for each value of `x`."""
    values = x.detach().to(torch.float64).cpu().numpy().ravel()
    order = np.argsort(values, kind="stable")
    codes = np.empty(values.size, dtype=np.int64)
    codes[order] = _sorted_codes(values[order], centroids.double().cpu().numpy())
    return torch.from_numpy(codes).view(x.shape).to(x.device)


def nearest_codes(values: np.ndarray, mids: np.ndarray, bins: int = ASSIGN_BINS
                  ) -> np.ndarray:
    """np.searchsorted(mids, values, side="left") (mids sorted), faster for many mids.

    A binary search per weight among 255 midpoints costs about 90 ns on this CPU; here a
    table over `bins` equal bins gives each value a lower bound (the midpoints below the
    bin before its own, safe against rounding), then a few vectorised steps move it past
    the midpoints still below the value: the exact answer, in about a third of the time.
    """
    lo, hi = (float(mids[0]), float(mids[-1])) if mids.size else (0.0, 0.0)
    width = (hi - lo) / bins
    if mids.size < 16 or values.size < 1 << 16 or not width > 1e-6 * max(abs(lo), abs(hi)):
        return np.searchsorted(mids, values, side="left")
    start = np.searchsorted(mids, lo + np.arange(-1, bins) * width,
                            side="left").astype(np.int32)
    scaled = np.subtract(values, lo, dtype=np.float32)  # in place from here: few passes
    np.multiply(scaled, 1 / width, out=scaled)
    np.clip(scaled, 0, bins - 1, out=scaled)
    # start[j] counts the midpoints below bin j - 1: a lower bound, safe against rounding
    codes = start[scaled.astype(np.int32)].astype(np.int64)
    ext = np.append(mids, np.inf)
    more = ext[codes] < values
    codes += more
    idx = np.flatnonzero(more)
    while idx.size:
        idx = idx[ext[codes[idx]] < values[idx]]
        codes[idx] += 1
    return codes


def kmeans_layer(weight: torch.Tensor, bits: int, mask: torch.Tensor | None = None,
                 seed: int = 0, fit_max: int = KMEANS_FIT_MAX) -> LayerQuant:
    """Share the surviving (nonzero, unmasked) weights among 2^bits - 1 centroids.

    Works in NumPy on the CPU: the centroids are fitted on at most `fit_max` sorted
    weights, then every weight is assigned by a binary search among the k - 1 midpoints
    (O(n log k), no sort of the whole layer).
    """
    k = (1 << bits) - 1
    w = weight.detach().cpu().numpy().ravel()
    keep = w != 0
    if mask is not None:
        keep &= mask.detach().cpu().numpy().ravel().astype(bool)
    every = bool(keep.all())  # nothing pruned: no boolean gathers and scatters
    survivors = w if every else w[keep]  # compared exactly with float64 midpoints
    indices = np.zeros(w.size, dtype=np.int64)
    values = np.zeros(w.size, dtype=w.dtype)
    centroids = np.zeros(0)
    if survivors.size:
        fit = survivors.astype(np.float64)
        if fit.size > fit_max:  # fit on a seeded subsample, then assign all
            fit = fit[np.random.default_rng(seed).choice(fit.size, fit_max, replace=False)]
        xs = np.sort(fit)
        distinct = np.unique(xs)
        if distinct.size <= k and fit.size < survivors.size:
            distinct = np.unique(survivors)  # the subsample may have missed a value
        if distinct.size <= k:  # already few values: they are the codebook, no error
            centroids = distinct
        else:
            init = np.linspace(float(survivors.min()), float(survivors.max()), k)
            centroids = lloyd(torch.from_numpy(xs), torch.from_numpy(init),
                              presorted=True).numpy()
        mids = (centroids[1:] + centroids[:-1]) / 2
        codes = nearest_codes(survivors, mids)  # ties go to the lower
        used = np.bincount(codes, minlength=centroids.size) > 0
        if not used.all():  # linear init leaves centroids in the pruned gap: no weight
            centroids = centroids[used]  # chose them, so they would cost bytes, no accuracy
            codes = (np.cumsum(used) - 1)[codes]
        codes += 1  # index 0 is zero (pruned)
        table = np.concatenate([[0.0], centroids]).astype(w.dtype)
        if every:  # np.take: a third of fancy indexing's time on 10M weights
            indices, values = codes, np.take(table, codes)
        else:
            indices[keep] = codes
            values[keep] = np.take(table, codes)
    device = weight.device
    return LayerQuant(torch.from_numpy(values).view(weight.shape).to(device),
                      torch.from_numpy(indices).view(weight.shape).to(device),
                      torch.from_numpy(centroids).to(torch.float32), k + 1)


def _rows(weight: torch.Tensor, group_size: int | None) -> torch.Tensor:
    """The weight as (groups, group_size) rows: per output channel, or per input group."""
    rows = weight.detach().reshape(weight.shape[0], -1) if weight.dim() > 1 \
        else weight.detach().reshape(1, -1)
    if group_size is None:
        return rows
    if rows.shape[1] % group_size:
        raise ValueError(f"group_size={group_size} does not divide the {rows.shape[1]} "
                         "inputs of a row")
    return rows.reshape(-1, group_size)


def uniform_layer(weight: torch.Tensor, bits: int,
                  group_size: int | None = None) -> LayerQuant:
    """Symmetric per-output-channel (or per-group) quantization to `bits` bits."""
    qmax = (1 << (bits - 1)) - 1
    rows = _rows(weight, group_size).to(torch.float32)
    scale = rows.abs().amax(dim=1, keepdim=True) / qmax
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))  # an all-zero row
    q = torch.clamp(torch.round(rows / safe), -qmax, qmax)
    values = (q * safe).reshape(weight.shape).to(weight.dtype)
    indices = (q.to(torch.int64) + qmax).reshape(weight.shape)
    return LayerQuant(values, indices, scale.flatten().cpu(), 1 << bits)


def quantize_layer(weight: torch.Tensor, bits: int, scheme: str,
                   mask: torch.Tensor | None = None, group_size: int | None = None,
                   seed: int = 0) -> LayerQuant:
    """One layer by `scheme` (see the module docstring); pruned weights stay zero."""
    if scheme == "kmeans":
        if group_size is not None:
            raise ValueError(f"group_size={group_size} applies to the uniform scheme only")
        return kmeans_layer(weight, bits, mask, seed)
    if scheme == "uniform":
        masked = weight if mask is None else weight * mask
        return uniform_layer(masked, bits, group_size)
    raise ValueError(f"scheme must be one of {SCHEMES}; got {scheme!r}")
