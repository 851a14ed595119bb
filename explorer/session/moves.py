"""Settling one structured slider move after its masks are installed (core.prune).

BatchNorm statistics are re-estimated (the switch on) on training rows drawn with the
session's seed (engine.structure.calibration_rows), then the snapshot is taken. A big
model's first answer (core.quick_subset) takes FAST_BN_RECALIBRATION_SAMPLES and runs
on the compact twin when there is one (engine.compact: only the channels that are not
dead, the same function); the full-set answer that follows (refine) re-estimates on
BN_RECALIBRATION_SAMPLES and measures the masked model itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..config import BN_RECALIBRATION_SAMPLES, FAST_BN_RECALIBRATION_SAMPLES
from ..engine.compact import Twin
from ..engine.metrics import LayerStats, layer_stats
from ..engine.structure import has_batchnorm, recalibrate_bn

if TYPE_CHECKING:
    from .host import Host
    from .slots import ModelSlot


def settle_structured(session: Host, structured: bool, subset: int | None,
                      twin: Twin | None) -> None:
    """Re-estimate BatchNorm statistics after a structured prune and record on how many
    samples (session.slot.bn_samples; 0: the base's statistics stand)."""
    session.slot.bn_samples = 0
    model = session.model
    if not (structured and session.settings.bn_recalibration and has_batchnorm(model)):
        return
    session.slot.bn_samples = FAST_BN_RECALIBRATION_SAMPLES if subset else \
        BN_RECALIBRATION_SAMPLES
    x, seed = session.data.train.x, session.seed  # seeded rows: the same on every move
    if twin is None:
        recalibrate_bn(model, x, session.slot.bn_samples, seed)
    else:
        recalibrate_bn(twin.module, x, session.slot.bn_samples, seed)
        twin.norms_back(model)


def twin_layer_stats(slot: ModelSlot, params: Mapping[str, torch.Tensor],
                     twin: nn.Module) -> tuple[LayerStats, ...]:
    """Each prunable weight's LayerStats read from its slice in the twin: the same nonzero
    entries (only all-zero rows and columns are gone), so the same counts and histogram
    (pruned zeros leave the zero bin either way) at a fraction of the histc work."""
    sliced = dict(twin.named_parameters())
    out = []
    for name, param in params.items():
        part = layer_stats(name, sliced[name], slot.base_counts[name], slot.edges[name],
                           slot.cuts.get(name, 0.0))
        numel = param.numel()
        out.append(replace(part, numel=numel, sparsity=1.0 - part.nonzero / numel))
    return tuple(out)
