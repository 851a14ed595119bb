"""Floors and model figures for explorer.bench.suite: bare-PyTorch baselines and latencies."""

from __future__ import annotations

import copy
import math
import statistics
import threading
import time
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from ..data.datasets import Split

if TYPE_CHECKING:
    from ..session.session import Session


def mlp_session(n_params: float):
    """A digits MLP with two equal hidden layers and about `n_params` parameters (untrained)."""
    from ..session.session import Session

    # params = h^2 + 76 h + 10 for 64 -> h -> h -> 10 with biases
    h = max(1, round((-76 + math.sqrt(76 ** 2 + 4 * (n_params - 10))) / 2))
    return Session("digits", "mlp", hidden=(h, h), device="cpu", pretrained=False)


def params_label(n: float) -> str:
    return f"{n / 1e6:g}M"


class FloorPrune:
    """The unavoidable work of a slider move, in bare PyTorch, on a copy of the model.

    One pass over the weights builds the masks (|w| >= cut, the cut looked up in magnitudes
    sorted once beforehand), the masked weights are written, and one forward pass runs over
    the validation split under inference_mode.
    """

    def __init__(self, session: Session) -> None:
        self.model = copy.deepcopy(session.model).eval()
        named = dict(self.model.named_parameters())
        self.base = {n: session.slot.base[n] for n in session.slot.prunable}
        self.params = {n: named[n] for n in session.slot.prunable}
        self.sorted = {n: torch.sort(w.abs().flatten())[0] for n, w in self.base.items()}
        self.x = session.data.val.x

    def cut(self, name: str, sparsity: float) -> float:
        mags = self.sorted[name]
        k = round(sparsity * mags.numel())
        return float(mags[k]) if k < mags.numel() else math.inf

    def __call__(self, sparsity: float) -> float:
        cuts = {n: self.cut(n, sparsity) for n in self.base}  # the lookup, not timed
        start = time.perf_counter()
        with torch.inference_mode():
            for name, w in self.base.items():
                mask = w.abs() >= cuts[name]
                torch.mul(w, mask, out=self.params[name])
            self.model(self.x)
        return time.perf_counter() - start


def bare_epochs(model: nn.Module, train: Split, masks: dict[str, torch.Tensor], epochs: int,
                lr: float, batch_size: int = 64, seed: int = 0) -> float:
    """Seconds for a bare Adam loop that keeps `masks` by an in-place multiply per step.

    It runs in a worker thread, as the app's job does: on a busy machine torch's intra-op
    pool behaves differently from the main thread, which would skew the ratio.
    """
    out: list[float] = []
    worker = threading.Thread(target=lambda: out.append(
        _bare_loop(model, train, masks, epochs, lr, batch_size, seed)))
    worker.start()
    worker.join()
    if not out:
        raise RuntimeError("the bare training loop failed (see the thread's traceback)")
    return out[0]


def _bare_loop(model: nn.Module, train: Split, masks: dict[str, torch.Tensor], epochs: int,
               lr: float, batch_size: int, seed: int) -> float:
    params = dict(model.named_parameters())
    float_masks = {n: m.to(params[n].dtype) for n, m in masks.items()}
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    n = len(train)
    start = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator).to(train.x.device)
        for i in range(0, n, batch_size):
            index = order[i:i + batch_size]
            loss = F.cross_entropy(model(train.x[index]), train.y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                for name, mask in float_masks.items():
                    params[name].mul_(mask)
    if train.x.is_cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start


def _block(model: nn.Module, x: torch.Tensor, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        model(x)
    return (time.perf_counter() - start) / calls


@torch.inference_mode()
def latency_pair(slow: nn.Module, fast: nn.Module, x: torch.Tensor, pairs: int,
                 calls: int) -> float:
    """Median over pairs of latency(slow) / latency(fast), each a block of `calls` calls."""
    slow.eval()
    fast.eval()
    _block(slow, x, calls)  # warm-up
    _block(fast, x, calls)
    return statistics.median(_block(slow, x, calls) / _block(fast, x, calls)
                             for _ in range(pairs))


def structured_figures(tiny: bool, quick: bool = False) -> dict:
    """50% structured shrink vs dense (batch 256 and 1); 90% unstructured mask vs dense.

    The headline keys are lenet300 on mnist-5k; a full run adds lenet5 (suffix _lenet5).
    """
    from ..session.session import Session

    pairs, calls = (3, 3) if tiny else (7, 10) if quick else (9, 10)
    out = {}
    models = ("lenet300",) if tiny or quick else ("lenet300", "lenet5")
    for name in models:
        session = Session("digits" if tiny else "mnist-5k", name, device="cpu",
                          pretrained=False)
        x = session.data.val.x
        x256 = x[:256] if len(x) >= 256 else x.repeat(256 // len(x) + 1, 1)[:256]
        dense = copy.deepcopy(session.model)
        session.prune(sparsity=0.5, structured=True)
        small = session.shrink()
        suffix = "" if name == "lenet300" else f"_{name}"
        out[f"structured_speedup_b256{suffix}"] = latency_pair(dense, small, x256, pairs, calls)
        out[f"structured_speedup_b1{suffix}"] = latency_pair(dense, small, x256[:1], pairs,
                                                             calls * 5)
        session.prune(sparsity=0.9)
        out[f"masked_speedup_b256{suffix}"] = latency_pair(dense, session.model, x256, pairs,
                                                           calls)
    return out
