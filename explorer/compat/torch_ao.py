"""The real int8 path (issue 31): torch.ao dynamic quantization of Linear layers.

Written against torch 2.13.0, where `torch.ao.quantization.quantize_dynamic` still runs
int8 kernels on the CPU (`quantized::linear_dynamic`: weights int8 per output channel,
activations quantized per batch on the fly) but is deprecated in favour of the separate
torchao package (not installed here). It warns on every call; we silence exactly those
deprecation warnings around our calls. The canary checks the pieces we use, so a torch
that drops them fails loudly here and not deep inside a benchmark.

Only Linear layers get int8 kernels this way (convolutions stay fp32), and only uniform
quantization maps onto them: k-means codebooks have no int8 kernel.
"""

from __future__ import annotations

import copy
import warnings
from typing import Any

from . import Canary, missing

DIST, WRITTEN_FOR = "torch", "2.13.0"
INT8_OP = "quantized::linear_dynamic"
ENGINES = ("x86", "fbgemm", "qnnpack", "onednn")


def check_dynamic() -> None:
    import torch

    ao = getattr(torch, "ao", None)
    quantization = getattr(ao, "quantization", None) if ao is not None else None
    if quantization is None or not hasattr(quantization, "quantize_dynamic"):
        missing(DIST, WRITTEN_FOR, "torch.ao.quantization.quantize_dynamic")
    if not hasattr(quantization, "per_channel_dynamic_qconfig"):
        missing(DIST, WRITTEN_FOR, "torch.ao.quantization.per_channel_dynamic_qconfig")
    if not hasattr(torch.ops.quantized, "linear_dynamic"):
        missing(DIST, WRITTEN_FOR, f"the {INT8_OP} kernel")
    if not set(ENGINES) & set(torch.backends.quantized.supported_engines):
        missing(DIST, WRITTEN_FOR, f"a quantized engine among {ENGINES}",
                f"supported: {torch.backends.quantized.supported_engines}")


def int8_dynamic(model: Any) -> Any:
    """A copy of `model` whose Linear layers run int8 kernels (per-channel weights)."""
    import torch
    from torch import nn

    check_dynamic()
    quantization = torch.ao.quantization
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*deprecated")
        warnings.filterwarnings("ignore", message=".*quantize_per_channel.*deprecated")
        warnings.filterwarnings("ignore", message=".*torch.ao.quantization.*")
        return quantization.quantize_dynamic(
            copy.deepcopy(model).cpu().eval(),
            {nn.Linear: quantization.per_channel_dynamic_qconfig}, dtype=torch.qint8)


def kernels_run(model: Any, x: Any) -> list[str]:
    """The quantized operators a forward pass of `model` on `x` ran (torch.profiler)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    with torch.no_grad(), profile(activities=[ProfilerActivity.CPU]) as prof:
        model(x)
    return sorted({e.key for e in prof.key_averages() if e.key.startswith("quantized::")})


CANARIES = [
    Canary(DIST, WRITTEN_FOR, "torch.ao.quantization.quantize_dynamic and "
           f"{INT8_OP}", "the real int8 model (bench int8_speedup_*)", required=False,
           check=check_dynamic),
]
