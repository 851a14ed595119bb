"""Session.jobs: one job at a time, atomic; the one training loop for every model slot.

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
from . import core, quant

if TYPE_CHECKING:
    from .host import Host
    from .quant_host import QuantSlot
    from .slots import UndoEntry


class Jobs:
    """The running-job mark, the job and step counters, and the training loop."""

    def __init__(self, session: Host, total_steps: int = 0) -> None:
        self._session = session
        self.started = 0  # ids for jobs; their history records carry them
        self.total_steps = total_steps  # optimizer steps over all jobs, the curves' x axis
        self._owner: int | None = None  # the thread running a job
        self._name: str | None = None
        self._depth = 0

    # ----- jobs: one at a time, atomic ----------------------------------------------
    @contextmanager
    def job(self, name: str) -> Iterator[None]:
        """Mark a job as running. A job in another thread makes prune(), undo(), reset(),
        select() and a second job raise ValueError; the same thread may nest (iterative
        pruning runs fine-tune jobs)."""
        me = threading.get_ident()
        with self._session.lock:
            self.check_idle(name)
            if self._owner is None:
                self._owner, self._name = me, name
            self._depth += 1
        try:
            yield
        finally:
            with self._session.lock:
                self._depth -= 1
                if self._depth == 0:
                    self._owner, self._name = None, None

    def check_idle(self, what: str) -> None:
        """Raise ValueError when a job runs in another thread."""
        owner = self._owner
        if owner is not None and owner != threading.get_ident():
            raise ValueError(f"a job is running ({self._name}); {what} can start when "
                             "it ends (or press Stop)")

    @property
    def running(self) -> str | None:
        """The name of the running job, or None."""
        return self._name

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
        session = self._session
        first_step, job_id = self.total_steps, self.started
        rows = session.data.train if train is None else train
        steps = train_steps(model, rows, session.data.val, session.data.task, config,
                            masks=masks, stop=stop, seed=seed, loss_fn=loss_fn,
                            start_accuracy=start_accuracy)
        ended: StopEvent | None = None
        while True:
            with session.lock:
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
                session.history.append(session.objective.epoch_record(
                    {"kind": kind, "epoch": event.epoch, "step": first_step + event.step,
                     "train_loss": event.train_loss, "val_loss": event.val_loss,
                     "val_accuracy": event.val_accuracy, "job": job_id}))
            if on_event is not None:
                on_event(event)

    def finetune_codebook(self, epochs: int = 1, lr: float = 1e-4, optimizer: str = "adam",
                          batch_size: int = 64, stop: threading.Event | None = None,
                          on_event: Callable[[Event], None] | None = None, *,
                          steps: int | None = None) -> Snapshot:
        """Fine-tune the selected model's k-means centroids (Deep Compression: each moves
        by the sum of its weights' gradients); pruned weights stay zero; commits like
        training, one Undo away (explorer.session.quant)."""
        return quant.finetune_codebook(self._session, epochs, lr, optimizer, batch_size, stop,
                                       on_event, steps)

    def forget(self, job_id: int) -> None:
        """Remove the history records (curves) of job `job_id`."""
        history = self._session.history
        history[:] = [h for h in history if h.get("job") != job_id]

    def train_selected(self, config: TrainConfig, stop: threading.Event | None,
                       on_event: Callable[[Event], None] | None) -> Snapshot:
        """Session.train: train the selected slot with its masks, then commit the result
        as its base; an exception or a divergence puts back the state from before."""
        session = self._session
        check_job_hooks(stop, on_event)
        check_trainable(session.model, session.slot.model_name)
        check_batches(session.model, len(session.data.train), config.batch_size)
        with self.job("training"):
            with session.lock:
                slot = session.slot
                self.started += 1
                before = slot.undo_entry(self.started)
                saved = (self.total_steps, slot.epochs_trained, dict(slot.rewind_states))
                start = evaluate(slot.model, session.data.val, session.data.task)[1]
            try:
                ended = self.run_training(slot.model, config, kind="epoch",
                                          masks=before.masks,
                                          seed=session.seed + len(slot.undo_stack),
                                          stop=stop, on_event=on_event,
                                          start_accuracy=start, on_epoch=slot.record_epoch)
            except BaseException:
                with session.lock:  # nothing of a failed job stays
                    self.roll_back(slot, before, saved)
                raise
            with session.lock:
                if ended is not None and ended.reason.startswith(DIVERGED):
                    self.roll_back(slot, before, saved)
                else:
                    slot.commit(before)
                return core.snapshot(session)

    def roll_back(self, slot: QuantSlot, before: UndoEntry,
                   saved: tuple[int, int, dict]) -> None:
        """Put back the job's slot (captured at its start: the selection may have changed
        since, from the job's own thread) and the history as they were before the job."""
        slot.restore(before)
        slot.epochs_trained, slot.rewind_states = saved[1], saved[2]
        self.forget(before.job or 0)
        self.total_steps = saved[0]
