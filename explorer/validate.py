"""Checks for the arguments config.py's bounds do not cover: seeds, switches, devices,
callbacks, output paths, data values and models without anything to prune.

Every check raises ValueError naming the argument and the value given, before anything
in the session changes (the API promise of issue 8).
"""

from __future__ import annotations

import threading
from pathlib import Path

import torch
from torch import nn

from .config import check_number

SEED_MAX = 2**31 - 1  # what numpy, sklearn and torch all accept


def check_seed(name: str, value: object) -> int:
    """A whole number in 0..2**31-1 (train_test_split rejects negatives)."""
    return int(check_number(name, value, 0, SEED_MAX, integer=True))


def check_bool(name: str, value: object) -> bool:
    """True or False only: a string such as "no" would be truthy and mislead."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False; got {value!r}")
    return value


def check_device_available(device: torch.device) -> torch.device:
    """Refuse a CUDA device this machine does not have (torch raises AssertionError)."""
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r} is not available here (no CUDA); use cpu")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda; got {str(device)!r}")
    return device


def check_job_hooks(stop: object, on_event: object) -> None:
    """`stop` must be a threading.Event (or None) and `on_event` callable (or None)."""
    if stop is not None and not isinstance(stop, threading.Event):
        raise ValueError(f"stop must be a threading.Event or None; got {stop!r}")
    if on_event is not None and not callable(on_event):
        raise ValueError(f"on_event must be callable or None; got {on_event!r}")


def check_output_path(name: str, path: object) -> Path:
    """A file path whose folder exists (checked before minutes of work, not after)."""
    if not isinstance(path, (str, Path)) or not str(path):
        raise ValueError(f"{name} must be a file path; got {path!r}")
    target = Path(path).expanduser()
    if target.is_dir():
        raise ValueError(f"{name} {str(path)!r} is a folder, not a file")
    if not target.resolve().parent.is_dir():
        raise ValueError(f"{name} {str(path)!r}: its folder does not exist")
    return target


def check_finite_data(name: str, x: torch.Tensor, y: torch.Tensor) -> None:
    """NaN or infinite inputs (or regression targets) would make every loss NaN."""
    if x.is_floating_point() and not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        raise ValueError(f"{name}: x holds {bad} NaN or infinite values")
    if y.is_floating_point() and not bool(torch.isfinite(y).all()):
        bad = int((~torch.isfinite(y)).sum())
        raise ValueError(f"{name}: y holds {bad} NaN or infinite values")


def check_prunable(model: nn.Module, name: str, prunable: list[str]) -> None:
    """A model without Linear/Conv weights leaves nothing to prune or to show."""
    if not prunable:
        raise ValueError(f"model {name} has no prunable layers (Linear or Conv weights); "
                         "the explorer prunes those")
