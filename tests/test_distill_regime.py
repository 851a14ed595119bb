"""Distillation regimes (issue 25): which rows each student's loss sees, the loss on
unlabelled rows, the hard-label student, dark knowledge, calibration and the bias
correction chosen on validation only."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from explorer import Session
from explorer.data.datasets import Split
from explorer.engine import dark
from explorer.engine.regime import (
    NO_LABEL,
    Regime,
    masked_targets,
    partial_kd_loss,
    select_rows,
)
from explorer.session import session_jobs

torch.set_num_threads(1)
STEPS = 12  # short budgets: these tests check rows and formulas, not accuracy


@pytest.fixture(scope="module")
def session() -> Session:
    return Session("digits")  # the shipped teacher


def _spy(monkeypatch) -> list[torch.Tensor]:
    """Record the original training rows behind every batch the student's loss sees."""
    seen: list[torch.Tensor] = []
    real = session_jobs.train_steps

    def spying(model, train, val, task, config, **kw):
        loss_fn = kw.get("loss_fn")
        rows = getattr(train, "rows", torch.arange(len(train)))

        def watched(out, x, y, index):
            seen.append(rows[index].cpu())
            return loss_fn(out, x, y, index) if loss_fn else \
                torch.nn.functional.cross_entropy(out, y)

        kw["loss_fn"] = watched
        return real(model, train, val, task, config, **kw)

    monkeypatch.setattr(session_jobs, "train_steps", spying)
    return seen


def test_regime_validates_and_describes():
    """Bad fractions and classes are ValueErrors naming the value; the words follow."""
    for bad in (0.0, -0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="labelled"):
            Regime(bad)
    with pytest.raises(ValueError, match="leave_out"):
        Regime(0.5, leave_out=-1)
    assert Regime().describe() == "all labels"
    text = Regime(0.1, 3).describe()
    assert "10%" in text and "soft answers for all" in text and "3 left out" in text


@settings(max_examples=40, deadline=None)
@given(st.floats(0.01, 1.0), st.integers(0, 4), st.integers(0, 2**31),
       st.one_of(st.none(), st.integers(0, 4)))
def test_select_rows_is_stratified_seeded_and_leaves_the_class_out(frac, _, seed, leave):
    """Each class keeps round(f * n_c) (at least one) labelled rows, chosen by the seed
    alone; the left-out class is in neither set."""
    g = torch.Generator().manual_seed(seed % 1000)
    y = torch.randint(0, 5, (300,), generator=g)
    regime = Regime(frac, leave, seed)
    rows = select_rows(regime, y, 5)
    again = select_rows(regime, y, 5)
    assert torch.equal(rows.labelled, again.labelled)
    assert set(rows.labelled.tolist()) <= set(rows.transfer.tolist())
    for cls in range(5):
        n_c = int((y == cls).sum())
        got = int((y[rows.labelled] == cls).sum())
        if cls == leave:
            assert got == 0 and int((y[rows.transfer] == cls).sum()) == 0
        elif n_c:
            assert got == max(1, round(frac * n_c))


def test_partial_kd_loss_by_hand():
    """Unlabelled rows add the soft term only: L = (1-a) mean_lab CE + a T^2 mean_all KL."""
    g = torch.Generator().manual_seed(1)
    zs, zt = torch.randn(6, 4, generator=g).double(), torch.randn(6, 4, generator=g).double()
    y = torch.tensor([2, NO_LABEL, 0, NO_LABEL, NO_LABEL, 3])
    T, a = 3.0, 0.6
    ce = [-math.log(math.exp(zs[i, y[i]]) / sum(math.exp(v) for v in zs[i].tolist()))
          for i in (0, 2, 5)]
    kl = 0.0
    for i in range(6):
        pt = torch.softmax(zt[i] / T, 0).tolist()
        ps = torch.softmax(zs[i] / T, 0).tolist()
        kl += sum(p * math.log(p / q) for p, q in zip(pt, ps))
    want = (1 - a) * sum(ce) / 3 + a * T * T * kl / 6
    assert float(partial_kd_loss(zs, zt, y, T, a)) == pytest.approx(want, rel=1e-9)
    none = torch.full((6,), NO_LABEL)
    assert float(partial_kd_loss(zs, zt, none, T, a)) == pytest.approx(a * T * T * kl / 6,
                                                                       rel=1e-9)


