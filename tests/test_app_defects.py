"""One test per numbered defect of issue 15, each written to fail on the app before it.

Item 2 (the front end's trace deltas) and item 14 (one writer) have their own modules:
test_front_end_deltas.py and test_one_writer.py; items 10 and 11 (kernel shutdown on
close, nothing fetched from the internet) are checked against a live server in
test_browser_journeys.py and test_dashboard_server.py.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from ui_util import bar_counts, headline, pruned_fraction, settle, status, trace

from explorer import Session
from explorer import config as C
from explorer.engine.train import StepEvent
from explorer.ui import ExplorerApp
from explorer.ui import plots as P
from explorer.ui.panels import recovered
from explorer.ui.theme import css, get_theme


@pytest.fixture
def app(digits_app) -> ExplorerApp:
    return digits_app


def new_session(app: ExplorerApp, model: str, dataset: str) -> None:
    app.model_panel.model.value = model
    app.model_panel.dataset.value = dataset
    if not app.model_panel.new_session():  # asked to confirm: the second click
        assert app.model_panel.new_session()
    settle(app)


def test_1_every_zoo_model_can_be_switched_to_from_the_panel(app, monkeypatch):
    """New session shows each model (no 'value not found'); the next switch works too."""
    monkeypatch.setenv(C.EPOCH_SIZE_ENV, "64")
    app.c.slider.value = 0.3  # some work, so New session asks first
    for model, dataset in [("lenet5", "digits"), ("resnet-small", "digits"),
                           ("gpt-tiny", "pydoc-text"), ("lenet300", "mnist-5k"),
                           ("mlp", "digits")]:
        new_session(app, model, dataset)
        assert f"new session: {model} on {dataset}" in status(app), status(app)
        assert list(app.c.layer.options) == app.session.slot.prunable
        assert [r[2] for r in bar_counts(app)] == app.session.slot.prunable[:P.MAX_BARS]
        assert app.session.slot.config["model"] == model and pruned_fraction(app) == 0
        # this model's network: its first layer's inputs and a column per layer
        assert len(set(trace(app.fig, "neurons").x)) == 1 + len(app.display._picture[1].layers)
        assert not app.errors.errors


def test_3_status_reports_the_model_that_was_trained(app):
    """After a student job the status gives the student's accuracy, naming the student."""
    app.distill.epochs.value = 1
    app.distill.width.value = 0.05
    assert app.distill.start("alone")
    settle(app)
    alone = app.session.measure(slot="student_alone", full=False).accuracy
    teacher = app.session.measure(slot="teacher", full=False).accuracy
    assert alone != pytest.approx(teacher, abs=0.005)
    assert f"student alone done (student alone): val accuracy {alone:.1%}" in status(app)
    assert f"teacher {teacher:.1%}" in status(app)
    app.compare.open()
    app.compare.with_ft.value = True
    app.c.finetune_epochs.value, app.c.lr.value = 2, 0.002  # the sweep follows them
    assert app.compare.run_sweep()
    settle(app)
    assert "fine-tuned sweep done (teacher)" in status(app)
    assert "(2 epochs per level at lr 0.002, as Fine-tune settings)" in status(app)
    assert f"val accuracy {teacher:.1%}" not in status(app)


def test_4_undo_after_train_restores_masks_slider_and_curves(app):
    """Undo: the pruning in force before the job comes back with the slider and curves."""
    app.c.slider.value = 0.8
    bars, steps = bar_counts(app), len(trace(app.fig, "train loss (step)").x)
    epochs = len(trace(app.fig, "val loss").x)
    app.c.epochs.value = 1
    app.c.train.click()
    settle(app)
    assert len(trace(app.fig, "train loss (step)").x) > steps
    app.c.undo.click()
    assert "undone (teacher)" in status(app)
    assert app.snap.sparsity == pytest.approx(0.8, abs=1e-3)
    assert "Global sparsity: 80.0%" in headline(app) and app.c.slider.value == 0.8
    assert bar_counts(app) == bars
    assert len(trace(app.fig, "train loss (step)").x) == steps
    assert len(trace(app.fig, "val loss").x) == epochs


