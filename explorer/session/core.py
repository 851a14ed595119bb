"""The slider's operations on a Session, as functions: prune, snapshot, the statistics.

Everything a front end shows comes from a frozen Snapshot returned here; nothing
outside reaches into the model. Pruning never stacks masks: each request rebuilds
them from the dense base, so moving a slider back restores the base bit for bit.
Training on a pruned model commits (DESIGN section 3): survivors become the base,
pruned entries keep their old base values, and the previous base goes on an undo stack
(explorer.session.session_jobs). The per-model state lives in ModelSlot objects;
`session.slot` is the selected one. Call these under `session.lock`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..config import (
    BN_RECALIBRATION_SAMPLES,
    PruneConfig,
)
from ..data.datasets import Dataset, from_tensors, load_dataset
from ..data.images import is_image_folder, load_image_folder
from ..engine.attention import example_of
from ..engine.compact import Twin, refuse_twin, twin_of
from ..engine.metrics import Snapshot
from ..engine.prune import compute_masks
from ..engine.structure import (
    has_batchnorm,
    model_groups,
    recalibrate_bn,
    removed_fraction,
    settle_norms,
    structured_masks,
    within_committed,
)
from ..engine.train import evaluate
from . import moves
from .subsets import quick_subset, subset_split

if TYPE_CHECKING:
    from .host import Host


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """CUDA when present, else CPU; an explicit device wins."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"device must be auto, cpu or cuda; got {device!r}") from err


def available_devices() -> list[str]:
    """Devices a user can pick here: always cpu, plus cuda when present."""
    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


def load_data(dataset: object, train: object, val: object, test: object,
              task: str, seed: int, device: torch.device) -> Dataset:
    """A built-in data set by name, a Dataset, or the user's train/val(/test) tensors."""
    if train is None and val is None and test is None:
        if isinstance(dataset, Dataset):
            return dataset
        if is_image_folder(dataset):
            return load_image_folder(str(dataset), seed=seed, device=device)
        return load_dataset(str(dataset or "digits"), seed=seed, device=device)
    if dataset is not None:
        raise ValueError(f"give either dataset={dataset!r} or train=/val= tensors, not both")
    if train is None or val is None:
        raise ValueError("bring-your-own data needs both train= and val=")
    return from_tensors(train, val, test, task)


def prune(session: Host, config: PruneConfig) -> Snapshot:
    """Masks for `config` from the selected slot's dense base, installed; the answer."""
    slot, structured = session.slot, config.structured
    groups = model_groups(slot.model)[0] if structured else None
    if groups is not None:
        result = structured_masks(slot.base, groups, config.value, config.norm)
    else:
        result = compute_masks(slot.index, config)
    # at or above the sparsity of the masks the last job trained with, prune only
    # their survivors (engine.structure.within_committed; docs/api.md, re-pruning)
    result = within_committed(result, slot.committed, config, slot.index, slot.base, groups)
    slot.install_masks(result, config)
    subset = quick_subset(session)
    settle_norms(slot.model, slot.base, session.data.train.x, recalibrate=False)
    # a big model's first answer runs on its survivors only (engine.compact)
    twin = twin_of(slot.model, groups, example_of(slot.model)) \
        if groups is not None and subset else None
    try:
        return answer(session, structured, subset, twin)
    except RuntimeError:  # the twin failed where its first check passed: never again
        if twin is None:
            raise
        refuse_twin(slot.model)
        settle_norms(slot.model, slot.base, session.data.train.x, recalibrate=False)
        return answer(session, structured, subset, None)


def answer(session: Host, structured: bool, subset: int | None,
           twin: Twin | None) -> Snapshot:
    """Statistics settled, then engine_snapshot (on `subset` rows when given);
    the twin's tensors are dropped afterwards whatever happens. Call under the lock."""
    try:
        if twin is not None:
            twin.load(session.model)
        moves.settle_structured(session, structured, subset, twin)
        return engine_snapshot(session, subset=subset, model=twin.module if twin else None)
    finally:
        if twin is not None:
            twin.release()


def full_norms(session: Host) -> None:
    """BatchNorm statistics re-estimated on all BN_RECALIBRATION_SAMPLES when the last
    move used the fast few (call under the lock, before measuring for good)."""
    slot = session.slot
    if 0 < slot.bn_samples < BN_RECALIBRATION_SAMPLES:
        recalibrate_bn(slot.model, session.data.train.x, BN_RECALIBRATION_SAMPLES,
                       session.seed)
        slot.bn_samples = BN_RECALIBRATION_SAMPLES


def snapshot(session: Host, split: str = "val", evaluate_model: bool = True,
             subset: int | None = None, model: nn.Module | None = None) -> Snapshot:
    """Session.snapshot; `model`: the slot model's compact twin (engine.compact), which
    then computes the outputs and the histograms (it holds the same nonzero weights)."""
    if evaluate_model and not subset:
        full_norms(session)  # a full measurement never uses the fast statistics
    slot = session.slot
    params = slot.params()
    layers = tuple(slot.layer_stats(n, p) for n, p in params.items()) \
        if model is None else moves.twin_layer_stats(slot, params, model)
    rows = session.data.split(split)
    partial = bool(subset) and len(rows) > int(subset or 0)
    if partial:
        rows = subset_split(session, split, int(subset or 0))
    task = session.data.task
    if evaluate_model:
        loss, accuracy, _ = evaluate(model or slot.model, rows, task)
    else:
        loss, accuracy = float("nan"), None
    others = [p for n, p in slot.model.named_parameters() if n not in params]
    pruned = sum(layer.numel - layer.nonzero for layer in layers)
    prunable = sum(layer.numel for layer in layers)
    config = slot.prune_config
    snap = Snapshot(
        accuracy=accuracy, loss=loss, sparsity=pruned / max(prunable, 1),
        params=prunable + sum(p.numel() for p in others),
        nonzero=sum(layer.nonzero for layer in layers)
        + sum(int(torch.count_nonzero(p)) for p in others),
        layers=layers, split=split, task=task,
        prune=None if config is None else {
            "mode": config.mode, "value": config.value, "scope": config.scope},
        warnings=slot.warnings)
    extra = session.objective.snapshot_extra(session, snap, evaluate_model)
    if partial and evaluate_model:
        extra = {**extra, "eval_samples": len(rows),
                 "eval_total": len(session.data.split(split))}
    extra = {**extra, **slot.quant_extra()}  # the bits setting and its codebooks
    return replace(snap, extra={**snap.extra, **extra}) if extra else snap


def engine_snapshot(session: Host, split: str = "val", subset: int | None = None,
                    model: nn.Module | None = None) -> Snapshot:
    """snapshot() plus which sparsity a structured number means (PITFALLS). `model`:
    what computes the outputs instead of the slot's model (its compact twin)."""
    snap = snapshot(session, split, subset=subset, model=model)
    slot = session.slot
    config = slot.prune_config
    if config is None or not config.structured:
        return snap
    extra = {"structured": True, "norm": config.norm,
             "channel_fraction_removed": config.value,
             "param_fraction_removed": removed_fraction(slot.model),
             "bn_recalibrated": bool(session.settings.bn_recalibration
                                     and has_batchnorm(slot.model)),
             "bn_samples": slot.bn_samples}
    return replace(snap, extra={**snap.extra, **extra})
