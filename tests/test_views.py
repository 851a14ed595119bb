"""The core's read-only views for front ends, and the training epoch size for tests."""

from __future__ import annotations

import pytest
import torch

from explorer import Session
from explorer.config import EPOCH_SIZE_ENV, TrainConfig
from explorer.session.views import oneshot_curve


@pytest.fixture(scope="module")
def session():
    return Session("digits", "mlp", device="cpu")


def test_oneshot_curve_leaves_the_session_exactly_as_it_was(session):
    """The curve is computed on a copy: weights, masks and settings are untouched."""
    session.prune(sparsity=0.5)
    state = {k: v.clone() for k, v in session.model.state_dict().items()}
    masks = {k: v.clone() for k, v in session.slot.masks.items()}
    points = oneshot_curve(session, levels=(0.0, 0.5, 0.9))
    assert [round(p.sparsity, 2) for p in points] == [0.0, 0.5, 0.9]
    assert points[0].accuracy > points[-1].accuracy
    assert all(torch.equal(v, session.model.state_dict()[k]) for k, v in state.items())
    assert all(torch.equal(v, session.slot.masks[k]) for k, v in masks.items())
    assert session.slot.prune_config.sparsity == 0.5
    at_half = session.snapshot().accuracy  # the same one-shot setting, on the session
    assert points[1].accuracy == pytest.approx(at_half, abs=1e-6)


def test_epoch_size_from_the_environment(monkeypatch):
    """$EXPLORER_EPOCH_SIZE caps every epoch at that many samples (a few batches)."""
    monkeypatch.setenv(EPOCH_SIZE_ENV, "128")
    assert TrainConfig().epoch_size == 128
    s = Session("digits", "lenet5", device="cpu", pretrained=False)
    events = []
    s.train(epochs=2, batch_size=64, on_event=events.append)
    assert events[-1].step == 4  # 2 epochs x 2 batches
    monkeypatch.setenv(EPOCH_SIZE_ENV, "many")
    with pytest.raises(ValueError, match="whole number"):
        TrainConfig()
    monkeypatch.delenv(EPOCH_SIZE_ENV)
    assert TrainConfig().epoch_size is None
