"""Undo, Reset, Reset pruning and the model switch: a Session call, then the whole view
follows (weights, masks, the slider, the curves and the one-shot curve together)."""

from __future__ import annotations

from collections.abc import Callable

from ..engine.metrics import Snapshot
from .confirm import Confirm
from .host import Host
from .state import slot_label


class Actions:
    def __init__(self, host: Host) -> None:
        self.host = host
        # Reset throws every job's result out of view (one Undo brings it back): the first
        # click asks
        self.confirm_reset = Confirm(host.c.reset, "Confirm: reset")

    def reset_pruning(self) -> bool:
        host = self.host
        self.confirm_reset.disarm()
        with host.sync.quiet():
            host.c.slider.value = host.c.slider.min
        done = host.run(host.session.reset_pruning, f"pruning reset ({host.who()})")
        host.request_curve()
        return done

    def undo(self) -> bool:
        """Weights, masks, slider and curves as they were before the last job."""
        host = self.host
        slot = host.session.selected
        self.confirm_reset.disarm()

        def action() -> Snapshot:
            stack = host.session.slot.undo_stack
            reset = bool(stack) and stack[-1].history is not None  # a Reset's step
            snap = host.session.undo()  # raises (nothing changes) when there is nothing
            before = host.book.undo(slot)
            if reset:  # the session put back the very masks in force (a job's included)
                return snap
            if before is not None:  # the masks in force before the job, from that base
                snap = host.session.prune(**before)
            elif snap.prune is not None:
                snap = host.session.reset_pruning()
            return snap

        return self._base_action(action, f"undone ({host.who()}): back to the model "
                                         "before the last job")

    def reset(self) -> bool:
        """Back to the original model; asks first when that throws pruning or jobs away
        (the second click on the same button resets). One Undo brings back the model,
        its pruning, the slider and the curves as they were before the reset."""
        host = self.host
        slot = host.session.selected
        s = host.session
        at_stake = bool(s.slot.undo_stack or s.slot.masks is not None)
        if not self.confirm_reset.go(at_stake, lambda: host.set_status(
                f"Reset drops the {host.who()}'s pruning and every job (Undo brings them "
                "back): click again to confirm", error=True)):
            return False
        # the pruning settings Undo returns to (None: dense), as a job's checkpoint keeps
        before = None if host.snap is None or host.snap.prune is None else host.prune_kwargs()

        def action() -> Snapshot:
            if not at_stake:  # the original already: no Undo step for nothing
                return host.session.reset()
            snap = host.session.reset(keep_undo=True)
            host.book.reset(slot, before)
            return snap

        return self._base_action(action, f"back to the original model ({host.who()})" +
                                 ("; Undo brings back what was there" if at_stake else ""))

    def _base_action(self, action: Callable[[], Snapshot], done: str) -> bool:
        holder: list[Snapshot] = []

        def act() -> Snapshot:
            holder.append(action())
            return holder[-1]

        if not self.host.run(act, done):
            return False
        self.host.state.base_version += 1
        self.host.after_model_change(holder[-1])
        return True

    def select_slot(self, slot: str) -> bool:
        """Prune and show another model (teacher, distilled student, student alone)."""
        host = self.host
        holder: list[Snapshot] = []
        self.confirm_reset.disarm()

        def act() -> Snapshot:
            holder.append(host.session.select(slot))
            return holder[-1]

        if not host.run(act, f"showing the {slot_label(slot)}"):
            return False
        host.after_model_change(holder[-1], slot)
        host.compare.adopt()  # type: ignore[attr-defined]
        return True
