"""Compression Explorer: see and touch neural-network compression.

The core (this package minus `explorer.ui`) is pure PyTorch and NumPy; it never
imports ipywidgets, plotly, anywidget or IPython. Public names load lazily, so
`explorer.cli` can validate options in well under a second, before torch loads.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "PruneConfig": "config", "TrainConfig": "config",
    "Dataset": "data", "Split": "data", "load_dataset": "data",
    "LayerStats": "metrics", "Snapshot": "metrics",
    "Session": "session", "pick_device": "session",
}
__all__ = ["Dataset", "LayerStats", "PruneConfig", "Session", "Snapshot", "Split",
           "TrainConfig", "load_dataset", "pick_device"]

if TYPE_CHECKING:
    from .config import PruneConfig, TrainConfig
    from .data import Dataset, Split, load_dataset
    from .metrics import LayerStats, Snapshot
    from .session import Session, pick_device


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'explorer' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value
