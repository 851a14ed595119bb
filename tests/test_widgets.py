"""The app without a browser: set values, click buttons, assert on figures and status."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
from ui_util import bar_counts, headline, pruned_fraction, settle, status, trace

from explorer.ui import ExplorerApp


@pytest.fixture
def app(digits_app) -> ExplorerApp:
    return digits_app


def test_slider_changes_the_sparsity_figure(app):
    """Moving the slider prunes and the bars show it, per layer as fractions."""
    assert pruned_fraction(app) == 0
    app.c.slider.value = 0.9
    assert pruned_fraction(app) == pytest.approx(0.9, abs=1e-3)
    assert all(x == pytest.approx(0.9, abs=0.01) for x in trace(app.fig, "pruned").x)
    assert "90.0%" in app.c.summary.value
    app.c.slider.value = 0.0
    assert pruned_fraction(app) == 0


def test_headline_shows_accuracy_and_its_change_from_dense(app):
    """The number that matters, big: accuracy and how far it moved from the dense model."""
    dense = app.snap.accuracy
    assert f"{dense:.1%}" in headline(app) and "same as dense" in headline(app)
    app.c.slider.value = 0.9
    text = headline(app)
    assert f"{app.snap.accuracy:.1%}" in text and "points vs dense" in text
    assert f"({dense:.1%})" in text and "teacher" in text


def test_histogram_shows_survivors_ghost_and_threshold(app):
    """The histogram keeps the dense ghost, drops pruned weights, draws the cut."""
    ghost_before = np.asarray(trace(app.fig, "dense original").y).copy()
    app.c.slider.value = 0.5
    kept = np.asarray(trace(app.fig, "kept weights").y)
    assert np.array_equal(np.asarray(trace(app.fig, "dense original").y), ghost_before)
    assert kept.sum() == pytest.approx(ghost_before.sum() * 0.5, rel=0.01)
    cut = [v for v in trace(app.fig, "threshold").x if v is not None]
    assert max(cut) > 0
    with mock.patch.object(app.session, "prune") as prune:
        app.c.layer.value = app.session.slot.prunable[1]  # view tier: replot, no recompute
        app.c.log_y.value = True
    prune.assert_not_called()
    assert app.fig.layout.annotations[1].text.startswith("layers.1")
    assert app.fig.layout.yaxis2.type == "log"


def test_network_links_fade_as_the_slider_moves(app):
    """The network panel: a fixed link set per base, more of it in the faded trace as
    weights go, at most MAX_NODES neurons per column."""
    from explorer.engine.network import MAX_NODES
    from explorer.ui import plots as P

    counts = [len(app.fig.data[i].x) for i in P.LINKS]
    assert counts[-1] == 0 and sum(counts) > 0
    assert max(np.bincount(app.fig.data[P.GRID].x)) <= MAX_NODES  # 256 neurons binned
    app.c.slider.value = 0.95
    pruned = [len(app.fig.data[i].x) for i in P.LINKS]
    assert pruned[-1] > 0 and sum(pruned) == sum(counts)


def test_accuracy_vs_sparsity_curve_is_computed_once_per_base_off_the_session(app):
    """The one-shot curve comes from a copy in the background, cached per base; the
    current setting is marked on it; the slider never waits for it."""
    settle(app)
    curve = trace(app.fig, "one-shot curve")
    assert len(curve.x) == 15 and curve.y[0] > curve.y[-1]
    computed = app.curve.computed
    with mock.patch.object(app.session, "prune", wraps=app.session.prune) as prune:
        for value in (0.3, 0.6, 0.9):
            app.c.slider.value = value
    assert prune.call_count == 3  # the curve made no calls on the session
    settle(app)
    assert app.curve.computed == computed  # same base: cached
    now = trace(app.fig, "current")
    assert now.x == (pytest.approx(0.9, abs=1e-3),) and now.y == (app.snap.accuracy,)


def test_mode_and_scope_switch(app):
    app.c.scope.value = "global"
    app.c.slider.value = 0.8
    assert app.session.slot.prune_config.scope == "global"
    app.c.mode.value = "threshold"  # starts where it prunes as much (issue 28), not at 0
    assert app.c.slider.description == "threshold"
    assert app.c.slider.value == pytest.approx(
        app.session.pruning.value_for("threshold", 0.8, 0.001))
    assert app.snap.sparsity == pytest.approx(0.8, abs=0.005)
    app.c.slider.value = 0.05
    assert app.session.slot.prune_config.threshold == pytest.approx(0.05)


def test_one_message_per_figure_per_slider_move(app):
    """A slider move sends exactly one update message for the main figure (batched)."""
    fig = app.fig
    settle(app)  # the background curve of an earlier change sends its own update: not this move's
    patches = {}
    for method in ("_send_update_msg", "_send_restyle_msg", "_send_relayout_msg"):
        patches[method] = mock.patch.object(fig, method).start()
    try:
        app.c.slider.value = 0.42
    finally:
        mock.patch.stopall()
    calls = {m: p.call_count for m, p in patches.items()}
    assert calls == {"_send_update_msg": 1, "_send_restyle_msg": 0, "_send_relayout_msg": 0}


def test_a_drag_draws_the_newest_state_and_drops_stale_ones(app):
    """With a page drawing the app, moves faster than it can redraw replace each other:
    the figure gets fewer updates than moves, and ends at the last one."""
    app.resizer.fired = 1  # what the page's resizer reports once it has drawn the app
    moves = [round(float(v), 2) for v in np.linspace(0.1, 0.9, 20)]
    with mock.patch.object(app.fig, "_send_update_msg", wraps=app.fig._send_update_msg) as sent:
        for value in moves:
            app.c.slider.value = value
        settle(app)
    assert 1 <= sent.call_count < len(moves)
    assert pruned_fraction(app) == pytest.approx(0.9, abs=1e-3)
    assert "90.0%" in headline(app)  # the headline followed every move


def test_train_runs_a_job_that_grows_the_curves(app):
    """Train runs in a worker thread, finishes, and the curves grow."""
    app.c.epochs.value = 2
    epochs_before = len(trace(app.fig, "val accuracy").y)  # the shipped model's own history
    assert len(trace(app.fig, "train loss (step)").x) == 0
    assert app.start_training()
    settle(app)
    assert len(trace(app.fig, "train loss (step)").x) > 10
    assert len(trace(app.fig, "val accuracy").y) == epochs_before + 2
    ghost = np.asarray(trace(app.fig, "dense original").y)  # the new base's ghost was resent
    assert np.array_equal(ghost, app.snap.layer(app.c.layer.value).hist_base_counts)
    steps = trace(app.fig, "train loss (step)").x
    assert min(steps) > trace(app.fig, "val accuracy").x[epochs_before - 1]
    assert "training done (teacher): val accuracy" in status(app)
    assert not app.c.slider.disabled and app.c.stop.disabled
    assert app.c.progress.value == app.c.progress.max


def test_second_train_click_starts_nothing(app):
    """One job at a time: a click while training is refused with a message."""
    app.c.epochs.value = 50
    app.c.train.click()
    app.c.train.click()  # disabled in the browser; the handler refuses as well
    assert app.jobs.runner.started_count == 1
    assert app.start_training() is False
    assert "already running" in status(app)
    app.jobs.stop()
    settle(app, 60)


def test_stop_ends_a_running_job(app):
    """Stop takes effect within a batch; the status says what was kept; controls return."""
    app.c.epochs.value = 200
    epochs_before = sum(h["kind"] == "epoch" for h in app.session.history)
    app.c.train.click()
    assert app.jobs.runner.running and not app.c.stop.disabled
    app.c.stop.click()
    settle(app, 30)
    assert "training (teacher): stopped after" in status(app)
    assert "kept the weights so far" in status(app)
    assert sum(h["kind"] == "epoch" for h in app.session.history) - epochs_before < 200
    assert not app.c.train.disabled and app.c.stop.disabled


def test_training_keeps_pruned_weights_zero_in_the_app(app):
    app.c.slider.value = 0.8
    masks = {k: v.clone() for k, v in app.session.slot.masks.items()}
    app.c.epochs.value = 1
    app.c.train.click()
    settle(app, 60)
    params = dict(app.session.model.named_parameters())
    assert all(bool((params[n][~m] == 0).all()) for n, m in masks.items())
    assert pruned_fraction(app) == pytest.approx(0.8, abs=1e-3)
    assert [r[2] for r in bar_counts(app)] == app.session.slot.prunable
