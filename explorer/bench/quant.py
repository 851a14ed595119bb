"""Issue 31's figures: a bits move on the default model, and the real int8 model's
latency against fp32 (torch.ao dynamic quantization, explorer.compat.torch_ao).

- quant_slider_ms: median of Session.quantize moves over the bits (k-means, the default
  digits MLP, evaluated), as the app's bits control calls it, with torch's default
  threads (the session's lock then runs a small model's work on one: engine.threads);
  quant_slider_ms_10m: the same on the 10M-parameter MLP (bench.models.mlp_session),
  its first answer included. Each prints the load average beside it (a busy machine
  slows a move several times over).
- int8_speedup_b1 / _b64: median of paired fp32/int8 latency ratios on LeNet-300-100
  (mnist-5k shape), batch 1 and 64; _10m: the 10M MLP. Reported as measured, even below 1
  (at batch 1 the int8 path's per-call activation quantization can cost more than it saves).
"""

from __future__ import annotations

import os
import statistics
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch only for annotations: `explorer --help` never imports it
    import torch

    from ..session.session import Session

QUANT_KEYS = ("quant_slider_ms", "quant_over_prune_move", "quant_slider_ms_10m",
              "quant_over_prune_move_10m", "int8_speedup_b1", "int8_speedup_b64",
              "int8_speedup_b1_10m", "int8_speedup_b64_10m")
QUANT_TARGETS = {"quant_slider_ms": "<= 15", "quant_slider_ms_10m": "<= 300",
                 "int8_speedup_b1": "as measured (torch.ao dynamic int8)",
                 "int8_speedup_b64": "as measured (torch.ao dynamic int8)"}
BITS_MOVES = (8, 4, 6, 3, 5, 2, 4, 8)


def quant_moves(session: Session, moves: int) -> tuple[float, float]:
    """Median ms of `moves` bits moves (k-means), after one warm-up move, and its ratio
    to the median of as many sparsity moves of the same session (a busy machine slows
    both alike)."""
    session.quantize(bits=8)
    times, prunes = [], []
    for i in range(moves):
        start = time.perf_counter()
        session.quantize(bits=BITS_MOVES[i % len(BITS_MOVES)])
        times.append(time.perf_counter() - start)
    session.quantize(bits=32)
    for i in range(moves):
        start = time.perf_counter()
        session.prune(sparsity=0.1 * (1 + i % 8))
        prunes.append(time.perf_counter() - start)
    session.reset_pruning()
    ms = 1e3 * statistics.median(times)
    import torch

    from ..engine.threads import threads_for

    params = sum(p.numel() for p in session.model.parameters())
    print(f"  bits move {ms:.1f} ms p50 ({params:,} parameters; torch threads "
          f"{torch.get_num_threads()}, {threads_for(params)} for this model's work; "
          f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())})", flush=True)
    return ms, ms / (1e3 * statistics.median(prunes))


def int8_speedups(model: torch.nn.Module, x: torch.Tensor, pairs: int,
                  calls: int) -> tuple[float, float]:
    """fp32 / int8 latency ratio at batch 1 and 64 (medians over pairs)."""
    from ..compat.torch_ao import int8_dynamic
    from .models import latency_pair

    fp32 = model.cpu().eval()
    int8 = int8_dynamic(fp32)
    return (latency_pair(fp32, int8, x[:1].cpu(), pairs, calls),
            latency_pair(fp32, int8, x[:64].cpu(), pairs, calls))


def quant_figures(tiny: bool, quick: bool = False) -> dict:
    from ..session.session import Session
    from .models import mlp_session

    pairs, calls = (3, 3) if tiny else (7, 10) if quick else (9, 20)
    out: dict = {}
    default = Session("digits", "mlp", device="cpu")
    out["quant_slider_ms"], out["quant_over_prune_move"] = quant_moves(default,
                                                                       3 if tiny else 15)
    lenet = Session("digits" if tiny else "mnist-5k", "lenet300", device="cpu",
                    pretrained=False)
    b1, b64 = int8_speedups(lenet.model, lenet.data.val.x, pairs, calls)
    out.update(int8_speedup_b1=b1, int8_speedup_b64=b64)
    if not tiny:
        big = mlp_session(1e7)
        out["quant_slider_ms_10m"], out["quant_over_prune_move_10m"] = quant_moves(big, 3)
        b1, b64 = int8_speedups(big.model, big.data.val.x, pairs, 3)
        out.update(int8_speedup_b1_10m=b1, int8_speedup_b64_10m=b64)
    return out
