"""Structured pruning: whole neurons/filters, ranked by norm, then physical removal.

A `Group` is a set of output channels that must go together: the Linear/Conv layers
that write them (several when a residual add couples them), the BatchNorms on them,
and the layers that read them. Masks remove a channel's weight rows, its biases and
its BatchNorm scale and shift, so the channel's output is exactly zero (act(0) = 0 for
ReLU and pooling); that is why the shrunk model equals the masked one (DESIGN section 4).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..config import BN_RECALIBRATION_SAMPLES, NORMS, PruneConfig
from ..models.groups import Group
from .prune import (
    PRUNABLE_TYPES,
    MagnitudeIndex,
    MaskResult,
    masks_within,
    n_to_prune,
    pruned_count,
)

NORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
NORM_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def on_graph(model: nn.Module) -> bool:
    """Whether `model`'s groups come from the dependency graph (engine.attention): models
    that offer `example_input()` and `output_layer()` (transformers models, models.hf)."""
    return callable(getattr(model, "example_input", None)) and \
        callable(getattr(model, "output_layer", None))


def model_groups(model: nn.Module) -> tuple[list[Group], bool]:
    """(groups, graph_known). Zoo models declare theirs; models on the dependency graph get
    `GraphGroup`s from it; for any other module every Linear/Conv except the last is its
    own group with unknown consumers (mask only)."""
    if on_graph(model):
        from .attention import graph_of

        return list(graph_of(model)[0]), True  # type: ignore[arg-type]
    declared = getattr(model, "groups", None)  # nn.Conv2d has an int `groups`: call only methods
    if callable(declared):
        return list(declared()), True
    names = [n for n, m in model.named_modules() if isinstance(m, PRUNABLE_TYPES)]
    return [Group(n, (n,), (), ()) for n in names[:-1]], False


def _p(module: str, param: str) -> str:
    return f"{module}.{param}" if module else param


def group_params(group: Group, params: dict[str, torch.Tensor]) -> list[str]:
    """Names of the 1-d per-channel tensors masked with a channel: biases, BN scale/shift."""
    names = [_p(m, "bias") for m in group.producers]
    names += [_p(m, p) for m in group.norms for p in ("weight", "bias")]
    return [n for n in names if n in params]


def channel_scores(group: Group, params: dict[str, torch.Tensor], norm: str) -> torch.Tensor:
    """L1 or L2 norm of each output channel, over all of the group's producers."""
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {', '.join(NORMS)}; got {norm!r}")
    if not group.producers:
        raise ValueError(f"group {group.name!r} has no producer layers to rank")
    parts = []
    for module in group.producers:
        rows = params[_p(module, "weight")].detach().flatten(1)
        parts.append(rows.abs().sum(1) if norm == "l1" else rows.pow(2).sum(1))
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return total if norm == "l1" else total.sqrt()


def structured_masks(params: dict[str, torch.Tensor], groups: list[Group], sparsity: float,
                     norm: str = "l1") -> MaskResult:
    """Remove round(s * n) lowest-norm channels of every group (at least one survives).

    Ties: a stable ascending sort of the scores, so among equal norms the channel with
    the lower index is removed first. `params` are the weights to rank, e.g. the dense
    base, or the current masked weights when masks must stack (`stacked_masks`).
    """
    if groups and not isinstance(groups[0], Group):  # GraphGroups: rank and mask by graph
        from .graph import graph_masks

        if norm not in NORMS:
            raise ValueError(f"norm must be one of {', '.join(NORMS)}; got {norm!r}")
        found, notes = graph_masks(params, groups, sparsity, norm)  # type: ignore[arg-type]
        return MaskResult(found, {}, tuple(notes))
    masks: dict[str, torch.Tensor] = {}
    warnings = []
    for group in groups:
        scores = channel_scores(group, params, norm)
        n = scores.numel()
        k = n_to_prune(sparsity, n)
        if k >= n:
            warnings.append(f"{group.name}: removing {k} of {n} channels would empty it; "
                            f"kept the strongest one")
            k = n - 1
        keep = torch.ones(n, dtype=torch.bool, device=scores.device)
        keep[torch.sort(scores, stable=True).indices[:k]] = False
        for module in group.producers:
            name = _p(module, "weight")
            shape = params[name].shape
            masks[name] = keep.view(-1, *([1] * (len(shape) - 1))).expand(shape).clone()
        for name in group_params(group, params):
            masks[name] = keep.clone()
    return MaskResult(masks, {}, tuple(warnings))


