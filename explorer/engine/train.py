"""Training as a generator of events, so a caller (CLI, worker thread, test) drives it.

Masks stay applied: after every optimizer step the pruned entries are multiplied by
zero again, so they stay exactly zero under SGD, momentum, Adam and weight decay.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import TrainConfig
from ..data.datasets import Split
from .prune import zero_masked

# loss_fn(output, x, y, index) -> scalar loss; `index` holds the batch's sample indices.
LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class StepEvent:
    """One optimizer step: running figures of the current epoch."""

    epoch: int  # 1-based
    step: int  # global step count, 1-based
    steps_per_epoch: int
    loss: float
    accuracy: float | None  # None for regression


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


def make_optimizer(params: list[nn.Parameter], config: TrainConfig) -> torch.optim.Optimizer:
    """torch.optim only: SGD, SGD with momentum (PyTorch form), Adam."""
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
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


DIVERGED = "diverged"  # StopEvent.reason starts with this when the loss blew up


class FiniteGuard:
    """Keeps the weights from before the latest optimizer step, to roll back to them.

    Divergence shows up as a non-finite loss one step after the weights went bad (a NaN
    or infinite weight, or a finite but huge one overflowing the forward pass), or, for
    the last step of an epoch, as a non-finite weight in the end-of-epoch check.
    In both cases the weights in force before the last applied step are the last ones
    known to give a finite loss, so those are restored. The copy reuses preallocated
    buffers (one model's worth of memory, one copy per step: bounded cost), and covers
    buffers too (BatchNorm running statistics overflow with the weights).
    """

    def __init__(self, model: nn.Module) -> None:
        self.live = {k: v for k, v in model.state_dict(keep_vars=True).items()
                     if v.is_floating_point()}
        self.saved = {k: v.detach().clone() for k, v in self.live.items()}

    @torch.no_grad()
    def keep(self) -> None:
        for name, tensor in self.live.items():
            self.saved[name].copy_(tensor)

    @torch.no_grad()
    def finite(self) -> bool:
        checks = [torch.isfinite(t).all() for t in self.live.values()]
        return bool(torch.stack(checks).all()) if checks else True

    @torch.no_grad()
    def restore(self, what: str, step: int) -> str:
        """Copy the kept weights back; return the StopEvent reason (starts with DIVERGED).

        `step` optimizer steps were applied. A bad loss was computed on the weights after
        step `step`, so those before it (after step - 1) are restored; a bad weight right
        after a step restores the weights after step `step`.
        """
        for name, tensor in self.live.items():
            tensor.copy_(self.saved[name])
        bad_loss = what.startswith("loss")
        kept = step - 1 if bad_loss else step
        if bad_loss and step == 0:
            return f"{DIVERGED}: {what} at the first step; the weights are unchanged"
        return (f"{DIVERGED}: {what} at step {step + 1}; restored the last finite weights "
                f"(after step {kept})")


def train_steps(model: nn.Module, train: Split, val: Split, task: str, config: TrainConfig,
                masks: dict[str, torch.Tensor] | None = None,
                stop: threading.Event | None = None, seed: int = 0,
                loss_fn: LossFn | None = None) -> Iterator[StepEvent | EpochEvent | StopEvent]:
    """Train `model` in place, yielding an event per step and per epoch.

    `masks` maps parameter names to boolean keep-masks. `stop` is checked every batch.
    `loss_fn(output, x, y, index)` may replace the task loss (distillation uses it).
    `config.epoch_size` caps the samples per epoch (a random subset each epoch; tests).
    A non-finite loss stops the run before the step is applied.
    """
    params = dict(model.named_parameters())
    float_masks = {n: m.to(params[n].dtype) for n, m in (masks or {}).items()}
    optimizer = make_optimizer(list(params.values()), config)
    guard = FiniteGuard(model)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    n = len(train)
    per_epoch = n if config.epoch_size is None else min(n, config.epoch_size)
    steps_per_epoch = math.ceil(per_epoch / config.batch_size)
    step = 0
    model.train()
    for epoch in range(1, config.epochs + 1):
        order = torch.randperm(n, generator=generator)[:per_epoch].to(train.x.device)
        total_loss, seen = 0.0, 0
        for start in range(0, per_epoch, config.batch_size):
            if stop is not None and stop.is_set():
                yield StopEvent(step, "stopped")
                return
            index = order[start:start + config.batch_size]
            x, y = train.x[index], train.y[index]
            out = model(x)
            loss = loss_fn(out, x, y, index) if loss_fn else task_loss(out, y, task)
            loss_value = float(loss.detach())
            if not math.isfinite(loss_value):  # the weights of the last step made it so
                yield StopEvent(step, guard.restore(f"loss became {loss_value}", step))
                return
            guard.keep()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            zero_masked(params, float_masks)
            step += 1
            total_loss += loss_value * len(index)
            seen += len(index)
            accuracy = (float((out.detach().argmax(-1) == y).float().mean())
                        if task == "classification" else None)
            yield StepEvent(epoch, step, steps_per_epoch, loss_value, accuracy)
        # A weight that overflowed mid-epoch makes the next loss non-finite (caught above);
        # only the epoch's last step needs this pass, which costs a fifth of a step if run
        # after every one.
        if not guard.finite():
            yield StopEvent(step - 1, guard.restore("a weight became NaN or infinite",
                                                    step - 1))
            return
        val_loss, val_accuracy, _ = evaluate(model, val, task)
        yield EpochEvent(epoch, config.epochs, step, total_loss / seen, val_loss, val_accuracy)
