"""Distillation: the loss against the formula, Hinton's gradient scale, the teacher cache,
students side by side with the teacher, and the benefit of distilling on digits."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from explorer import Session
from explorer.engine.distill import (
    TeacherCache,
    agreement,
    fingerprint,
    kd_loss,
    regression_kd_loss,
    student_from,
)
from explorer.models.zoo import MLP, build_model

torch.set_num_threads(1)


def _logits(seed: int, n: int = 8, k: int = 10) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, k, generator=g) * 3, torch.randn(n, k, generator=g) * 3,
            torch.randint(0, k, (n,), generator=g))


def _by_hand(zs, zt, y, T, a, t_squared):
    """The formula written out: per-example sums, then the batch mean."""
    n = len(zs)
    ce = -sum(math.log(math.exp(zs[i][y[i]]) / sum(math.exp(v) for v in zs[i]))
              for i in range(n)) / n
    kl = 0.0
    for i in range(n):
        pt = [math.exp(v / T) for v in zt[i]]
        ps = [math.exp(v / T) for v in zs[i]]
        pt = [p / sum(pt) for p in pt]
        ps = [p / sum(ps) for p in ps]
        kl += sum(p * math.log(p / q) for p, q in zip(pt, ps))
    kl /= n
    return (1 - a) * ce + a * (T * T if t_squared else 1.0) * kl


@pytest.mark.parametrize("T", [1.0, 2.0, 4.0, 20.0])
@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.7, 1.0])
@pytest.mark.parametrize("t_squared", [True, False])
def test_kd_loss_equals_the_formula(T, alpha, t_squared):
    """kd_loss = (1-a) CE + a [T^2] KL(p_t^T || p_s^T), batch mean, for several T and a."""
    zs, zt, y = _logits(int(T * 10 + alpha * 100))
    got = float(kd_loss(zs.double(), zt.double(), y, T, alpha, t_squared))
    want = _by_hand(zs.double().tolist(), zt.double().tolist(), y.tolist(), T, alpha,
                    t_squared)
    assert got == pytest.approx(want, rel=1e-9, abs=1e-12)


def test_soft_gradient_times_t_squared_is_constant_for_large_t():
    """Hinton's argument: the soft term's gradient shrinks like 1/T^2, so T^2 restores it."""
    zs, zt, y = _logits(0)
    zs, zt = zs - zs.mean(1, keepdim=True), zt - zt.mean(1, keepdim=True)  # zero-mean logits

    def grad_norm(T, t_squared):
        z = zs.clone().requires_grad_(True)
        kd_loss(z, zt, y, T, alpha=1.0, t_squared=t_squared).backward()
        return float(z.grad.norm())

    scaled = [grad_norm(T, False) * T * T for T in (20.0, 50.0, 100.0, 200.0)]
    assert max(scaled) / min(scaled) < 1.05
    with_factor = [grad_norm(T, True) for T in (20.0, 50.0, 100.0, 200.0)]
    assert max(with_factor) / min(with_factor) < 1.05
    # Without the factor the gradient really does vanish as T grows.
    assert grad_norm(200.0, False) < grad_norm(20.0, False) / 50


def test_regression_kd_loss_mixes_label_and_teacher_mse():
    """(1-a) MSE(s, y) + a MSE(s, t)."""
    s, t, y = torch.randn(5, 3), torch.randn(5, 3), torch.randn(5, 3)
    want = 0.4 * F.mse_loss(s, y) + 0.6 * F.mse_loss(s, t)
    assert float(regression_kd_loss(s, t, y, 0.6)) == pytest.approx(float(want))


def test_cache_is_keyed_by_sample_index_and_teacher_state():
    """A shuffled index gives that index's logits; any change of the teacher recomputes."""
    teacher = build_model("mlp", (64,), 10, seed=3)
    x = torch.randn(50, 64)
    cache = TeacherCache()
    order = torch.randperm(50, generator=torch.Generator().manual_seed(1))[:17]
    with torch.no_grad():
        want = teacher.eval()(x[order])
    assert torch.allclose(cache.lookup(teacher, "train", x, order), want)
    cache.lookup(teacher, "train", x, order.flip(0))
    assert cache.computations == 1  # one pass over the split, however it is indexed
    key = cache.key
    with torch.no_grad():
        teacher.layers[0].weight[0, 0] += 1.0
    with torch.no_grad():
        changed = teacher(x[order])
    assert torch.allclose(cache.lookup(teacher, "train", x, order), changed)
    assert cache.computations == 2 and cache.key != key
    assert fingerprint(teacher) == cache.key


def test_teacher_cache_invalidated_when_the_session_teacher_is_pruned():
    """Pruning the teacher changes its fingerprint, so the next distill recomputes."""
    session = Session("digits")
    session.students.distill(0.25, epochs=1)
    first = session.students.teacher_cache.computations
    session.students.distill(0.25, epochs=1)
    assert session.students.teacher_cache.computations == first  # same teacher: reused
    session.prune(sparsity=0.9)
    session.students.distill(0.25, epochs=1)
    assert session.students.teacher_cache.computations == 2 * first  # train and val splits again
    with torch.no_grad():
        want = session.model.eval()(session.data.train.x[:5])
    got = session.students.teacher_cache.lookup(session.model, "train", session.data.train.x,
                                  torch.arange(5))
    assert torch.allclose(got, want)


