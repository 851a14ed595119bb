"""Progress within an epoch (issue 18, feedback in time on big models).

An epoch of a 10M-parameter model can take minutes; an app that hears only of whole
epochs looks frozen. The training loop keeps each epoch's running loss where the loss
lives (a float64 sum on the device) and reads it to the host only when a report is due:
at most every config.PROGRESS_INTERVAL_S seconds and every config.PROGRESS_EVERY_STEPS
steps, whichever comes later. So a live app adds one host read per report, not one per
step, and the loop never waits on the accelerator in between.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from .. import config


@dataclass(frozen=True)
class ProgressEvent:
    """How far the current epoch is, and its mean training loss so far."""

    epoch: int  # 1-based
    epochs: int
    step: int  # global step count, 1-based
    steps_per_epoch: int
    done: int  # steps of this epoch done
    running_loss: float

    @property
    def fraction(self) -> float:
        """The fraction of this epoch done (0..1)."""
        return self.done / max(self.steps_per_epoch, 1)


class EpochMeter:
    """One epoch's running loss on the loss's device, and when to report it."""

    def __init__(self, epoch: int, epochs: int, steps_per_epoch: int) -> None:
        self.epoch, self.epochs, self.steps_per_epoch = epoch, epochs, steps_per_epoch
        self.total: torch.Tensor | None = None  # sum of loss * batch size, float64
        self.bad: torch.Tensor | None = None  # any non-finite loss (accelerators)
        self.seen = self.done = self._reported = 0
        self._reported_at = time.monotonic()

    def add(self, loss: torch.Tensor, batch: int, check: bool = False) -> None:
        """Count one step's loss (no host read); `check` also notes a non-finite one."""
        # float64 like the host's sum it replaces (MPS has no float64: float32 there)
        value = loss.detach().to(torch.float32 if loss.device.type == "mps" else
                                 torch.float64) * batch
        self.total = value if self.total is None else self.total + value
        if check:
            bad = ~torch.isfinite(loss.detach())
            self.bad = bad if self.bad is None else self.bad | bad
        self.seen += batch
        self.done += 1

    def due(self) -> bool:
        """A report is due: enough steps and enough time since the last, epoch not over."""
        if self.done >= self.steps_per_epoch or \
                self.done - self._reported < config.PROGRESS_EVERY_STEPS:
            return False
        return time.monotonic() - self._reported_at >= config.PROGRESS_INTERVAL_S

    def report(self, step: int) -> ProgressEvent:
        """The progress so far (reads the running loss: the one host read)."""
        self._reported, self._reported_at = self.done, time.monotonic()
        return ProgressEvent(self.epoch, self.epochs, step, self.steps_per_epoch, self.done,
                             self.mean())

    def mean(self) -> float:
        """The epoch's mean training loss so far (a host read)."""
        return 0.0 if self.total is None else float(self.total) / max(self.seen, 1)

    def went_bad(self) -> bool:
        """Whether a noted loss was NaN or infinite (a host read)."""
        return self.bad is not None and bool(self.bad)
