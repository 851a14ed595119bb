"""A GPT-2-like `hf:` causal LM in a Session on pydoc-text: prune, heads, train, perplexity."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("transformers")
pytest.importorskip("torch_pruning")

import torch  # noqa: E402
from hf_util import gpt2, saved  # noqa: E402

from explorer import Session  # noqa: E402


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    return Session("pydoc-text", f"hf:{gpt2(tmp_path_factory.mktemp('lm'))}",
                   max_train_windows=64)


def test_headline_is_perplexity_of_the_loss(session):
    """Perplexity is exp(validation loss); the task is next-character classification."""
    snap = session.snapshot()
    assert session.objective.headline == "perplexity" and not session.is_lm
    assert snap.extra["perplexity"] == pytest.approx(math.exp(snap.loss))
    assert snap.extra["perplexity"] > 20  # untrained over ~100 characters


def test_unstructured_then_heads_through_the_graph(session):
    """Magnitude 50% zeroes half of the prunable weights; structured 50% removes half of
    every layer's heads, and the shrunk model gives the masked model's logits."""
    snap = session.prune(sparsity=0.5)
    zeros = sum(int((session.model.get_parameter(n) == 0).sum()) for n in session.slot.prunable)
    total = sum(session.model.get_parameter(n).numel() for n in session.slot.prunable)
    assert zeros / total == pytest.approx(0.5, abs=0.01)
    assert snap.extra["perplexity"] == pytest.approx(math.exp(snap.loss))
    snap = session.prune(sparsity=0.5, structured=True)
    assert snap.extra["structured"] and snap.extra["param_fraction_removed"] > 0.2
    small = session.shrink()
    for i in range(2):
        assert small.get_submodule(f"inner.transformer.h.{i}.attn").num_heads == 2
    x = session.data.val.x[:4]
    small.eval(), session.model.eval()  # GPT-2's dropout would make any two passes differ
    with torch.no_grad():
        assert torch.allclose(small(x), session.model(x), atol=1e-4)
    session.reset_pruning()


def test_training_lowers_the_perplexity(session):
    """One epoch of the 64 training windows: the recorded perplexity is exp(val loss) and
    below the untrained model's."""
    before = session.snapshot().extra["perplexity"]
    session.train(epochs=2)
    record = session.history[-1]
    assert record["val_perplexity"] == pytest.approx(math.exp(record["val_loss"]))
    assert record["val_perplexity"] < before


def test_gpt_tiny_only_operations_refuse_it(session):
    """Head plans, GPT students, distillation and the text sample are gpt-tiny's."""
    for call in (session.lm.sample, lambda: session.lm.remove_heads(0.5), session.students.make,
                 lambda: session.students.distill(epochs=1)):
        with pytest.raises(ValueError, match="gpt-tiny|cannot build"):
            call()


def test_refusals_name_the_mismatch(tmp_path):
    """An image model on text, a vocabulary too small for the corpus's characters, and a
    context longer than the model's positions are refused, naming the numbers."""
    with pytest.raises(ValueError, match="causal language model"):
        Session("pydoc-text", f"hf:{saved('resnet', tmp_path)}")
    with pytest.raises(ValueError, match="vocabulary of 20 tokens"):
        Session("pydoc-text", f"hf:{gpt2(tmp_path, vocab=20)}")
    with pytest.raises(ValueError, match="16 positions; the context is 64"):
        Session("pydoc-text", f"hf:{gpt2(tmp_path, positions=16)}")
