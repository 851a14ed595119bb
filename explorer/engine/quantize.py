"""Weight quantization, pure PyTorch: k-means weight sharing and uniform symmetric.

Deep Compression (Han, Mao & Dally 2016): each layer's surviving weights share
2^bits - 1 values found by one-dimensional k-means with linear initialisation between
the smallest and largest weight (the paper found it best: it keeps the rare large
weights). Zero is not a centroid: pruned weights keep index 0 and stay exactly zero, so
a layer has at most 2^bits - 1 distinct nonzero values. A centroid that no weight chose
(linear initialisation puts some in the gap pruning leaves around zero) is dropped.
Above KMEANS_FIT_MAX weights the centroids are fitted on a seeded subsample and then
every weight is assigned to its nearest centroid: by a binary search among the midpoints
in a small layer, by a bin table over the layer's range in a big one (nearest_codes,
_assign_binned: the same answer in a few passes, no n x k distances, no gather of the
survivors).

Uniform symmetric quantization per output channel (or per group of `group_size`
consecutive inputs of a row, as language models use): scale = max|w| / (2^(b-1) - 1),
q = round(w / scale) clamped to +-(2^(b-1) - 1), w_hat = q * scale. Zero maps to zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

KMEANS_FIT_MAX = 1 << 15  # weights used to fit one layer's centroids (then assign all)
ASSIGN_BINS = 1 << 16  # bins of nearest_codes' lookup table (512 KB of codes: in cache)
BINNED_MIN = 1 << 16  # fewer values: a binary search each is cheaper than the table
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
    # k-means: how many weights hold each index (counts[0]: the zeros), so a snapshot's
    # histogram follows from the codebook without a pass over the weights
    counts: np.ndarray | None = None


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


def _bins_of(values: np.ndarray, lo: float, hi: float, bins: int) -> np.ndarray:
    """Each value's bin among `bins` equal bins of [lo, hi] (clipped), computed in at
    least float32 (a float64 input in float64): off by far less than one bin."""
    dtype = np.promote_types(values.dtype, np.float32)
    x = np.subtract(values, dtype.type(lo), dtype=dtype)  # in place from here: few passes
    np.multiply(x, dtype.type(bins / (hi - lo)), out=x)
    np.clip(x, 0, bins - 1, out=x)
    return x.astype(np.intp)


def _bin_table(mids: np.ndarray, lo: float, hi: float, bins: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """Per bin j of [lo, hi]: how many midpoints lie below bins j-1..j+1 (the code of
    every value there), and whether a midpoint lies within them (then that code may be
    wrong and the value is searched exactly). The neighbours make a bin index computed
    with rounding safe; the outer bins reach to -inf and +inf."""
    edges = lo + np.arange(-1, bins + 2) * ((hi - lo) / bins)  # e_-1 .. e_bins+1
    edges[0], edges[-1] = -np.inf, np.inf
    below = np.searchsorted(mids, edges, side="left")
    first, last = below[:-3], below[3:]  # bin j spans [e_(j-1), e_(j+2))
    return first, first != last


def _binnable(size: int, n_mids: int, lo: float, hi: float) -> tuple[float, float] | None:
    """(lo, hi) when the binned search pays: many values and a real range."""
    if size < BINNED_MIN or n_mids == 0:
        return None
    return (lo, hi) if np.isfinite(lo) and np.isfinite(hi) and hi > lo else None


def nearest_codes(values: np.ndarray, mids: np.ndarray, bins: int = ASSIGN_BINS
                  ) -> np.ndarray:
    """np.searchsorted(mids, values, side="left") (mids sorted), faster for many values.

    A binary search per value costs 30-100 ns here (its branches mispredict on weights);
    instead each value's bin among `bins` equal bins of the values' range is a table
    lookup (explorer.engine.quantize._bin_table) that already holds the answer, except
    in the few bins a midpoint falls near: those values alone are searched. O(n + bins).
    """
    span = None if values.size < BINNED_MIN else \
        _binnable(values.size, mids.size, float(values.min()), float(values.max()))
    if span is None:
        return np.searchsorted(mids, values, side="left")
    where = _bins_of(values, *span, bins)
    first, near = _bin_table(mids, *span, bins)
    codes = np.take(first, where)
    idx = np.flatnonzero(np.take(near, where))
    codes[idx] = np.searchsorted(mids, values[idx], side="left")
    return codes


class Survivors:
    """A layer's surviving weights (nonzero and unmasked) without gathering them all:
    their count, their min and max and a seeded sample; the gather only when needed."""

    def __init__(self, w: np.ndarray, keep: np.ndarray) -> None:
        self.w, self.keep = w, keep
        self.n = int(np.count_nonzero(keep))
        self.every = self.n == w.size  # nothing pruned: no boolean gathers and scatters
        self._all: np.ndarray | None = w if self.every else None
        self._span: tuple[float, float] | None = None

    def all(self) -> np.ndarray:
        if self._all is None:  # a gather by a random mask: slow on a big layer
            self._all = self.w[self.keep]
        return self._all

    def span(self) -> tuple[float, float]:
        """(min, max) of the survivors."""
        if self._span is None:
            lo, hi = float(self.w.min()), float(self.w.max())
            if not (self.every or lo < 0 < hi):  # else the pruned zeros lie between
                rest = self.all()
                lo, hi = float(rest.min()), float(rest.max())
            self._span = lo, hi
        return self._span

    def sample(self, seed: int, size: int) -> np.ndarray:
        """All of them, or a seeded `size` of them (the same draw as from all())."""
        if self.n <= size:
            return self.all()
        pick = np.random.default_rng(seed).choice(self.n, size, replace=False)
        return self.w[pick] if self.every else self.w[np.flatnonzero(self.keep)[pick]]


def fit_codebook(survivors: Survivors, k: int, seed: int = 0,
                 fit_max: int = KMEANS_FIT_MAX) -> np.ndarray:
    """At most k sorted float64 centroids for the surviving weights: Lloyd from linear
    initialisation between their min and max, fitted on a seeded subsample of at most
    `fit_max` of them; a layer with at most k distinct values is its own codebook."""
    fit = survivors.sample(seed, fit_max)
    xs = np.sort(fit.astype(np.float64))
    distinct = np.unique(xs)
    if distinct.size <= k and fit.size < survivors.n:
        distinct = np.unique(survivors.all()).astype(np.float64)  # the sample missed one
    if distinct.size <= k:
        return distinct
    init = np.linspace(*survivors.span(), k)
    return lloyd(torch.from_numpy(xs), torch.from_numpy(init), presorted=True).numpy()


def _assign_exact(w: np.ndarray, keep: np.ndarray, every: bool, survivors: np.ndarray,
                  centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indices, values, centroids used) by a binary search per surviving weight."""
    codes = np.searchsorted((centroids[1:] + centroids[:-1]) / 2, survivors, side="left")
    used = np.bincount(codes, minlength=centroids.size) > 0
    if not used.all():  # linear init leaves centroids in the pruned gap: no weight
        centroids = centroids[used]  # chose them, so they would cost bytes, no accuracy
        codes = (np.cumsum(used) - 1)[codes]
    codes += 1  # index 0 is zero (pruned)
    table = np.concatenate([[0.0], centroids]).astype(w.dtype)
    if every:  # np.take: a third of fancy indexing's time on 10M weights
        return codes, np.take(table, codes), centroids
    indices, values = np.zeros(w.size, dtype=np.int64), np.zeros(w.size, dtype=w.dtype)
    indices[keep] = codes
    values[keep] = np.take(table, codes)
    return indices, values, centroids