def test_5_students_and_studies_never_draw_on_the_teachers_curves(app):
    teacher = [list(trace(app.fig, name).x) for name in ("train loss (step)", "val loss")]
    app.distill.epochs.value = 1
    assert app.distill.start("distill")
    settle(app)
    assert app.c.curves.value == "teacher"  # the selected model's, once the job ends
    assert [list(trace(app.fig, n).x) for n in ("train loss (step)", "val loss")] == teacher
    app.compare.open()
    app.compare.with_ft.value = True
    app.c.finetune_epochs.value = 1
    assert app.compare.run_sweep()  # a study: fine-tunes at five levels
    settle(app)
    assert [list(trace(app.fig, n).x) for n in ("train loss (step)", "val loss")] == teacher
    accuracy = [v for v in trace(app.fig, "val accuracy").y if v is not None]
    assert min(accuracy) > 0.5  # no point of a study dragged the line down


def test_6_talk_mode_first_screen_is_the_app_with_large_controls():
    nb = json.loads((C_RESOURCES / "talk.ipynb").read_text())
    assert nb["cells"][0]["cell_type"] == "code" and "ExplorerApp" in "".join(
        nb["cells"][0]["source"])
    style = css(get_theme("light"))
    assert "--jp-widgets-font-size: 18px" in style  # the controls grow, not only the plots
    app = ExplorerApp(Session("digits", "mlp", device="cpu"), talk=True)
    try:
        assert app.fig.layout.showlegend is False  # legends are coloured title words
        assert app.fig.layout.font.size == get_theme("light").font_size + 5
    finally:
        app.close()


def test_7_labels_fit_and_figures_fit_their_box(app):
    buttons = [w for w in vars(app.c).values() if w.__class__.__name__ == "Button"]
    assert all(b.layout.width == "auto" and b.layout.flex == "0 0 auto" for b in buttons)
    app.tabs.selected_index = 1
    app.tabs.selected_index = 2
    assert all(f.layout.width is None and f._config.get("responsive") for f in app.figures())
    assert app.fig.data[P.KEPT].orientation == "h"  # names read across, never rotated
    assert app.fig.layout.yaxis.tickfont.size >= 10
    many = [f"encoder.layer.{i}.attention.self.query.weight" for i in range(40)]
    short = P.short_names(many)
    assert len(set(short)) == 40 and max(map(len, short)) <= P.LABEL_CHARS
    # an hf: model's wrapper prefix is dropped: its layers read as transformers names them
    assert P.short_names(["inner.classifier.1.weight", "inner.lm_head.weight"]) == \
        ["classifier.1", "lm_head"]


def test_8_controls_that_do_not_apply_say_why(app):
    assert app.c.norm.layout.display == "none"  # L1/L2 only with structured pruning
    app.c.mode.value = "std"
    assert app.c.scope.disabled and "per-layer rule" in app.c.why_not.value
    app.c.scope.value = "global"  # even if set, x std prunes per layer (no API words)
    app.c.slider.value = 1.0
    assert "error" not in status(app) and app.session.slot.prune_config.scope == "layer"
    app.c.mode.value = "threshold"
    app.c.slider.value = 0.05  # Prune and fine-tune from threshold mode: the sparsity it gives
    given = app.snap.sparsity
    app.c.steps.value, app.c.finetune_epochs.value = 1, 1
    assert app.start_prune_finetune()
    settle(app)
    assert app.snap.sparsity == pytest.approx(given, abs=1e-3) and "done" in status(app)


def test_8_regression_shows_no_temperature_and_no_probabilities():
    app = ExplorerApp(Session("toy-regression", "mlp", device="cpu"))
    try:
        app.tabs.selected_index = 1
        assert app.distill.fig is None and app.distill.temperature.layout.display == "none"
        assert app.distill.sweep.layout.display == "none"
        assert "no temperature" in app.distill.figure_box.children[0].value
        assert "val MSE" in app.fig.layout.annotations[P.T_CURVES].text
        assert not app.fig.layout.yaxis6.title.text  # no empty "accuracy" axis for MSE
    finally:
        app.close()


