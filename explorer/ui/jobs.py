"""The app's background jobs: start one at a time, show progress, finish cleanly.

Training, fine-tuning, distillation and sweeps never run in a widget callback (a long
loop there would block the kernel, and in Voila the Stop click would never arrive).
The worker thread touches no widget: it records step losses into the curves of the
model it trains (CurveBook, locked) and publishes its latest event. The pump thread
shows progress a few times a second and the result once, holding the app's UI lock,
as every widget callback does: so figure writes never overlap (one lock, issue 15 #14).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Protocol

import torch

from ..engine.metrics import Snapshot
from ..engine.train import DIVERGED, EpochEvent, ProgressEvent, StepEvent, StopEvent
from ..session.jobs import JobResult, JobRunner
from ..session.session import Session
from .controls import Controls
from .curves import MAX_STEP_POINTS, CurveBook
from .guard import UiLock
from .pump import Pump
from .state import AppState, slot_label

__all__ = ["MAX_STEP_POINTS", "JobController", "JobView"]
# The figure follows a job at most this often (status and progress bar: every pump tick,
# 4 a second). A browser redraws every panel of the figure on each update and answers
# with its deltas; at 4 a second a busy machine fell behind and a Stop click took
# seconds to show (measured 18-26 s on 2 loaded cores; about 1 s at this rate).
FIGURE_INTERVAL_S = 1.0


class JobView(Protocol):
    """What a JobController uses of the app it runs jobs for: a part of host.Host, member
    for member (host.py imports this module, so the Host cannot be named here)."""

    session: Session
    snap: Snapshot
    c: Controls
    state: AppState  # what is asked for and shown
    book: CurveBook
    ui_lock: UiLock

    def set_status(self, text: str, error: bool = False) -> None: ...

    def set_busy(self, busy: bool) -> None:
        """Disable (or enable again) the controls that change the model."""

    def job_progress(self) -> None:
        """Show the running job's effect (bars, weights, curves), without evaluating; read
        the session first, then take the UI lock to draw."""

    def job_finished(self, slot: str | None, failed: bool) -> None:
        """The job ended: show the session as it is now (evaluated), curves included."""

    def apply_pruning(self, during_job: bool = False) -> bool:
        """Prune by the current pruning controls."""


class JobController:
    """One job at a time in a worker thread, its Stop, its progress and its finish."""

    def __init__(self, view: JobView) -> None:
        self.view = view
        self.runner = JobRunner()
        self.pump: Pump | None = None
        self.name = ""  # the running (or last) job's name, for status lines
        self.who = ""  # the model it reports on, as the page names it
        self.slot: str | None = None  # whose curves the job's steps go to (None: a study)
        self._on_job_done: Callable[[JobResult], str] | None = None
        self._epochs = 1.0  # expected epochs of the whole job, for the progress bar
        self._done_epochs = 0  # epochs of the job's finished runs
        self._run_place = 0.0  # epochs done in the current run, from its latest event
        self._run_epochs: int | None = None  # a run's length in epochs, once an event says
        self._progress: ProgressEvent | None = None  # the running loss, for the status
        self._device_losses = False  # step losses left on an accelerator (see _curves)
        self._note = ""  # Session.kept_note when the job started
        self._stage = ""  # a multi-run job's current run ("T = 8, 3 of 5"), for the status
        self._drawn_at = 0.0  # when the figure last followed the job
        self._active = False  # from start() until _on_done has run (pump included)
        self._pruning_pending = False  # a pruning change arrived during a job
        self._lock = threading.Lock()  # guards the flags above

    @property
    def busy(self) -> bool:
        """A job runs, or its result has not been applied to the widgets yet."""
        return self._active or self.runner.running

    @property
    def stage(self) -> str:
        """The multi-run job's latest run ("T = 8, 3 of 5, seed 2 of 2"; kept after it ends).
        The status line shows it when the pump comes round, so a fast job may skip it."""
        return self._stage

    @property
    def pruning_pending(self) -> bool:
        """A pruning change arrived during the job (applied when it ends)."""
        with self._lock:
            return self._pruning_pending

    # compatibility for scripts that read the step losses of the shown model
    @property
    def steps(self) -> list[float]:
        return self.view.book.read(self.view.state.curves).steps

    @property
    def step_losses(self) -> list[float]:
        return self.view.book.read(self.view.state.curves).losses

    def start(self, name: str, work: Callable, epochs_hint: float = 1,
              on_done: Callable[[JobResult], str] | None = None, *,
              slot: str | None = None, who: str | None = None,
              checkpoint: dict | None | bool = False) -> bool:
        """Run `work(stop, on_event)` in the worker; False when a job is running.

        `slot`: the model whose curves get the job's steps (None for studies, which never
        draw on training curves). `checkpoint` (the pruning settings before the job, or
        None when dense): the job commits, so Undo can cut its curves back.
        """
        view = self.view
        with self._lock:
            refused = self.busy
            self._active = True  # (already True when refused)
        if refused:
            view.set_status("a job is already running: stop it first", error=True)
            return False
        self.name, self.slot, self._on_job_done = name, slot, on_done
        self.who = who or slot_label(view.session.selected if slot is None else slot)
        self._epochs, self._done_epochs = max(epochs_hint, 1e-9), 0
        self._run_place, self._run_epochs = 0.0, None
        self._note = view.session.slot.kept_note
        self._progress, self._device_losses, self._stage = None, False, ""
        if slot is not None and checkpoint is not False:
            view.book.checkpoint(slot, checkpoint)  # type: ignore[arg-type]

        def job(stop, publish):
            def on_event(event):
                if isinstance(event, ProgressEvent):
                    self._progress = event
                elif isinstance(event, dict) and "stage" in event:  # kept: steps follow at once
                    self._stage = str(event["stage"])
                self._curves(event)
                publish(event)
            return work(stop, on_event)

        view.set_busy(True)
        view.c.progress.value = 0
        view.set_status(f"{name} ({self.who}): starting")
        if not self.runner.start(name, job):  # cannot happen while _active guards it
            self._active = False
            view.set_busy(False)
            return False
        # Progress reads the session before taking the UI lock (job_progress): holding the
        # lock while the worker holds the session between steps would stall every click.
        self.pump = Pump(self.runner, self._on_progress, self._locked(self._on_done),
                         self._locked(self._on_pump_error))
        self.pump.start()
        return True

    def _curves(self, event: object) -> None:
        """Step losses to the job's curves (worker thread). A loss still on an accelerator
        is not read per step (that would make the loop wait): its progress reports'
        running losses draw the curve instead."""
        if self.slot is None:
            return
        if isinstance(event, StepEvent):
            if isinstance(event.loss, torch.Tensor):
                self._device_losses = True
            else:
                self.view.book.add_step(self.slot, event.loss)
        elif isinstance(event, ProgressEvent) and self._device_losses:
            self.view.book.add_step(self.slot, event.running_loss)
        elif isinstance(event, EpochEvent):
            self.view.book.add_epoch(self.slot, event.val_loss, event.val_accuracy)

    def _locked(self, fn: Callable) -> Callable:
        def call(arg):
            with self.view.ui_lock:
                fn(arg)
        return call

    def stop(self) -> None:
        """Stop the job: the signal at once (never waiting on a draw), the status line
        under the UI lock, unless the job ended meanwhile (its end wrote the last word:
        the pump writes it under the lock after `running` turns False)."""
        if not self.runner.running:
            return
        self.runner.stop()
        with self.view.ui_lock:
            if self.runner.running:
                self.view.set_status(f"{self.name} ({self.who}): stopping...")

    def wait(self, timeout: float = 120.0) -> bool:
        """Block until the job and its pump finish (for tests and scripts)."""
        self.runner.join(timeout)
        return self.pump is None or self.pump.join(timeout)

    def defer_pruning(self) -> bool:
        """True while busy: the pruning controls' change is then applied when the job ends."""
        with self._lock:
            deferred = self._pruning_pending = self.busy
        return deferred

    # ----- pump thread, UI lock held ---------------------------------------------------
    def _fraction(self, event) -> float:
        """The job's share done, from the latest event's own place in its run: the pump
        hands over only the newest event, so counting events (epoch ends) would stall on
        every one it skipped (issue 28, item 4). A run's place going back means the next
        run of a multi-run job began: the finished run's epochs join the offset."""
        if isinstance(event, EpochEvent):
            place = float(event.epoch)
        elif isinstance(event, (StepEvent, ProgressEvent)) and event.steps_per_epoch:
            place = event.step / event.steps_per_epoch  # step counts from the run's start
        else:
            place = self._run_place
        run_epochs = getattr(event, "epochs", None)
        if place < self._run_place:  # runs of one job are alike: the last length known holds
            self._done_epochs += self._run_epochs or math.ceil(self._run_place)
        if run_epochs:
            self._run_epochs = int(run_epochs)
        self._run_place = place
        return min((self._done_epochs + place) / self._epochs, 1.0)

    def _on_progress(self, event) -> None:
        view = self.view
        if isinstance(event, dict) and "done" in event:  # a study's point (sensitivity)
            accuracy = event.get("accuracy")
            with view.ui_lock:
                view.c.progress.value = int(1000 * event["done"] / max(event["total"], 1))
                view.set_status(f"{self.name} ({self.who}): {event.get('layer')} at "
                                f"{event.get('sparsity', 0):.0%}: "
                                f"{'n/a' if accuracy is None else f'{accuracy:.1%}'}")
            return
        if isinstance(event, dict) and "stage" in event:
            with view.ui_lock:
                view.set_status(f"{self.name} ({self.who}): {self._stage}")
            return
        if isinstance(event, (StepEvent, ProgressEvent, EpochEvent)):
            fraction = self._fraction(event)
            with view.ui_lock:
                view.c.progress.value = int(1000 * fraction)
                view.set_status(self._progress_line(event))
        now = time.monotonic()
        if now - self._drawn_at >= FIGURE_INTERVAL_S:  # the browser redraws the whole figure
            self._drawn_at = now
            view.job_progress()  # takes the UI lock itself, once it has read the session

    def _progress_line(self, event: StepEvent | ProgressEvent | EpochEvent) -> str:
        """The status line during training: epoch and step, and within an epoch how much
        of it is done and its running loss (from the latest progress report)."""
        stage = f"{self._stage}: " if self._stage else ""
        line = f"{self.name} ({self.who}): {stage}epoch {event.epoch}, step {event.step}"
        report = self._progress
        if isinstance(event, EpochEvent) or report is None or report.epoch != event.epoch:
            return line
        done = (event.step - (event.epoch - 1) * event.steps_per_epoch) / \
            max(event.steps_per_epoch, 1)
        return f"{line} ({done:.0%} of the epoch), running loss {report.running_loss:.4g}"

    def _on_done(self, result: JobResult | None) -> None:
        view = self.view
        try:
            self._finish(result)
        finally:
            status = view.c.status.value
            while True:  # slider moves made during the job, applied before anyone else's
                with self._lock:
                    if not self._pruning_pending:
                        self._active = False
                        break
                    self._pruning_pending = False
                view.apply_pruning(during_job=True)
                if "error:" not in view.c.status.value:
                    view.c.status.value = status  # keep the job's outcome in view
            view.set_busy(False)

    def _finish(self, result: JobResult | None) -> None:
        view = self.view
        failed = result is None or result.error is not None
        if failed and self.slot is not None:
            view.book.undo(self.slot)  # the session put the pre-job state back
        if result is None or result.error is not None:
            view.job_finished(self.slot, failed)
            view.set_status(f"error: {self.name} ({self.who}): "
                            f"{None if result is None else result.error}", error=True)
            return
        last = self.runner.latest
        message = self._on_job_done(result) if self._on_job_done else ""
        view.job_finished(self.slot, failed)
        if isinstance(last, StopEvent) and last.reason.startswith(DIVERGED):
            view.set_status(f"{self.name} ({self.who}) stopped: {last.reason}; the weights "
                            "from before the job are back (lower the learning rate)",
                            error=True)
            return
        if isinstance(last, StopEvent) or result.stopped:
            steps = last.step if isinstance(last, StopEvent) else "a few"
            view.set_status(f"{self.name} ({self.who}): stopped after {steps} steps; "
                            "kept the weights so far")
            return
        view.c.progress.value = view.c.progress.max
        # what the memory budget dropped from Undo / rewind, when the job changed it
        note = view.session.slot.kept_note
        view.set_status((message or f"{self.name} done ({self.who})") +
                        (f"; {note}" if note and note != self._note else ""))

    def _on_pump_error(self, err: BaseException) -> None:
        self.view.set_status(f"error: {self.name} ({self.who}): {err}", error=True)
