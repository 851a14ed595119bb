"""SessionCore's jobs: one at a time, atomic; the one training loop for every model slot.

A job (training, fine-tuning, distillation, a study's run) holds the session between
optimizer steps only, so snapshots and slider moves interleave with it; a job in another
thread makes prune(), undo(), reset(), select() and a second job raise ValueError. Training
commits its result as the base (DESIGN section 3) or, on an error or a divergence, puts back
the state from before the job exactly.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..config import TrainConfig
from ..data.datasets import Split
from ..engine.metrics import Snapshot
from ..engine.train import (
    DIVERGED,
    EpochEvent,
    Event,
    LossFn,
    StepEvent,
    StopEvent,
    evaluate,
    train_steps,
)
from ..validate import check_batches, check_job_hooks, check_trainable

if TYPE_CHECKING:
    from ..data.datasets import Dataset
    from .slots import ModelSlot, UndoEntry
    from .tasks import Task


class JobsMixin:
    """Jobs and training for SessionCore (which provides the attributes declared here)."""

    lock: threading.RLock
    data: Dataset
    task: str
    seed: int
    objective: Task
    history: list[dict]
    total_steps: int
    jobs_started: int
    _job_owner: int | None
    _job_name: str | None
    _job_depth: int
    model: nn.Module
    model_name: str

    @property
    def slot(self) -> ModelSlot:
        raise NotImplementedError

    def snapshot(self, split: str = "val", evaluate_model: bool = True) -> Snapshot:
        raise NotImplementedError

    # ----- jobs: one at a time, atomic ----------------------------------------------
    @contextmanager
    def job(self, name: str) -> Iterator[None]:
        """Mark a job as running. A job in another thread makes prune(), undo(), reset(),
        select() and a second job raise ValueError; the same thread may nest (iterative
        pruning runs fine-tune jobs)."""
        me = threading.get_ident()
        with self.lock:
            self.check_idle(name)
            if self._job_owner is None:
                self._job_owner, self._job_name = me, name
            self._job_depth += 1
        try:
            yield
        finally:
            with self.lock:
                self._job_depth -= 1
                if self._job_depth == 0:
                    self._job_owner, self._job_name = None, None

    def check_idle(self, what: str) -> None:
        """Raise ValueError when a job runs in another thread."""
        owner = self._job_owner
        if owner is not None and owner != threading.get_ident():
            raise ValueError(f"a job is running ({self._job_name}); {what} can start when "
                             "it ends (or press Stop)")

    @property
    def job_running(self) -> str | None:
        """The name of the running job, or None."""
        return self._job_name

    def run_training(self, model: nn.Module, config: TrainConfig, *, kind: str,
                     masks: dict[str, torch.Tensor] | None, seed: int,
                     stop: threading.Event | None, on_event: Callable[[Event], None] | None,
                     loss_fn: LossFn | None = None, start_accuracy: float | None = None,
                     on_epoch: Callable[[], None] | None = None,
                     train: Split | None = None) -> StopEvent | None:
        """The one job loop (engine.train.train_steps) for teachers and students.

        One optimizer step at a time under the lock (snapshots read between steps); epoch
        records go to history tagged with this job's id; returns the StopEvent that ended
        the run early, or None. `train` replaces the training split (a student's regime).
        """
        first_step, job_id = self.total_steps, self.jobs_started
        rows = self.data.train if train is None else train
        steps = train_steps(model, rows, self.data.val, self.task, config, masks=masks,
                            stop=stop, seed=seed, loss_fn=loss_fn,
                            start_accuracy=start_accuracy)
        ended: StopEvent | None = None
        while True:
            with self.lock:
                event = next(steps, None)
            if event is None:
                return ended
            if isinstance(event, StepEvent):
                self.total_steps = first_step + event.step
            elif isinstance(event, StopEvent):
                ended = event
                if event.reason.startswith(DIVERGED) and stop is not None:
                    stop.set()  # callers looping over jobs (iterative, sweeps) stop too
            elif isinstance(event, EpochEvent):
                if on_epoch is not None:
                    on_epoch()
                self.history.append(self.objective.epoch_record(
                    {"kind": kind, "epoch": event.epoch, "step": first_step + event.step,
                     "train_loss": event.train_loss, "val_loss": event.val_loss,
                     "val_accuracy": event.val_accuracy, "job": job_id}))
            if on_event is not None:
                on_event(event)

    def forget_job(self, job_id: int) -> None:
        """Remove the history records (curves) of job `job_id`."""
        self.history[:] = [h for h in self.history if h.get("job") != job_id]

    def train(self, epochs: int = 5, lr: float = 1e-3, optimizer: str = "adam",
              batch_size: int = 64, weight_decay: float = 0.0,
              stop: threading.Event | None = None,
              on_event: Callable[[Event], None] | None = None, *,
              steps: int | None = None) -> Snapshot:
        """Train (blocking) with the masks applied, then commit the result as the base.

        Atomic: an exception or a divergence (see engine.train) puts back the state from
        before the job exactly; Stop keeps what was trained so far (one Undo away).
        `steps` gives a budget of optimizer steps instead of epochs (short runs, tests).
        """
        config = TrainConfig(epochs=epochs, lr=lr, optimizer=optimizer, batch_size=batch_size,
                             weight_decay=weight_decay, steps=steps)
        check_job_hooks(stop, on_event)
        check_trainable(self.model, self.model_name)
        check_batches(self.model, len(self.data.train), config.batch_size)
        with self.job("training"):
            with self.lock:
                slot = self.slot
                self.jobs_started += 1
                before = slot.undo_entry(self.jobs_started)
                saved = (self.total_steps, slot.epochs_trained, dict(slot.rewind_states))
                start = evaluate(slot.model, self.data.val, self.task)[1]
            try:
                ended = self.run_training(slot.model, config, kind="epoch", masks=before.masks,
                                          seed=self.seed + len(slot.undo_stack), stop=stop,
                                          on_event=on_event, start_accuracy=start,
                                          on_epoch=slot.record_epoch)
            except BaseException:
                with self.lock:  # nothing of a failed job stays
                    self._roll_back(before, saved)
                raise
            with self.lock:
                if ended is not None and ended.reason.startswith(DIVERGED):
                    self._roll_back(before, saved)
                else:
                    slot.commit(before)
                return self.snapshot()

    def _roll_back(self, before: UndoEntry, saved: tuple[int, int, dict]) -> None:
        """Put back the selected slot and the history as they were before a job."""
        slot = self.slot
        slot.restore(before)
        slot.epochs_trained, slot.rewind_states = saved[1], saved[2]
        self.forget_job(before.job or 0)
        self.total_steps = saved[0]
