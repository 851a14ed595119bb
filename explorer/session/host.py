"""The Session as its collaborators see it: narrow protocols, so that build, core,
rollback, persist, students, language, workflows, ... depend on this module and not on
explorer.session.session (which imports them all: no import cycle, not even under
TYPE_CHECKING; tests/test_import_cycles.py keeps it so).

explorer.session.session.Session satisfies `Host` structurally; mypy checks it wherever
the Session passes itself to a collaborator. A collaborator the Session holds
(session.jobs, .students, .lm, .pruning) appears here as the few members other modules
use of it, not as its class, since those classes import the modules typed against Host.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol

import torch
from torch import nn

from ..config import TrainConfig
from ..data.datasets import Dataset, Split
from ..engine.distill import TeacherCache
from ..engine.metrics import Snapshot
from ..engine.threads import WorkLock
from ..engine.train import Event, LossFn, StopEvent
from .quant_host import QuantSlot
from .settings import Settings
from .slots import ModelSlot, Slots
from .state import State, UndoEntry
from .tasks import Task


class Jobs(Protocol):
    """session.jobs (explorer.session.session_jobs.Jobs) as the collaborators use it:
    quant_host.QuantJobs's members and forget()."""

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
    def forget(self, job_id: int) -> None: ...


class Students(Protocol):
    """session.students (explorer.session.student_api.Students), as far as used here."""

    teacher_cache: TeacherCache

    def build(self, student: float | nn.Module, seed: int) -> tuple[nn.Module, dict]: ...


class Language(Protocol):
    """session.lm (explorer.session.lm_api.Language), as far as used here."""

    def remove_heads(self, fraction: float, rank: str = "l1",
                     scope: str = "global") -> Snapshot: ...


class Pruning(Protocol):
    """session.pruning (explorer.session.workflows.Pruning), as far as used here."""

    def rewind_state(self, rewind: str | int) -> State: ...
    def rewind_to(self, rewind: str | int) -> None: ...
    def bytes_shrunk(self) -> int | None: ...


class Host(Protocol):
    """explorer.session.session.Session as its collaborators use it (see its table); it
    has what quant_host.QuantHost lists too (collaborators pass it to quant)."""

    device: torch.device
    seed: int
    data: Dataset
    objective: Task
    history: list[dict]
    pretrained: bool
    settings: Settings
    slots: Slots

    @property
    def lock(self) -> WorkLock: ...
    @property
    def selected(self) -> str: ...
    @property
    def slot(self) -> ModelSlot: ...
    @property
    def model(self) -> nn.Module: ...
    @property
    def is_lm(self) -> bool: ...
    @property
    def jobs(self) -> Jobs: ...
    @property
    def students(self) -> Students: ...
    @property
    def lm(self) -> Language: ...
    @property
    def pruning(self) -> Pruning: ...

    def select(self, name: str) -> Snapshot: ...
    def snapshot(self, split: str = "val", evaluate_model: bool = True,
                 subset: int | None = None) -> Snapshot: ...
    def refine(self, split: str = "val") -> Snapshot: ...
    def measure(self, split: str = "val", *, slot: str | None = None, full: bool = True,
                latency: bool = False,
                reference: torch.Tensor | None = None) -> Snapshot: ...
    def train(self, epochs: int = 5, lr: float = 1e-3, optimizer: str = "adam",
              batch_size: int = 64, weight_decay: float = 0.0,
              stop: threading.Event | None = None,
              on_event: Callable[[Event], None] | None = None, *,
              steps: int | None = None) -> Snapshot: ...
    def reset_pruning(self) -> Snapshot: ...
    def shrink(self) -> nn.Module: ...
    def export(self, path: str | Path, kind: str = "masked") -> dict: ...
