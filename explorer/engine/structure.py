"""Structured pruning: whole neurons/filters, ranked by norm, then physical removal.

One path for every model: Torch-Pruning's dependency graph (engine.graph, engine.attention)
says which output channels go together (a residual add couples the layers that write one
stream) and which parameter entries each channel owns: producer rows, biases, BatchNorm
scale and shift, consumer columns. Masks zero all of them, so a removed channel adds
exactly nothing downstream, and shrinking asks the graph to remove the same channels:
shrunk equals masked (DESIGN section 4). The zoo's models and hf models trace themselves
(`example_input()`); a user's module traces on the session's data (`give_example`).
Where the graph cannot handle a model, the structured prune or the shrink refuses with a
ValueError naming the layer and the reason.
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import BN_RECALIBRATION_SAMPLES, NORMS, PruneConfig
from .attention import example_of
from .graph import GraphGroup, Member, dead_channels, graph_masks
from .prune import (
    PRUNABLE_TYPES,
    MagnitudeIndex,
    MaskResult,
    masks_within,
    pruned_count,
)

NORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
NORM_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def on_graph(model: nn.Module) -> bool:
    """Whether `model` has an example input, so the dependency graph can trace it."""
    return example_of(model) is not None


def _layer_groups(model: nn.Module) -> list[GraphGroup]:
    """Without a graph: every Linear/Conv but the last is its own group of output rows
    (and biases), consumers unknown. Enough to mask; `shrink_model` refuses."""
    groups = []
    for name, module in model.named_modules():
        if isinstance(module, PRUNABLE_TYPES):
            idx = torch.arange(module.weight.shape[0])
            members = [Member(f"{name}.weight", 0, idx, idx, True)]
            if getattr(module, "bias", None) is not None:
                members.append(Member(f"{name}.bias", 0, idx, idx, False))
            groups.append(GraphGroup(name, len(idx), tuple(members)))
    return groups[:-1]


def model_groups(model: nn.Module) -> tuple[list[GraphGroup], bool]:
    """(groups, graph_known): the dependency graph's groups (and attention heads) when
    the model can be traced, else one group per layer with unknown consumers. A model
    the graph cannot handle raises ValueError naming the layer and the reason."""
    if on_graph(model):
        from .attention import graph_of

        return list(graph_of(model)[0]), True
    return _layer_groups(model), False


def structured_masks(params: dict[str, torch.Tensor], groups: list[GraphGroup],
                     sparsity: float, norm: str = "l1") -> MaskResult:
    """Remove round(s * n) lowest-norm channels of every group (at least one survives).

    Ties: a stable ascending sort of the scores, so among equal norms the channel with
    the lower index is removed first. `params` are the weights to rank, e.g. the dense
    base, or the current masked weights when masks must stack (`stacked_masks`).
    """
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {', '.join(NORMS)}; got {norm!r}")
    found, notes = graph_masks(params, groups, sparsity, norm)
    return MaskResult(found, {}, tuple(notes))


def shrink_model(model: nn.Module) -> nn.Module:
    """A new, physically smaller model with every dead channel removed (by the graph).

    Its outputs equal `model`'s (dead channels contribute exact zeros). A zoo model is
    rebuilt from its (new) `arch()`, so it saves and loads like any zoo model. Refuses,
    naming the layer, when the layer graph is unknown or the removal breaks the forward.
    """
    from .attention import graph_shrink
    from .tracing import check_runs

    example = example_of(model)
    if example is None:
        layer = next((n for n, m in model.named_modules() if isinstance(m, PRUNABLE_TYPES)),
                     type(model).__name__)
        raise ValueError(
            f"cannot physically remove outputs of {layer!r}: {type(model).__name__} gives no "
            "example input to trace which layers consume them (residual adds or concats "
            "would break); export kind='masked' or 'zeros' instead")
    small = graph_shrink(model)
    check_runs(model, small, example)
    return _rebuilt(small).train(model.training)


def _rebuilt(small: nn.Module) -> nn.Module:
    """A zoo model made anew from the shrunk copy's `arch()` (its attributes then match
    its shapes), carrying the shrunk weights; any other model as it is."""
    arch = getattr(small, "arch", None)
    if not callable(arch):
        return small
    from ..models.zoo import build_from_arch

    device = next(small.parameters()).device
    with torch.random.fork_rng(devices=[]):  # the throwaway init must not move the RNG
        fresh = build_from_arch(arch())
    fresh.load_state_dict(small.state_dict())
    return fresh.to(device)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def removed_fraction(model: nn.Module) -> float | None:
    """Fraction of all parameters a shrink would remove (None when it cannot shrink)."""
    if not on_graph(model):
        return None
    from .attention import graph_removed_fraction

    try:
        return graph_removed_fraction(model)
    except ValueError:  # the graph cannot handle this model: the prune said why
        return None


# ----- masks that stack on masks in force -----------------------------------------------
def stacked_masks(weights: dict[str, torch.Tensor], previous: dict[str, torch.Tensor] | None,
                  config: PruneConfig, groups: list[GraphGroup] | None = None) -> MaskResult:
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
                     groups: list[GraphGroup] | None = None) -> MaskResult:
    """The re-pruning rule after a job (issue 16, item 7; docs/api.md, "Re-pruning after a job").

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


