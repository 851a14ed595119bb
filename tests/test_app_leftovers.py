"""Issue 15 leftovers: the quality card during a job, adopting sessions of another
architecture, the language model's lazy text sample, one set of fine-tune defaults."""

from __future__ import annotations

import html
import io
import re
import threading

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


def test_iterative_pruning_defaults_are_the_configs():
    """Session.prune_iteratively, `explorer run` and the app's controls share config's
    FINETUNE_* (prune_iteratively fine-tuned 1 epoch per step, the app 5)."""
    session = Session("toy-regression", "mlp", device="cpu", pretrained=False)
    session.prune_iteratively(target=0.5)  # every other option left to its default
    steps = [h for h in session.history if h["kind"] == "prune_step"]
    epochs = [h for h in session.history if h["kind"] != "prune_step"]
    assert len(steps) == C.FINETUNE_STEPS
    assert len(epochs) == C.FINETUNE_STEPS * C.FINETUNE_EPOCHS
    assert [h["schedule"] for h in steps] == [C.FINETUNE_SCHEDULE] * C.FINETUNE_STEPS
    app = ExplorerApp(Session("toy-regression", "mlp", device="cpu"))
    try:
        c = app.c
        assert (c.steps.value, c.schedule.value, c.finetune_epochs.value) == (
            C.FINETUNE_STEPS, C.FINETUNE_SCHEDULE, C.FINETUNE_EPOCHS)
    finally:
        app.close()


@pytest.mark.parametrize("argv", [["--steps", "2"], ["--schedule", "linear"],
                                  ["--rewind", "init"]])
def test_explorer_run_fills_unset_iterative_options_from_config(argv, monkeypatch):
    import argparse

    from explorer.cli.run import configure
    from explorer.studies import pipeline

    args = configure(argparse.ArgumentParser()).parse_args(
        ["--prune-sparsity", "0.5", "--epochs", "1", *argv])
    session = Session("toy-regression", "mlp", device="cpu")
    calls: list[dict] = []
    monkeypatch.setattr(session, "train", lambda **kw: None)
    monkeypatch.setattr(session, "measure", lambda *a, **kw: None)
    monkeypatch.setattr(session, "prune_iteratively",
                        lambda target, **kw: calls.append(kw))
    pipeline.run_stages(session, args, pipeline.Progress(stream=io.StringIO()))
    (kw,) = calls
    given = dict(zip(argv[::2], argv[1::2]))
    assert kw["steps"] == int(given.get("--steps", C.FINETUNE_STEPS))
    assert kw["schedule"] == given.get("--schedule", C.FINETUNE_SCHEDULE)
    assert kw["finetune_epochs"] == C.FINETUNE_EPOCHS


@pytest.mark.parametrize("model,prune", [("lenet5", {"std": 1.0}),
                                         ("resnet-small", {"sparsity": 0.3,
                                                           "structured": True})])
def test_uploading_a_session_of_another_architecture_shows_it(app, model, prune):
    """A saved lenet5 / resnet-small session loaded into the app showing the MLP (on its
    last layer, pruned): the new layers, bars, pruning setting and headline, no error."""
    app.c.slider.value = 0.5
    app.c.layer.value = app.c.layer.options[-1]
    saved = Session("digits", model, device="cpu")
    snap = saved.prune(**prune)
    assert app.model_panel.files.load_bytes(saved.to_bytes(), f"{model}.pt"), status(app)
    settle(app)
    assert f"loaded {model}.pt: {model} on digits" in status(app), status(app)
    assert app.session.slot.config["model"] == model
    assert list(app.c.layer.options) == list(snap.prunable)
    assert app.c.layer.value == snap.prunable[0]
    assert app.c.mode.value == snap.prune["mode"] and app.c.slider.value == snap.prune["value"]
    assert f"{app.snap.accuracy:.1%}" in headline(app)
    assert f"Global sparsity: {snap.sparsity:.1%}" in headline(app)
    assert not app.errors.errors
    app.c.slider.value = app.c.slider.max / 4  # and it prunes from there
    assert status(app).startswith("pruned (teacher)"), status(app)


def test_adopting_a_language_model_session_from_the_api(app):
    """adopt_session (what Load and New session end in) with gpt-tiny: its layers show."""
    lm = Session("pydoc-text", "gpt-tiny", device="cpu")
    app.adopt_session(lm)
    settle(app)
    assert list(app.c.layer.options) == lm.slot.prunable and not app.errors.errors
    assert "perplexity" in headline(app)


def test_gpt_slider_move_generates_no_sample_and_the_line_follows(monkeypatch):
    """The slider's handler generates no text (the snapshot has none); the perplexity in
    the sample line follows at once, the text of the final state arrives afterwards."""
    from explorer.session import tasks

    inline: list[int] = []
    real = tasks.generate
    monkeypatch.setattr(tasks, "generate", lambda *a, **k: inline.append(1) or real(*a, **k))
    lm = ExplorerApp(Session("pydoc-text", "gpt-tiny", device="cpu"))
    try:
        settle(lm)
        for value in (0.3, 0.5, 0.6):
            lm.c.slider.value = value
            assert "sample" not in lm.snap.extra and not inline
            assert f"perplexity {lm.snap.extra['perplexity']:.2f}" in lm.sample.value
        assert lm.display.wait_sample(120)
        assert html.escape(lm.session.lm.sample()) in lm.sample.value
        assert "updating" not in lm.sample.value and lm.display.samples.generated >= 1
    finally:
        lm.close()


def test_a_sample_overtaken_by_a_newer_request_is_dropped(monkeypatch):
    """Latest wins: the first sample, still generating when the second is asked for, is
    never shown; the second is."""
    from explorer.ui import sample as S

    entered, release = threading.Event(), threading.Event()
    texts = iter(["first", "second"])

    def fake(session):
        text = next(texts)
        if text == "first":
            entered.set()
            assert release.wait(60)
        return text

    monkeypatch.setattr(S, "text_sample", fake)
    shown: list = []
    worker = S.SampleWorker(lambda key, text: shown.append((key, text)),
                            lambda key, err: shown.append((key, err)), settle_s=0.0)
    worker.request("a", None)
    assert entered.wait(60)
    worker.request("b", None)
    release.set()
    assert worker.wait(60)
    assert shown == [("b", "second")]
