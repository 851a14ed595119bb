"""The app's background jobs: start one at a time, show progress, finish cleanly.

Training, fine-tuning, distillation and sweeps never run in a widget callback (a long
loop there would block the kernel, and in Voila the Stop click would never arrive).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..engine.train import DIVERGED, EpochEvent, StepEvent, StopEvent
from ..session.jobs import JobResult
from . import plots
from .controls import model_changing, rewind_value
from .pump import Pump

MAX_STEP_POINTS = 20_000  # raw step losses kept; the plot shows at most 1,500 of them


class JobsMixin:
    """ExplorerApp's job half; it uses the app's session, controls, figure and status."""

    # ----- jobs --------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """A job runs, or its result has not been applied to the widgets yet."""
        return self._job_active or self.runner.running

    def start_job(self, name: str, work: Callable, epochs_hint: int = 1,
                  on_done: Callable[[JobResult], str] | None = None) -> bool:
        """Run `work(stop, on_event)` in the worker; False when a job is running."""
        with self._busy_lock:
            refused = self.busy
            self._job_active = True  # (already True when refused)
        if refused:
            self.set_status("a job is already running: stop it first", error=True)
            return False

        def job(stop, publish):
            def on_event(event):
                if isinstance(event, StepEvent):
                    self._steps.append(self.session.total_steps)
                    self._step_losses.append(event.loss)
                    if len(self._steps) > MAX_STEP_POINTS:  # keep memory bounded
                        del self._steps[::2], self._step_losses[::2]
                publish(event)
            return work(stop, on_event)

        self._set_busy(True)
        self.c.progress.max, self.c.progress.value = max(epochs_hint, 1), 0
        self.set_status(f"{name}: starting")
        self._job_name, self._job_done = name, on_done
        if not self.runner.start(name, job):  # cannot happen while _job_active guards it
            self._job_active = False
            self._set_busy(False)
            return False
        self.pump = Pump(self.runner, self._on_progress, self._on_done, self._on_pump_error)
        self.pump.start()
        return True

    def start_training(self) -> bool:
        epochs, lr = self.c.epochs.value, self.c.lr.value
        return self.start_job("training", lambda stop, ev: self.session.train(
            epochs=epochs, lr=lr, optimizer=self.model_panel.optimizer(),
            batch_size=self.model_panel.batch_size(), stop=stop, on_event=ev), epochs)

    def start_prune_finetune(self) -> bool:
        c = self.c
        if c.mode.value != "sparsity":
            self.set_status("error: Prune and fine-tune needs a target sparsity; "
                            f"the slider is in {c.mode.value} mode", error=True)
            return False
        target, steps, ft = c.slider.value, c.steps.value, c.finetune_epochs.value
        kwargs = dict(steps=steps, schedule=c.schedule.value, finetune_epochs=ft,
                      rewind=rewind_value(c.rewind.value), scope=c.scope.value, lr=c.lr.value / 10,
                      structured=c.structured.value, norm=c.norm.value)
        return self.start_job("prune and fine-tune", lambda stop, ev:
                              self.session.prune_iteratively(target, stop=stop, on_event=ev,
                                                             **kwargs), steps * max(ft, 1))

    def stop(self) -> None:
        if self.runner.running:
            self.set_status(f"{self._job_name}: stopping...")
            self.runner.stop()

    def wait(self, timeout: float = 120.0) -> bool:
        """Block until the job and its pump finish (for tests and scripts)."""
        self.runner.join(timeout)
        return self.pump is None or self.pump.join(timeout)

    def _set_busy(self, busy: bool) -> None:
        for widget in (*model_changing(self.c), *self.model_panel.controls(),
                       *self.distill.controls(), *self.compare.controls()):
            widget.disabled = busy
        self.c.stop.disabled = not busy

    def _on_progress(self, event) -> None:
        if isinstance(event, (StepEvent, EpochEvent)):
            self.c.progress.value = min(self.c.progress.value + isinstance(event, EpochEvent),
                                        self.c.progress.max)
            self.set_status(f"{self._job_name}: epoch {event.epoch}, step {event.step}")
        self._show(self.session.snapshot(evaluate_model=False))
        self.draw_curves()

    def _on_done(self, result: JobResult | None) -> None:
        try:
            self._finish(result)
        finally:
            status = self.c.status.value
            while True:  # slider moves made during the job, applied before anyone else's
                with self._busy_lock:
                    if not self._compute_pending:
                        self._job_active = False
                        break
                    self._compute_pending = False
                self.run(lambda: self.session.prune(**self.prune_kwargs()), during_job=True)
                if "error:" not in self.c.status.value:
                    self.c.status.value = status  # keep the job's outcome in view
            self._set_busy(False)

    def _finish(self, result: JobResult | None) -> None:
        self.cards.forget()
        self.draw_curves()
        if result is None or result.error is not None:
            self.set_status(f"error: {None if result is None else result.error}", error=True)
            self._show(self.session.snapshot())
            return
        self._show(self.session.snapshot())
        last = self.runner.latest
        message = self._job_done(result) if self._job_done else ""
        if isinstance(last, StopEvent) and last.reason.startswith(DIVERGED):
            self.set_status(f"{self._job_name} stopped: {last.reason}; lower the learning "
                            "rate", error=True)
            return
        if isinstance(last, StopEvent):
            self.set_status(f"{self._job_name}: {last.reason} after {last.step} steps; "
                            "kept the weights so far")
            return
        self.c.progress.value = self.c.progress.max
        acc = "" if self.snap.accuracy is None else f": val accuracy {self.snap.accuracy:.1%}"
        self.set_status(message or f"{self._job_name} done{acc}")

    def _on_pump_error(self, err: BaseException) -> None:
        self.set_status(f"error: {err}", error=True)

    def draw_curves(self) -> None:
        n = min(len(self._steps), len(self._step_losses))
        plots.update_curves(self.fig, np.array(self._steps[:n]),
                            np.array(self._step_losses[:n]), list(self.session.history),
                            self.session.task)
        ppl = [h["val_perplexity"] for h in self.session.history if "val_perplexity" in h]
        if ppl:  # a language model: name the validation trace by its perplexity too
            self.fig.data[plots.VAL_LOSS].name = f"val loss (perplexity {ppl[-1]:.2f})"
