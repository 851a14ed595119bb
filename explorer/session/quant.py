"""Quantization as part of a session's state (issue 31): the setting, applying it on top
of the pruning mask, its snapshot readouts and byte counts, and the codebook fine-tune job.

The setting (bits, scheme, group size) lives on the ModelSlot (`slot.quant`) beside the
masks, and the quantized weights are a pure function of (dense base, masks, setting), the
way the masks are of (base, pruning setting): every time a slot reloads its weights from
the base (set_base, install_masks, clear_masks, reapply) it calls `apply_quant`, so
pruning moves, Reset, Undo, a committed job and Load all keep the quantization. A
codebook fine-tune commits snapped weights as the base, so re-quantizing that base finds
the fine-tuned centroids exactly (a layer with at most 2^bits - 1 distinct values is its
own codebook: explorer.engine.quantize.kmeans_layer).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..config import FAST_EVAL_MIN_PARAMS, QUANT_BITS, QUANT_GROUP_SIZES, QUANT_SCHEMES, TrainConfig
from ..engine.codebook import shared_gradients
from ..engine.measure import FP32_BYTES
from ..engine.metrics import LayerStats, Snapshot, codebook_layer_stats
from ..engine.prune import apply_masks
from ..engine.qbytes import layer_bytes
from ..engine.quantize import LayerQuant, quantize_layer
from ..engine.train import DIVERGED, Event, evaluate
from ..validate import check_job_hooks, check_trainable
from .quant_setting import LAYER_KINDS, OFF, QuantSetting

if TYPE_CHECKING:
    from .quant_cache import QuantCache
    from .quant_host import QuantHost, QuantSlot


def layer_kind(module: nn.Module) -> str:
    """"conv", "linear" or "embedding" (a Hugging Face Conv1D is a linear layer), else
    the module's class name in lower case."""
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        return "conv"
    if isinstance(module, nn.Embedding):
        return "embedding"
    name = type(module).__name__.lower()
    return "linear" if isinstance(module, nn.Linear) or name == "conv1d" else name


def _check_bits(bits: object) -> int | tuple[tuple[str, int], ...]:
    """One width from QUANT_BITS, or a mapping of layer names/kinds to such widths."""
    if isinstance(bits, Mapping):
        if not bits:
            raise ValueError("bits must name at least one layer or kind; got {}")
        for key, value in bits.items():
            if not isinstance(key, str) or not key:
                raise ValueError(f"bits keys must be layer names or kinds "
                                 f"({', '.join(LAYER_KINDS)}); got {key!r}")
            _check_bits(value)
        return tuple(sorted((str(k), int(v)) for k, v in bits.items()))
    if isinstance(bits, bool) or not isinstance(bits, int) or bits not in QUANT_BITS:
        raise ValueError(f"bits must be one of {QUANT_BITS} (32 = off), or a mapping of "
                         f"layer names or kinds to them; got {bits!r}")
    return bits


def check_setting(bits: object, scheme: object = "kmeans",
                  group_size: object = None) -> QuantSetting | None:
    """The validated setting (None for bits=32: quantization off); ValueError names the
    bad value. A per-layer mapping's names are checked against the model in compute()."""
    bits = _check_bits(bits)
    if scheme not in QUANT_SCHEMES:
        raise ValueError(f"scheme must be one of {QUANT_SCHEMES}; got {scheme!r}")
    if group_size is not None:
        if scheme != "uniform":
            raise ValueError(f"group_size={group_size!r} applies to scheme='uniform' only")
        if isinstance(group_size, bool) or group_size not in QUANT_GROUP_SIZES:
            raise ValueError(f"group_size must be None or one of {QUANT_GROUP_SIZES}; "
                             f"got {group_size!r}")
    if bits == OFF or (not isinstance(bits, int) and all(b == OFF for _, b in bits)):
        return None
    return QuantSetting(bits, str(scheme), group_size)  # type: ignore[arg-type]


def setting_from(saved: object) -> QuantSetting | None:
    """A setting read back from a saved session (a dict or None)."""
    if saved is None:
        return None
    if not isinstance(saved, dict):
        raise ValueError(f"a saved quantization setting must be a dict; got {saved!r}")
    return check_setting(saved.get("bits"), saved.get("scheme"), saved.get("group_size"))


def setting_payload(slot: QuantSlot) -> dict | None:
    setting = getattr(slot, "quant", None)
    return None if setting is None else setting.payload()


