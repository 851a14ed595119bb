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

from ..config import NORMS
from ..models.groups import Group
from .prune import PRUNABLE_TYPES, MaskResult, n_to_prune


def model_groups(model: nn.Module) -> tuple[list[Group], bool]:
    """(groups, graph_known). Zoo models declare theirs; for any other module every
    Linear/Conv except the last is its own group with unknown consumers (mask only)."""
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

    Ties keep the lower index (stable sort). `params` are the weights to rank, e.g. the
    dense base, or the current masked weights when masks must stack.
    """
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
    try:
        small = shrink_model(model)
    except ValueError:
        return None
    total = count_params(model)
    return 1.0 - count_params(small) / total if total else math.nan