def test_mismatched_student_is_refused_and_state_unchanged():
    """A student with a different output size is refused, naming both sizes."""
    session = Session("digits")
    before = session.snapshot()
    with pytest.raises(ValueError, match="5 outputs.*teacher has 10"):
        session.students.distill(MLP(64, (16,), 5), epochs=1)
    assert session.slots.names == ("teacher",)
    assert session.snapshot().accuracy == before.accuracy
    with pytest.raises(ValueError, match="temperature"):
        session.students.distill(0.5, temperature=0.5)


def test_student_from_scales_the_teacher_and_copies_modules():
    """A float scales the hidden widths; a module is copied, not trained in place."""
    teacher = build_model("mlp", (64,), 10)
    student = student_from(teacher, 0.25, model_name="mlp", input_shape=(64,), n_outputs=10)
    assert student.hidden == (64, 32) and student.n_out == 10
    module = MLP(64, (8,), 10)
    copy = student_from(teacher, module, model_name="mlp", input_shape=(64,), n_outputs=10)
    assert copy is not module
    assert torch.equal(copy.layers[0].weight, module.layers[0].weight)


def test_select_switches_what_prune_acts_on():
    """Teacher and student side by side: pruning the selected one leaves the other."""
    session = Session("digits")
    session.students.distill(0.5, epochs=1)
    teacher_weight = session.model.layers[0].weight.detach().clone()
    snap = session.select("student")
    assert snap.params < 50826 and session.selected == "student"
    assert session.prune(sparsity=0.5).sparsity == pytest.approx(0.5, abs=1e-3)
    session.select("teacher")
    assert torch.equal(session.model.layers[0].weight, teacher_weight)
    assert session.snapshot().sparsity == 0.0
    session.select("student")
    assert session.snapshot().sparsity == pytest.approx(0.5, abs=1e-3)
    assert session.slot.undo_stack == [] and session.slot.masks is not None
    with pytest.raises(ValueError, match="model slot"):
        session.select("nobody")


def test_soft_targets_are_distributions_with_their_kl():
    """Both softened distributions sum to 1; KL >= 0; higher T flattens the teacher."""
    session = Session("digits")
    with pytest.raises(ValueError, match="no student"):
        session.students.soft_targets(0, 4.0)
    session.students.distill(0.25, epochs=2)
    cold, hot = session.students.soft_targets(7, 1.0), session.students.soft_targets(7, 10.0)
    for view in (cold, hot):
        assert sum(view["teacher"]) == pytest.approx(1.0, abs=1e-5)
        assert sum(view["student"]) == pytest.approx(1.0, abs=1e-5)
        assert view["kl"] >= 0.0
    assert max(hot["teacher"]) < max(cold["teacher"])
    with pytest.raises(ValueError, match="index"):
        session.students.soft_targets(10_000, 4.0)


def test_regression_distils_by_mse_without_temperature():
    """Regression: a temperature is refused with the reason; MSE distillation runs."""
    session = Session("toy-regression", pretrained=False)
    session.train(epochs=2)
    with pytest.raises(ValueError, match="does not apply to regression"):
        session.students.distill(0.5, temperature=4.0)
    snap = session.students.distill(0.5, epochs=2)
    assert snap.extra["mse"] is not None and snap.extra["teacher_agreement"] is None
    assert session.select("student").task == "regression"


@pytest.mark.slow
def test_distilled_quarter_student_agrees_with_teacher_more_than_alone():
    """Digits, T = 4: distilled student agrees with the teacher more often (val + test)."""
    session = Session("digits")  # the shipped trained teacher
    x = torch.cat([session.data.val.x, session.data.test.x])
    with torch.no_grad():
        teacher_out = session.model.eval()(x)
    wins = 0
    for seed in (1, 2):
        session.students.train_alone(0.25, epochs=80, seed=seed)
        session.students.distill(0.25, temperature=4.0, epochs=80, seed=seed)
        with torch.no_grad():
            alone = agreement(session.slots.model("student_alone").eval()(x), teacher_out)
            taught = agreement(session.slots.model("student").eval()(x), teacher_out)
        wins += taught > alone
    assert wins == 2


def test_same_student_init_for_alone_and_distilled():
    """train_student_alone and distill start from identical weights (fair comparison)."""
    session = Session("digits")
    module = nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))
    session.students.train_alone(module, epochs=1, labelled=1.0)  # all labels: same rows
    session.students.distill(module, epochs=1, alpha=0.0, labelled=1.0)  # alpha 0: labels only
    a = session.slots.model("student_alone").state_dict()
    b = session.slots.model("student").state_dict()
    assert all(torch.allclose(a[k], b[k]) for k in a)


def test_fingerprint_reads_zero_dim_buffers():
    """A BatchNorm's 0-dim num_batches_tracked is hashed too (it raised before), and a
    change of it changes the fingerprint."""
    from torch import nn

    net = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
    before = fingerprint(net)
    net[1].num_batches_tracked += 1
    assert fingerprint(net) != before