def layer_widths(slot: QuantSlot, setting: QuantSetting) -> dict[str, int]:
    """Each prunable layer's bits under `setting` (32: left in float); ValueError names a
    mapping's key that is no layer or kind of this model, or a layer it leaves out."""
    model = slot.model
    kinds = {n: layer_kind(model.get_submodule(n.rpartition(".")[0])) for n in slot.prunable}
    if not isinstance(setting.bits, int):
        known = set(kinds) | set(kinds.values()) | set(LAYER_KINDS)
        for key, _ in setting.bits:
            if key not in known:
                raise ValueError(f"bits names {key!r}, which is no prunable layer or layer "
                                 f"kind of this model: {sorted(known)}")
    return {n: setting.layer_bits(n, kind) for n, kind in kinds.items()}


def cache_of(slot: QuantSlot) -> QuantCache:
    """The slot's per-layer results (explorer.session.quant_cache)."""
    return slot.quant_cache


def compute(slot: QuantSlot, setting: QuantSetting) -> dict[str, LayerQuant]:
    """Every prunable weight quantized by `setting` (nothing written yet); a layer whose
    base and mask are unchanged since it was last quantized this way is a lookup."""
    masks = slot.masks or {}
    cache = cache_of(slot)
    widths = layer_widths(slot, setting)

    def make(name: str) -> Callable[[], LayerQuant]:
        base, mask = slot.base[name], masks.get(name)

        def run() -> LayerQuant:  # base * mask only on a miss: a full pass on a big layer
            weight = base if mask is None else base * mask  # what the pruning alone leaves
            return quantize_layer(weight, widths[name], setting.scheme, mask,
                                  setting.group_size)
        return run

    # keyed by each layer's own width: another per-layer setting that gives a layer the
    # same width finds it
    return {n: cache.layer(n, replace(setting, bits=widths[n]), slot.base[n], masks.get(n),
                           make(n))
            for n in slot.prunable if widths[n] != OFF}


@torch.no_grad()
def apply_quant(slot: QuantSlot) -> None:
    """Show the quantized weights when the slot has a setting (call after the slot's
    weights were reloaded from base and masks); else forget old results."""
    setting = getattr(slot, "quant", None)
    if setting is None:
        slot.quant_layers = {}
        return
    write(slot, compute(slot, setting))


@torch.no_grad()
def write(slot: QuantSlot, layers: dict[str, LayerQuant]) -> None:
    params = slot.params()
    known = {}
    for name, lq in layers.items():
        params[name].copy_(lq.values)
        stats = _codebook_stats(slot, name, params[name], lq)
        if stats is not None:  # the snapshot's histogram without 10M weights histogrammed
            known[name] = stats
    slot.know_stats(known)
    slot.quant_layers = layers


def _codebook_stats(slot: QuantSlot, name: str, param: torch.Tensor,
                 lq: LayerQuant) -> LayerStats | None:
    """A k-means layer's statistics from its codebook and index counts (what
    layer_stats would histogram from the weight itself; a CPU float32 weight only, as
    histc elsewhere may bin differently)."""
    if lq.counts is None or param.dtype != torch.float32 or param.device.type != "cpu":
        return None
    values = torch.cat([torch.zeros(1), lq.codebook.to(torch.float32)])
    return codebook_layer_stats(name, values, lq.counts, slot.base_counts[name],
                                slot.edges[name], slot.cuts.get(name, 0.0))


def quantize(session: QuantHost, bits: object, scheme: object = "kmeans",
             group_size: object = None) -> Snapshot:
    """Session.quantize: set (or with bits=32 remove) the selected slot's quantization;
    `bits` one width or per layer ({"conv": 8, "linear": 5}, or parameter names)."""
    setting = check_setting(bits, scheme, group_size)
    with session.lock:
        session.jobs.check_idle("quantizing")
        slot = session.slot
        if setting is None:
            slot.quant = None
            apply_masks(slot.params_for(slot.masks), slot.base, slot.masks)
            slot.quant_layers = {}
        else:
            layers = compute(slot, setting)  # raises before anything changes
            slot.quant = setting
            write(slot, layers)
        from .subsets import quick_subset

        # a big model's first answer on a seeded subset, as a sparsity move (the app
        # refines it in the background)
        return session.snapshot(subset=quick_subset(session))


