"""A job rolls back the slot it trained, not whichever slot is selected when it fails.

select() from another thread is refused while a job runs, but the job's own thread may
select (the app's job callbacks run there, nested jobs do): a failure after that must
still put back the model the job started on and leave the newly selected one alone.
"""

from __future__ import annotations

import pytest
import torch

from explorer import Session
from explorer.engine.train import StepEvent


def weights(session: Session, slot: str) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in session.slots.model(slot).state_dict().items()}


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def two_models() -> Session:
    torch.manual_seed(0)
    s = Session("digits", "mlp", device="cpu")
    s.students.distill(0.25, epochs=1)
    s.select("teacher")
    s.prune(sparsity=0.5)
    return s


@pytest.mark.parametrize("how", ["exception", "divergence"])
def test_failing_job_restores_the_slot_it_started_on(two_models, how, monkeypatch):
    s = two_models
    s.select("teacher")
    teacher, student = weights(s, "teacher"), weights(s, "student")
    teacher_undo, student_undo = len(s.slots["teacher"].undo_stack), \
        len(s.slots["student"].undo_stack)
    steps, history = s.jobs.total_steps, list(s.history)

    def on_event(event) -> None:
        if isinstance(event, StepEvent) and event.step == 2:
            s.select("student")  # the job's thread: allowed
            if how == "exception":
                raise RuntimeError("job failed")

    if how == "divergence":  # the loss turns NaN after the switch: the job rolls back
        hook = s.slots["teacher"].model.register_forward_hook(
            lambda m, i, out: out * float("nan") if s.selected == "student" else out)
        try:
            s.train(steps=4, on_event=on_event)
        finally:
            hook.remove()
    else:
        with pytest.raises(RuntimeError, match="job failed"):
            s.train(steps=4, on_event=on_event)
    assert same(weights(s, "teacher"), teacher), "the trained slot was not rolled back"
    assert same(weights(s, "student"), student), "the selected slot was overwritten"
    assert len(s.slots["teacher"].undo_stack) == teacher_undo
    assert len(s.slots["student"].undo_stack) == student_undo
    assert s.jobs.total_steps == steps and s.history == history
    assert s.selected == "student"  # the user's choice stays
