"""Each panel of the full app, headless: set values, click, assert on figures and status."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest

from explorer import Session
from explorer.ui import ExplorerApp


@pytest.fixture
def app(digits_app) -> ExplorerApp:
    return digits_app


def trace(fig, name: str):
    (found,) = [t for t in fig.data if t.name == name]
    return found


def test_tab_figures_are_built_only_when_opened(app):
    """The page starts with one FigureWidget; Distill and Compare add theirs on demand."""
    assert app.figures() == [app.fig]
    app.tabs.selected_index = 1
    assert len(app.distill.figures()) == 1
    app.tabs.selected_index = 2
    assert len(app.compare.figures()) == 2


def test_temperature_move_updates_probabilities_without_retraining(app):
    """The temperature slider re-softens stored logits: no training call at all."""
    app.tabs.selected_index = 1
    before = np.asarray(trace(app.distill.fig, "teacher").y).copy()
    with mock.patch.object(app.session, "distill") as distill, \
            mock.patch.object(app.session, "train") as train:
        app.distill.temperature.value = 12.0
    distill.assert_not_called()
    train.assert_not_called()
    after = np.asarray(trace(app.distill.fig, "teacher").y)
    assert after.max() < before.max()  # a higher T flattens the distribution
    assert after.sum() == pytest.approx(1.0, abs=1e-4)


def test_distill_job_adds_a_student_and_its_probabilities(app):
    app.tabs.selected_index = 1
    app.distill.epochs.value = 2
    assert app.distill.start("distill")
    assert app.jobs.wait(120)
    assert "student" in [v for _, v in app.distill.slot.options]
    student = np.asarray(trace(app.distill.fig, "student").y)
    assert student.size == 10 and student.sum() == pytest.approx(1.0, abs=1e-4)
    assert "KL" in app.distill.fig.layout.annotations[0].text
    app.distill.slot.value = "student"  # pruning and the summary now follow the student
    assert "[student]" in app.c.summary.value
    app.c.slider.value = 0.5
    assert app.session.selected == "student" and app.snap.sparsity == pytest.approx(0.5, 1e-3)


def test_structured_toggle_prunes_whole_neurons(app):
    app.c.slider.value = 0.5
    app.c.structured.value = True
    params = dict(app.session.model.named_parameters())
    rows = params["layers.0.weight"].abs().sum(1)
    assert int((rows == 0).sum()) == 128  # half of the 256 neurons, whole rows
    app.c.mode.value = "threshold"  # structured pruning takes a sparsity: refused clearly
    assert "error" in app.c.status.value and app.session.prune_config.structured


def test_prune_and_finetune_marks_the_curves(app):
    app.c.slider.value = 0.9
    app.c.steps.value, app.c.finetune_epochs.value = 2, 1
    app.c.prune_finetune.click()
    assert app.jobs.wait(120)
    marks = trace(app.fig, "pruning")
    assert len(marks.x) == 2
    assert app.snap.sparsity == pytest.approx(0.9, abs=1e-3)
    assert "done" in app.c.status.value


def test_compare_pins_runs_and_sweeps(app):
    app.tabs.selected_index = 2
    app.c.slider.value = 0.7
    row = app.compare.pin_now()
    assert row["sparsity"] == pytest.approx(0.7, abs=1e-3) and row["latency_ms_b1"] > 0
    assert "run 1" in app.compare.table.value
    assert app.compare.run_sweep()
    curve = trace(app.compare.fig, "one-shot sweep")
    assert len(curve.x) >= 10 and curve.y[0] > curve.y[-1]
    assert app.snap.sparsity == pytest.approx(0.7, abs=1e-3)  # the sweep restored it
    confusion = np.asarray(app.compare.fig_quality.data[0].z)
    assert confusion.shape == (10, 10) and confusion.sum() == len(app.session.data.val)


def test_new_session_asks_before_discarding_work(app):
    app.c.slider.value = 0.5
    app.model_panel.dataset.value = "toy-regression"
    assert app.model_panel.new_session() is False  # first click: asks
    assert "confirm" in app.c.status.value
    assert app.model_panel.new_session() is True
    assert app.jobs.wait(120)
    assert app.session.task == "regression"
    assert app.distill.temperature.disabled and "no temperature" in app.distill.note.value
    assert "val MSE" in app.c.summary.value
    assert len(trace(app.fig, "val accuracy").y) == 0


def test_measure_fills_the_cards(app):
    app.c.slider.value = 0.9
    measured = app.cards.measure_now(latency=True)
    assert measured["bytes_sparse"] < measured["bytes_dense"]
    assert "FLOPs dense" in app.cards.size.value and "no speedup" in app.cards.size.value
    app.c.slider.value = 0.5  # stale numbers are dropped on the next change
    assert "FLOPs dense" not in app.cards.size.value


def test_talk_mode_and_dark_theme_from_environment(monkeypatch):
    monkeypatch.setenv("EXPLORER_TALK", "1")
    monkeypatch.setenv("EXPLORER_THEME", "dark")
    app = ExplorerApp(Session("digits", "mlp", device="cpu"))
    assert "cx-talk" in app._dom_classes and "cx-theme-dark" in app._dom_classes
    assert len(app.tabs.children) == 2  # the story: prune, then distil
    assert app.fig.layout.template.layout.paper_bgcolor is not None
