"""What explorer.session.quant needs of a session, of its job machinery and of a model
slot, as narrow protocols.

explorer.session.slots imports the quantization code (every reload of a slot's weights
re-applies it), so quant cannot name ModelSlot or Session without an import cycle; it is
typed against these instead, and ModelSlot, Jobs and Session satisfy them structurally
(mypy checks that wherever Session passes itself, or a slot, to quant).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol

import numpy as np
import torch
from torch import nn

from ..config import TrainConfig
from ..data.datasets import Dataset, Split
from ..engine.metrics import LayerStats, Snapshot
from ..engine.threads import WorkLock
from ..engine.train import Event, LossFn, StopEvent
from .quant_cache import QuantCache
from .quant_setting import QuantSetting
from .state import Masks, State, UndoEntry
from .subsets import Headlined


class QuantSlot(Protocol):
    """A model slot as quantization uses it (explorer.session.slots.ModelSlot)."""

    model: nn.Module
    model_name: str
    prunable: list[str]
    base: State
    masks: Masks | None
    quant: QuantSetting | None
    quant_layers: dict
    quant_cache: QuantCache
    base_counts: dict[str, np.ndarray]
    edges: dict[str, torch.Tensor]
    cuts: dict[str, float]
    epochs_trained: int
    rewind_states: dict[int, State]
    undo_stack: list[UndoEntry]

    def params(self) -> dict[str, nn.Parameter]: ...
    def params_for(self, *mask_sets: Masks | None) -> dict[str, nn.Parameter]: ...
    def know_stats(self, stats: dict[str, LayerStats]) -> None: ...
    def undo_entry(self, job: int | None = None) -> UndoEntry: ...
    def restore(self, entry: UndoEntry) -> None: ...
    def commit(self, before: UndoEntry) -> None: ...


class QuantJobs(Protocol):
    """A session's job machinery as a job that trains a slot uses it
    (explorer.session.session_jobs.Jobs)."""

    started: int
    total_steps: int

    def job(self, name: str) -> AbstractContextManager[None]: ...
    def check_idle(self, what: str) -> None: ...
    def run_training(self, model: nn.Module, config: TrainConfig, *, kind: str,
                     masks: dict[str, torch.Tensor] | None, seed: int,
                     stop: threading.Event | None, on_event: Callable[[Event], None] | None,
                     loss_fn: LossFn | None = None, start_accuracy: float | None = None,
                     on_epoch: Callable[[], None] | None = None,
                     train: Split | None = None) -> StopEvent | None: ...
    def roll_back(self, slot: QuantSlot, before: UndoEntry,
                  saved: tuple[int, int, dict]) -> None: ...


class QuantHost(Protocol):
    """A session as quantization uses it (explorer.session.session.Session); it has
    what subsets.Measured lists too (quant passes it to subsets.quick_subset)."""

    @property
    def model(self) -> nn.Module: ...
    @property
    def data(self) -> Dataset: ...
    @property
    def seed(self) -> int: ...
    @property
    def is_lm(self) -> bool: ...
    @property
    def objective(self) -> Headlined: ...

    @property
    def lock(self) -> WorkLock: ...
    @property
    def slot(self) -> QuantSlot: ...
    @property
    def jobs(self) -> QuantJobs: ...

    def snapshot(self, split: str = "val", evaluate_model: bool = True,
                 subset: int | None = None) -> Snapshot: ...
