"""Session.trial(): try things on a session and leave no trace.

Studies (sweeps, sensitivity, trade-off curves) prune, train and undo to measure; the
context manager puts back everything they may touch when it exits, even after an
exception or a Stop: every model slot (weights, dense base, masks, undo stack, rewind
points, epochs), which slots exist and which is selected, the history, the step and job
counters, the teacher cache and the random number generators.

It takes a restore point, not deep copies: the session never changes a dense base, a
mask, an undo entry or a rewind point in place (ModelSlot.set_base, install_masks and
commit replace them whole), so the point holds those tensors by reference and copies
only the containers that hold them and the one thing training changes in place, each
model's live weights (one state's bytes per slot). Tensors shared on entry (the
magnitude index's weights are the base's) are still shared after a restore.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import torch

from .slots import ModelSlot, State, clone_state

if TYPE_CHECKING:
    from .host import Host

H = TypeVar("H", bound="Host")  # trial() yields the session it was given, typed as such

# Session attributes restored by the code below or never changed by a study: the lock
# (a trial runs inside the caller's job), the data, the task object, the device, and the
# collaborators (their state is saved field by field).
SESSION_SKIP = frozenset({"lock", "data", "objective", "device", "slots", "jobs",
                          "students", "lm", "pruning"})


def _shallow(obj: object) -> dict[str, Any]:
    """An object's attributes, its containers copied one level (their tensors shared)."""
    return {k: copy.copy(v) if isinstance(v, (list, dict, set)) else v
            for k, v in vars(obj).items()}


@dataclass(frozen=True)
class SlotPoint:
    """One slot's restore point: its fields (by reference) and its model's live weights."""

    fields: dict[str, Any]
    weights: State
    training: bool
    exact: bool

    @classmethod
    def take(cls, slot: ModelSlot) -> SlotPoint:
        fields = {k: v for k, v in _shallow(slot).items() if k != "model"}
        return cls(fields, clone_state(slot.model.state_dict()), slot.model.training,
                   slot.is_exact())

    def put_back(self, slot: ModelSlot) -> None:
        model = slot.model
        model.load_state_dict(self.weights)  # in place: optimizers keep their parameters
        model.train(self.training)
        vars(slot).clear()
        vars(slot).update(_shallow_dict(self.fields), model=model)
        if self.exact:  # loading bumped the weights' versions: the fast path still holds
            slot.mark_exact()


def _shallow_dict(fields: dict[str, Any]) -> dict[str, Any]:
    """Fresh containers on every restore: the point stays valid if restored twice."""
    return {k: copy.copy(v) if isinstance(v, (list, dict, set)) else v
            for k, v in fields.items()}


@dataclass(frozen=True)
class Checkpoint:
    """Everything a study may change on a session, as on entry to a trial."""

    slots: dict[str, ModelSlot]
    points: dict[str, SlotPoint]
    selected: str
    session: dict[str, Any]
    jobs: tuple[int, int]
    teacher_cache: dict[str, Any]
    rng: dict[str, Any]

    @classmethod
    def take(cls, session: Host) -> Checkpoint:
        """The point (take it under the lock)."""
        slots = dict(session.slots.items())
        return cls(slots, {n: SlotPoint.take(s) for n, s in slots.items()},
                   session.selected,
                   {k: v for k, v in _shallow(session).items() if k not in SESSION_SKIP},
                   (session.jobs.started, session.jobs.total_steps),
                   _shallow(session.students.teacher_cache), _rng_states())

    def put_back(self, session: Host) -> None:
        """Return `session` to the point (under the lock)."""
        for name in [n for n in session.slots if n not in self.slots]:
            del session.slots[name]
        for name, slot in self.slots.items():
            session.slots[name] = slot
            self.points[name].put_back(slot)
        session.slots.selected = self.selected
        for key in [k for k in vars(session) if k not in SESSION_SKIP]:
            if key not in self.session:
                delattr(session, key)
        for key, value in _shallow_dict(self.session).items():
            setattr(session, key, value)
        session.jobs.started, session.jobs.total_steps = self.jobs
        cache = session.students.teacher_cache
        vars(cache).clear()
        vars(cache).update(_shallow_dict(self.teacher_cache))
        _set_rng_states(self.rng)


def _rng_states() -> dict[str, Any]:
    states: dict[str, Any] = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
                              "python": random.getstate()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])
    if "cuda" in states:
        torch.cuda.set_rng_state_all(states["cuda"])


@contextmanager
def trial(session: H) -> Iterator[H]:
    """Yield `session`; on exit restore it exactly as it was on entry.

    Not while a job runs in another thread: restoring would overwrite that job's work.
    """
    with session.lock:
        session.jobs.check_idle("a study (Session.trial)")
        point = Checkpoint.take(session)
    try:
        yield session
    finally:
        with session.lock:
            point.put_back(session)
