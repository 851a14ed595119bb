"""The one training loop: a generator of events, so a caller (CLI, worker thread, test)
drives it. Images, regression, students and the language model all train through it.

Masks stay applied: after every optimizer step the pruned entries are multiplied by
zero again, so they stay exactly zero under SGD, momentum, Adam and weight decay.
One divergence rule (DESIGN section 3): a non-finite loss or weight, or a classifier
whose validation accuracy falls to chance from above, stops the run with a StopEvent
whose reason starts with DIVERGED; the caller (a Session job) then restores the weights
from before the job. The loop never hands back ruined weights as if they were good.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from ..config import TrainConfig
from ..data.datasets import Split
from .progress import EpochMeter, ProgressEvent
from .prune import zero_masked

# loss_fn(output, x, y, index) -> scalar loss; `index` holds the batch's sample indices.
LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


class BatchAccuracy:
    """A step's batch accuracy, computed when read (``float(...)``). Nothing in the app reads
    it per step, and working it out on every step cost about 2.5% of a training epoch on
    the default model (issue 20's train_overhead_ratio)."""

    __slots__ = ("_logits", "_targets")

    def __init__(self, logits: torch.Tensor, targets: torch.Tensor) -> None:
        self._logits, self._targets = logits, targets

    def __float__(self) -> float:
        return float((self._logits.argmax(-1) == self._targets).float().mean())

    def __repr__(self) -> str:
        return f"BatchAccuracy({float(self):.4f})"


@dataclass(frozen=True)
class StepEvent:
    """One optimizer step: its loss and batch accuracy. On the CPU the loss is a float and
    the accuracy a BatchAccuracy (float() works it out); on an accelerator both are 0-dim
    tensors left on the device, so the loop never waits for them (float(event.loss) reads
    one; ProgressEvent brings the running loss read already)."""

    epoch: int  # 1-based
    step: int  # global step count, 1-based
    steps_per_epoch: int
    loss: float | torch.Tensor
    accuracy: float | torch.Tensor | BatchAccuracy | None  # None for regression
    lr: float | None = None  # the learning rate this step used


@dataclass(frozen=True)
class EpochEvent:
    """End of an epoch, measured on the validation split."""

    epoch: int
    epochs: int
    step: int
    train_loss: float
    val_loss: float
    val_accuracy: float | None


@dataclass(frozen=True)
class StopEvent:
    """The job ended early; `reason` says why (stopped by the user, diverged)."""

    step: int
    reason: str


Event = StepEvent | ProgressEvent | EpochEvent | StopEvent  # what a training loop yields


class BatchSource(Protocol):
    """Training data that draws its own batches (random text windows, say)."""

    def __len__(self) -> int: ...

    def draw(self, batch_size: int, generator: torch.Generator
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]: ...


def make_optimizer(params: list[nn.Parameter], config: TrainConfig) -> torch.optim.Optimizer:
    """torch.optim only: SGD, SGD with momentum (PyTorch form), Adam, AdamW."""
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    momentum = config.momentum if config.optimizer == "momentum" else 0.0
    return torch.optim.SGD(params, lr=config.lr, momentum=momentum,
                           weight_decay=config.weight_decay)


def task_loss(output: torch.Tensor, target: torch.Tensor, task: str) -> torch.Tensor:
    if task == "classification":
        # A sequence model's (B, T, classes) logits: every position is one example.
        return F.cross_entropy(output.flatten(0, -2), target.flatten())
    return F.mse_loss(output, target)


@torch.inference_mode()
def evaluate(model: nn.Module, split: Split, task: str) -> tuple[float, float | None,
                                                               torch.Tensor]:
    """(loss, accuracy or None, outputs) on a whole split in one forward pass."""
    was_training = model.training
    model.eval()
    out = model(split.x)
    model.train(was_training)
    loss = float(task_loss(out, split.y, task))
    if task != "classification":
        return loss, None, out
    accuracy = float((out.argmax(-1) == split.y).float().mean())
    return loss, accuracy, out


DIVERGED = "diverged"  # StopEvent.reason starts with this when training blew up
# "At chance": accuracy within this fraction of the range above chance (1 / classes); the
# check applies to a run that started at least CHANCE_START of that range above chance.
CHANCE_BAND, CHANCE_START = 0.1, 0.25


def lr_factor(schedule: str, step: int, steps: int) -> float:
    """Multiplier of the base learning rate at 0-based `step` of `steps`.

    warmup_cosine: linear warm-up over 5% of the steps, then cosine decay to 10% (a short
    budget needs the decay; the language model's recipe).
    """
    if schedule == "constant":
        return 1.0
    warmup = max(1, steps // 20)
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress))


def chance_level(model_out_dim: int) -> float:
    """Accuracy of guessing among `model_out_dim` classes."""
    return 1.0 / max(model_out_dim, 1)


def at_chance(accuracy: float | None, start: float | None, classes: int) -> bool:
    """Whether accuracy collapsed to chance from well above it (no NaN needed to see it)."""
    if accuracy is None or start is None or classes < 2:
        return False
    chance = chance_level(classes)
    return start >= chance + CHANCE_START * (1 - chance) and \
        accuracy <= chance + CHANCE_BAND * (1 - chance)


@torch.no_grad()
def weights_finite(model: nn.Module) -> bool:
    """True when every floating-point parameter and buffer is finite."""
    checks = [torch.isfinite(t).all() for t in model.state_dict().values()
              if t.is_floating_point()]
    return bool(torch.stack(checks).all()) if checks else True