def calibration_rows(n: int, samples: int, seed: int) -> torch.Tensor:
    """Indices of `samples` of `n` rows: the first of a permutation seeded by `seed`.

    Not the first rows: an image folder's training split is sorted by class, so its first
    64 rows were all class 0 (resnet-small at 25% structured read 65.5% instead of 79.1%).
    Fewer samples take a prefix of the same permutation (the fast answer's rows are among
    the full answer's), and the same seed gives the same rows on every slider move.
    """
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order[:samples].sort().values  # sorted: reads memory in order


@torch.no_grad()
def recalibrate_bn(model: nn.Module, x: torch.Tensor,
                   samples: int = BN_RECALIBRATION_SAMPLES, seed: int = 0) -> bool:
    """Re-estimate every BatchNorm's running mean and variance on `samples` inputs.

    No gradient step: the statistics are reset and recomputed from one forward pass over
    `samples` rows of `x` drawn with `seed` (calibration_rows; BatchNorm in training mode
    with a cumulative average, every other module in eval mode, so dropout stays off).
    Removing channels changes what flows into the later BatchNorms; stale statistics cost
    accuracy that tools such as Torch-Pruning recover this way. Returns False (and changes
    nothing) without BatchNorm.
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
        model(x[calibration_rows(len(x), samples, seed).to(x.device)])
    finally:
        for m, momentum in momenta.items():
            m.momentum = momentum
        for module, mode in modes.items():
            module.training = mode
    return True


def _zero_rows(model: nn.Module) -> bool:
    """Whether any Linear/Conv has an all-zero output row: a dead channel needs one, and
    this check is cheap (no graph is traced for a model with none)."""
    return any(bool(m.weight.detach().flatten(1).eq(0).all(1).any())
               for m in model.modules() if isinstance(m, PRUNABLE_TYPES))


def shrunk_if_structured(model: nn.Module) -> nn.Module | None:
    """The shrunk model when `model` has dead channels and a known graph, else None."""
    if not on_graph(model) or not _zero_rows(model):
        return None
    from .attention import graph_of

    try:
        state = model.state_dict()
        if not any(len(dead_channels(g, state)) for g in graph_of(model)[0]):
            return None
        return shrink_model(model)
    except ValueError:  # the graph cannot handle this model: nothing to shrink here
        return None


def settle_norms(model: nn.Module, base: dict[str, torch.Tensor], x: torch.Tensor,
                 recalibrate: bool, seed: int = 0) -> bool:
    """After new masks: BatchNorm statistics back to the base's, then, when `recalibrate`
    (structured pruning with the switch on), re-estimated on seeded rows of `x`.

    Restoring first keeps "moving the slider back restores the base bit for bit" true for
    the buffers too. Returns whether statistics were re-estimated.
    """
    if not has_batchnorm(model):
        return False
    restore_norm_buffers(model, base)
    return recalibrate and recalibrate_bn(model, x, seed=seed)
