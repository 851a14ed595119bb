"""Quick analyses over a Session that leave it exactly as they found it.

The trade-off sweep is one-shot (no retraining): it prunes from the dense base at each
level, measures on validation, and restores the pruning setting in force before.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..config import check_number
from ..engine.metrics import Snapshot

if TYPE_CHECKING:
    from ..session.session import Session

DEFAULT_LEVELS = tuple(float(s) for s in np.round(np.linspace(0.0, 0.98, 15), 3))


@dataclass(frozen=True)
class SweepPoint:
    sparsity: float  # the requested level
    actual_sparsity: float  # pruned fraction of prunable weights actually reached
    accuracy: float | None
    loss: float


def check_levels(levels: tuple[float, ...] | list[float]) -> tuple[float, ...]:
    if not levels:
        raise ValueError("levels must name at least one sparsity; got an empty list")
    return tuple(check_number("sparsity level", s, 0.0, 1.0) for s in levels)


def _measure_levels(levels: tuple[float, ...], measure: Callable[[float], Snapshot],
                    stop: threading.Event | None,
                    on_point: Callable[[SweepPoint], None] | None) -> list[SweepPoint]:
    """One point per level (until a Stop), each passed to `on_point` as it comes."""
    points: list[SweepPoint] = []
    for level in levels:
        if stop is not None and stop.is_set():
            break
        snap = measure(level)
        points.append(SweepPoint(level, snap.sparsity, snap.accuracy, snap.loss))
        if on_point is not None:
            on_point(points[-1])
    return points


def sparsity_sweep(session: Session, levels: tuple[float, ...] = DEFAULT_LEVELS,
                   scope: str = "layer", structured: bool = False,
                   stop: threading.Event | None = None,
                   on_point: Callable[[SweepPoint], None] | None = None) -> list[SweepPoint]:
    """Accuracy at each one-shot sparsity level; the session is left exactly as it was."""
    levels = check_levels(levels)
    with session.lock, session.trial():
        return _measure_levels(levels, lambda level: session.prune(
            sparsity=level, scope=scope, structured=structured), stop, on_point)


def finetuned_sweep(session: Session, levels: tuple[float, ...], epochs: int = 1,
                    lr: float = 1e-4, stop: threading.Event | None = None,
                    on_event: Callable | None = None,
                    on_point: Callable[[SweepPoint], None] | None = None) -> list[SweepPoint]:
    """Prune to each level and fine-tune, measure; the session ends exactly as it was
    (weights, masks, undo, history, epochs, rewind points: Session.trial)."""
    levels = check_levels(levels)

    def measure(level: float) -> Snapshot:
        with session.trial():  # each level starts from the same dense base
            return session.prune_iteratively(level, steps=1, schedule="oneshot",
                                             finetune_epochs=epochs, lr=lr, stop=stop,
                                             on_event=on_event)

    with session.jobs.job("fine-tuned sweep"), session.trial():
        return _measure_levels(levels, measure, stop, on_point)


def temperature_sweep(session: Session, temperatures: tuple[float, ...], student: float = 0.5,
                      alpha: float = 0.7, epochs: int = 5, lr: float = 1e-3,
                      t_squared: bool = True, stop: threading.Event | None = None,
                      on_event: Callable | None = None) -> list[dict]:
    """Distil the same student at each temperature; validation accuracy of each.

    The last student stays in the session's student slot.
    """
    if not temperatures:
        raise ValueError("temperatures must name at least one value; got an empty list")
    rows = []
    for temperature in temperatures:
        if stop is not None and stop.is_set():
            break
        snap = session.students.distill(student=student, temperature=temperature, alpha=alpha,
                               epochs=epochs, lr=lr, t_squared=t_squared, stop=stop,
                               on_event=on_event)
        rows.append({"temperature": float(temperature), "accuracy": snap.accuracy,
                     "loss": snap.loss})
    return rows
