"""Iterative pruning: prune, (rewind,) fine-tune, repeat, with masks that only grow.

Unlike the slider, which rebuilds masks from the dense base, each step here ranks the
current masked weights (pruned entries count as zero) and intersects with the previous
mask, so a weight pruned once stays pruned (DESIGN section 3).

Three rules say what a step prunes (`step_plan`):
- a target sparsity reached by a schedule (oneshot, linear, AGP);
- Han et al. 2015: every layer thresholded at q_k * std of its current weights (the
  weights as the model holds them, pruned zeros included), q_k a schedule of quality
  factors or a list of them;
- Frankle & Carbin 2019: every round removes round(p * remaining) of each layer's
  remaining weights (p = `round_fraction`, the output layer at `output_fraction`,
  by default half of p), in one chain of rounds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..config import (
    BN_RECALIBRATION_SAMPLES,
    EPOCHS_MAX,
    PruneConfig,
    TrainConfig,
    check_number,
)
from ..engine.metrics import Snapshot
from ..engine.prune import MagnitudeIndex, prune_remaining
from ..engine.schedule import STEPS_MAX, quality_schedule, round_rates, step_sparsities
from ..engine.structure import model_groups, recalibrate_bn, stacked_masks

if TYPE_CHECKING:
    from .host import Host

__all__ = ["Step", "run_iterative", "stacked_masks", "step_plan"]


@dataclass(frozen=True)
class Step:
    """What one pruning step does: a PruneConfig (sparsity or std) or per-layer rates."""

    config: PruneConfig | None = None
    rates: dict[str, float] | None = None  # fraction of each layer's remaining weights

    def record(self) -> dict:
        """The fields a history record carries for this step."""
        if self.rates is not None:
            return {"rule": "round_fraction", "rates": dict(self.rates)}
        assert self.config is not None
        return {"rule": self.config.mode, self.config.mode: self.config.value}


def step_plan(prunable: Sequence[str], target: float | None, steps: int, schedule: str,
              scope: str = "layer", structured: bool = False, norm: str = "l1", *,
              std: float | Sequence[float] | None = None, round_fraction: float | None = None,
              output_fraction: float | None = None) -> list[Step]:
    """The steps of an iterative run; exactly one of target / std / round_fraction."""
    given = [n for n, v in (("target", target), ("std", std),
                            ("round_fraction", round_fraction)) if v is not None]
    if len(given) != 1:
        raise ValueError("give exactly one of target=, std=, round_fraction=; got "
                         f"{', '.join(given) if given else 'none'}")
    steps = int(check_number("steps", steps, 1, STEPS_MAX, integer=True))
    if output_fraction is not None and round_fraction is None:
        raise ValueError("output_fraction= goes with round_fraction=")
    if target is not None:
        return [Step(PruneConfig(sparsity=s, scope=scope, structured=structured, norm=norm))
                for s in step_sparsities(target, steps, schedule)]
    if structured:
        raise ValueError(f"structured pruning takes target= (a fraction of channels), not "
                         f"{given[0]}=")
    if std is not None:
        if scope != "layer":
            raise ValueError(f"std= is a per-layer rule (Han et al.); use scope='layer', "
                             f"got scope={scope!r}")
        return [Step(PruneConfig(std=q)) for q in quality_schedule(std, steps, schedule)]
    if scope != "layer":
        raise ValueError(f"round_fraction= prunes each layer by its own remaining weights; "
                         f"use scope='layer', got scope={scope!r}")
    assert round_fraction is not None  # exactly one rule was given, checked above
    rates = round_rates(prunable, round_fraction, output_fraction)
    return [Step(rates=rates) for _ in range(steps)]


def run_iterative(session: Host, plan: list[Step], schedule: str,
                  finetune_epochs: int, rewind: str | int | None, train: TrainConfig,
                  stop: threading.Event | None, on_event: Callable | None) -> Snapshot:
    """Session.prune_iteratively's loop; arguments are validated before anything changes."""
    finetune_epochs = int(check_number("finetune_epochs", finetune_epochs, 0, EPOCHS_MAX,
                                       integer=True))
    if rewind is not None:
        session.pruning.rewind_state(rewind)  # raises ValueError for an unknown rewind point
    structured = any(s.config is not None and s.config.structured for s in plan)
    groups = model_groups(session.model)[0] if structured else []  # may refuse, by layer
    with session.lock:
        session.reset_pruning()
    snap = None
    for k, step in enumerate(plan, start=1):
        config = step.config
        with session.lock:
            base = {n: session.slot.base[n] for n in session.slot.prunable}
            if step.rates is not None:
                result = prune_remaining(MagnitudeIndex(base), session.slot.masks, step.rates)
                pruned = sum(int((~m).sum()) for m in result.masks.values())
                config = PruneConfig(sparsity=pruned / max(sum(m.numel() for m in
                                                               result.masks.values()), 1))
            else:
                assert config is not None
                result = stacked_masks(session.slot.base if config.structured else base,
                                       session.slot.masks, config, groups)
            previous = {n: int(m.sum()) for n, m in (session.slot.masks or {}).items()}
            session.slot.install_masks(result, config)
            pruned_at = session.jobs.total_steps  # where the curves mark this pruning event
        if rewind is not None:
            session.pruning.rewind_to(rewind)
        if config.structured and session.settings.bn_recalibration:
            with session.lock:  # removed channels shift what later BatchNorms see
                recalibrate_bn(session.model, session.data.train.x, BN_RECALIBRATION_SAMPLES,
                               session.seed)
        job = None  # the fine-tune's job id: its Undo (or a reset) drops this record too
        if finetune_epochs and not (stop is not None and stop.is_set()):
            session.train(epochs=finetune_epochs, lr=train.lr, optimizer=train.optimizer,
                          batch_size=train.batch_size, stop=stop, on_event=on_event)
            job = session.jobs.started
        snap = session.refine()
        record = {"kind": "prune_step", "k": k, "steps": len(plan), "step": pruned_at,
                  "job": job,
                  "schedule": schedule, **step.record(),
                  "sparsity": config.value if config.mode == "sparsity" else snap.sparsity,
                  "actual_sparsity": snap.sparsity, "accuracy": snap.accuracy,
                  "loss": snap.loss, "snapshot": snap,
                  "cuts": dict(result.cuts),  # per-layer thresholds (std: q_k * std)
                  "remaining_before": {n: previous.get(n, m.numel())
                                       for n, m in result.masks.items()},
                  "remaining": {n: int(m.sum()) for n, m in result.masks.items()}}
        session.history.append(record)
        if stop is not None and stop.is_set():
            break
    assert snap is not None  # step_sparsities gives at least one step
    return snap
