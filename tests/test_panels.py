"""Each panel of the full app, headless: set values, click, assert on figures and status."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
import torch
from ui_util import headline, pruned_fraction, settle, status, trace

from explorer import Session
from explorer.ui import ExplorerApp


@pytest.fixture
def app(digits_app) -> ExplorerApp:
    return digits_app


def test_tab_figures_are_built_only_when_opened(app):
    """The page starts with one FigureWidget; Distill and Compare add theirs on demand,
    shown above the main figure only while their tab is open."""
    assert app.figures() == [app.fig]
    app.tabs.selected_index = 1
    assert len(app.distill.figures()) == 1
    assert app.distill.figure_box.layout.display == ""
    app.tabs.selected_index = 2
    assert len(app.compare.figures()) == 2
    assert app.distill.figure_box.layout.display == "none"
    assert all(f._config.get("responsive") for f in app.figures())
    assert all(f.layout.width is None for f in app.figures())  # they fit their column


def test_hidden_tabs_make_their_controls_on_first_open(app):
    """A page receives every widget model of the app when it loads: the Distill, Compare
    and Data & model tabs make their controls when first opened (issue 29), as the
    session is then, and disabled like the others while a job runs."""
    import threading

    panels = {1: app.distill, 2: app.compare, 3: app.model_panel}
    assert not any(p.built or p.box.children or p.controls() for p in panels.values())
    release = threading.Event()
    assert app.jobs.start("a slow study", lambda stop, ev: release.wait(60))
    try:
        app.tabs.selected_index = 3
        assert [p.built for p in panels.values()] == [False, False, True]
        assert app.model_panel.box.children and app.model_panel.controls()
        assert all(w.disabled for w in app.model_panel.controls())
    finally:
        release.set()
    settle(app)
    assert not any(w.disabled for w in app.model_panel.controls())
    app.tabs.selected_index = 1
    assert app.distill.built and app.distill.slot.value == app.session.selected
    assert app.distill.leave_out.options[1:]  # the session's classes, as adopt() lists them
    assert app.model_panel.model.value == "mlp" and app.model_panel.dataset.value == "digits"


def test_temperature_move_updates_probabilities_without_retraining(app):
    """The temperature slider re-softens stored logits: no training call at all."""
    app.tabs.selected_index = 1
    before = np.asarray(trace(app.distill.fig, "teacher").y).copy()
    with mock.patch.object(app.session.students, "distill") as distill, \
            mock.patch.object(app.session, "train") as train:
        app.distill.temperature.value = 12.0
    distill.assert_not_called()
    train.assert_not_called()
    after = np.asarray(trace(app.distill.fig, "teacher").y)
    assert after.max() < before.max()  # a higher T flattens the distribution
    assert after.sum() == pytest.approx(1.0, abs=1e-4)


def test_distill_job_adds_a_student_with_its_own_curves_and_results(app):
    """The student trains on its own curves, its status reports the student's accuracy,
    and the table shows teacher and student side by side."""
    app.tabs.selected_index = 1
    teacher_curve = len(trace(app.fig, "val accuracy").y)
    app.distill.epochs.value = 2
    assert app.distill.start("distill")
    assert app.c.curves.value == "student"  # the curves follow the job's model live
    settle(app)
    student = app.session.measure(slot="student", full=False).accuracy
    assert f"distilling done (distilled student): val accuracy {student:.1%}" in status(app)
    # then the model the page shows again, the teacher (issue 28: not the last job's)
    assert app.c.curves.value == "teacher"
    assert len(trace(app.fig, "val accuracy").y) == teacher_curve
    app.c.curves.value = "student"
    assert len(trace(app.fig, "val accuracy").y) == 2  # the student's own two epochs
    assert "distilled student" in app.distill.table.value and "teacher" in app.distill.table.value
    probs = np.asarray(trace(app.distill.fig, "student").y)
    assert probs.size == 10 and probs.sum() == pytest.approx(1.0, abs=1e-4)
    app.c.curves.value = "teacher"
    app.distill.slot.value = "student"  # pruning, headline and curves follow the student
    assert "distilled student" in headline(app) and app.c.curves.value == "student"
    app.c.slider.value = 0.5
    assert app.session.selected == "student" and app.snap.sparsity == pytest.approx(0.5, 1e-3)


def test_structured_toggle_prunes_whole_neurons(app):
    app.c.slider.value = 0.5
    app.c.structured.value = True
    params = dict(app.session.model.named_parameters())
    rows = params["layers.0.weight"].abs().sum(1)
    assert int((rows == 0).sum()) == 128  # half of the 256 neurons, whole rows
    assert app.c.norm.layout.display == ""  # L1/L2 shows only with structured on
    assert app.c.scope.disabled and app.c.mode.value == "sparsity"


def test_prune_and_finetune_marks_the_curves_and_says_what_came_back(app):
    app.c.slider.value = 0.9
    app.c.steps.value, app.c.finetune_epochs.value = 2, 2
    app.c.prune_finetune.click()
    settle(app)
    marks = trace(app.fig, "pruning")
    assert len(marks.x) == 2
    assert app.snap.sparsity == pytest.approx(0.9, abs=1e-3)
    assert app.c.slider.value == pytest.approx(0.9)
    assert "prune and fine-tune done (teacher)" in status(app)
    assert "recovered" in status(app) and "points" in status(app)


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
    assert "confirm" in status(app)
    assert app.model_panel.new_session() is True  # second click on the same button
    settle(app)
    assert app.session.data.task == "regression"
    assert app.distill.temperature.layout.display == "none"
    # Hiding the temperature hides nothing else (one Layout was shared by many controls).
    for kept in (app.c.slider, app.c.mode, app.distill.width, app.distill.alpha,
                 app.model_panel.dataset, app.model_panel.model):
        assert kept.layout.display != "none", kept.description
    assert "no temperature" in app.distill.note.value
    assert "validation MSE" in headline(app)
    assert len(trace(app.fig, "val accuracy").y) == 0
    assert pruned_fraction(app) == 0 and app.c.slider.value == 0


def test_reset_asks_before_discarding_pruning_and_jobs_and_undo_brings_them_back(app):
    """Reset: one click only asks (nothing changes), a second click on the same button
    goes back to the original model, bit for bit; one Undo brings back the model, its
    masks, the slider and the curves of before the reset (issue 28), and the Undo steps
    beneath it still work."""
    original = {k: v.clone() for k, v in app.session.slot.original.items()}
    app.c.slider.value = 0.5
    app.c.epochs.value = 1
    assert app.start_training()
    settle(app)
    trained = {k: v.clone() for k, v in app.session.slot.base.items()}
    masks = {k: v.clone() for k, v in app.session.slot.masks.items()}
    curves = [list(trace(app.fig, n).y) for n in ("train loss (step)", "val loss")]
    app.c.reset.click()  # first click: asks
    assert "click again to confirm" in status(app)
    assert app.c.reset.description == "Confirm: reset"
    assert app.session.slot.masks is not None and len(app.session.slot.undo_stack) == 1
    assert all(torch.equal(app.session.slot.base[k], trained[k]) for k in trained)
    app.c.reset.click()  # second click on the same button
    settle(app)
    assert "back to the original model" in status(app)
    assert app.c.reset.description == "Reset to original"
    state = app.session.model.state_dict()
    assert all(torch.equal(state[k], original[k]) for k in original)
    assert app.session.slot.masks is None and app.c.slider.value == 0
    assert [list(trace(app.fig, n).y) for n in ("train loss (step)", "val loss")] != curves
    app.c.undo.click()  # the reset, undone
    assert "undone (teacher)" in status(app), status(app)
    assert all(torch.equal(app.session.slot.base[k], trained[k]) for k in trained)
    assert all(torch.equal(app.session.slot.masks[k], masks[k]) for k in masks)
    assert app.c.slider.value == 0.5 and app.snap.sparsity == pytest.approx(0.5, abs=1e-3)
    assert [list(trace(app.fig, n).y) for n in ("train loss (step)", "val loss")] == curves
    app.c.undo.click()  # and the training before it
    assert all(torch.equal(app.session.slot.base[k], original[k]) for k in original)
    assert app.snap.sparsity == pytest.approx(0.5, abs=1e-3)
    app.c.reset_pruning.click()
    app.c.reset.click()  # nothing left to lose: no question
    assert "click again" not in status(app)


def test_no_two_widgets_share_a_layout(app):
    """Every widget of the app holds a Layout of its own: a shared one would make
    hiding one control (layout.display) hide every control holding it."""
    import ipywidgets as W

    for panel in (app.distill, app.compare, app.model_panel):
        panel.build()  # made on first open otherwise
    holders: dict[str, list[str]] = {}
    todo: list = [app]
    while todo:  # the page's whole widget tree
        widget = todo.pop()
        todo.extend(getattr(widget, "children", ()))
        if isinstance(getattr(widget, "layout", None), W.Layout):
            holders.setdefault(widget.layout.model_id, []).append(
                f"{type(widget).__name__} {getattr(widget, 'description', '')!r}")
    assert len(holders) > 50  # the walk reached the panels
    shared = {k: v for k, v in holders.items() if len(v) > 1}
    assert not shared, shared


def test_measure_fills_the_cards(app):
    app.c.slider.value = 0.9
    measured = app.cards.measure_now(latency=True)
    assert measured["bytes_sparse"] < measured["bytes_dense"]
    assert "FLOPs dense" in app.cards.size.value and "no speedup" in app.cards.size.value
    assert "kB" in app.cards.size.value and "KB" not in app.cards.size.value
    app.c.slider.value = 0.5  # stale numbers are dropped on the next change
    assert "FLOPs dense" not in app.cards.size.value


def test_talk_mode_and_dark_theme_from_environment(monkeypatch):
    monkeypatch.setenv("EXPLORER_TALK", "1")
    monkeypatch.setenv("EXPLORER_THEME", "dark")
    app = ExplorerApp(Session("digits", "mlp", device="cpu"))
    try:
        assert "cx-talk" in app._dom_classes and "cx-theme-dark" in app._dom_classes
        assert len(app.tabs.children) == 2  # the story: prune, then distil
        assert app.fig.layout.template.layout.paper_bgcolor is not None
        prune_tab = app.tabs.children[0]
        shown = {w for w in prune_tab.children} | {w for r in prune_tab.children
                                                   for w in getattr(r, "children", ())}
        assert app.c.slider in shown and app.c.mode not in shown  # only the story's controls
    finally:
        app.close()


def test_compare_pin_records_its_quantization(app):
    """A pin made under the bits control records and shows its setting and its
    Huffman-coded bytes; one made at 32 bits says fp32."""
    app.tabs.selected_index = 2
    assert app.apply_quant(4, "kmeans")
    row = app.compare.pin_now()
    assert row["quant"] == "kmeans 4-bit" and row["bytes_huffman"] > 0
    assert "kmeans 4-bit" in app.compare.table.value
    assert app.apply_quant(32, "kmeans")
    row = app.compare.pin_now()
    assert row["quant"] == "fp32" and row["bytes_huffman"] is None
