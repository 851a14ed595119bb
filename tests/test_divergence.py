"""One divergence rule and atomic jobs: a run that blows up (non-finite loss or weight) or
collapses to chance stops, and the session comes back exactly as it was before the job;
an exception inside a job does the same; Stop keeps what was trained (one Undo away);
a second job, prune, undo or reset from another thread during a job is refused."""

from __future__ import annotations

import html
import math
import threading

import numpy as np
import pytest
import torch

from explorer import Session
from explorer.config import TrainConfig
from explorer.data.datasets import Split
from explorer.engine.train import DIVERGED, EpochEvent, StepEvent, StopEvent, train_steps
from explorer.ui import ExplorerApp

DIVERGING = dict(lr=5.0, optimizer="sgd")  # lr 50 is refused (LR_MAX = 10); 5 blows up


def clone(state):
    return {k: v.detach().clone() for k, v in state.items()}


def fingerprint(s: Session) -> dict:
    """What a failed job must leave exactly as it was."""
    return {"model": clone(s.model.state_dict()), "base": clone(s.slot.base),
            "masks": None if s.slot.masks is None else clone(s.slot.masks),
            "undo": len(s.slot.undo_stack), "history": [dict(h) for h in s.history],
            "steps": s.jobs.total_steps, "epochs": s.slot.epochs_trained,
            "rewind": sorted(s.slot.rewind_states), "config": s.slot.prune_config}


def assert_unchanged(before: dict, after: dict) -> None:
    for key in ("model", "base", "masks"):
        a, b = before[key], after[key]
        assert (a is None) == (b is None), key
        if a is not None:
            assert all(torch.equal(a[k], b[k]) for k in a), key
    for key in ("undo", "history", "steps", "epochs", "rewind", "config"):
        assert before[key] == after[key], key


def test_divergence_puts_back_the_state_before_the_job():
    """The rule everywhere: never keep the last finite but ruined weights."""
    torch.set_num_threads(2)
    s = Session("digits", "mlp", device="cpu")
    s.prune(sparsity=0.5)
    before = fingerprint(s)
    events: list = []
    s.train(epochs=2, on_event=events.append, **DIVERGING)
    stop = events[-1]
    assert isinstance(stop, StopEvent) and stop.reason.startswith(DIVERGED), stop
    assert all(math.isfinite(e.loss) for e in events if isinstance(e, StepEvent))
    assert_unchanged(before, fingerprint(s))


def test_collapse_to_chance_without_nan_is_divergence():
    """A classifier that falls to chance (no NaN anywhere) stops and is undone."""
    torch.manual_seed(0)
    x = torch.randn(200, 8)
    y = (x[:, 0] > 0).long()
    model = torch.nn.Sequential(torch.nn.Linear(8, 2))
    with torch.no_grad():  # a model that already separates the classes
        model[0].weight.zero_()
        model[0].weight[1, 0], model[0].weight[0, 0] = 5.0, -5.0
        model[0].bias.zero_()
    split = Split(x, y)

    def flip(out, x, y, index):  # a loss that rewards the wrong class: finite, ruinous
        return -torch.nn.functional.cross_entropy(out, y).clamp(max=5.0)

    events = list(train_steps(model, split, split, "classification",
                              TrainConfig(epochs=10, lr=10.0, optimizer="sgd"),
                              loss_fn=flip, start_accuracy=1.0))
    assert isinstance(events[-1], StopEvent) and "chance" in events[-1].reason, events[-1]
    epochs = [e for e in events if isinstance(e, EpochEvent)]
    assert len(epochs) < 10 and all(e.val_accuracy > 0.75 for e in epochs)


def test_a_weight_that_overflows_stops_the_run():
    model = torch.nn.Linear(4, 2)
    model.weight.register_hook(lambda g: g * math.inf)  # finite loss, infinite step
    data = Split(torch.randn(32, 4), torch.arange(32) % 2)
    events = list(train_steps(model, data, data, "classification",
                              TrainConfig(epochs=1, lr=0.1, optimizer="sgd")))
    assert isinstance(events[-1], StopEvent) and "a weight became" in events[-1].reason


def test_an_exception_inside_a_job_leaves_no_trace():
    s = Session("digits", "mlp", device="cpu")
    s.prune(sparsity=0.3)
    before = fingerprint(s)

    def boom(event):
        if isinstance(event, StepEvent) and event.step == 7:
            raise RuntimeError("callback failed")

    with pytest.raises(RuntimeError, match="callback failed"):
        s.train(epochs=2, on_event=boom)
    assert_unchanged(before, fingerprint(s))


def test_stop_keeps_what_was_trained_one_undo_away():
    s = Session("digits", "mlp", device="cpu")
    before = fingerprint(s)
    stop = threading.Event()

    def stop_at_5(event):
        if isinstance(event, StepEvent) and event.step == 5:
            stop.set()

    s.train(epochs=3, stop=stop, on_event=stop_at_5)
    assert len(s.slot.undo_stack) == 1
    assert not all(torch.equal(s.slot.base[k], before["base"][k]) for k in before["base"])
    s.undo()
    after = fingerprint(s)
    after["steps"] = before["steps"]  # the curves' step axis keeps counting after Undo
    assert_unchanged(before, after)


def test_one_job_at_a_time_in_the_api():
    s = Session("digits", "mlp", device="cpu")
    started, release = threading.Event(), threading.Event()

    def hold(event):
        started.set()
        release.wait(60)

    worker = threading.Thread(target=lambda: s.train(epochs=1, on_event=hold))
    worker.start()
    try:
        assert started.wait(60)
        for call in (lambda: s.prune(sparsity=0.9), s.undo, s.reset, s.reset_pruning,
                     lambda: s.train(epochs=1)):
            with pytest.raises(ValueError, match="a job is running"):
                call()
        s.snapshot()  # reading is fine while a job runs
    finally:
        release.set()
        worker.join(120)
    assert s.slot.masks is None and len(s.slot.undo_stack) == 1


def test_iterative_pruning_stops_when_a_fine_tune_diverges():
    s = Session("digits", "mlp", device="cpu")
    s.prune_iteratively(0.5, steps=3, finetune_epochs=1, **DIVERGING)
    assert len([h for h in s.history if h["kind"] == "prune_step"]) == 1
    assert all(torch.isfinite(v).all() for v in s.model.state_dict().values())


def test_app_says_so_and_the_curves_show_no_failed_epoch():
    app = ExplorerApp(Session("digits", "mlp", device="cpu"))
    app.model_panel.opt.value = "sgd"
    app.c.lr.value, app.c.epochs.value = 5.0, 2
    history = len(app.session.history)
    assert app.start_training()
    assert app.jobs.wait(120)
    status = html.unescape(app.c.status.value)
    assert "diverged" in status and "from before the job are back" in status, status
    (curve,) = [t for t in app.fig.data if t.name == "train loss (step)"]
    y = np.asarray(curve.y, dtype=float)
    assert len(y) >= 5 and np.isfinite(y).all()  # the steps before the blow-up stay drawn
    assert len(app.session.history) == history  # no epoch finished, none invented
    assert all(torch.isfinite(v).all() for v in app.session.model.state_dict().values())
    assert not app.c.train.disabled and app.c.stop.disabled  # ready for the next try