def _assign_binned(w: np.ndarray, keep: np.ndarray, every: bool, span: tuple[float, float],
                   centroids: np.ndarray, bins: int = ASSIGN_BINS
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """_assign_exact's answer in a few passes over every weight (nearest_codes' bins),
    pruned ones included: no gather of the survivors and no scatter back. The pruned
    weights are zero, all in zero's bin, whose table entry is index 0 (value 0); that bin
    counts as near a midpoint, so the survivors in it are searched exactly. Which
    centroids are used comes from the bins' counts: no pass to drop the unused ones."""
    mids = (centroids[1:] + centroids[:-1]) / 2
    where = _bins_of(w, *span, bins)
    first, near = _bin_table(mids, *span, bins)
    zero_bin = int(_bins_of(np.zeros(1, w.dtype), *span, bins)[0])
    if not every:
        near[zero_bin] = True
    # per bin: its centroid's position + 1, or 0 where a midpoint is near (searched
    # below; the pruned zeros there keep 0: index 0, value 0). One pass gives both
    # which weights to search and, when every centroid is used, the indices themselves
    pos = np.take(np.where(near, 0, first + 1), where)
    hit = pos == 0
    if not every:
        hit &= keep  # the pruned zeros need no search
    idx = np.flatnonzero(hit)  # values a midpoint is close to: searched exactly
    exact = np.searchsorted(mids, w[idx], side="left")
    counts = np.bincount(where, minlength=bins)
    used = np.zeros(centroids.size, dtype=bool)
    used[first[(counts > 0) & ~near]] = True
    used[exact] = True
    rank = np.cumsum(used)  # a used centroid's index (index 0 is zero)
    table = np.concatenate([[0.0], centroids[used]]).astype(w.dtype)
    values = np.take(np.concatenate([[0.0], centroids]).astype(w.dtype), pos)
    indices = pos if used.all() else np.take(np.concatenate([[0], rank]), pos)
    indices[idx] = rank[exact]
    values[idx] = table[rank[exact]]
    bin_index = rank[first]
    # weights per index from the bins: a bin far from every midpoint holds its index's
    # weights, the searched ones count one by one, and the rest (the pruned zeros) are 0
    far = ~near
    per = np.bincount(bin_index[far], weights=counts[far], minlength=table.size)
    per += np.bincount(rank[exact], minlength=table.size)
    per = per.astype(np.int64)
    per[0] = w.size - per[1:].sum()
    return indices, values, centroids[used], per


def kmeans_layer(weight: torch.Tensor, bits: int, mask: torch.Tensor | None = None,
                 seed: int = 0, fit_max: int = KMEANS_FIT_MAX) -> LayerQuant:
    """Share the surviving (nonzero, unmasked) weights among 2^bits - 1 centroids.

    Works in NumPy on the CPU, one thread: the centroids are fitted on at most `fit_max`
    sorted weights (fit_codebook), then every weight goes to its nearest centroid (ties
    to the lower, as argmin of distances): a binary search among the midpoints for a
    small layer, nearest_codes' bin table for a big one (O(n), no n x k distances).
    """
    k = (1 << bits) - 1
    w = weight.detach().cpu().numpy().ravel()
    keep = w != 0
    if mask is not None:
        m = mask.detach().cpu().numpy().ravel().astype(bool, copy=False)
        if np.count_nonzero(keep & ~m):  # masked weights not zero yet (the binned
            w = np.multiply(w, m, dtype=w.dtype)  # path needs the pruned ones zero)
        keep &= m
    survivors = Survivors(w, keep)
    counts = None
    if not survivors.n:
        indices, values, centroids = np.zeros(w.size, np.int64), np.zeros_like(w), \
            np.zeros(0)
    else:
        centroids = fit_codebook(survivors, k, seed, fit_max)
        span = _binnable(w.size, centroids.size - 1, *survivors.span())
        if span is None:
            indices, values, centroids = _assign_exact(w, keep, survivors.every,
                                                       survivors.all(), centroids)
        else:
            indices, values, centroids, counts = _assign_binned(w, keep, survivors.every,
                                                                span, centroids)
    if counts is None:  # a small layer: one pass
        counts = np.bincount(indices, minlength=centroids.size + 1)
    device = weight.device
    return LayerQuant(torch.from_numpy(values).view(weight.shape).to(device),
                      torch.from_numpy(indices).view(weight.shape).to(device),
                      torch.from_numpy(centroids).to(torch.float32), k + 1, counts)


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
