"""The real int8 path (issue 31): torch.ao dynamic quantization runs an int8 kernel, its
accuracy matches the app's uniform 8-bit figure within a stated tolerance, and its file
loads with weights_only=True."""

from __future__ import annotations

import io

import pytest
import torch

from explorer import Session
from explorer.compat.torch_ao import INT8_OP, int8_dynamic, kernels_run
from explorer.engine.train import evaluate

# The app's uniform 8-bit model quantizes weights only (symmetric, per output channel,
# scale max|w|/127); the int8 kernels also quantize each batch's activations and use
# torch's per-channel observer (scale max|w|/127.5). On the 359 validation images of
# digits one point is under 4 images; the two figures must agree within it.
TOLERANCE = 0.01


@pytest.fixture(scope="module")
def session():
    return Session("digits", "mlp")


def test_int8_kernel_runs_and_accuracy_matches_uniform_8bit(session):
    """The profiler sees quantized::linear_dynamic; accuracy within TOLERANCE of the
    app's uniform 8-bit figure; the fp32 session is untouched."""
    s = session
    fp32 = {n: p.detach().clone() for n, p in s.model.named_parameters()}
    app_8bit = s.quantize(bits=8, scheme="uniform").accuracy
    s.quantize(bits=32)
    int8 = int8_dynamic(s.model)
    assert INT8_OP in kernels_run(int8, s.data.val.x[:8])
    _, accuracy, _ = evaluate(int8, s.data.val, s.data.task)
    assert abs(accuracy - app_8bit) <= TOLERANCE
    assert all(torch.equal(fp32[n], p) for n, p in s.model.named_parameters())


def test_int8_file_loads_weights_only(session):
    """Saved int8 weights load with weights_only=True into a fresh int8 copy, which then
    gives the same outputs."""
    int8 = int8_dynamic(session.model)
    buf = io.BytesIO()
    torch.save(int8.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    other = int8_dynamic(Session("digits", "mlp", pretrained=False).model)
    other.load_state_dict(state)
    x = session.data.val.x[:16]
    with torch.no_grad():
        assert torch.equal(int8(x), other(x))
