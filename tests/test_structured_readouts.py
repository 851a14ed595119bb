"""Readouts that do not flatter (issue 16): effective FLOPs of structured-pruned models,
BatchNorm recalibration after removing channels, and idempotent re-pruning after a job."""

from __future__ import annotations

import copy

import pytest
import torch

from explorer import Session
from explorer.engine.measure import flops


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("model", ["lenet5", "resnet-small"])
def test_effective_flops_of_structured_model_equal_the_shrunk_models(model):
    """50% structured: flops_effective (measure() and Snapshot.to_dict()) equals the
    shrunk model's FLOPs exactly, the next layers' idle input columns counted."""
    session = Session("mnist-5k", model, pretrained=False, device="cpu")
    session.prune(sparsity=0.5, structured=True)
    small = session.shrink()
    shrunk_dense, shrunk_effective = flops(small, session.data.val.x)
    assert shrunk_dense == shrunk_effective
    report = session.measure("val").to_dict()
    assert report["flops_effective"] == shrunk_dense
    assert report["flops_dense"] > shrunk_dense
    if model == "lenet5":  # the numbers: 417,360 before the fix
        assert report["flops_effective"] == 267_480


def test_effective_flops_of_unstructured_masks_still_scale_with_density():
    """Without whole channels removed the count is the density-scaled one, as before."""
    session = Session("digits", "mlp", device="cpu")
    session.prune(sparsity=0.5)
    dense, effective = flops(session.model, session.data.val.x)
    assert effective == pytest.approx(dense * 0.5, rel=0.02)


@pytest.fixture(scope="module")
def resnet() -> Session:
    torch.set_num_threads(1)
    session = Session("digits", "resnet-small", seed=1, pretrained=False, device="cpu")
    session.train(epochs=10)
    return session


def test_bn_recalibration_raises_accuracy_after_structured_pruning(resnet):
    """resnet-small with a quarter of its channels removed: re-estimated BatchNorm
    statistics give a higher validation accuracy than the stale ones, and the switch
    (Session.settings.bn_recalibration) turns it off."""
    session = resnet
    try:
        session.settings.bn_recalibration = False
        stale = session.prune(sparsity=0.25, structured=True)
        session.settings.bn_recalibration = True
        fresh = session.prune(sparsity=0.25, structured=True)
    finally:
        session.settings.bn_recalibration = True
    assert fresh.accuracy > stale.accuracy, (stale.accuracy, fresh.accuracy)
    assert fresh.extra["bn_recalibrated"] and not stale.extra["bn_recalibrated"]


def test_bn_statistics_return_to_the_base_when_pruning_is_undone(resnet):
    """Recalibrated buffers never leak: reset_pruning and unstructured pruning give the
    base's running statistics back bit for bit; recalibration takes no gradient step."""
    session = resnet
    session.prune(sparsity=0.5, structured=True)
    stem_mean = session.slot.base["stem_bn.running_mean"]
    assert not torch.equal(session.model.stem_bn.running_mean, stem_mean)
    session.reset_pruning()
    for name, tensor in session.model.state_dict().items():
        assert torch.equal(tensor, session.slot.base[name]), name
    session.prune(sparsity=0.5, structured=True)
    session.prune(sparsity=0.3)
    assert torch.equal(session.model.stem_bn.running_var, session.slot.base["stem_bn.running_var"])
    from explorer.engine.structure import recalibrate_bn  # new in issue 16

    model = copy.deepcopy(session.model).train()
    weights = {n: p.clone() for n, p in model.named_parameters()}
    assert recalibrate_bn(model, session.data.train.x)
    assert all(torch.equal(p, weights[n]) for n, p in model.named_parameters())
    assert all(m.training for m in model.modules())  # modes and momenta come back
    assert all(m.momentum == 0.1 for m in model.modules() if hasattr(m, "momentum"))


def _masks(session: Session) -> dict[str, torch.Tensor]:
    return {n: m.clone() for n, m in session.slot.masks.items()}


@pytest.mark.parametrize("kwargs", [{"sparsity": 0.9}, {"sparsity": 0.9, "scope": "global"},
                                    {"sparsity": 0.5, "structured": True}])
def test_repruning_after_fine_tuning_is_idempotent(kwargs):
    """Prune, fine-tune (commit), prune with the same setting: the same masks (stale
    pruned values no longer outrank fine-tuned survivors). Higher sparsity prunes only
    survivors; lower sparsity brings the pruned entries back with their old values."""
    session = Session("digits", "mlp", device="cpu")
    session.prune(**kwargs)
    committed = _masks(session)
    old_base = {n: t.clone() for n, t in session.slot.base.items()}
    session.train(epochs=3, lr=1e-3)
    again = session.prune(**kwargs)
    for name, mask in committed.items():
        assert torch.equal(session.slot.masks[name], mask), name
    assert again.sparsity == pytest.approx(session.snapshot().sparsity)
    higher = {**kwargs, "sparsity": min(kwargs["sparsity"] + 0.05, 0.99)}
    session.prune(**higher)
    for name, mask in committed.items():
        assert not (session.slot.masks[name] & ~mask).any(), name  # nothing pruned comes back
    lower = {**kwargs, "sparsity": kwargs["sparsity"] / 2}
    session.prune(**lower)
    params = dict(session.model.named_parameters())
    revived = 0
    for name, mask in committed.items():
        back = session.slot.masks[name] & ~mask  # pruned by the job, kept now
        assert torch.equal(params[name][back], old_base[name][back]), name
        revived += int(back.sum())
    assert revived > 0


def test_repruning_rule_forgets_the_job_after_undo():
    """After undo the base is the pre-job one: masks are rebuilt from it as before."""
    session = Session("digits", "mlp", device="cpu")
    session.prune(sparsity=0.9)
    session.train(epochs=1)
    session.undo()
    assert session.slot.committed is None
    rebuilt = session.prune(sparsity=0.9)
    assert rebuilt.sparsity == pytest.approx(0.9, abs=1e-3)
