"""Compression Explorer: see and touch neural-network compression.

The core (this package minus `explorer.ui`) is pure PyTorch and NumPy; it never
imports ipywidgets, plotly, anywidget or IPython.

The public names load lazily (PEP 562): `import explorer.config` or the command line's
argument validation must not pay for importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "PruneConfig": "config", "TrainConfig": "config",
    "Dataset": "data.datasets", "Split": "data.datasets", "load_dataset": "data.datasets",
    "LayerStats": "engine.metrics", "Snapshot": "engine.metrics",
    "Session": "session.session", "pick_device": "session.core",
    "load_exported": "engine.export",
    "sweep": "studies.sweep", "sensitivity": "studies.sensitivity",
}

__all__ = sorted(_EXPORTS)
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'explorer' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
