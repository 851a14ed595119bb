"""Measurements that do not flatter: quality, stored bytes, FLOPs and measured latency.

Masking zeros weights but stores and multiplies them all the same; these numbers say
what compression really buys. Conventions:

- bytes_dense: every floating tensor of the state dict at fp32 (4 bytes per entry).
- bytes_sparse: each tensor in the smallest of three encodings, all with fp32 values and
  int32 indices: dense; CSR over the tensor viewed as (rows, -1) (values + column index
  per nonzero, plus rows + 1 row pointers); a bitmask (one bit per entry, packed into
  uint8) + the nonzero values. `sparse_encode` builds the stored tensors themselves, so
  the byte count is checked against real tensors.
- flops_dense: FLOPs of one example's forward pass, counted by
  torch.utils.flop_counter.FlopCounterMode (a multiply-add counts 2).
- flops_effective: what the model really has to compute. Whole channels that structured
  pruning removed are taken out first, i.e. the FLOPs are those of the shrunk model (a
  removed neuron's row and the next layer's idle input columns both go), so a 50%
  structured model reports exactly its shrunk copy's FLOPs; then each prunable layer's
  FLOPs are scaled by its fraction of nonzero weights, i.e. what a perfect sparse kernel
  would do on the unstructured zeros that remain.
"""

from __future__ import annotations

import functools
import math
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .prune import PRUNABLE_TYPES
from .structure import shrunk_if_structured

FP32_BYTES = 4
INDEX_BYTES = 4  # int32 indices: every tensor we meet has fewer than 2**31 entries
LATENCY_REPEATS = 20
LATENCY_WARMUP = 3
_BIT_WEIGHTS = torch.tensor([128, 64, 32, 16, 8, 4, 2, 1], dtype=torch.uint8)


