"""Compression Explorer: see and touch neural-network compression.

The core (this package minus `explorer.ui`) is pure PyTorch and NumPy; it never
imports ipywidgets, plotly, anywidget or IPython.
"""

from .config import PruneConfig, TrainConfig
from .data import Dataset, Split, load_dataset
from .metrics import LayerStats, Snapshot
from .session import Session, pick_device

__all__ = ["Dataset", "LayerStats", "PruneConfig", "Session", "Snapshot", "Split",
           "TrainConfig", "load_dataset", "pick_device"]
__version__ = "0.1.0"
