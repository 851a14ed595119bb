"""Issue 28, item 9 in the app: what the page names after Load, a stale download link, and
controls disabled during a job saying why."""

from __future__ import annotations

import threading

import pytest
from ui_util import settle, status

from explorer import Session


def test_load_names_the_loaded_data_and_model_and_drops_the_old_link(digits_app):
    app = digits_app
    panel = app.model_panel
    assert panel.files.offer_session() and "cx-download" in panel.files.link.value
    saved = Session("toy-regression", "mlp", device="cpu")
    assert panel.files.load_bytes(saved.to_bytes(), "toy.pt"), status(app)
    settle(app)
    # The selects named digits (the page's first choice) while toy-regression was open.
    assert (panel.dataset.value, panel.model.value) == ("toy-regression", "mlp")
    assert panel.files.link.value == ""  # the old session's file is not offered any more


def test_controls_disabled_by_a_job_say_why_and_get_their_tooltip_back(digits_app):
    app = digits_app
    before = app.c.prune_finetune.tooltip
    release = threading.Event()
    assert app.jobs.start("a slow study", lambda stop, ev: release.wait(60))
    try:
        assert app.c.prune_finetune.disabled
        assert app.c.prune_finetune.tooltip == "a slow study is running: Stop it or wait"
        assert app.model_panel.new.tooltip == "a slow study is running: Stop it or wait"
    finally:
        release.set()
    settle(app)
    assert not app.c.prune_finetune.disabled and app.c.prune_finetune.tooltip == before


def test_the_curves_legend_names_only_the_lines_drawn(digits_app):
    """The shipped checkpoint has epoch figures but no step losses: no empty 'train loss'."""
    from explorer.ui import plots as P

    app = digits_app
    title = app.fig.layout.annotations[P.T_CURVES].text
    steps = len(app.fig.data[P.STEP_LOSS].x)
    assert steps == 0 and "train loss" not in title, (steps, title)
    assert "val loss" in title and "val accuracy" in title


def test_prune_by_keeps_the_sparsity_and_std_shows_per_layer(digits_app):
    app = digits_app
    app.c.scope.value = "global"
    app.c.mode.value = "std"
    assert app.c.scope.value == "layer" and app.c.scope.disabled  # not "global", greyed
    app.c.slider.value = 1.0  # q = 1: about two thirds of each layer
    pruned = app.snap.sparsity
    assert 0.5 < pruned < 0.8
    app.c.mode.value = "sparsity"  # was: back to 0, every weight revived
    assert app.c.slider.value == pytest.approx(round(pruned, 2))
    assert app.snap.sparsity == pytest.approx(pruned, abs=0.01)
