"""Issue 15 leftovers: the quality card during a job, adopting sessions of another
architecture, the language model's lazy text sample, one set of fine-tune defaults."""

from __future__ import annotations

import inspect
import re

import pytest
from ui_util import headline, settle, status

from explorer import Session
from explorer import config as C
from explorer.ui import ExplorerApp


@pytest.fixture
def app(digits_app) -> ExplorerApp:
    return digits_app


def card_text(app: ExplorerApp) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", app.cards.quality.value))


def test_quality_card_during_a_job_names_accuracy_never_mse(app):
    """A job's snapshots carry no accuracy (not evaluated): the card of a classifier
    keeps its accuracy rows and never reads as a regression's 'MSE nan'."""
    measured = app.snap.accuracy
    app.display.show(app.session.snapshot(evaluate_model=False), evaluated=False)  # a tick
    app.cards.measure_now(latency=False)  # Measure pressed while the job runs
    text = card_text(app)
    assert "MSE" not in text and "nan" not in text, text
    assert f"validation accuracy {measured:.2%}" in text, text


def test_regression_card_shows_mse():
    app = ExplorerApp(Session("toy-regression", "mlp", device="cpu"))
    try:
        assert "validation MSE" in card_text(app) and "accuracy" not in card_text(app)
        app.display.show(app.session.snapshot(evaluate_model=False), evaluated=False)
        app.cards.measure_now(latency=False)
        assert "nan" not in card_text(app) and "validation MSE" in card_text(app)
    finally:
        app.close()
