"""Per-layer counts and histograms of ranked masks without a pass over the weights.

A Wanda move keeps the entries whose rank within their row is >= k (engine.criteria's
Ranking). Which base values survive then depends on k only, so one pass per layer, when
the ranks are made, counts the base's nonzero values per (rank, histogram bin); a suffix
sum over ranks gives, for every k, the survivors' histogram and their count. A move then
reads one row of that table: O(bins) per layer, instead of a count and a histc over the
weights (which cost more than the masks themselves on a 10M-parameter model).

Binning: a value goes to bin b when edges[b] <= v < edges[b + 1], the top edge into the
last bin; the convention of engine.metrics.threshold_layer_stats (magnitude's fast path).
Pruned entries and base zeros are left out, as layer_stats leaves them out.
"""

from __future__ import annotations

import numpy as np
import torch

from .criteria import Ranking
from .metrics import LayerStats


def bins_of(values: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """The histogram bin of each value (long), edges as threshold_layer_stats reads them."""
    bins = torch.bucketize(values, edges.to(values), right=True) - 1
    return bins.clamp_(0, edges.numel() - 2)


class RankedStats:
    """The LayerStats of `base * ranking.mask(s)` for any s, read from a table."""

    def __init__(self, name: str, base: torch.Tensor, ranking: Ranking,
                 base_counts: np.ndarray, edges: torch.Tensor) -> None:
        self.name, self.numel = name, base.numel()
        self.base_counts = base_counts
        self.edges = edges.numpy().astype(np.float32)
        self.ranking = ranking
        nbins = edges.numel() - 1
        values = base.detach().flatten()
        if ranking.fixed is not None:  # N:M: one mask, one histogram
            kept = values[ranking.fixed.flatten() & (values != 0)]
            self.table = torch.bincount(bins_of(kept, edges), minlength=nbins)[None].cpu()
            return
        assert ranking.ranks is not None
        width = ranking.ranks.shape[-1]
        ranks = ranking.ranks.flatten().long()
        nonzero = values != 0
        cells = ranks[nonzero] * nbins + bins_of(values[nonzero], edges)
        per_rank = torch.bincount(cells, minlength=width * nbins).view(width, nbins)
        # row k: the nonzero base values ranked k or later, i.e. what rank >= k keeps
        suffix = per_rank.flip(0).cumsum(0).flip(0)
        self.table = torch.cat([suffix, suffix.new_zeros(1, nbins)]).cpu()

    def row(self, sparsity: float) -> int:
        """The table row of `sparsity` (the k of Ranking.mask)."""
        if self.ranking.fixed is not None:
            return 0
        assert self.ranking.ranks is not None
        return round(sparsity * self.ranking.ranks.shape[-1])

    def layer_stats(self, sparsity: float) -> LayerStats:
        counts = self.table[self.row(sparsity)].to(torch.int32).numpy()
        nonzero = int(counts.sum())
        return LayerStats(self.name, self.numel, nonzero, 1.0 - nonzero / self.numel, 0.0,
                          counts, self.base_counts, self.edges)


def ranked_stats(name: str, base: torch.Tensor, ranking: Ranking, base_counts: np.ndarray,
                 edges: torch.Tensor) -> RankedStats | None:
    """RankedStats where a table is small (per-row ranks or a fixed N:M mask); None for a
    layer-wide ranking (its table would hold a row per weight)."""
    if ranking.fixed is None and ranking.ranks is not None and ranking.ranks.dim() == 1:
        return None
    return RankedStats(name, base, ranking, base_counts, edges)
