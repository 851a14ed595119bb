"""Plain data from a session file back to objects: Snapshots from their dicts.

persist.plain() writes a Snapshot as a tagged dict of numbers and lists (what torch's
weights-only unpickler reads); unplain() and snapshot_from_dict() turn them back, with
the histogram arrays in their NumPy dtypes. loadshape checks history records with them.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import numpy as np

from ..engine.metrics import LayerStats, Snapshot

SNAPSHOT_FIELDS = {f.name for f in fields(Snapshot)}
LAYER_ARRAYS = {"hist_counts": np.int32, "hist_base_counts": np.int32,
                "hist_edges": np.float32}


def _layer_fields(layer: dict) -> dict[str, Any]:
    return {k: np.asarray(v, dtype=LAYER_ARRAYS[k]) if k in LAYER_ARRAYS else v
            for k, v in layer.items()}


def snapshot_from_dict(d: dict) -> Snapshot:
    """The inverse of Snapshot.to_dict (extra metrics are the keys it merged in)."""
    layers = tuple(LayerStats(**_layer_fields(layer)) for layer in d["layers"])
    core = {k: d[k] for k in SNAPSHOT_FIELDS - {"layers", "extra"} if k in d}
    core["warnings"] = tuple(core.get("warnings", ()))
    extra = {k: v for k, v in d.items()
             if k not in SNAPSHOT_FIELDS and k not in ("prunable", "__snapshot__")}
    return Snapshot(**core, layers=layers, extra=extra)


def unplain(value: Any) -> Any:
    """persist.plain() undone: tagged dicts back to Snapshots, all the way down."""
    if isinstance(value, dict):
        if value.get("__snapshot__"):
            return snapshot_from_dict(value)
        return {k: unplain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unplain(v) for v in value]
    return value
