"""Session.trial() and the studies built on it leave the session exactly as it was.

The comparison is generic: every attribute of the session and of each model slot is
walked (tensors bit for bit, containers element by element, dataclasses field by field),
plus the random number generators, so an attribute added later is covered unedited.
"""

from __future__ import annotations

import dataclasses
import random
import threading

import numpy as np
import pytest
import torch

from explorer import Session
from explorer.session.trial import SESSION_SKIP, Checkpoint
from explorer.studies.sensitivity import sensitivity
from explorer.studies.sweep import sweep
from explorer.studies.tradeoff import finetuned_sweep, sparsity_sweep

SKIP_SLOT = {"model", "_exact"}  # the model is compared by its weights; _exact by meaning


def walk(value, path: str, out: dict) -> None:
    """Flatten `value` into {path: leaf} with tensors cloned."""
    if isinstance(value, torch.Tensor):
        out[path] = ("tensor", value.detach().clone())
    elif isinstance(value, torch.nn.Module):
        walk(value.state_dict(), path + ".state", out)
        out[path + ".training"] = value.training
    elif isinstance(value, dict):
        out[path + ".keys"] = list(value)
        for k, v in value.items():
            walk(v, f"{path}[{k!r}]", out)
    elif isinstance(value, (list, tuple)):
        out[path + ".len"] = len(value)
        for i, v in enumerate(value):
            walk(v, f"{path}[{i}]", out)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            walk(getattr(value, f.name), f"{path}.{f.name}", out)
    elif isinstance(value, np.ndarray):
        out[path] = ("array", value.copy())
    elif hasattr(value, "__dict__") and not callable(value):
        walk(vars(value), path + ".vars", out)
    else:
        out[path] = value


def state(session: Session) -> dict:
    out: dict = {}
    for key, value in vars(session).items():
        if key not in SESSION_SKIP:
            walk(value, key, out)
    out["slots.keys"] = list(session.slots)
    out["selected"] = session.selected
    out["jobs"] = (session.jobs.started, session.jobs.total_steps, session.jobs.running)
    walk(vars(session.students.teacher_cache), "teacher_cache", out)
    for name, slot in session.slots.items():
        fields = {k: v for k, v in vars(slot).items() if k not in SKIP_SLOT}
        # the magnitude index by its weights: its lazy caches of the same base may fill
        fields["index"] = slot.index.weights
        walk(fields, name, out)
        walk(slot.model, name + ".model", out)
        out[name + ".exact"] = slot.is_exact()
    out["rng"] = (torch.get_rng_state().clone(), np.random.get_state()[1].copy(),
                  random.getstate())
    return out


def assert_same(before: dict, after: dict) -> None:
    assert before.keys() == after.keys(), set(before) ^ set(after)
    for key, a in before.items():
        b = after[key]
        if isinstance(a, tuple) and a and a[0] in ("tensor", "array"):
            same = torch.equal(a[1], b[1]) if a[0] == "tensor" else np.array_equal(a[1], b[1])
            assert same, key
        elif key == "rng":
            assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]
        else:
            assert a == b or (a != a and b != b), key  # NaN equals NaN here


@pytest.fixture(scope="module")
def worked() -> Session:
    """A session with masks, an undo stack, rewind points, history and a student."""
    torch.manual_seed(0)
    s = Session("digits", "mlp", device="cpu")
    s.prune(sparsity=0.5)
    s.train(epochs=1)
    s.students.distill(0.25, epochs=1)
    s.prune(sparsity=0.6)
    return s


STUDIES = {
    "sparsity sweep": lambda s: sparsity_sweep(s, (0.3, 0.9)),
    "fine-tuned sweep": lambda s: finetuned_sweep(s, (0.5, 0.9), epochs=1),
    "sensitivity": lambda s: sensitivity(s, [0.5], finetune_epochs=1,
                                         layers=[s.slot.prunable[0]]),
    "sweep (in process)": lambda s: sweep(s, {"sparsity": [0.5]}, workers=0),
}


@pytest.mark.parametrize("name", STUDIES)
def test_study_leaves_no_trace(worked, name):
    before = state(worked)
    STUDIES[name](worked)
    assert_same(before, state(worked))


def test_trial_restores_after_an_exception_and_a_stop(worked):
    before = state(worked)
    with pytest.raises(RuntimeError), worked.trial():
        worked.train(epochs=1)
        worked.select("student")
        worked.prune(sparsity=0.9)
        torch.rand(3)
        raise RuntimeError("study failed")
    assert_same(before, state(worked))
    stop = threading.Event()
    stop.set()
    with worked.trial():
        worked.train(epochs=1, stop=stop)  # stopped at once: still committed, then undone
        worked.students.train_alone(0.25, epochs=1)
    assert_same(before, state(worked))


def test_the_comparison_can_fail(worked):
    """The walk sees a change it was not told about (a mask entry, a new attribute)."""
    before = state(worked)
    name = worked.slot.prunable[0]
    worked.slot.masks[name][0, 0] = ~worked.slot.masks[name][0, 0]
    with pytest.raises(AssertionError):
        assert_same(before, state(worked))
    worked.slot.masks[name][0, 0] = ~worked.slot.masks[name][0, 0]
    worked.some_new_attribute = 1
    with pytest.raises(AssertionError):
        assert_same(before, state(worked))
    del worked.some_new_attribute


def _storages(value, out: dict, seen: set) -> None:
    """{storage pointer: bytes} of every tensor reachable from `value`."""
    if id(value) in seen:
        return
    seen.add(id(value))
    if isinstance(value, torch.Tensor):
        storage = value.untyped_storage()
        out[storage.data_ptr()] = storage.nbytes()
    elif isinstance(value, torch.nn.Module):
        _storages(value.state_dict(), out, seen)
    elif isinstance(value, dict):
        for v in value.values():
            _storages(v, out, seen)
    elif isinstance(value, (list, tuple, set)):
        for v in value:
            _storages(v, out, seen)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            _storages(getattr(value, f.name), out, seen)
    elif hasattr(value, "__dict__") and not callable(value):
        _storages(vars(value), out, seen)


def test_a_restore_point_costs_at_most_twice_the_state_and_keeps_aliasing(worked):
    """The point shares what the session never changes in place; it copies each model's
    live weights only (issue 27: the deep copies cost 11.7x the state bytes)."""
    with worked.lock:
        live: dict = {}
        for slot in worked.slots.values():
            _storages(vars(slot), live, set())
        _storages(worked.history, live, set())
        _storages(vars(worked.students.teacher_cache), live, set())
        held: dict = {}
        point = Checkpoint.take(worked)
        _storages(point, held, set())
    copied = sum(n for ptr, n in held.items() if ptr not in live)
    state = sum(t.untyped_storage().nbytes() for slot in worked.slots.values()
                for t in slot.model.state_dict().values())
    assert len(worked.slots) >= 2 and state > 0
    assert copied <= 2 * state, (copied, state)
    with worked.trial():
        worked.train(epochs=1)
        worked.prune(sparsity=0.9)
    for slot in worked.slots.values():  # the index still reads the base, not a copy
        for name in slot.prunable:
            assert slot.index.weights[name].data_ptr() == slot.base[name].data_ptr(), name
