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
from explorer.session.trial import _SESSION_SKIP
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
        if key not in _SESSION_SKIP:
            walk(value, key, out)
    out["slots.keys"] = list(session.slots)
    for name, slot in session.slots.items():
        walk({k: v for k, v in vars(slot).items() if k not in SKIP_SLOT}, name, out)
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
    s.distill(0.25, epochs=1)
    s.prune(sparsity=0.6)
    return s


STUDIES = {
    "sparsity sweep": lambda s: sparsity_sweep(s, (0.3, 0.9)),
    "fine-tuned sweep": lambda s: finetuned_sweep(s, (0.5, 0.9), epochs=1),
    "sensitivity": lambda s: sensitivity(s, [0.5], finetune_epochs=1,
                                         layers=[s.prunable[0]]),
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
        worked.train_student_alone(0.25, epochs=1)
    assert_same(before, state(worked))


def test_the_comparison_can_fail(worked):
    """The walk sees a change it was not told about (a mask entry, a new attribute)."""
    before = state(worked)
    name = worked.prunable[0]
    worked.masks[name][0, 0] = ~worked.masks[name][0, 0]
    with pytest.raises(AssertionError):
        assert_same(before, state(worked))
    worked.masks[name][0, 0] = ~worked.masks[name][0, 0]
    worked.some_new_attribute = 1
    with pytest.raises(AssertionError):
        assert_same(before, state(worked))
    del worked.some_new_attribute
