"""The app's background jobs: start one at a time, show progress, finish cleanly.

Training, fine-tuning, distillation and sweeps never run in a widget callback (a long
loop there would block the kernel, and in Voila the Stop click would never arrive).
The app holds one JobController; the controller drives the app through JobView.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

from ..engine.metrics import Snapshot
from ..engine.train import DIVERGED, EpochEvent, StepEvent, StopEvent
from ..session.jobs import JobResult, JobRunner
from ..session.session import Session
from .controls import Controls
from .pump import Pump

MAX_STEP_POINTS = 20_000  # raw step losses kept; the plot shows at most 1,500 of them


class JobView(Protocol):
    """What a JobController uses of the app it runs jobs for."""

    session: Session
    snap: Snapshot
    c: Controls

    def set_status(self, text: str, error: bool = False) -> None: ...

    def set_busy(self, busy: bool) -> None:
        """Disable (or enable again) the controls that change the model."""

    def show(self, snap: Snapshot) -> None: ...

    def draw_curves(self) -> None: ...

    def forget_measures(self) -> None:
        """The model changed: measured numbers no longer apply."""

    def apply_pruning(self, during_job: bool = False) -> bool:
        """Prune by the current pruning controls."""


class JobController:
    """One job at a time in a worker thread, its Stop, its progress and its finish."""

    def __init__(self, view: JobView) -> None:
        self.view = view
        self.runner = JobRunner()
        self.pump: Pump | None = None
        self.name = ""  # the running (or last) job's name, for status lines
        self.steps: list[int] = []  # raw step losses for the curves, bounded
        self.step_losses: list[float] = []
        self._on_job_done: Callable[[JobResult], str] | None = None
        self._active = False  # from start() until _on_done has run (pump included)
        self._pruning_pending = False  # a pruning change arrived during a job
        self._lock = threading.Lock()  # guards the two flags above

    @property
    def busy(self) -> bool:
        """A job runs, or its result has not been applied to the widgets yet."""
        return self._active or self.runner.running

    def start(self, name: str, work: Callable, epochs_hint: int = 1,
              on_done: Callable[[JobResult], str] | None = None) -> bool:
        """Run `work(stop, on_event)` in the worker; False when a job is running."""
        view = self.view
        with self._lock:
            refused = self.busy
            self._active = True  # (already True when refused)
        if refused:
            view.set_status("a job is already running: stop it first", error=True)
            return False

        def job(stop, publish):
            def on_event(event):
                if isinstance(event, StepEvent):
                    self._record_step(event.loss)
                publish(event)
            return work(stop, on_event)

        view.set_busy(True)
        view.c.progress.max, view.c.progress.value = max(epochs_hint, 1), 0
        view.set_status(f"{name}: starting")
        self.name, self._on_job_done = name, on_done
        if not self.runner.start(name, job):  # cannot happen while _active guards it
            self._active = False
            view.set_busy(False)
            return False
        self.pump = Pump(self.runner, self._on_progress, self._on_done, self._on_pump_error)
        self.pump.start()
        return True

    def stop(self) -> None:
        if self.runner.running:
            self.view.set_status(f"{self.name}: stopping...")
            self.runner.stop()

    def wait(self, timeout: float = 120.0) -> bool:
        """Block until the job and its pump finish (for tests and scripts)."""
        self.runner.join(timeout)
        return self.pump is None or self.pump.join(timeout)

    def defer_pruning(self) -> bool:
        """True while busy: the pruning controls' change is then applied when the job ends."""
        with self._lock:
            deferred = self._pruning_pending = self.busy
        return deferred

    def clear_steps(self) -> None:
        self.steps, self.step_losses = [], []

    def _record_step(self, loss: float) -> None:
        self.steps.append(self.view.session.total_steps)
        self.step_losses.append(loss)
        if len(self.steps) > MAX_STEP_POINTS:  # keep memory bounded
            del self.steps[::2], self.step_losses[::2]

    def _on_progress(self, event) -> None:
        view = self.view
        if isinstance(event, (StepEvent, EpochEvent)):
            view.c.progress.value = min(view.c.progress.value + isinstance(event, EpochEvent),
                                        view.c.progress.max)
            view.set_status(f"{self.name}: epoch {event.epoch}, step {event.step}")
        view.show(view.session.snapshot(evaluate_model=False))
        view.draw_curves()

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
        view.forget_measures()
        view.draw_curves()
        if result is None or result.error is not None:
            view.set_status(f"error: {None if result is None else result.error}", error=True)
            view.show(view.session.snapshot())
            return
        view.show(view.session.snapshot())
        last = self.runner.latest
        message = self._on_job_done(result) if self._on_job_done else ""
        if isinstance(last, StopEvent) and last.reason.startswith(DIVERGED):
            view.set_status(f"{self.name} stopped: {last.reason}; the weights from before "
                            "the job are back (lower the learning rate)", error=True)
            return
        if isinstance(last, StopEvent):
            view.set_status(f"{self.name}: {last.reason} after {last.step} steps; "
                            "kept the weights so far")
            return
        view.c.progress.value = view.c.progress.max
        acc = "" if view.snap.accuracy is None else f": val accuracy {view.snap.accuracy:.1%}"
        view.set_status(message or f"{self.name} done{acc}")

    def _on_pump_error(self, err: BaseException) -> None:
        self.view.set_status(f"error: {err}", error=True)
