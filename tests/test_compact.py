"""engine.compact: a big model's first slider answer computed on its surviving channels.

The twin must compute the masked model's function, its BatchNorm re-estimation must give
the statistics the reference procedure (recalibrate_bn on the masked model) gives, and a
session's subset answer must be the one the masked model gives."""

from __future__ import annotations

import copy

import pytest
import torch

pytest.importorskip("torch_pruning")

from explorer.engine.attention import example_of, graph_of  # noqa: E402
from explorer.engine.compact import twin_of  # noqa: E402
from explorer.engine.graph import graph_masks  # noqa: E402
from explorer.engine.structure import NORM_TYPES, recalibrate_bn  # noqa: E402
from explorer.models.zoo import build_model  # noqa: E402
from explorer.session import core, subsets  # noqa: E402
from explorer.session.session import Session  # noqa: E402


def zoo(name: str):
    return build_model(name, (64,), 10, image_shape=(1, 8, 8), init="he", seed=1)


def hf_resnet(tmp_path):
    pytest.importorskip("transformers")
    from hf_util import saved

    from explorer.models.hf import load_hf

    return load_hf(f"hf:{saved('resnet', tmp_path)}")


def masked(model, s):
    groups, _ = graph_of(model)
    masks, _ = graph_masks(dict(model.named_parameters()), groups, s, "l1")
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n in masks:
                p.mul_(masks[n])
    return groups


def stats(model):
    return {n: b.clone() for n, b in model.named_buffers()}


def check_model(model, inputs):
    for s in (0.3, 0.6, 0.9):
        trial = copy.deepcopy(model)
        groups = masked(trial, s)
        twin = twin_of(trial, groups, example_of(trial))
        assert twin is not None
        twin.load(trial)
        with torch.no_grad():
            torch.testing.assert_close(twin.module.eval()(inputs), trial.eval()(inputs),
                                       rtol=1e-4, atol=1e-5)
        assert sum(p.numel() for p in twin.module.parameters()) < \
            sum(p.numel() for p in trial.parameters())
        if any(isinstance(m, NORM_TYPES) for m in trial.modules()):
            reference = copy.deepcopy(trial)
            recalibrate_bn(reference, inputs, 48)
            recalibrate_bn(twin.module, inputs, 48)
            twin.norms_back(trial)
            want, got = stats(reference), stats(trial)
            assert list(got) == list(want)
            for name in want:
                torch.testing.assert_close(got[name], want[name], rtol=1e-4, atol=1e-5)
        twin.release()


@pytest.mark.parametrize("name", ("mlp", "lenet5", "resnet-small"))
def test_twin_computes_the_masked_function(name):
    model = zoo(name)
    check_model(model, model.example_input(64))


def test_hf_resnet_twin(tmp_path):
    model = hf_resnet(tmp_path)
    check_model(model, model.example_input(64))


def test_no_twin_for_attention_heads(tmp_path):
    pytest.importorskip("transformers")
    from hf_util import saved

    from explorer.models.hf import load_hf

    model = load_hf(f"hf:{saved('gpt2', tmp_path)}")
    groups = masked(model, 0.5)
    assert twin_of(model, groups, example_of(model)) is None


def test_dense_model_builds_no_twin():
    model = zoo("lenet5")
    groups, _ = graph_of(model)
    assert twin_of(model, groups, example_of(model)) is None  # asked again once pruned


def answer(monkeypatch, use_twin: bool):
    """A structured slider move's subset answer with the compact path on or off."""
    monkeypatch.setattr(subsets, "FAST_EVAL_MIN_PARAMS", 0)
    monkeypatch.setattr(subsets, "FAST_EVAL_SAMPLES", 100)
    if not use_twin:
        monkeypatch.setattr(core, "twin_of", lambda *_: None)
    session = Session("digits", "resnet-small", seed=0)
    session.train(epochs=1)
    snaps = [session.prune(sparsity=s, structured=True) for s in (0.4, 0.7)]
    return snaps, stats(session.model), session


def test_subset_answer_equals_the_masked_models(monkeypatch):
    from explorer.engine import compact

    with monkeypatch.context() as m:
        fast, fast_stats, session = answer(m, True)
    assert compact._TWINS[session.model][1] is not None  # the answer came from the twin
    with monkeypatch.context() as m:
        slow, slow_stats, _ = answer(m, False)
    for a, b in zip(fast, slow):
        assert a.extra["eval_samples"] == b.extra["eval_samples"] == 100
        assert a.extra["bn_samples"] == b.extra["bn_samples"] > 0
        assert a.accuracy == b.accuracy
        assert a.loss == pytest.approx(b.loss, rel=1e-4)
        assert a.extra["param_fraction_removed"] == b.extra["param_fraction_removed"]
        assert a.nonzero == b.nonzero and a.sparsity == b.sparsity
        for la, lb in zip(a.layers, b.layers, strict=True):  # histograms from the twin
            assert la.to_dict() == lb.to_dict()
    for name in slow_stats:
        torch.testing.assert_close(fast_stats[name], slow_stats[name], rtol=1e-4, atol=1e-5)
    full = session.refine()  # the full set on the masked model itself
    assert "eval_samples" not in full.extra


def test_a_failing_twin_falls_back_to_the_masked_model(monkeypatch):
    from explorer.engine import compact

    with monkeypatch.context() as m:
        slow, slow_stats, _ = answer(m, False)
    with monkeypatch.context() as m:
        m.setattr(subsets, "FAST_EVAL_MIN_PARAMS", 0)
        m.setattr(subsets, "FAST_EVAL_SAMPLES", 100)
        session = Session("digits", "resnet-small", seed=0)
        session.train(epochs=1)
        session.prune(sparsity=0.4, structured=True)  # builds and checks the twin

        def broken(self, model):
            raise RuntimeError("shape mismatch")

        m.setattr(compact.Twin, "load", broken)
        snap = session.prune(sparsity=0.7, structured=True)
    assert compact._TWINS[session.model][1] is None
    assert snap.accuracy == slow[1].accuracy and snap.loss == slow[1].loss


def test_no_twin_beside_a_norm_without_affine_parameters():
    model = zoo("resnet-small")
    model.block1.bn1 = torch.nn.BatchNorm2d(model.block1.bn1.num_features, affine=False)
    groups = masked(model, 0.5)
    assert twin_of(model, groups, example_of(model)) is None