def _batches(train: Split | BatchSource, batch_size: int, generator: torch.Generator,
             per_epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """One epoch of `per_epoch` samples as (x, y, sample index) batches: a seeded
    permutation (cut to `per_epoch`), or drawn batches."""
    n = len(train)
    if isinstance(train, Split):
        order = torch.randperm(n, generator=generator)[:per_epoch].to(train.x.device)
        for start in range(0, per_epoch, batch_size):
            index = order[start:start + batch_size]
            yield train.x[index], train.y[index], index
    else:
        for _ in range(math.ceil(per_epoch / batch_size)):
            yield train.draw(batch_size, generator)


def reads_free(device: torch.device) -> bool:
    """Whether reading a scalar from `device` costs no wait (the CPU: nothing is queued);
    elsewhere the loop reads the loss only at progress reports (tests patch this)."""
    return device.type == "cpu"


def _accuracy(out: torch.Tensor, y: torch.Tensor, task: str,
              eager: bool) -> BatchAccuracy | torch.Tensor | None:
    """A classification step's batch accuracy: worked out when read on the CPU, else left
    on the device (float(event.accuracy) reads it either way)."""
    if task != "classification":
        return None
    if eager:
        return BatchAccuracy(out.detach(), y)
    return (out.detach().argmax(-1) == y).float().mean()


def train_steps(model: nn.Module, train: Split | BatchSource, val: Split, task: str,
                config: TrainConfig, masks: dict[str, torch.Tensor] | None = None,
                stop: threading.Event | None = None, seed: int = 0,
                loss_fn: LossFn | None = None, start_accuracy: float | None = None
                ) -> Iterator[StepEvent | ProgressEvent | EpochEvent | StopEvent]:
    """Train `model` in place, yielding an event per step and per epoch, and a
    ProgressEvent within an epoch now and then (engine.progress: the running loss).

    `masks` maps parameter names to boolean keep-masks. `stop` is checked every batch.
    `loss_fn(output, x, y, index)` may replace the task loss (distillation uses it).
    `config.steps` gives a budget of optimizer steps instead of `config.epochs`.
    `start_accuracy` (validation accuracy before the job), or the best validation accuracy
    of an earlier epoch of this run, arms the collapse-to-chance
    check. On the CPU a bad loss stops the run before its step is applied; on an
    accelerator (no per-step host read) at the next progress report or the epoch's end,
    and the caller (a Session job) rolls the job back either way.
    `config.epoch_size` caps the samples per epoch (a random subset each epoch; tests).
    """
    params = dict(model.named_parameters())
    float_masks = {n: m.to(params[n].dtype) for n, m in (masks or {}).items()}
    optimizer = make_optimizer(list(params.values()), config)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    per_epoch = len(train) if config.epoch_size is None else min(len(train),
                                                                   config.epoch_size)
    steps_per_epoch = math.ceil(per_epoch / config.batch_size)
    budget = config.steps or steps_per_epoch * config.epochs
    epochs = math.ceil(budget / steps_per_epoch)
    step, best_accuracy = 0, start_accuracy
    model.train()
    for epoch in range(1, epochs + 1):
        meter = EpochMeter(epoch, epochs, steps_per_epoch)
        for x, y, index in _batches(train, config.batch_size, generator, per_epoch):
            if stop is not None and stop.is_set():
                yield StopEvent(step, "stopped")
                return
            out = model(x)
            loss = loss_fn(out, x, y, index) if loss_fn else task_loss(out, y, task)
            eager = reads_free(loss.device)
            loss_value: float | torch.Tensor = float(loss.detach()) if eager else loss.detach()
            if eager and not math.isfinite(float(loss_value)):
                yield StopEvent(step, f"{DIVERGED}: the loss became {loss_value} at step "
                                      f"{step + 1}")
                return
            lr = config.lr * lr_factor(config.lr_schedule, step, budget)
            for group in optimizer.param_groups:
                group["lr"] = lr
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.clip_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(list(params.values()), config.clip_grad_norm)
            optimizer.step()
            zero_masked(params, float_masks)
            step += 1
            meter.add(loss, len(index), check=not eager)
            yield StepEvent(epoch, step, steps_per_epoch, loss_value,
                            _accuracy(out, y, task, eager), lr)
            if meter.due():
                report = meter.report(step)  # the running loss's one read to the host
                if meter.went_bad() or not math.isfinite(report.running_loss):
                    yield StopEvent(step, f"{DIVERGED}: the loss became non-finite by step "
                                          f"{step}")
                    return
                yield report
            if step >= budget:
                break
        if meter.went_bad():  # an accelerator's losses are checked here and at reports
            yield StopEvent(step, f"{DIVERGED}: the loss became non-finite by step {step}")
            return
        # A weight that overflowed mid-epoch makes the next loss non-finite (caught above);
        # only the epoch's last step needs this pass.
        if not weights_finite(model):
            yield StopEvent(step, f"{DIVERGED}: a weight became NaN or infinite at step "
                                  f"{step}")
            return
        val_loss, val_accuracy, out = evaluate(model, val, task)
        if at_chance(val_accuracy, best_accuracy, out.shape[-1]):
            yield StopEvent(step, f"{DIVERGED}: accuracy fell to chance "
                                  f"({val_accuracy:.1%}) at step {step}")
            return
        if val_accuracy is not None:  # a run from scratch arms the check once it learned
            best_accuracy = max(best_accuracy or 0.0, val_accuracy)
        yield EpochEvent(epoch, epochs, step, meter.mean(), val_loss, val_accuracy)
