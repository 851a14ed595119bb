"""One training loop: images, regression, students and the language model all train
through engine.train.train_steps (via SessionCore.run_training, session.session_jobs), and
the one divergence rule holds on each: a blow-up stops the job and nothing of it stays."""

from __future__ import annotations

import pytest
import torch

from explorer import Session
from explorer.engine import train as train_module
from explorer.engine.train import DIVERGED, StopEvent
from explorer.session import session_jobs

TINY_LM = dict(layers=1, heads=2, width=0.25, context=16, max_train_windows=64)
BLOW_UP = dict(lr=10.0, optimizer="sgd", batch_size=8)


@pytest.fixture
def calls(monkeypatch):
    """Count the runs of the one loop the session's jobs use."""
    seen: list[str] = []
    real = train_module.train_steps

    def counting(model, train, val, task, config, **kwargs):
        seen.append(task)
        return real(model, train, val, task, config, **kwargs)

    monkeypatch.setattr(session_jobs, "train_steps", counting)
    return seen


def sessions() -> dict:
    torch.manual_seed(0)
    return {"classification": Session("digits", "mlp", device="cpu"),
            "regression": Session("toy-regression", "mlp", device="cpu"),
            "language model": Session("pydoc-text", "gpt-tiny", device="cpu", **TINY_LM)}


@pytest.mark.parametrize("kind", ["classification", "regression", "language model"])
def test_teacher_and_student_train_through_the_one_loop(calls, kind):
    s = sessions()[kind]
    s.train(steps=3)
    s.students.train_alone(epochs=1, steps=2)
    s.students.distill(epochs=1, steps=2)
    assert len(calls) == 3 and s.slots.names == ("teacher", "student", "student_alone")


@pytest.mark.parametrize("kind", ["classification", "regression", "language model"])
def test_the_divergence_rule_holds_for_every_task(kind):
    s = sessions()[kind]
    before = {k: v.clone() for k, v in s.model.state_dict().items()}
    history = list(s.history)
    events: list = []
    s.train(epochs=3, on_event=events.append, **BLOW_UP)
    stops = [e for e in events if isinstance(e, StopEvent)]
    assert stops and stops[-1].reason.startswith(DIVERGED), events[-3:]
    assert all(torch.equal(before[k], v) for k, v in s.model.state_dict().items())
    assert s.history == history and not s.slot.undo_stack
    events.clear()
    hot = {} if kind == "regression" else {"temperature": 20.0}
    s.students.distill(epochs=3, on_event=events.append, **{**BLOW_UP, "optimizer": "momentum"},
              **hot)  # a student that blows up
    assert [e for e in events if isinstance(e, StopEvent)][-1].reason.startswith(DIVERGED)
    assert s.slots.names == ("teacher",) and s.history == history
