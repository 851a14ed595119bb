"""Magnitude-pruning masks as pure functions of weights, plus applying them.

Pure maths (tensors in, boolean masks out) stays apart from module surgery, as in
torch/nn/utils/prune.py (compute_mask vs apply). Masks are always rebuilt from the
dense base weights, so moving a slider back restores the base exactly; the one exception
is a prune at or above the sparsity of the masks a job committed with (`masks_within`).

Ties: we rank with a stable ascending sort of |w|, so among equal magnitudes the entry
with the lower flat index is pruned first. torch.nn.utils.prune takes the k smallest with
`torch.topk`, whose order among equal values is not specified, so the two agree exactly
whenever no tie straddles the cut (always, for trained float weights in our tests).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import nn

from ..config import MIN_LAYER_DENSITY, PruneConfig

PRUNABLE_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d)


def prunable_names(model: nn.Module) -> list[str]:
    """Qualified names of the weights we prune: Linear and Conv weights, never biases."""
    return [f"{mod_name}.weight" if mod_name else "weight"
            for mod_name, module in model.named_modules()
            if isinstance(module, PRUNABLE_TYPES)]


def n_to_prune(sparsity: float, numel: int) -> int:
    """round(s * n), exactly as torch.nn.utils.prune._compute_nparams_toprune."""
    return round(sparsity * numel)


@dataclass
class MagnitudeIndex:
    """Sorted magnitudes of the dense base, so a target sparsity is a lookup.

    Built once per base (O(n log n)); each slider move is then O(n) scatter work.
    """

    weights: dict[str, torch.Tensor]
    _layer_order: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)
    _layer_sorted: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)
    _global: tuple[torch.Tensor, torch.Tensor] | None = field(default=None, repr=False)
    _abs: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)

    def magnitudes(self, name: str) -> torch.Tensor:
        """|w| of one layer, kept so that a slider move is a single compare pass."""
        if name not in self._abs:
            self._abs[name] = self.weights[name].detach().abs()
        return self._abs[name]

    def layer(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(ascending |w|, flat indices in that order) of one layer."""
        if name not in self._layer_order:
            mags = self.weights[name].detach().abs().flatten()
            sorted_mags, order = torch.sort(mags, stable=True)
            self._layer_sorted[name], self._layer_order[name] = sorted_mags, order
        return self._layer_sorted[name], self._layer_order[name]

    def global_(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(ascending |w|, flat indices into the concatenation) over all layers."""
        if self._global is None:
            mags = torch.cat([w.detach().abs().flatten() for w in self.weights.values()])
            self._global = torch.sort(mags, stable=True)
        return self._global


@dataclass(frozen=True)
class MaskResult:
    """Masks (True = kept), the per-layer cut magnitude, and warnings for the user."""

    masks: dict[str, torch.Tensor]
    cuts: dict[str, float]
    warnings: tuple[str, ...] = ()
    # True when every mask is exactly |base| >= cuts[name] (or, for a layer in `ties`,
    # |base| > cut plus those entries): snapshots may then take counts and histograms
    # from sorted base values instead of passes over the weights.
    exact_cuts: bool = False
    # Flat indices of the entries kept at |w| == cut where equal magnitudes straddle the
    # cut (a few entries; common once a layer has tens of millions of float32 weights).
    ties: dict[str, torch.Tensor] = field(default_factory=dict)


def _mask_dropping(order: torch.Tensor, k: int, shape: torch.Size) -> torch.Tensor:
    mask = torch.ones(order.numel(), dtype=torch.bool, device=order.device)
    mask[order[:k]] = False
    return mask.view(shape)


def _tied_kept(sorted_mags: torch.Tensor, order: torch.Tensor, k: int) -> torch.Tensor:
    """Flat indices of the entries equal to the k-th smallest magnitude that stay: with a
    stable sort they are order[k:hi], hi = the end of the run of equal values."""
    hi = int(torch.searchsorted(sorted_mags, sorted_mags[k:k + 1], right=True))
    return order[k:hi]


def _cut(sorted_mags: torch.Tensor, k: int) -> float:
    """The smallest kept magnitude (inf when everything is pruned)."""
    return float(sorted_mags[k]) if k < sorted_mags.numel() else math.inf


def _prune_smallest(mags: torch.Tensor, sorted_mags: torch.Tensor, order: torch.Tensor,
                    k: int) -> tuple[torch.Tensor, float, torch.Tensor | None]:
    """(mask dropping the k smallest, cut, flat indices kept at |w| == cut or None).

    Without a tie at the boundary the k smallest are exactly those below the k-th sorted
    magnitude, so one compare pass gives the mask (and None). When equal magnitudes
    straddle it (the lower flat index goes first: see the module doc on ties), the mask is
    |w| > cut plus the few tied entries that stay, set through `order`: a scatter of the
    k pruned indices instead cost 0.45 s a move on a 25M-weight layer, where such ties
    are the rule (float32 has 2^23 values per octave).
    """
    n, cut = sorted_mags.numel(), _cut(sorted_mags, k)
    if k == 0 or k >= n or bool(sorted_mags[k - 1] < sorted_mags[k]):
        return mags >= cut, cut, None
    kept = _tied_kept(sorted_mags, order, k)
    mask = mags > cut
    mask.view(-1)[kept] = True
    return mask, cut, kept


def _threshold_masks(index: MagnitudeIndex, thresholds: dict[str, float]) -> MaskResult:
    masks = {n: index.magnitudes(n) >= thresholds[n] for n in index.weights}
    return MaskResult(masks, dict(thresholds), exact_cuts=True)


def _sparsity_masks(index: MagnitudeIndex, sparsity: float, scope: str) -> MaskResult:
    weights = index.weights
    if scope == "layer":
        masks, cuts, ties = {}, {}, {}
        for name, w in weights.items():
            sorted_mags, order = index.layer(name)
            k = n_to_prune(sparsity, w.numel())
            masks[name], cuts[name], kept = _prune_smallest(index.magnitudes(name),
                                                            sorted_mags, order, k)
            if kept is not None:
                ties[name] = kept
        return MaskResult(masks, cuts, exact_cuts=True, ties=ties)
    sorted_mags, order = index.global_()
    n = sorted_mags.numel()
    k = n_to_prune(sparsity, n)
    cut = _cut(sorted_mags, k)
    if k == 0 or k >= n or bool(sorted_mags[k - 1] < sorted_mags[k]):
        masks = {name: index.magnitudes(name) >= cut for name in weights}
        return MaskResult(masks, {name: cut for name in weights}, exact_cuts=True)
    kept = _tied_kept(sorted_mags, order, k)  # indices into the layers' concatenation
    masks, ties, start = {}, {}, 0
    for name, w in weights.items():
        mask = index.magnitudes(name) > cut
        mine = kept[(kept >= start) & (kept < start + w.numel())] - start
        mask.view(-1)[mine] = True
        ties[name] = mine  # even when empty: this layer's mask is |w| > cut too
        masks[name] = mask
        start += w.numel()
    return MaskResult(masks, {name: cut for name in weights}, exact_cuts=True, ties=ties)


def _keep_min_density(index: MagnitudeIndex, result: MaskResult,
                      min_density: float) -> MaskResult:
    """Global scope can empty a layer; refill such a layer to its largest weights."""
    masks, cuts, warnings = dict(result.masks), dict(result.cuts), list(result.warnings)
    ties = dict(result.ties)
    for name, mask in result.masks.items():
        numel = mask.numel()
        need = math.ceil(min_density * numel)
        kept = int(mask.sum())
        if kept < need:
            sorted_mags, order = index.layer(name)
            masks[name], cuts[name], tied = _prune_smallest(index.magnitudes(name),
                                                            sorted_mags, order, numel - need)
            ties.pop(name, None)  # the global cut's ties no longer describe this layer
            if tied is not None:
                ties[name] = tied
            warnings.append(f"{name}: global pruning would keep {kept} of {numel} weights; "
                            f"kept the largest {need} ({min_density:.0%} minimum density)")
    return MaskResult(masks, cuts, tuple(warnings), exact_cuts=result.exact_cuts, ties=ties)


def compute_masks(index: MagnitudeIndex, config: PruneConfig,
                  min_density: float = MIN_LAYER_DENSITY) -> MaskResult:
    """Masks for one pruning request, from the dense weights held by `index`."""
    weights = index.weights
    if config.mode == "threshold":
        result = _threshold_masks(index, {n: config.value for n in weights})
    elif config.mode == "std":
        result = _threshold_masks(
            index, {n: config.value * float(w.std()) for n, w in weights.items()})
    else:
        result = _sparsity_masks(index, config.value, config.scope)
    if config.scope == "global" and min_density > 0:
        result = _keep_min_density(index, result, min_density)
    emptied = [n for n, m in result.masks.items() if m.numel() and not bool(m.any())]
    if emptied:  # asked for explicitly, so kept; but say that the model is now constant
        note = (f"{config.mode} {config.value:g} prunes every weight of "
                f"{', '.join(emptied)}: the model's output no longer depends on its input")
        result = MaskResult(result.masks, result.cuts, (*result.warnings, note))
    return result


# ----- the setting of another mode that prunes as much (the app's "Prune by" switch) -----
def _mode_cuts(index: MagnitudeIndex, mode: str, value: float) -> dict[str, float]:
    """Per-layer cut magnitudes of a threshold (or of `value` x each layer's std), as
    compute_masks draws them."""
    if mode == "threshold":
        return {n: value for n in index.weights}
    return {n: value * float(w.std()) for n, w in index.weights.items()}


def pruned_share(index: MagnitudeIndex, mode: str, value: float) -> float:
    """The share of all prunable weights that `mode` ("threshold" or "std") at `value`
    prunes (|w| below the cut), counted on the sorted base magnitudes."""
    below = 0
    for name, cut in _mode_cuts(index, mode, value).items():
        mags = index.layer(name)[0]
        below += int(torch.searchsorted(mags, torch.tensor([cut], dtype=mags.dtype,
                                                           device=mags.device)))
    return below / max(sum(w.numel() for w in index.weights.values()), 1)


@torch.no_grad()
def value_for(index: MagnitudeIndex, mode: str, sparsity: float, step: float = 0.0) -> float:
    """The `mode` setting ("threshold": one |w| cut; "std": a multiple of each layer's
    std) that prunes the share of the prunable weights nearest to `sparsity`; with `step`,
    the multiple of `step` that does (of the two around the exact value; the smaller on a
    tie). Per-layer sparsities differ from a per-layer prune's: one rule cannot hold them."""
    weights = list(index.weights.values())
    if mode == "threshold":
        keys = torch.cat([w.detach().abs().flatten() for w in weights])
    else:  # the k-th smallest |w| / std over all layers is the multiple that prunes k
        keys = torch.cat([w.detach().abs().flatten() / float(w.std()) for w in weights])
    n = keys.numel()
    k = n_to_prune(sparsity, n)
    if n == 0:
        return 0.0
    exact = float(keys.kthvalue(k + 1).values) if k < n else \
        float(keys.max()) * (1 + 1e-6) + 1e-12  # everything: just above the largest
    if step <= 0:
        return exact
    grid = {round(math.floor(exact / step) * step, 9), round(math.ceil(exact / step) * step, 9)}
    return min(sorted(grid), key=lambda v: abs(pruned_share(index, mode, v) - sparsity))


@torch.no_grad()
def apply_masks(params: Mapping[str, torch.Tensor], base: Mapping[str, torch.Tensor],
                masks: Mapping[str, torch.Tensor] | None) -> None:
    """Set each pruned parameter to base * mask in place (or to base when unmasked)."""
    for name, param in params.items():
        if masks is None or name not in masks:
            param.copy_(base[name])
        else:
            torch.mul(base[name], masks[name], out=param)


@torch.no_grad()
def zero_masked(params: Mapping[str, torch.Tensor], masks: Mapping[str, torch.Tensor]) -> None:
    """Re-zero pruned entries after an optimizer step (momentum, Adam, weight decay)."""
    for name, mask in masks.items():
        params[name].mul_(mask)


def layer_masks(index: MagnitudeIndex, targets: Mapping[str, float]) -> MaskResult:
    """Masks pruning round(s * n) smallest |w| of each named layer; others stay dense."""
    masks, cuts = {}, {}
    for name, w in index.weights.items():
        sparsity = targets.get(name, 0.0)
        sorted_mags, order = index.layer(name)
        k = n_to_prune(sparsity, w.numel())
        masks[name], cuts[name] = _mask_dropping(order, k, w.shape), _cut(sorted_mags, k)
    return MaskResult(masks, cuts)


# ----- pruning within masks that are already in force ---------------------------------
def _survivors_in_order(order: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """`order` (flat indices by ascending |w|) restricted to the entries `keep` holds."""
    return order[keep.flatten()[order]]


def pruned_count(masks: Mapping[str, torch.Tensor], names: list[str] | None = None) -> int:
    """Entries pruned by `masks` (over `names`, default all of them)."""
    names = list(masks) if names is None else [n for n in names if n in masks]
    return sum(int(masks[n].numel() - masks[n].sum()) for n in names)


def prune_remaining(index: MagnitudeIndex, previous: Mapping[str, torch.Tensor] | None,
                    rates: Mapping[str, float]) -> MaskResult:
    """One lottery-ticket round (Frankle & Carbin 2019), per layer.

    Each layer drops round(rate * r) of its r remaining weights (those `previous` keeps;
    all when None), the smallest |w| of `index` first; pruned entries stay pruned. Layers
    without a rate keep their previous mask.
    """
    masks, cuts = {}, {}
    for name, w in index.weights.items():
        keep = previous[name] if previous is not None and name in previous else \
            torch.ones_like(w, dtype=torch.bool)
        rate = float(rates.get(name, 0.0))
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"fraction of {name} to prune must be in [0, 1]; got {rate!r}")
        sorted_mags, order = index.layer(name)
        survivors = _survivors_in_order(order, keep)
        k = round(rate * survivors.numel())
        mask = keep.clone().flatten()
        mask[survivors[:k]] = False
        masks[name] = mask.view(w.shape)
        flat = index.magnitudes(name).flatten()
        cuts[name] = float(flat[survivors[k]]) if k < survivors.numel() else math.inf
    return MaskResult(masks, cuts)


def masks_within(index: MagnitudeIndex, previous: Mapping[str, torch.Tensor],
                 config: PruneConfig, min_density: float = MIN_LAYER_DENSITY) -> MaskResult:
    """`config` applied to the weights `previous` keeps, pruned entries counting as zero.

    The rule for re-pruning after a job (issue 16, item 7): the ranking sees base * previous,
    so the entries `previous` pruned go first and never come back, and the same sparsity
    gives `previous` again (its zeros are exactly the round(s * n) smallest). Threshold
    mode keeps |w| >= t among the survivors; std mode uses q * std(base * previous) of each
    layer, the std of the weights as the model holds them (pruned zeros included).
    """
    weights = index.weights
    keep = {n: previous[n] if n in previous else torch.ones_like(w, dtype=torch.bool)
            for n, w in weights.items()}
    if config.mode in ("threshold", "std"):
        masks, cuts = {}, {}
        for name, w in weights.items():
            t = config.value if config.mode == "threshold" else \
                config.value * float((w * keep[name]).std())
            masks[name] = keep[name] & (index.magnitudes(name) >= t)
            cuts[name] = t
        result = MaskResult(masks, cuts)
    elif config.scope == "layer":
        masks, cuts = {}, {}
        for name, w in weights.items():
            masks[name], cuts[name] = _drop_survivors(
                index.layer(name)[1], index.magnitudes(name).flatten(), keep[name],
                n_to_prune(config.value, w.numel()))
        result = MaskResult(masks, cuts)
    else:
        _, order = index.global_()
        flat_keep = torch.cat([keep[n].flatten() for n in weights])
        mags = torch.cat([index.magnitudes(n).flatten() for n in weights])
        flat, cut = _drop_survivors(order, mags, flat_keep,
                                    n_to_prune(config.value, flat_keep.numel()))
        masks, start = {}, 0
        for name, w in weights.items():
            masks[name] = flat[start:start + w.numel()].view(w.shape)
            start += w.numel()
        result = MaskResult(masks, dict.fromkeys(weights, cut))
    if config.scope == "global" and min_density > 0:
        result = _refill_within(index, result, keep, min_density)
    return result


def _drop_survivors(order: torch.Tensor, mags: torch.Tensor, keep: torch.Tensor,
                    k: int) -> tuple[torch.Tensor, float]:
    """Prune k entries in all: every entry `keep` drops, then the smallest survivors."""
    survivors = _survivors_in_order(order, keep)
    extra = max(0, k - (keep.numel() - survivors.numel()))
    mask = keep.clone().flatten()
    mask[survivors[:extra]] = False
    cut = float(mags[survivors[extra]]) if extra < survivors.numel() else math.inf
    return mask.view(keep.shape), cut


def _refill_within(index: MagnitudeIndex, result: MaskResult,
                   keep: Mapping[str, torch.Tensor], min_density: float) -> MaskResult:
    """The global guard inside previous masks: refill a layer to its largest survivors."""
    masks, warnings = dict(result.masks), list(result.warnings)
    for name, mask in result.masks.items():
        need = min(math.ceil(min_density * mask.numel()), int(keep[name].sum()))
        kept = int(mask.sum())
        if kept < need:
            survivors = _survivors_in_order(index.layer(name)[1], keep[name])
            refilled = torch.zeros(mask.numel(), dtype=torch.bool, device=mask.device)
            refilled[survivors[survivors.numel() - need:]] = True
            masks[name] = refilled.view(mask.shape)
            warnings.append(f"{name}: global pruning would keep {kept} of {mask.numel()} "
                            f"weights; kept the largest {need} ({min_density:.0%} minimum "
                            "density)")
    return MaskResult(masks, result.cuts, tuple(warnings))