def test_each_student_sees_only_its_rows(session, monkeypatch):
    """Alone: the labelled rows only; distilled and hard: the transfer set; no row of the
    left-out class reaches any student's loss; the hidden labels stay hidden."""
    seen = _spy(monkeypatch)
    regime = Regime(0.2, 3, seed=session.seed + 1)
    rows = select_rows(regime, session.data.train.y, 10)
    y = session.data.train.y.cpu()
    for train, expect in ((session.students.train_alone, rows.labelled),
                          (session.students.train_hard, rows.transfer),
                          (session.students.distill, rows.transfer)):
        seen.clear()
        train(0.25, steps=400, labelled=0.2, leave_out=3)
        union = torch.unique(torch.cat(seen))
        assert set(union.tolist()) <= set(expect.tolist())
        assert len(union) >= 0.9 * len(expect)  # the budget covers (nearly) all of them
        assert not bool((y[union] == 3).any())
    assert session.students.regime("student") == regime
    masked = masked_targets(session.data.train.y, rows.labelled).cpu()
    assert int((masked != NO_LABEL).sum()) == len(rows.labelled)


def test_every_student_gets_the_same_budget(session):
    """Alone trains as many optimizer steps as distilled (it cycles its labelled rows)."""
    counts = []
    students = session.students
    for train in (students.train_alone, students.train_hard, students.distill):
        before = session.jobs.total_steps
        train(0.25, epochs=1, labelled=0.1)
        counts.append(session.jobs.total_steps - before)
    transfer = len(session.data.train)
    assert counts == [math.ceil(transfer / 64)] * 3


def test_hard_student_gets_teacher_argmax_where_unlabelled(session, monkeypatch):
    """The third student's targets: labels where labelled, the teacher's argmax elsewhere."""
    targets: list[torch.Tensor] = []
    real = session_jobs.train_steps

    def spying(model, train, val, task, config, **kw):
        targets.append(train.y.cpu())
        targets.append(train.rows.cpu())
        return real(model, train, val, task, config, **kw)

    monkeypatch.setattr(session_jobs, "train_steps", spying)
    session.students.train_hard(0.25, steps=2, labelled=0.1)
    y, rows = targets
    teacher = session.students.teacher_cache.outputs(session.slots.model("teacher"), "train",
                                            session.data.train.x).argmax(-1).cpu()
    labelled = select_rows(Regime(0.1, seed=session.seed + 1), session.data.train.y, 10).labelled
    is_lab = torch.isin(rows, labelled)
    assert torch.equal(y[is_lab], session.data.train.y.cpu()[rows[is_lab]])
    assert torch.equal(y[~is_lab], teacher[rows[~is_lab]])


def test_full_regime_is_the_plain_path(session, monkeypatch):
    """labelled=1 and nothing left out trains on the whole training split, as before."""
    seen = _spy(monkeypatch)
    session.students.distill(0.25, steps=30, labelled=1.0)
    assert len(torch.unique(torch.cat(seen))) > 0.9 * min(30 * 64, len(session.data.train))
    assert session.students.regime("student") == Regime(1.0, None, session.seed + 1)


def test_dark_knowledge_matrix_by_hand(session):
    """Row c = mean over class-c validation examples of softmax(teacher logits / T)."""
    logits = session.slots.model("teacher")(session.data.val.x).detach()
    y = session.data.val.y
    for T in (1.0, 4.0):
        got = torch.tensor(session.students.dark_knowledge(T)["matrix"])
        for c in (0, 3, 9):
            rows = [torch.softmax(logits[i] / T, 0) for i in range(len(y)) if y[i] == c]
            assert torch.allclose(got[c], torch.stack(rows).mean(0), atol=1e-5)
        assert torch.allclose(got.sum(1), torch.ones(10), atol=1e-5)


