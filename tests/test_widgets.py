"""The app without a browser: set values, click buttons, assert on figures and status."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest

from explorer.ui import ExplorerApp


@pytest.fixture
def app(digits_app) -> ExplorerApp:
    return digits_app


def trace(app: ExplorerApp, name: str):
    (found,) = [t for t in app.fig.data if t.name == name]
    return found


def pruned_fraction(app: ExplorerApp) -> float:
    kept = np.asarray(trace(app, "kept").y, dtype=float).sum()
    pruned = np.asarray(trace(app, "pruned").y, dtype=float).sum()
    return pruned / (kept + pruned)


def test_slider_changes_the_sparsity_figure(app):
    """Moving the slider prunes and the bars show it."""
    assert pruned_fraction(app) == 0
    app.c.slider.value = 0.9
    assert pruned_fraction(app) == pytest.approx(0.9, abs=1e-3)
    assert "90.0%" in app.c.summary.value
    app.c.slider.value = 0.0
    assert pruned_fraction(app) == 0


def test_histogram_shows_survivors_ghost_and_threshold(app):
    """The histogram keeps the dense ghost, drops pruned weights, draws the cut."""
    ghost_before = np.asarray(trace(app, "dense original").y).copy()
    app.c.slider.value = 0.5
    kept = np.asarray(trace(app, "kept weights").y)
    assert np.array_equal(np.asarray(trace(app, "dense original").y), ghost_before)
    assert kept.sum() == pytest.approx(ghost_before.sum() * 0.5, rel=0.01)
    cut = np.asarray(trace(app, "threshold").x, dtype=float)
    assert np.nanmax(cut) > 0
    with mock.patch.object(app.session, "prune") as prune:
        app.c.layer.value = app.session.prunable[1]  # view tier: replot, no recompute
        app.c.log_y.value = True
    prune.assert_not_called()
    assert app.fig.layout.annotations[1].text.startswith(f"Weights of {app.session.prunable[1]}")
    assert app.fig.layout.yaxis2.type == "log"


def test_mode_and_scope_switch(app):
    app.c.scope.value = "global"
    app.c.slider.value = 0.8
    assert app.session.prune_config.scope == "global"
    app.c.mode.value = "threshold"
    assert app.c.slider.value == 0.0 and app.session.prune_config.mode == "threshold"
    app.c.slider.value = 0.05
    assert app.session.prune_config.threshold == pytest.approx(0.05)


def test_one_message_per_figure_per_slider_move(app):
    """A slider move sends exactly one update message for the main figure (batched)."""
    figures = [app.fig]
    patches = []
    for fig in figures:
        for method in ("_send_update_msg", "_send_restyle_msg", "_send_relayout_msg"):
            patcher = mock.patch.object(fig, method)
            patches.append((fig, method, patcher.start()))
    try:
        app.c.slider.value = 0.42
    finally:
        mock.patch.stopall()
    for fig in figures:
        calls = {m: p.call_count for f, m, p in patches if f is fig}
        assert calls == {"_send_update_msg": 1, "_send_restyle_msg": 0, "_send_relayout_msg": 0}, (
            calls
        )


def test_train_runs_a_job_that_grows_the_curves(app):
    """Train runs in a worker thread, finishes, and the curves grow."""
    app.c.epochs.value = 2
    epochs_before = len(trace(app, "val accuracy").y)  # the shipped model's own history
    assert len(trace(app, "train loss (step)").x) == 0
    assert app.start_training()
    assert app.jobs.wait(120)
    assert len(trace(app, "train loss (step)").x) > 10
    assert len(trace(app, "val accuracy").y) == epochs_before + 2
    ghost = np.asarray(trace(app, "dense original").y)  # the new base's ghost was resent
    assert np.array_equal(ghost, app.snap.layer(app.c.layer.value).hist_base_counts)
    assert min(trace(app, "train loss (step)").x) > trace(app, "val accuracy").x[epochs_before - 1]
    assert "done" in app.c.status.value
    assert not app.c.slider.disabled and app.c.stop.disabled


def test_second_train_click_starts_nothing(app):
    """One job at a time: a click while training is refused with a message."""
    app.c.epochs.value = 50
    app.c.train.click()
    app.c.train.click()  # disabled in the browser; the handler refuses as well
    assert app.jobs.runner.started_count == 1
    assert app.start_training() is False
    assert "already running" in app.c.status.value
    app.jobs.stop()
    assert app.jobs.wait(60)


def test_stop_ends_a_running_job(app):
    """Stop takes effect within a batch; the status says so and controls come back."""
    app.c.epochs.value = 200
    epochs_before = sum(h["kind"] == "epoch" for h in app.session.history)
    app.c.train.click()
    assert app.jobs.runner.running
    app.c.stop.click()
    assert app.jobs.wait(30)
    assert "stopped" in app.c.status.value
    assert sum(h["kind"] == "epoch" for h in app.session.history) - epochs_before < 200
    assert not app.c.train.disabled


def test_training_keeps_pruned_weights_zero_in_the_app(app):
    app.c.slider.value = 0.8
    masks = {k: v.clone() for k, v in app.session.masks.items()}
    app.c.epochs.value = 1
    app.c.train.click()
    assert app.jobs.wait(60)
    params = dict(app.session.model.named_parameters())
    assert all(bool((params[n][~m] == 0).all()) for n, m in masks.items())
    assert pruned_fraction(app) == pytest.approx(0.8, abs=1e-3)
