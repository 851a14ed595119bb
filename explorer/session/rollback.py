"""Going back: Host.reset_pruning (the dense base), undo (the base before the last
committed job) and reset (the original model). Each acts on the selected slot under the
session's lock and refuses while a job runs in another thread; nothing changes on error.
"""

from __future__ import annotations

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
        return core.snapshot(session)


def reset(session: Host) -> Snapshot:
    """Back to the original trained model: no masks, empty undo stack."""
    with session.lock:
        session.jobs.check_idle("reset")
        session.slot.undo_stack.clear()
        session.slot.set_base(session.slot.original)
        return core.snapshot(session)
