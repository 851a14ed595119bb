"""The language-model track through the product: Session, `explorer run`, the app.

Models here are a few 10k parameters and train for a few dozen steps, so the file stays
well under a minute; the oracles are exactness (reset is bit for bit, a physically
shrunk model equals the masked one) and real runs (perplexity falls, JSON has it).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from explorer.models.gpt import GPT, count_params
from explorer.session.session import Session

REPO = Path(__file__).resolve().parents[1]
TINY = dict(layers=2, heads=4, width=0.25, context=32, max_train_windows=256)


@pytest.fixture(scope="module")
def session() -> Session:
    torch.set_num_threads(1)
    s = Session("pydoc-text", "gpt-tiny", **TINY)
    s.train(epochs=2, lr=3e-3)
    return s


def _state(s: Session) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in s.model.state_dict().items()}


def test_text_request_builds_an_lm_session_with_a_small_gpt(session):
    assert type(session) is Session and session.is_lm
    assert isinstance(session.model, GPT)
    assert count_params(session.model)[0] <= 500_000
    assert session.model.heads_per_layer() == [4, 4]
    # prunable = every Linear weight: q, k, v, out, fc, proj per block, no embeddings
    assert len(session.slot.prunable) == 12 and not any("emb" in n for n in session.slot.prunable)
    assert type(Session("digits", "mlp", pretrained=False)) is Session


def test_snapshot_has_perplexity_sample_and_heads(session):
    snap = session.snapshot()
    extra = snap.to_dict()
    assert math.isclose(extra["perplexity"], math.exp(snap.loss), rel_tol=1e-9)
    assert 0.0 < snap.accuracy < 1.0
    assert isinstance(extra["sample"], str) and len(extra["sample"]) == 60
    assert extra["heads"] == [[0.0] * 4, [0.0] * 4]
    # training lowered validation perplexity well below a uniform guess over the vocab
    assert extra["perplexity"] < 0.5 * len(session.lm.corpus.vocab)
    epochs = [h for h in session.history if h.get("kind") == "epoch"]
    assert epochs and all("val_perplexity" in h for h in epochs)


def test_prune_then_reset_is_bit_for_bit(session):
    before = _state(session)
    for kwargs in ({"sparsity": 0.8, "scope": "global"}, {"threshold": 0.05}):
        snap = session.prune(**kwargs)
        assert snap.sparsity > 0.1
        session.reset_pruning()
        after = session.model.state_dict()
        assert all(torch.equal(before[k], after[k]) for k in before)


def test_removed_heads_equal_masked_heads_through_the_session(session):
    before = _state(session)
    for rank in ("l1", "l2", "loss"):
        snap = session.lm.remove_heads(0.25, rank=rank)
        grid = snap.extra["heads"]
        assert sum(v == 1.0 for row in grid for v in row) == 2  # 25% of 8 heads
        small = session.shrink()
        assert sum(small.heads_per_layer()) == 6
        x = session.data.val.x[:16]
        with torch.no_grad():
            assert torch.allclose(small(x), session.model(x), atol=1e-5)
        session.reset_pruning()
    session.lm.remove_neurons(0.5)
    small = session.shrink()
    assert [b.mlp.fc.out_features for b in small.blocks] == [64, 64]
    with torch.no_grad():
        assert torch.allclose(small(x), session.model(x), atol=1e-5)
    session.reset_pruning()
    assert all(torch.equal(before[k], v) for k, v in session.model.state_dict().items())


def test_training_keeps_removed_heads_removed(session):
    session.lm.remove_heads(0.25)
    snap = session.train(epochs=1, lr=1e-3)
    assert sum(v == 1.0 for row in snap.extra["heads"] for v in row) == 2
    session.undo()
    session.reset_pruning()


def test_distilled_student_from_every_other_teacher_layer(session):
    snap = session.students.distill(student=1.0, layers=1, student_init="teacher", epochs=1,
                           lr=3e-3)
    student = session.slots.model("student")
    assert student.config.n_layers == 1
    assert snap.extra["teacher_agreement"] is not None and math.isfinite(snap.loss)
    view = session.students.soft_targets(0, 2.0)
    assert len(view["teacher"]) == len(session.lm.corpus.vocab) == len(view["classes"])
    assert math.isclose(sum(view["student"]), 1.0, rel_tol=1e-4) and view["kl"] >= 0


@pytest.mark.slow
def test_cli_run_writes_perplexity_in_the_json(tmp_path):
    out = tmp_path / "lm.json"
    cmd = [sys.executable, "-m", "explorer", "run", "--dataset", "pydoc-text", "--model",
           "gpt-tiny", "--layers", "1", "--heads", "2", "--width", "0.25", "--context", "32",
           "--train-windows", "128", "--epochs", "1", "--lr", "3e-3", "--prune-sparsity",
           "0.5", "--structured", "--json", str(out)]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert "test ppl" in done.stdout
    stages = json.loads(out.read_text())["stages"]
    for name in ("baseline", "pruned"):
        assert math.isclose(stages[name]["perplexity"], math.exp(stages[name]["loss"]),
                            rel_tol=1e-6)
        assert 0.0 <= stages[name]["accuracy"] <= 1.0
    assert sum(v == 1.0 for v in stages["pruned"]["heads"][0]) == 1


@pytest.mark.parametrize("argv, word", [
    (["--dataset", "pydoc-text"], "--model"),
    (["--model", "mlp", "--layers", "2"], "--layers"),
    (["--dataset", "pydoc-text", "--model", "gpt-tiny", "--student-init", "teacher"],
     "--student-init"),
])
def test_cli_rejects_bad_lm_combinations(argv, word):
    from explorer.cli import run as run_cli

    parser = run_cli.configure(argparse.ArgumentParser())
    message = run_cli.check_combination(parser.parse_args(argv))
    assert message is not None and word in message


def test_app_shows_heads_view_and_sample(session):
    from explorer.ui.app import ExplorerApp

    app = ExplorerApp(session)
    assert "cx-sample" in app.sample._dom_classes
    assert "The for statement is used to " in app.sample.value
    assert app.model_panel.dataset.value == "pydoc-text"
    assert "gpt-tiny" in app.model_panel.model.options
    session.lm.remove_heads(0.25)
    app.tabs.selected_index = 2  # Compare: its quality slot shows the heads grid
    app.compare.open()
    app.cards.measure_now(latency=False)
    fig = app.compare.fig_quality
    assert "heads" in fig.layout.title.text
    assert (np.asarray(fig.data[0].z) == 1.0).sum() == 2
    app.distill.temperature.value = 3.0
    app.distill.open()
    assert "Next character" in app.distill.fig.layout.annotations[0].text
    session.reset_pruning()


def test_a_users_text_file_is_a_corpus(tmp_path):
    from pydoc_data.topics import topics

    path = tmp_path / "mine.txt"
    path.write_text("".join(list(topics.values())[:10]), encoding="utf-8")
    s = Session(str(path), **{**TINY, "layers": 1})
    assert type(s) is Session and s.is_lm and s.data.name == "mine.txt"
    snap = s.prune(sparsity=0.5)
    assert snap.sparsity == pytest.approx(0.5, abs=0.01) and "sample" in snap.extra
