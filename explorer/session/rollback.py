"""Going back: Host.reset_pruning (the dense base), undo (the base before the last
committed job) and reset (the original model). Each acts on the selected slot under the
session's lock and refuses while a job runs in another thread; nothing changes on error.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from ..engine.metrics import Snapshot
from ..engine.structure import settle_norms
from . import core
from .memory import nothing_to_undo

if TYPE_CHECKING:
    from .host import Host


def reset_pruning(session: Host) -> Snapshot:
    """Drop the masks: the model holds the dense base again, bit for bit."""
    with session.lock:
        session.jobs.check_idle("resetting the pruning")
        slot = session.slot
        slot.clear_masks()
        settle_norms(slot.model, slot.base, session.data.train.x, recalibrate=False)
        slot.bn_samples = 0
        return core.snapshot(session)


def undo(session: Host) -> Snapshot:
    """Return to the base, masks and curves before the last committed job."""
    with session.lock:
        session.jobs.check_idle("undo")
        slot = session.slot
        if not slot.undo_stack:
            raise ValueError(nothing_to_undo(slot.undo_stack))
        entry = slot.undo_stack.pop()
        slot.restore(entry)
        if entry.job is not None:
            session.jobs.forget(entry.job)
        if entry.history is not None:  # a reset's: its jobs' records come back, in place
            before = {id(h) for h in entry.history}
            since = [h for h in session.history if id(h) not in before]  # other models'
            session.history[:] = [*entry.history, *since]
        return core.snapshot(session)


def reset(session: Host, keep_undo: bool = False) -> Snapshot:
    """Back to the original trained model: no masks, and the history records of the jobs
    it throws away (those on the undo stack) are gone, as after their Undo (the curves of
    an app opened afterwards start from the original's). The undo stack is emptied, or
    with `keep_undo` the state before the reset becomes one more Undo step (the app's
    Reset: one Undo brings back the model, its pruning and those records)."""
    with session.lock:
        session.jobs.check_idle("reset")
        slot = session.slot
        jobs = {e.job for e in slot.undo_stack if e.job is not None}
        history = tuple(session.history)
        if keep_undo:
            slot.undo_stack.append(replace(slot.undo_entry(), history=history))
        else:
            slot.undo_stack.clear()
        session.history[:] = [h for h in history if h.get("job") not in jobs]
        slot.set_base(slot.original)
        return core.snapshot(session)
