"""Restore points for multi-step jobs (iterative pruning): all of it, or none of it.

A single train() rolls itself back (Session.train); a workflow made of several steps
(prune, rewind, fine-tune, repeat) takes one restore point here before its first step,
and an exception in any step puts the selected slot, the history and the counters back
exactly as they were. The point is cheap: one copy of the dense base; the undo stack,
rewind points and history records are kept by reference (nothing mutates them in place).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .slots import ModelSlot, State, UndoEntry

if TYPE_CHECKING:
    from .host import Host


@dataclass(frozen=True)
class RestorePoint:
    slot: ModelSlot
    selected: str
    entry: UndoEntry  # the base and the pruning in force
    undo: list[UndoEntry]
    epochs_trained: int
    rewind_states: dict[int, State]
    history: list[dict]
    total_steps: int
    training: bool


def restore_point(session: Host) -> RestorePoint:
    """What `put_back` returns the session to (take it under the lock)."""
    slot = session.slot
    return RestorePoint(slot, session.selected, slot.undo_entry(), list(slot.undo_stack),
                        slot.epochs_trained, dict(slot.rewind_states), list(session.history),
                        session.jobs.total_steps, slot.model.training)


def put_back(session: Host, point: RestorePoint) -> None:
    """Return the slot of `point`, the history and the step counter to `point`.

    jobs_started is not rewound: job ids stay unique, so a record can never be mistaken
    for another job's.
    """
    slot = point.slot
    slot.restore(point.entry)
    slot.undo_stack[:] = point.undo
    slot.epochs_trained, slot.rewind_states = point.epochs_trained, dict(point.rewind_states)
    slot.model.train(point.training)
    session.history[:] = point.history
    session.jobs.total_steps = point.total_steps
    session.slots.selected = point.selected


@contextmanager
def all_or_nothing(session: Host) -> Iterator[None]:
    """Run the body; when it raises, put the session back as it was, then re-raise."""
    with session.lock:
        point = restore_point(session)
    try:
        yield
    except BaseException:
        with session.lock:
            put_back(session, point)
        raise