def snapshot_extra(slot: QuantSlot) -> dict:
    """What the app shows of the quantization: the setting and the k-means codebooks."""
    setting = getattr(slot, "quant", None)
    if setting is None:
        return {}
    layers = getattr(slot, "quant_layers", {}) or {}
    books = {n: [float(c) for c in lq.codebook] for n, lq in layers.items()} \
        if setting.scheme == "kmeans" else {}
    numel = sum(t.numel() for t in slot.base.values())
    # a big model's move skips the byte counts (a pass over every index, twice);
    # measure() has them
    totals = {} if numel >= FAST_EVAL_MIN_PARAMS else \
        {k: v for k, v in sizes(slot).items() if k != "bytes_by_layer"}
    totals.pop("quant_label", None)
    return {"quant": {**setting.payload(), "label": setting.label(), "codebooks": books},
            **totals}


def sizes(slot: QuantSlot) -> dict:
    """bytes_quantized (dense index layout), bytes_quantized_sparse (the paper's layout),
    bytes_huffman and the ratio to dense fp32, weights only; the tensors that are not
    quantized (biases, norms) count at fp32 in every total. None when not quantized."""
    setting = getattr(slot, "quant", None)
    layers = getattr(slot, "quant_layers", {}) or {}
    if setting is None or not layers:
        return {"bytes_quantized": None, "bytes_quantized_sparse": None,
                "bytes_huffman": None}
    params = slot.params()
    rest = sum(t.numel() for n, t in slot.model.state_dict().items()
               if t.is_floating_point() and n not in layers) * FP32_BYTES
    per = {}
    widths = layer_widths(slot, setting)
    for name, lq in layers.items():
        bits = widths[name]
        zero = 0 if setting.scheme == "kmeans" else (1 << (bits - 1)) - 1
        per[name] = cache_of(slot).layer_bytes(
            name, replace(setting, bits=bits), lq,
            partial(layer_bytes, params[name], lq, bits, zero))
    dense = rest + sum(p["dense_fp32"] for p in per.values())
    huff = rest + sum(p["huffman"] for p in per.values())
    return {"bytes_quantized": rest + sum(p["quantized"] for p in per.values()),
            "bytes_quantized_sparse": rest + sum(p["quantized_sparse"] for p in per.values()),
            "bytes_huffman": huff, "compression_ratio_huffman": dense / max(huff, 1),
            "bytes_by_layer": per, "quant_label": setting.label()}


TRAIN_NOTE = ("trained in float from the quantized weights, then re-quantized with the "
              "same setting ({label}); Session.finetune_codebook() trains the k-means "
              "centroids themselves")


def train_note(slot: QuantSlot) -> str | None:
    setting = getattr(slot, "quant", None)
    return None if setting is None else TRAIN_NOTE.format(label=setting.label())


def finetune_codebook(session: QuantHost, epochs: int = 1, lr: float = 1e-4,
                      optimizer: str = "adam", batch_size: int = 64,
                      stop: threading.Event | None = None,
                      on_event: Callable[[Event], None] | None = None,
                      steps: int | None = None) -> Snapshot:
    """Train the selected slot's k-means centroids (Deep Compression's update: each
    centroid's gradient is the sum of its weights'); commits like training (one Undo)."""
    config = TrainConfig(epochs=epochs, lr=lr, optimizer=optimizer, batch_size=batch_size,
                         steps=steps)
    check_job_hooks(stop, on_event)
    setting = getattr(session.slot, "quant", None)
    if setting is None or setting.scheme != "kmeans":
        raise ValueError("finetune_codebook needs k-means quantization in force "
                         f"(now: {setting.label() if setting else 'none'}); call "
                         "quantize(bits=..., scheme='kmeans') first")
    check_trainable(session.model, session.slot.model_name)
    with session.jobs.job("codebook fine-tuning"):
        with session.lock:
            slot = session.slot
            session.jobs.started += 1
            before = slot.undo_entry(session.jobs.started)
            saved = (session.jobs.total_steps, slot.epochs_trained, dict(slot.rewind_states))
            start = evaluate(slot.model, session.data.val, session.data.task)[1]
            layers = slot.quant_layers
            indices = {n: lq.indices for n, lq in layers.items()}
            sizes_k = {n: lq.n_symbols - 1 for n, lq in layers.items()}
        try:
            with shared_gradients(slot.params(), indices, sizes_k):
                ended = session.jobs.run_training(
                    slot.model, config, kind="codebook", masks=before.masks,
                    seed=session.seed + len(slot.undo_stack), stop=stop,
                    on_event=on_event, start_accuracy=start)
        except BaseException:
            with session.lock:
                session.jobs.roll_back(slot, before, saved)
            raise
        with session.lock:
            if ended is not None and ended.reason.startswith(DIVERGED):
                session.jobs.roll_back(slot, before, saved)
            else:
                slot.commit(before)
            return session.snapshot()
