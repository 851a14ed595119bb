"""Measurements of a model: accuracy and loss, sparsity, counts, pre-binned histograms.

Histograms are binned here with torch.histc on fixed per-layer edges, so the UI gets
a few hundred bytes per layer and never the raw weights.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from ..config import HIST_BINS


@dataclass(frozen=True)
class LayerStats:
    """One prunable weight tensor as the plots show it."""

    name: str
    numel: int
    nonzero: int
    sparsity: float  # pruned fraction of this tensor's weights
    cut: float  # magnitude below which weights are pruned (0.0 when unpruned)
    hist_counts: np.ndarray  # int32, surviving weights per bin (pruned zeros left out)
    hist_base_counts: np.ndarray  # int32, the dense base's weights per bin (the ghost)
    hist_edges: np.ndarray  # float32, HIST_BINS + 1 edges

    def to_dict(self) -> dict:
        return {"name": self.name, "numel": self.numel, "nonzero": self.nonzero,
                "sparsity": self.sparsity, "cut": self.cut,
                "hist_counts": self.hist_counts.tolist(),
                "hist_base_counts": self.hist_base_counts.tolist(),
                "hist_edges": self.hist_edges.tolist()}


@dataclass(frozen=True)
class Snapshot:
    """Everything the UI shows about the model at one moment, frozen."""

    accuracy: float | None  # None for regression
    loss: float
    sparsity: float  # pruned fraction over all prunable weights
    params: int  # all parameters, biases included
    nonzero: int  # nonzero parameters, biases included
    layers: tuple[LayerStats, ...]
    split: str = "val"
    task: str = "classification"
    prune: dict | None = None  # the pruning setting in force, or None when dense
    warnings: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict)  # later metrics land here by name

    @property
    def prunable(self) -> tuple[str, ...]:
        return tuple(layer.name for layer in self.layers)

    def layer(self, name: str) -> LayerStats:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    def to_dict(self) -> dict:
        """Plain, JSON-ready values (the keys the command line reports)."""
        out = {k: v for k, v in asdict(self).items() if k not in ("layers", "extra")}
        out["warnings"] = list(self.warnings)
        out["prunable"] = list(self.prunable)
        out["layers"] = [layer.to_dict() for layer in self.layers]
        out.update(self.extra)
        return out


def histogram_edges(weight: torch.Tensor, bins: int = HIST_BINS) -> torch.Tensor:
    """Symmetric edges covering the dense weights, fixed until the base changes."""
    limit = float(weight.detach().abs().max()) * 1.02 or 1.0
    return torch.linspace(-limit, limit, bins + 1, dtype=torch.float32)


def binned(weight: torch.Tensor, edges: torch.Tensor, drop_zeros: int = 0) -> np.ndarray:
    """Counts per bin via torch.histc; `drop_zeros` pruned zeros leave the zero bin."""
    lo, hi = float(edges[0]), float(edges[-1])
    counts = torch.histc(weight.detach().float(), bins=edges.numel() - 1, min=lo, max=hi)
    if drop_zeros:
        # the bin histc itself puts 0.0 in: the middle edge is not exactly 0 in float32,
        # so a formula can pick the neighbour and leave negative counts there
        zero = torch.zeros(1, dtype=counts.dtype, device=counts.device)
        zero_bin = int(torch.histc(zero, bins=edges.numel() - 1, min=lo, max=hi).argmax())
        counts[zero_bin] -= drop_zeros
    return counts.to(torch.int32).cpu().numpy()


def layer_stats(name: str, weight: torch.Tensor, base_counts: np.ndarray,
                edges: torch.Tensor, cut: float) -> LayerStats:
    """Counts, sparsity and the survivors' histogram of one (masked) weight tensor."""
    numel = weight.numel()
    nonzero = int(torch.count_nonzero(weight))
    return LayerStats(name, numel, nonzero, 1.0 - nonzero / numel, cut,
                      binned(weight, edges, drop_zeros=numel - nonzero), base_counts,
                      edges.numpy().astype(np.float32))


def codebook_layer_stats(name: str, values: torch.Tensor, counts: np.ndarray,
                         base_counts: np.ndarray, edges: torch.Tensor,
                         cut: float) -> LayerStats | None:
    """layer_stats of a weight whose entries take only `values` (float32), `counts[i]`
    of them values[i] (a k-means layer: its codebook and index counts), without a pass
    over the weights. Each distinct value falls in the bin torch.histc gives it (histc's
    bin is a monotone function of the value, so the sorted values' counts per bin say
    which); None when one lies outside the edges (the caller histograms the weight)."""
    numel = int(counts.sum())
    live = (values != 0) & torch.from_numpy(counts > 0)  # -0.0 is zero, as count_nonzero
    vals, order = torch.sort(values[live].float())
    per = torch.from_numpy(counts[live.numpy()]).to(torch.float64)[order]
    lo, hi = float(edges[0]), float(edges[-1])
    bins_n = edges.numel() - 1
    occupied = torch.histc(vals, bins=bins_n, min=lo, max=hi).to(torch.int64).numpy()
    if int(occupied.sum()) != vals.numel():
        return None
    # NumPy, not torch: torch's repeat_interleave over the bins fans out to threads
    bins = np.repeat(np.arange(bins_n), occupied)
    hist = np.bincount(bins, weights=per.numpy(), minlength=bins_n)
    nonzero = int(per.sum())
    return LayerStats(name, numel, nonzero, 1.0 - nonzero / numel, cut,
                      hist.astype(np.int32), base_counts,
                      edges.numpy().astype(np.float32))


def threshold_layer_stats(name: str, sorted_values: torch.Tensor, base_counts: np.ndarray,
                          edges: torch.Tensor, cut: float,
                          tie_values: torch.Tensor | None = None) -> LayerStats:
    """layer_stats of base * (|base| >= cut), read from the base's sorted values.

    O(bins log n) instead of passes over the weights: survivors are the values <= -cut
    and >= cut (for cut <= 0: the nonzero values), counted per bin by binary search.
    With `tie_values` (the base values of the entries kept at |w| == cut when equal
    magnitudes straddle the cut) survivors are |w| > cut plus those.
    """
    numel = sorted_values.numel()
    strict = tie_values is not None and cut > 0
    if cut > 0:
        neg_end = int(torch.searchsorted(sorted_values, -cut, right=not strict))
        pos_start = int(torch.searchsorted(sorted_values, cut, right=strict))
    else:
        neg_end = int(torch.searchsorted(sorted_values, 0.0))
        pos_start = int(torch.searchsorted(sorted_values, 0.0, right=True))
    at = torch.searchsorted(sorted_values, edges.to(sorted_values), right=False).cpu()
    at[-1] = numel  # histc counts the top edge into the last bin; nothing lies beyond it
    lo, hi = at[:-1], at[1:]
    neg = (torch.minimum(hi, torch.tensor(neg_end)) - lo).clamp(min=0)
    pos = (hi - torch.maximum(lo, torch.tensor(pos_start))).clamp(min=0)
    counts = neg + pos
    nonzero = neg_end + numel - pos_start
    if strict:  # the tied survivors: each in the bin whose [lower, upper) edges hold it
        assert tie_values is not None
        bins = torch.searchsorted(edges.to(tie_values), tie_values, right=True) - 1
        counts += torch.bincount(bins.clamp(0, counts.numel() - 1).cpu(),
                                 minlength=counts.numel())
        nonzero += tie_values.numel()
    return LayerStats(name, numel, nonzero, 1.0 - nonzero / numel, cut,
                      counts.to(torch.int32).numpy(), base_counts,
                      edges.numpy().astype(np.float32))
