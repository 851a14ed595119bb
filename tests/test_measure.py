"""Metrics that do not flatter: oracles against scikit-learn, stored bytes against real
tensors, FLOPs against the hand count, and what measure() reports."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support
from torch import nn

from explorer import Session
from explorer.engine import measure
from explorer.models.zoo import MLP

torch.set_num_threads(1)


def test_precision_recall_f1_equal_sklearn():
    """Macro P/R/F1 and the confusion matrix are scikit-learn's, classes never predicted too."""
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 5, (200,), generator=g)
    out = torch.randn(200, 5, generator=g)
    out[torch.arange(200), y] += 1.0
    out[:, 4] -= 100.0  # class 4 is never predicted: zero_division must not crash
    got = measure.classification_metrics(out, y, 5)
    p, r, f, _ = precision_recall_fscore_support(y.numpy(), out.argmax(1).numpy(),
                                                 labels=range(5), average="macro",
                                                 zero_division=0)
    assert (got["precision"], got["recall"], got["f1"]) == pytest.approx((p, r, f))
    assert got["confusion"] == confusion_matrix(y.numpy(), out.argmax(1).numpy(),
                                                labels=range(5)).tolist()


@pytest.mark.parametrize("density", [1.0, 0.6, 0.2, 0.01, 0.0])
@pytest.mark.parametrize("shape", [(37, 29), (8, 3, 3, 3), (13,)])
def test_bytes_sparse_equals_stored_tensors(density, shape):
    """The reported bytes are exactly those of the tensors stored, and they decode back."""
    g = torch.Generator().manual_seed(int(density * 100) + len(shape))
    w = torch.randn(shape, generator=g)
    w[torch.rand(shape, generator=g) >= density] = 0.0
    stored = measure.sparse_encode(w)
    nbytes = sum(t.numel() * t.element_size() for t in stored.values())
    assert measure.sparse_format(w)[1] == nbytes
    assert torch.equal(measure.sparse_decode(stored, w.shape), w)
    assert all(t.dtype in (torch.float32, torch.int32, torch.uint8) for t in stored.values())


def test_sparse_format_picks_the_smallest_encoding():
    """Dense when nothing is pruned, bitmask at moderate sparsity, CSR when very sparse."""
    w = torch.randn(100, 100)
    assert measure.sparse_format(w) == ("dense", 40_000)
    w[:, :50] = 0.0  # 5,000 nonzeros: bitmask 1,250 + 20,000 < CSR 40,000 + 404
    assert measure.sparse_format(w) == ("bitmask", 21_250)
    w[:, 50:99] = 0.0  # 100 nonzeros: CSR 800 + 404 < bitmask 1,250 + 400
    assert measure.sparse_format(w) == ("csr", 1_204)


def test_model_bytes_add_up_over_the_state_dict():
    """bytes_dense = 4 x floating entries; bytes_sparse sums the per-tensor encodings."""
    model = MLP(64, (32,), 10)
    with torch.no_grad():
        model.layers[0].weight[:, :60] = 0.0
    assert measure.bytes_dense(model) == 4 * sum(p.numel() for p in model.parameters())
    stored = [measure.sparse_encode(t) for t in model.state_dict().values()]
    assert measure.bytes_sparse(model) == sum(
        t.numel() * t.element_size() for s in stored for t in s.values())
    assert measure.bytes_sparse(model) < measure.bytes_dense(model)


def test_pack_bits_round_trip():
    """The bitmask is one bit per entry, MSB first, padded to whole bytes."""
    mask = torch.tensor([1, 0, 1, 1, 0, 0, 0, 0, 1], dtype=torch.bool)
    packed = measure.pack_bits(mask)
    assert packed.tolist() == [0b10110000, 0b10000000]
    assert torch.equal(measure.unpack_bits(packed, 9), mask)


def test_flops_match_the_hand_count_and_scale_with_density():
    """Dense FLOPs = 2 x weights of an MLP; effective counts only the nonzero ones."""
    model = MLP(64, (32, 16), 10)
    weights = 64 * 32 + 32 * 16 + 16 * 10
    dense, effective = measure.flops(model, torch.randn(3, 64))
    assert dense == effective == 2 * weights
    with torch.no_grad():
        model.layers[0].weight[:, :48] = 0.0  # 3/4 of the first layer
    dense, effective = measure.flops(model, torch.randn(3, 64))
    assert dense == 2 * weights
    assert effective == 2 * (weights - 48 * 32)


def test_flops_of_a_conv_layer():
    """A conv's FLOPs: 2 x C_in x k x k x C_out x H_out x W_out, halved at half density."""
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))
    dense, _ = measure.flops(model, torch.randn(1, 1, 8, 8))
    conv = 2 * 9 * 4 * 36
    assert dense == conv + 2 * 144 * 2
    with torch.no_grad():
        model[0].weight[:2] = 0.0
    assert measure.flops(model, torch.randn(1, 1, 8, 8))[1] == conv // 2 + 2 * 144 * 2


def test_measure_reports_every_metric_and_the_plain_note():
    """measure(): P/R/F1, confusion, bytes, FLOPs, latency on request, an honest note."""
    session = Session("digits")
    snap = session.prune(sparsity=0.9)
    assert "bytes_dense" not in snap.to_dict()  # the slider's snapshot stays cheap
    d = session.measure("test", latency=True).to_dict()
    for key in ("precision", "recall", "f1", "confusion", "bytes_dense", "bytes_sparse",
                "bytes_shrunk", "flops_dense", "flops_effective", "latency_ms_b1",
                "latency_ms_b256", "speedup_note", "teacher_agreement", "mse"):
        assert key in d
    assert d["bytes_dense"] == 4 * d["params"]
    assert d["bytes_sparse"] < d["bytes_dense"] / 3
    assert d["flops_effective"] < 0.2 * d["flops_dense"]
    assert "no speedup" in d["speedup_note"] and "90.0%" in d["speedup_note"]
    assert d["latency_ms_b1"] > 0 and d["latency_ms_b256"] > 0
    assert np.array(d["confusion"]).sum() == len(session.data.test)
    cheap = session.measure("val", full=False).to_dict()
    assert cheap["bytes_sparse"] == session.measure("val").to_dict()["bytes_sparse"]
    assert "flops_dense" not in cheap


def test_student_measure_has_teacher_agreement():
    """A student's agreement is the top-1 match rate with the teacher's outputs."""
    session = Session("digits")
    session.students.distill(0.25, epochs=3)
    d = session.measure("test", slot="student").to_dict()
    student = session.slots.model("student").eval()
    with torch.no_grad():
        same = (student(session.data.test.x).argmax(1)
                == session.model.eval()(session.data.test.x).argmax(1))
    assert d["teacher_agreement"] == pytest.approx(float(same.float().mean()))
    assert session.selected == "teacher"  # measuring another slot restores the selection
    assert not math.isnan(d["f1"])