def classification_metrics(outputs: torch.Tensor, targets: torch.Tensor,
                           n_classes: int) -> dict:
    """Macro precision / recall / F1 and the confusion matrix (rows: true class)."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    pred = outputs.argmax(-1).cpu().numpy().ravel()  # sequences: every position counts
    true = targets.cpu().numpy().ravel()
    labels = list(range(n_classes))
    precision, recall, f1, _ = precision_recall_fscore_support(
        true, pred, labels=labels, average="macro", zero_division=0)
    return {"precision": float(precision), "recall": float(recall), "f1": float(f1),
            "confusion": confusion_matrix(true, pred, labels=labels).tolist()}


# ----- bytes --------------------------------------------------------------------------
def _stored_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """The floating tensors a checkpoint of `model` holds (parameters and buffers)."""
    return {n: t.detach() for n, t in model.state_dict().items() if t.is_floating_point()}


def bytes_dense(model: nn.Module) -> int:
    return FP32_BYTES * sum(t.numel() for t in _stored_tensors(model).values())


def pack_bits(mask: torch.Tensor) -> torch.Tensor:
    """A bool tensor as uint8, eight entries per byte, most significant bit first."""
    flat = mask.flatten().to(torch.uint8).cpu()
    pad = (-flat.numel()) % 8
    flat = torch.cat([flat, flat.new_zeros(pad)]).view(-1, 8)
    return (flat * _BIT_WEIGHTS).sum(1, dtype=torch.int32).to(torch.uint8)


def unpack_bits(packed: torch.Tensor, numel: int) -> torch.Tensor:
    bits = (packed.view(-1, 1) & _BIT_WEIGHTS) != 0
    return bits.flatten()[:numel]


def _encoding_bytes(numel: int, rows: int, nnz: int) -> dict[str, int]:
    return {"dense": FP32_BYTES * numel,
            "csr": (FP32_BYTES + INDEX_BYTES) * nnz + INDEX_BYTES * (rows + 1),
            "bitmask": math.ceil(numel / 8) + FP32_BYTES * nnz}


def sparse_format(tensor: torch.Tensor) -> tuple[str, int]:
    """(the cheapest encoding's name, its bytes) for one tensor, without building it."""
    rows = tensor.shape[0] if tensor.dim() > 1 else 1
    sizes = _encoding_bytes(tensor.numel(), rows, int(torch.count_nonzero(tensor)))
    best = min(sizes, key=sizes.__getitem__)  # dict order breaks ties: dense first
    return best, sizes[best]


def sparse_encode(tensor: torch.Tensor) -> dict[str, torch.Tensor]:
    """The tensors stored for `tensor` in its cheapest encoding (see module doc)."""
    fmt, _ = sparse_format(tensor)
    t = tensor.detach().cpu().float()
    if fmt == "dense":
        return {"values": t.flatten().clone()}
    if fmt == "bitmask":
        mask = t.flatten() != 0
        return {"bitmask": pack_bits(mask), "values": t.flatten()[mask]}
    matrix = t.reshape(t.shape[0], -1) if t.dim() > 1 else t.reshape(1, -1)
    csr = matrix.to_sparse_csr()
    return {"values": csr.values().clone(), "col": csr.col_indices().to(torch.int32),
            "rowptr": csr.crow_indices().to(torch.int32)}


def sparse_decode(stored: dict[str, torch.Tensor], shape: torch.Size) -> torch.Tensor:
    """Inverse of sparse_encode."""
    numel = math.prod(shape)
    if "bitmask" in stored:
        out = torch.zeros(numel)
        out[unpack_bits(stored["bitmask"], numel)] = stored["values"]
        return out.view(shape)
    if "col" in stored:
        rows = stored["rowptr"].numel() - 1
        csr = torch.sparse_csr_tensor(stored["rowptr"].long(), stored["col"].long(),
                                      stored["values"], size=(rows, numel // rows))
        return csr.to_dense().view(shape)
    return stored["values"].view(shape)


def bytes_sparse(model: nn.Module) -> int:
    """Sum over stored tensors of the cheapest encoding's bytes."""
    return sum(sparse_format(t)[1] for t in _stored_tensors(model).values())


# ----- FLOPs --------------------------------------------------------------------------
def _count(fn: Callable[[], object]) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


@torch.no_grad()
def _density_flops(model: nn.Module, example: torch.Tensor) -> tuple[int, int]:
    """(dense, dense with each prunable layer scaled by its nonzero fraction)."""
    inputs: dict[nn.Module, torch.Tensor] = {}
    hooks = [m.register_forward_pre_hook(lambda mod, args: inputs.setdefault(mod, args[0]))
             for m in model.modules() if isinstance(m, PRUNABLE_TYPES)]
    was_training = model.training
    model.eval()
    try:
        dense = _count(lambda: model(example))
    finally:
        for hook in hooks:
            hook.remove()
    saved = 0.0
    for module, x in inputs.items():
        layer = _count(functools.partial(module, x))
        weight = module.get_parameter("weight")  # hooked modules are Linear/Conv
        density = float(torch.count_nonzero(weight)) / weight.numel()
        saved += layer * (1.0 - density)
    model.train(was_training)
    return dense, int(round(dense - saved))


@torch.no_grad()
def flops(model: nn.Module, example: torch.Tensor) -> tuple[int, int]:
    """(dense, effective) FLOPs of one example's forward pass (see module doc)."""
    example = example[:1]
    dense, effective = _density_flops(model, example)
    small = shrunk_if_structured(model)
    if small is not None:  # removed channels cost nothing, nor do the inputs they fed
        effective = _density_flops(small, example)[1]
    return dense, effective


# ----- latency and the plain-words note --------------------------------------------
@torch.inference_mode()
def latency_ms(model: nn.Module, x: torch.Tensor, batch: int,
               repeats: int = LATENCY_REPEATS) -> float:
    """Median wall time in ms of one forward pass at `batch` examples (rows repeated)."""
    reps = math.ceil(batch / x.shape[0])
    xb = x.repeat(reps, *([1] * (x.dim() - 1)))[:batch]
    was_training = model.training
    model.eval()
    sync = torch.cuda.synchronize if xb.is_cuda else (lambda: None)
    times = []
    for i in range(LATENCY_WARMUP + repeats):
        sync()
        start = time.perf_counter()
        model(xb)
        sync()
        if i >= LATENCY_WARMUP:
            times.append((time.perf_counter() - start) * 1e3)
    model.train(was_training)
    return float(statistics.median(times))


def speedup_note(sparsity: float, shrunk: bool = False) -> str:
    """What the sparsity buys in speed, in plain words."""
    if shrunk:
        return ("Whole neurons/channels are pruned: the shrunk copy (bytes_shrunk) is "
                "physically smaller and computes less, while this masked model still runs at "
                "dense speed. Measure latency to see what shrinking buys on this machine.")
    if sparsity <= 0.0:
        return "Dense model: nothing is pruned, so there is nothing to speed up."
    return (f"{sparsity:.1%} of the weights are masked to zero, but they are still stored "
            "and multiplied: dense kernels run exactly as fast as before, so this gives no "
            "speedup. Only removing whole neurons/channels (structured pruning + shrink) or "
            "sparse kernels turn zeros into time saved.")


def model_metrics(model: nn.Module, x: torch.Tensor, y: torch.Tensor, task: str,
                  n_outputs: int, outputs: torch.Tensor, sparsity: float, *,
                  latency: bool = False, shrunk: bool = False) -> dict:
    """Everything above for one model on one split, as JSON-ready values."""
    out: dict = {}
    if task == "classification":
        out.update(classification_metrics(outputs, y, n_outputs))
        out["mse"] = None
    else:
        out.update({"mse": float(torch.mean((outputs - y) ** 2)), "precision": None,
                    "recall": None, "f1": None, "confusion": None})
    out["bytes_dense"], out["bytes_sparse"] = bytes_dense(model), bytes_sparse(model)
    out["flops_dense"], out["flops_effective"] = flops(model, x)
    if latency:
        out["latency_ms_b1"] = latency_ms(model, x, 1)
        out["latency_ms_b256"] = latency_ms(model, x, 256)
    out["speedup_note"] = speedup_note(sparsity, shrunk)
    return out

