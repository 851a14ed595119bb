"""Iterative pruning: prune, (rewind,) fine-tune, repeat, with masks that only grow.

Unlike the slider, which rebuilds masks from the dense base, each step here ranks the
current masked weights (pruned entries count as zero) and intersects with the previous
mask, so a weight pruned once stays pruned (DESIGN section 3).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import torch

from ..config import EPOCHS_MAX, PruneConfig, TrainConfig, check_number
from ..engine.metrics import Snapshot
from ..engine.prune import MagnitudeIndex, MaskResult, compute_masks
from ..engine.schedule import step_sparsities
from ..engine.structure import model_groups, structured_masks
from .core import SessionCore
from .workflows import rewind_state, rewind_to


def stacked_masks(weights: dict[str, torch.Tensor], previous: dict[str, torch.Tensor] | None,
                  config: PruneConfig, groups: list | None = None) -> MaskResult:
    """Masks at `config.sparsity` ranked on weights * previous, then AND previous."""
    previous = previous or {}
    effective = {n: w * previous[n] if n in previous else w for n, w in weights.items()}
    if config.structured:
        result = structured_masks(effective, groups or [], config.value, config.norm)
    else:
        result = compute_masks(MagnitudeIndex(effective), config)
    masks = {n: m & previous[n] if n in previous else m for n, m in result.masks.items()}
    return MaskResult(masks, result.cuts, result.warnings)


def run_iterative(session: SessionCore, target: float, steps: int, schedule: str,
                  finetune_epochs: int, rewind: str | int | None, config: PruneConfig,
                  train: TrainConfig, stop: threading.Event | None,
                  on_event: Callable | None) -> Snapshot:
    """Session.prune_iteratively's loop; arguments are validated before anything changes."""
    sparsities = step_sparsities(target, steps, schedule)
    finetune_epochs = int(check_number("finetune_epochs", finetune_epochs, 0, EPOCHS_MAX,
                                       integer=True))
    if rewind is not None:
        rewind_state(session, rewind)  # raises ValueError for an unknown rewind point
    groups, _ = model_groups(session.model)
    with session.lock:
        session.reset_pruning()
    snap = None
    for k, s_k in enumerate(sparsities, start=1):
        step_config = PruneConfig(sparsity=s_k, scope=config.scope,
                                  structured=config.structured, norm=config.norm)
        with session.lock:
            base = session.base if config.structured else \
                {n: session.base[n] for n in session.prunable}
            result = stacked_masks(base, session.masks, step_config, groups)
            session.slot.install_masks(result, step_config)
            pruned_at = session.total_steps  # where the curves mark this pruning event
        if rewind is not None:
            rewind_to(session, rewind)
        if finetune_epochs and not (stop is not None and stop.is_set()):
            session.train(epochs=finetune_epochs, lr=train.lr, optimizer=train.optimizer,
                          batch_size=train.batch_size, stop=stop, on_event=on_event)
        snap = session.engine_snapshot()
        session.history.append({"kind": "prune_step", "k": k, "steps": len(sparsities),
                                "step": pruned_at,
                                "schedule": schedule, "sparsity": s_k,
                                "actual_sparsity": snap.sparsity, "accuracy": snap.accuracy,
                                "loss": snap.loss, "snapshot": snap})
        if stop is not None and stop.is_set():
            break
    assert snap is not None  # step_sparsities gives at least one step
    return snap