@torch.no_grad()
def live_channels(group: Group, state: dict[str, torch.Tensor]) -> torch.Tensor:
    """Indices of channels whose output is not identically zero (kept when shrinking).

    A channel is dead when every producer's weight row and bias are zero and every
    BatchNorm on it has zero scale and shift; then its output is exactly zero.
    """
    if not group.producers:
        raise ValueError(f"group {group.name!r} has no producer layers")
    zero_rows = [state[_p(module, "weight")].flatten(1).eq(0).all(1)
                 for module in group.producers]
    dead = zero_rows[0]
    for rows_zero in zero_rows[1:]:
        dead = dead & rows_zero
    for name in group_params(group, state):
        dead &= state[name].eq(0)
    live = torch.nonzero(~dead).flatten()
    if live.numel() == 0:  # a zero-width layer cannot exist; keep one (all-zero) channel
        live = torch.zeros(1, dtype=torch.long, device=dead.device)
    return live


def _slice_group(group: Group, state: dict[str, torch.Tensor], keep: torch.Tensor) -> None:
    for module in group.producers:
        state[_p(module, "weight")] = state[_p(module, "weight")].index_select(0, keep)
    for module in group.norms:
        for buf in ("running_mean", "running_var"):
            state[_p(module, buf)] = state[_p(module, buf)].index_select(0, keep)
    for name in group_params(group, state):
        state[name] = state[name].index_select(0, keep)
    for module, per_channel in group.consumers:
        cols = (keep[:, None] * per_channel + torch.arange(per_channel, device=keep.device))
        name = _p(module, "weight")
        state[name] = state[name].index_select(1, cols.flatten())


def shrink_model(model: nn.Module) -> nn.Module:
    """A new, physically smaller model with every dead channel removed.

    Its outputs equal `model`'s (dead channels contribute exact zeros). Refuses, naming
    the layer, when the layer graph is unknown and removal could break a consumer.
    """
    from ..models.zoo import build_from_arch

    if on_graph(model):
        from .attention import graph_shrink

        return graph_shrink(model).train(model.training)
    groups, known = model_groups(model)
    resized_arch = getattr(model, "resized_arch", None)
    if not known or not callable(resized_arch):
        layer = groups[0].name if groups else type(model).__name__
        raise ValueError(
            f"cannot physically remove outputs of {layer!r}: {type(model).__name__} does not "
            "declare which layers consume them (residual adds or concats would break); "
            "export kind='masked' or 'zeros' instead")
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    kept = {}
    for group in groups:
        keep = live_channels(group, state)
        kept[group.name] = int(keep.numel())
        _slice_group(group, state, keep)
    with torch.random.fork_rng(devices=[]):  # the throwaway init must not move the user's RNG
        small = build_from_arch(resized_arch(kept))
    small.load_state_dict(state)
    device = next(model.parameters()).device
    return small.to(device).train(model.training)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def removed_fraction(model: nn.Module) -> float | None:
    """Fraction of all parameters a shrink would remove (None when it cannot shrink)."""
    if on_graph(model):
        from .attention import graph_removed_fraction

        return graph_removed_fraction(model)
    try:
        small = shrink_model(model)
    except ValueError:
        return None
    total = count_params(model)
    return 1.0 - count_params(small) / total if total else math.nan


# ----- masks that stack on masks in force -----------------------------------------------
def stacked_masks(weights: dict[str, torch.Tensor], previous: dict[str, torch.Tensor] | None,
                  config: PruneConfig, groups: list[Group] | None = None) -> MaskResult:
    """`config` ranked on weights * previous (pruned entries count as zero), AND previous.

    What iterative pruning does at each step, and what a re-prune after a job does at or
    above that job's sparsity (`within_committed`): nothing pruned comes back.
    """
    previous = previous or {}
    if not config.structured:
        return masks_within(MagnitudeIndex(dict(weights)), previous, config)
    effective = {n: w * previous[n] if n in previous else w for n, w in weights.items()}
    result = structured_masks(effective, groups or [], config.value, config.norm)
    masks = {n: m & previous[n] if n in previous else m for n, m in result.masks.items()}
    return MaskResult(masks, result.cuts, result.warnings)


