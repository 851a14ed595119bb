"""Session.trial(): try things on a session and leave no trace.

Studies (sweeps, sensitivity, trade-off curves) prune, train and undo to measure; the
context manager puts back everything they may touch when it exits, even after an
exception or a Stop: every model slot (weights, dense base, masks, undo stack, rewind
points, epochs), which slots exist and which is selected, the history, the step and job
counters, the teacher cache and the random number generators. It copies generically
(every attribute of the session and of each slot), so an attribute added later is
covered without changes here.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from .slots import ModelSlot

# Not copied: the lock and the running-job marks (a trial runs inside the caller's
# job), the data and the task object (no study changes them), and the slots dict
# (restored by identity below).
_SESSION_SKIP = frozenset({"lock", "slots", "data", "objective", "device", "_job_owner",
                           "_job_name", "_job_depth"})


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


def _capture_slot(slot: ModelSlot) -> dict[str, Any]:
    fields = {k: copy.deepcopy(v) for k, v in vars(slot).items() if k != "model"}
    exact = slot.is_exact()
    return {"fields": fields, "weights": copy.deepcopy(slot.model.state_dict()),
            "training": slot.model.training, "exact": exact}


def _restore_slot(slot: ModelSlot, saved: dict[str, Any]) -> None:
    model = slot.model
    model.load_state_dict(saved["weights"])  # in place: optimizers keep their parameters
    model.train(saved["training"])
    vars(slot).clear()
    vars(slot).update(saved["fields"], model=model)
    if saved["exact"]:  # loading bumped the weights' versions: the fast path still holds
        slot.mark_exact()


@contextmanager
def trial(session: Any) -> Iterator[Any]:
    """Yield `session`; on exit restore it exactly as it was on entry.

    Not while a job runs in another thread: restoring would overwrite that job's work.
    """
    with session.lock:
        session.check_idle("a study (Session.trial)")
        slots = dict(session.slots)
        saved_slots = {name: _capture_slot(slot) for name, slot in slots.items()}
        saved_vars = {k: copy.deepcopy(v) for k, v in vars(session).items()
                      if k not in _SESSION_SKIP}
        rng = _rng_states()
    try:
        yield session
    finally:
        with session.lock:
            session.slots.clear()
            session.slots.update(slots)
            for name, slot in slots.items():
                _restore_slot(slot, saved_slots[name])
            for key in [k for k in vars(session) if k not in _SESSION_SKIP]:
                if key not in saved_vars:
                    delattr(session, key)
            for key, value in saved_vars.items():
                setattr(session, key, value)
            _set_rng_states(rng)
