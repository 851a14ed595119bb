"""A thousand random widget events while jobs start and stop, then the invariants.

No exception escapes (button callbacks, observers, the pump), no two jobs overlap, the
masks match the last pruning setting, pruned weights are exactly zero, and Reset gives
back the original weights bit for bit.
"""

from __future__ import annotations

import html
import random
import re
import threading
import time

import pytest
import torch
from ipywidgets.widgets import widget as ipy_widget

from explorer import Session
from explorer.config import PruneConfig
from explorer.engine.prune import MagnitudeIndex, compute_masks
from explorer.engine.structure import within_committed
from explorer.ui import ExplorerApp
from explorer.ui.controls import SLIDER_RANGES

EVENTS = 1000
SEED = 20240611
# The refusals a random user is expected to meet; any other "error:" is a failure.
EXPECTED = re.compile(r"per-layer rule|structured pruning takes sparsity|nothing to undo|"
                      r"needs a sparsity above 0|rewind must be")


class Overlap:
    """Wraps the app's job work: counts jobs alive at once."""

    def __init__(self) -> None:
        self.lock, self.alive, self.most, self.jobs = threading.Lock(), 0, 0, 0

    def wrap(self, work):
        def counted(stop, on_event):
            with self.lock:
                self.alive += 1
                self.jobs += 1
                self.most = max(self.most, self.alive)
            try:
                return work(stop, on_event)
            finally:
                with self.lock:
                    self.alive -= 1
        return counted


@pytest.fixture
def surfaced(monkeypatch):
    """Exceptions from button callbacks, recorded instead of logged and lost."""
    caught: list[BaseException] = []

    def call(self, *args, **kwargs):
        for callback in self.callbacks:
            try:
                callback(*args, **kwargs)
            except Exception as err:  # noqa: BLE001 - recorded, asserted empty
                caught.append(err)

    monkeypatch.setattr(ipy_widget.CallbackDispatcher, "__call__", call)
    return caught


def expected_masks(session: Session, kwargs: dict) -> dict[str, torch.Tensor]:
    """From the base, then the re-pruning rule after a job (docs/api.md: re-pruning)."""
    config = PruneConfig(**kwargs)
    index = MagnitudeIndex({n: session.slot.base[n] for n in session.slot.prunable})
    result = compute_masks(index, config)
    return within_committed(result, session.slot.committed, config, index,
                            session.slot.base).masks


def check_masks(app: ExplorerApp) -> None:
    """Unstructured setting in force: masks equal a fresh computation from the base (and
    the last job's masks, by the re-pruning rule)."""
    kwargs = app.prune_kwargs()
    if kwargs.get("structured") or app.session.slot.masks is None:
        return
    want = expected_masks(app.session, kwargs)
    assert all(torch.equal(app.session.slot.masks[n], want[n]) for n in want), kwargs


def check_zeros(session: Session) -> None:
    params = dict(session.model.named_parameters())
    for name, mask in (session.slot.masks or {}).items():
        assert not params[name][~mask].any(), name


def test_thousand_random_events(surfaced):
    rng = random.Random(SEED)
    session = Session("digits", "mlp", device="cpu")
    original = {k: v.clone() for k, v in session.slot.original.items()}
    app = ExplorerApp(session)
    app.distill.open()
    c = app.c
    overlap = Overlap()
    start_job = app.jobs.start
    app.jobs.start = lambda name, work, *a, **k: start_job(name, overlap.wrap(work), *a, **k)
    statuses: list[str] = []
    c.status.observe(lambda ch: statuses.append(html.unescape(ch["new"])), names="value")
    pump_errors: list[BaseException] = []
    on_pump_error = app.jobs._on_pump_error
    app.jobs._on_pump_error = lambda err: (pump_errors.append(err), on_pump_error(err))
    c.epochs.value, c.finetune_epochs.value, c.steps.value = 1, 1, 2
    app.model_panel.batch.value = 512  # a job is a couple of optimizer steps

    def slider():
        lo, hi, step, _ = SLIDER_RANGES[c.mode.value]
        c.slider.value = round(rng.uniform(lo, hi) / step) * step

    actions = [
        (30, slider),
        (4, lambda: setattr(c.mode, "value", rng.choice(["sparsity", "threshold", "std"]))),
        (4, lambda: setattr(c.scope, "value", rng.choice(["layer", "global"]))),
        (4, lambda: setattr(c.structured, "value", not c.structured.value)),
        (2, lambda: setattr(c.norm, "value", rng.choice(["l1", "l2"]))),
        (4, c.prune_once.click), (3, c.reset_pruning.click), (3, c.undo.click),
        (2, c.reset.click), (6, c.train.click), (5, c.stop.click),
        (2, c.prune_finetune.click),
        (6, lambda: setattr(app.distill.temperature, "value", rng.choice(range(2, 41)) / 2)),
        (6, lambda: time.sleep(rng.uniform(0, 0.02))),  # let jobs progress and finish
    ]
    weights = [w for w, _ in actions]
    raised: list[BaseException] = []
    for _ in range(EVENTS):
        _, act = rng.choices(actions, weights)[0]
        try:
            act()
        except Exception as err:  # noqa: BLE001 - observers raise into the setter
            raised.append(err)
        if act is slider and not app.jobs.busy and "error:" not in statuses[-1]:
            check_masks(app)
    assert app.jobs.wait(120)
    assert not raised and not surfaced and not pump_errors, (raised, surfaced, pump_errors)
    unexpected = [s for s in statuses if "error:" in s and not EXPECTED.search(s)]
    assert not unexpected, unexpected[:5]
    assert overlap.jobs >= 10 and overlap.most == 1, (overlap.jobs, overlap.most)
    # The last pruning setting is what the masks show, and pruned weights are zero.
    check_zeros(app.session)
    c.structured.value, c.scope.value, c.mode.value = False, "layer", "sparsity"
    c.slider.value = 0.37
    assert "error:" not in statuses[-1], statuses[-1]
    check_masks(app)
    check_zeros(app.session)
    app.actions.confirm_reset.disarm()
    c.reset.click()  # asks (the masks would be lost)
    assert app.session.slot.masks is not None and "click again to confirm" in statuses[-1]
    c.reset.click()
    state = app.session.model.state_dict()
    assert all(torch.equal(state[k], original[k]) for k in original)
    assert app.session.slot.masks is None  # and the reset is one Undo away (issue 28)
    assert [e.history is not None for e in app.session.slot.undo_stack][-1:] == [True]