def within_committed(result: MaskResult, committed: tuple | None, config: PruneConfig,
                     index: MagnitudeIndex, base: dict[str, torch.Tensor],
                     groups: list[Group] | None = None) -> MaskResult:
    """The re-pruning rule after a job (issue 16, item 7; README "Re-pruning after a job").

    `committed` is (masks M, their config) of the last job that trained a pruned model, or
    None. A request that, from the base, would prune at least as many prunable weights as M
    (sparsity >= s(M)) ranks only M's survivors, so the same setting gives M again and
    stale pruned values never outrank fine-tuned survivors. Below s(M), `result` (rebuilt
    from the base: M's pruned entries come back with their old values) stands. A request
    of the other kind (structured vs unstructured) also stands as it is.
    """
    if committed is None:
        return result
    masks, old = committed
    if bool(getattr(old, "structured", False)) != config.structured:
        return result
    names = list(index.weights)
    if pruned_count(result.masks, names) < pruned_count(masks, names):
        return result
    if config.structured:
        return stacked_masks(base, masks, config, groups)
    return masks_within(index, masks, config)


# ----- BatchNorm statistics after channels are removed ----------------------------------
def has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, NORM_TYPES) for m in model.modules())


@torch.no_grad()
def restore_norm_buffers(model: nn.Module, base: dict[str, torch.Tensor]) -> None:
    """Put the BatchNorm running statistics of `base` back into `model`."""
    for name, module in model.named_modules():
        if isinstance(module, NORM_TYPES):
            for buf in NORM_BUFFERS:
                key = f"{name}.{buf}" if name else buf
                tensor = getattr(module, buf, None)
                if tensor is not None and key in base:
                    tensor.copy_(base[key])


@torch.no_grad()
def recalibrate_bn(model: nn.Module, x: torch.Tensor,
                   samples: int = BN_RECALIBRATION_SAMPLES) -> bool:
    """Re-estimate every BatchNorm's running mean and variance on `samples` inputs.

    No gradient step: the statistics are reset and recomputed from one forward pass over
    the first `samples` rows of `x` (BatchNorm in training mode with a cumulative average,
    every other module in eval mode, so dropout stays off). Removing channels changes what
    flows into the later BatchNorms; stale statistics cost accuracy that tools such as
    Torch-Pruning recover this way. Returns False (and changes nothing) without BatchNorm.
    """
    norms = [m for m in model.modules() if isinstance(m, NORM_TYPES) and m.track_running_stats]
    if not norms or samples <= 0:
        return False
    modes = {m: m.training for m in model.modules()}
    momenta = {m: m.momentum for m in norms}
    try:
        model.eval()
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # cumulative average: one pass gives the batch statistics
            m.train()
        model(x[:samples])
    finally:
        for m, momentum in momenta.items():
            m.momentum = momentum
        for module, mode in modes.items():
            module.training = mode
    return True


def shrunk_if_structured(model: nn.Module) -> nn.Module | None:
    """The shrunk model when `model` has dead channels and a known graph, else None."""
    if on_graph(model):
        from .attention import graph_of
        from .graph import dead_channels

        state = model.state_dict()
        if not any(len(dead_channels(g, state)) for g in graph_of(model)[0]):
            return None
        return shrink_model(model)
    groups, known = model_groups(model)
    if not known or not hasattr(model, "resized_arch"):
        return None
    state = model.state_dict()
    with torch.no_grad():
        widths = [sum(state[_p(m, "weight")].shape[0] for m in g.producers[:1])
                  for g in groups]
        if all(live_channels(g, state).numel() == w for g, w in zip(groups, widths)):
            return None
    return shrink_model(model)


def settle_norms(model: nn.Module, base: dict[str, torch.Tensor], x: torch.Tensor,
                 recalibrate: bool) -> bool:
    """After new masks: BatchNorm statistics back to the base's, then, when `recalibrate`
    (structured pruning with the switch on), re-estimated on the first rows of `x`.

    Restoring first keeps "moving the slider back restores the base bit for bit" true for
    the buffers too. Returns whether statistics were re-estimated.
    """
    if not has_batchnorm(model):
        return False
    restore_norm_buffers(model, base)
    return recalibrate and recalibrate_bn(model, x)