def test_ece_by_hand():
    """ECE = sum over bins of (n_b / n) |acc_b - conf_b| with equal-width bins."""
    probs = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.45, 0.55]])
    y = torch.tensor([0, 1, 1, 0])
    got = dark.calibration(probs.log(), y, bins=2)
    # bin (0.5, 1]: all four; confidences 0.9 0.6 0.7 0.55, correct 1 0 1 0
    conf = (0.9 + 0.6 + 0.7 + 0.55) / 4
    assert got["ece"] == pytest.approx(abs(0.5 - conf))
    got = dark.calibration(probs.log(), y, bins=10)
    want = (abs(1 - 0.9) + abs(0 - 0.6) + abs(1 - 0.7) + abs(0 - 0.55)) / 4
    assert got["ece"] == pytest.approx(want, abs=1e-6)
    assert sum(got["bins"]["count"]) == 4


def test_calibration_and_per_class(session):
    session.students.distill(0.25, steps=20)
    cal = session.students.calibration("student")
    assert 0 <= cal["ece"] <= 1 and 0 <= cal["teacher_agreement"] <= 1
    per = session.students.per_class_accuracy("student", "val")
    logits = session.slots.model("student")(session.data.val.x).detach()
    y = session.data.val.y
    assert per[3] == pytest.approx(float((logits[y == 3].argmax(-1) == 3).float().mean()))
    with pytest.raises(ValueError, match="bias"):
        session.students.per_class_accuracy("student", bias={11: 1.0})
    with pytest.raises(ValueError, match="slot"):
        session.students.calibration("nobody")


def test_bias_is_chosen_on_validation_only(session, monkeypatch):
    """Perturbing the test split changes the test readouts, never the chosen bias."""
    session.students.distill(0.25, steps=200, labelled=0.5, leave_out=3)
    first = session.students.bias_correction()
    assert first["class"] == 3
    data = session.data
    noisy = Split(data.test.x + torch.randn_like(data.test.x) * 5, data.test.y.flip(0))
    monkeypatch.setattr(session, "data", replace(data, test=noisy))
    second = session.students.bias_correction()
    assert second["bias"] == first["bias"]
    assert second["val_accuracy_after"] == first["val_accuracy_after"]
    assert second["per_class_before"] != first["per_class_before"]
    val_logits = session.slots.model("student")(data.val.x).detach()
    assert first["bias"] == dark.choose_bias(val_logits, data.val.y, 3)


def test_choose_bias_picks_the_best_validation_offset():
    """A class whose logit is 2 too low everywhere gets an offset near 2 back."""
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 4, (400,), generator=g)
    logits = torch.nn.functional.one_hot(y, 4).float() * 3 + torch.randn(400, 4, generator=g)
    logits[:, 1] -= 2.0
    assert 1.0 <= dark.choose_bias(logits, y, 1) <= 3.5


def test_regimes_refused_outside_classification():
    lm = Session("toy-regression", "mlp", pretrained=False)
    with pytest.raises(ValueError, match="labelled"):
        lm.students.distill(0.5, steps=2, labelled=0.5)
    with pytest.raises(ValueError, match="leave_out"):
        Session("digits").students.distill(0.25, steps=2, leave_out=10)


def test_hard_student_and_regime_survive_save_and_load(tmp_path):
    """The third slot and the regime it trained under come back from a saved session."""
    s = Session("digits")
    s.students.train_hard(steps=5, labelled=0.5, leave_out=3)
    s.save(tmp_path / "s.pt")
    back = Session.load(tmp_path / "s.pt")
    assert back.students.regime("student_hard") == Regime(0.5, 3, s.seed + 1)
    assert back.students.regime("teacher") is None and back.students.regime("student") is None