def test_9_default_prune_and_finetune_recovers(app):
    """From the default controls, 90% ends within 2 points of the dense model."""
    dense = app.snap.accuracy
    assert (app.c.steps.value, app.c.finetune_epochs.value) == (C.FINETUNE_STEPS,
                                                                C.FINETUNE_EPOCHS)
    app.c.slider.value = 0.9
    pruned = app.snap.accuracy
    assert app.start_prune_finetune()
    settle(app)
    assert app.snap.accuracy > dense - 0.02, (dense, pruned, app.snap.accuracy)
    assert recovered(app.metric(), dense, pruned, app.snap.accuracy) in status(app)


def test_12_progress_moves_within_an_epoch_and_perplexity_follows_pruning(app):
    jobs = app.jobs
    jobs._epochs, jobs._done_epochs = 1, 0
    jobs._on_progress(StepEvent(epoch=1, step=25, steps_per_epoch=100, loss=1.0,
                                accuracy=None))
    assert app.c.progress.value == 250  # a quarter of the only epoch
    lm = ExplorerApp(Session("pydoc-text", "gpt-tiny", device="cpu"))
    try:
        before = lm.snap.extra["perplexity"]
        lm.c.slider.value = 0.6
        after = lm.snap.extra["perplexity"]
        assert after != pytest.approx(before)
        assert f"{after:.2f}" in headline(lm) and f"perplexity {after:.2f}" in lm.sample.value
    finally:
        lm.close()


def test_13_small_things(app):
    assert app.fig.layout.yaxis6.tickformat == ".0%" and app.fig.layout.yaxis6.dtick == 0.25
    assert "(press Train)" not in app.fig.layout.annotations[P.T_CURVES].text  # has history
    assert app.c.stop.disabled and app.c.stop.button_style == ""  # not a bright orange
    app.tabs.selected_index = 1
    axis = app.distill.fig.layout.xaxis2
    assert list(axis.tickvals) == [1, 2, 4, 8, 16]
    assert "press Sweep T" in app.distill.fig.layout.annotations[1].text
    app.tabs.selected_index = 2
    assert "measured the teacher" in status(app)  # opening Compare says what it did
    assert app.compare.fig.layout.xaxis2.range[0] < 0 and app.compare.fig.data[3].cliponaxis \
        is False
    colours = {app.compare.fig.data[4 + i].line.color for i in range(3)}
    assert len(colours) == 3
    assert "[" not in headline(app)  # no internal slot names


C_RESOURCES = __import__("pathlib").Path(__file__).resolve().parents[1] / "explorer" / \
    "resources"


def test_colours_are_told_apart_by_colour_blind_viewers():
    """Kept vs pruned stay distinct under protanopia, deuteranopia and tritanopia."""
    for name in ("light", "dark"):
        theme = get_theme(name)
        for kind in ("protan", "deutan", "tritan"):
            a, b = (simulate(hex_rgb(c), kind) for c in (theme.kept, theme.pruned))
            assert np.abs(a - b).sum() > 0.45, (name, kind, a, b)


def hex_rgb(colour: str) -> np.ndarray:
    return np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)], dtype=float) / 255


# Machado, Oliveira & Fernandes 2009, severity 1.0 (linear RGB).
MACHADO = {
    "protan": [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216],
               [-0.003882, -0.048116, 1.051998]],
    "deutan": [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
               [-0.011820, 0.042940, 0.968881]],
    "tritan": [[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602],
               [0.004733, 0.691367, 0.303900]],
}


def simulate(rgb: np.ndarray, kind: str) -> np.ndarray:
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    return np.clip(np.asarray(MACHADO[kind]) @ linear, 0, 1)
