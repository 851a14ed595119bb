"""A learning rate that blows the loss up: the job stops at the first bad step, the last
finite weights come back, the status line says so, the curves keep what came before."""

from __future__ import annotations

import html
import math

import numpy as np
import torch

from explorer import Session
from explorer.config import TrainConfig
from explorer.engine.train import DIVERGED, StepEvent, StopEvent, train_steps
from explorer.ui import ExplorerApp

DIVERGING = dict(lr=5.0, optimizer="sgd")  # lr 50 is refused (LR_MAX = 10); 5 blows up


def clone(state):
    return {k: v.detach().clone() for k, v in state.items()}


def test_api_rolls_back_to_the_weights_before_the_bad_step():
    torch.set_num_threads(2)
    s = Session("digits", "mlp", device="cpu")
    before = clone(s.base)
    after_step = {0: clone(s.model.state_dict())}
    events = []

    def record(event):
        events.append(event)
        if isinstance(event, StepEvent):
            after_step[event.step] = clone(s.model.state_dict())

    s.train(epochs=2, on_event=record, **DIVERGING)
    stop = events[-1]
    assert isinstance(stop, StopEvent) and stop.reason.startswith(DIVERGED), stop
    last = max(after_step)  # the last step whose loss was finite was computed on these:
    assert f"after step {last - 1}" in stop.reason  # the bad loss came from step `last`'s
    for name, tensor in s.base.items():  # weights; the ones before it are restored
        assert torch.equal(tensor, after_step[last - 1][name]), name
        assert torch.isfinite(tensor).all()
    assert all(math.isfinite(e.loss) for e in events if isinstance(e, StepEvent))
    assert [torch.equal(a, before[k]) for k, a in s.undo_stack[-1].items()] == \
        [True] * len(before)  # undo still returns to the base before the job


def test_a_weight_that_overflows_in_a_step_is_rolled_back_at_once():
    model = torch.nn.Linear(4, 2)
    start = clone(model.state_dict())
    model.weight.register_hook(lambda g: g * math.inf)  # finite loss, infinite step
    from explorer.data.datasets import Split

    data = Split(torch.randn(32, 4), torch.arange(32) % 2)
    events = list(train_steps(model, data, data, "classification",
                              TrainConfig(epochs=1, lr=0.1, optimizer="sgd")))
    assert isinstance(events[-1], StopEvent) and "a weight became" in events[-1].reason
    assert all(torch.equal(model.state_dict()[k], start[k]) for k in start)


def test_iterative_pruning_stops_when_a_fine_tune_diverges():
    s = Session("digits", "mlp", device="cpu")
    s.prune_iteratively(0.5, steps=3, finetune_epochs=1, **DIVERGING)
    assert len([h for h in s.history if h["kind"] == "prune_step"]) == 1
    assert all(torch.isfinite(v).all() for v in s.model.state_dict().values())


def test_app_says_so_and_keeps_the_curves():
    app = ExplorerApp(Session("digits", "mlp", device="cpu"))
    app.model_panel.opt.value = "sgd"
    app.c.lr.value, app.c.epochs.value = 5.0, 2
    history = len(app.session.history)
    assert app.start_training()
    assert app.jobs.wait(120)
    status = html.unescape(app.c.status.value)
    assert "diverged" in status and "restored the last finite weights" in status, status
    (curve,) = [t for t in app.fig.data if t.name == "train loss (step)"]
    y = np.asarray(curve.y, dtype=float)
    assert len(y) >= 5 and np.isfinite(y).all()  # the steps before the blow-up stay drawn
    assert len(app.session.history) == history  # no epoch finished, none invented
    assert all(torch.isfinite(v).all() for v in app.session.model.state_dict().values())
    assert not app.c.train.disabled and app.c.stop.disabled  # ready for the next try
