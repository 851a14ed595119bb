"""Session: the one owner of data, model, dense base weights, masks and history.

Everything a front end shows comes from a frozen Snapshot returned here; nothing
outside reaches into the model. Pruning never stacks masks: each request rebuilds
them from the dense base, so moving a slider back restores the base bit for bit.
Training on a pruned model commits (DESIGN section 3): survivors become the new base,
pruned entries keep their old base values, and the previous base goes on an undo stack.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from . import checkpoint as ckpt
from .config import PruneConfig, TrainConfig
from .data import Dataset, load_dataset
from .metrics import Snapshot, binned, histogram_edges, layer_stats
from .models import build_model
from .prune import MagnitudeIndex, apply_masks, compute_masks, prunable_names
from .students import StudentsMixin
from .train import EpochEvent, StepEvent, StopEvent, evaluate, train_steps

Event = StepEvent | EpochEvent | StopEvent
State = dict[str, torch.Tensor]


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """CUDA when present, else CPU; an explicit device wins."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"device must be auto, cpu or cuda; got {device!r}") from err


def _clone(state: State) -> State:
    return {k: v.detach().clone() for k, v in state.items()}


class Session(StudentsMixin):
    """Owns the model under study and every change made to it."""

    def __init__(self, dataset: str | Dataset = "digits", model: str | nn.Module = "mlp",
                 *, width: float = 1.0, init: str = "default", seed: int = 0,
                 device: str | torch.device | None = None, pretrained: bool = True) -> None:
        self.device = pick_device(device)
        self.seed = seed
        self.data = (dataset if isinstance(dataset, Dataset)
                     else load_dataset(dataset, seed=seed, device=self.device)).to(self.device)
        self.task = self.data.task
        if isinstance(model, nn.Module):
            self.model, self.model_name = model, type(model).__name__
        else:
            self.model = build_model(model, self.data.input_shape, self.data.n_outputs,
                                     width=width, init=init, seed=seed)
            self.model_name = model
        self.model.to(self.device)
        self.config = {"dataset": self.data.name, "model": self.model_name, "width": width,
                       "init": init, "seed": seed}
        self.pretrained = pretrained and ckpt.load_matching(self.model, self.config)
        self.history: list[dict] = []  # epoch records and pruning events, in order
        self.total_steps = 0  # optimizer steps over all jobs, the curves' x axis
        self._lock = threading.RLock()
        self._prunable = prunable_names(self.model)
        self.original: State = _clone(self.model.state_dict())
        self.undo_stack: list[State] = []
        self._set_base(self.original)

    @classmethod
    def default(cls, device: str | torch.device | None = None) -> Session:
        """The digits MLP, trained (from the shipped checkpoint, else on the spot)."""
        session = cls("digits", "mlp", device=device)
        if not session.pretrained:
            session.train(epochs=ckpt.DEFAULT_EPOCHS)
            session.original = _clone(session.base)
            session.undo_stack.clear()
        return session

    # ----- state -------------------------------------------------------------------
    def _set_base(self, base: State) -> None:
        """Adopt a new dense base: the model shows it unmasked, caches are rebuilt."""
        self.base = _clone(base)
        self.model.load_state_dict(self.base)
        self.masks: dict[str, torch.Tensor] | None = None
        self.prune_config: PruneConfig | None = None
        self.cuts: dict[str, float] = {}
        self.warnings: tuple[str, ...] = ()
        prunable_base = {n: self.base[n] for n in self._prunable}
        self._index = MagnitudeIndex(prunable_base)
        self._edges = {n: histogram_edges(w).to(w.device) for n, w in prunable_base.items()}
        self._base_counts = {n: binned(w, self._edges[n]) for n, w in prunable_base.items()}
        self._edges = {n: e.cpu() for n, e in self._edges.items()}

    @property
    def prunable(self) -> list[str]:
        return list(self._prunable)

    def _params(self) -> dict[str, nn.Parameter]:
        named = dict(self.model.named_parameters())
        return {n: named[n] for n in self._prunable}

    # ----- pruning -----------------------------------------------------------------
    def prune(self, threshold: float | None = None, sparsity: float | None = None,
              std: float | None = None, scope: str = "layer") -> Snapshot:
        """Magnitude-prune from the dense base with exactly one mode; return a Snapshot.

        Bad arguments raise ValueError before anything changes.
        """
        config = PruneConfig(threshold=threshold, sparsity=sparsity, std=std, scope=scope)
        with self._lock:
            result = compute_masks(self._index, config)
            apply_masks(self._params(), self.base, result.masks)
            self.masks, self.prune_config = result.masks, config
            self.cuts, self.warnings = result.cuts, result.warnings
            return self.snapshot()

    def reset_pruning(self) -> Snapshot:
        """Drop the masks: the model holds the dense base again, bit for bit."""
        with self._lock:
            apply_masks(self._params(), self.base, None)
            self.masks, self.prune_config, self.cuts, self.warnings = None, None, {}, ()
            return self.snapshot()

    def undo(self) -> Snapshot:
        """Return to the base before the last committed job."""
        with self._lock:
            if not self.undo_stack:
                raise ValueError("nothing to undo: no job has changed the base yet")
            self._set_base(self.undo_stack.pop())
            return self.snapshot()

    def reset(self) -> Snapshot:
        """Back to the original trained model: no masks, empty undo stack."""
        with self._lock:
            self.undo_stack.clear()
            self._set_base(self.original)
            return self.snapshot()

    # ----- training ----------------------------------------------------------------
    def train(self, epochs: int = 5, lr: float = 1e-3, optimizer: str = "adam",
              batch_size: int = 64, weight_decay: float = 0.0,
              stop: threading.Event | None = None,
              on_event: Callable[[Event], None] | None = None) -> Snapshot:
        """Train (blocking) with the masks applied, then commit the result as the base."""
        config = TrainConfig(epochs=epochs, lr=lr, optimizer=optimizer,
                             batch_size=batch_size, weight_decay=weight_decay)
        with self._lock:
            masks, prune_config = self.masks, self.prune_config
            previous = _clone(self.base)
            first_step = self.total_steps
        steps = train_steps(self.model, self.data.train, self.data.val, self.task, config,
                            masks=masks, stop=stop, seed=self.seed + len(self.undo_stack))
        while True:
            with self._lock:  # one optimizer step at a time; snapshots read between steps
                event = next(steps, None)
            if event is None:
                break
            if isinstance(event, StepEvent):
                self.total_steps = first_step + event.step
            if isinstance(event, EpochEvent):
                self.history.append({"kind": "epoch", "epoch": event.epoch,
                                     "step": first_step + event.step,
                                     "train_loss": event.train_loss,
                                     "val_loss": event.val_loss,
                                     "val_accuracy": event.val_accuracy})
            if on_event is not None:
                on_event(event)
        with self._lock:
            self._commit(previous, masks, prune_config)
            return self.snapshot()

    def _commit(self, previous: State, masks: dict[str, torch.Tensor] | None,
                prune_config: PruneConfig | None) -> None:
        """Trained survivors become the base; pruned entries keep their old base values."""
        trained = _clone(self.model.state_dict())
        if masks is not None:
            for name, mask in masks.items():
                trained[name] = torch.where(mask, trained[name], previous[name])
        self.undo_stack.append(previous)
        self._set_base(trained)
        if masks is not None:  # the model stays pruned exactly as it was trained
            apply_masks(self._params(), self.base, masks)
            self.masks, self.prune_config = masks, prune_config

    # ----- measuring ---------------------------------------------------------------
    def snapshot(self, split: str = "val", evaluate_model: bool = True) -> Snapshot:
        """Freeze the current state: metrics on `split`, per-layer sparsity, histograms."""
        with self._lock:
            params = self._params()
            layers = tuple(
                layer_stats(n, p, self._base_counts[n], self._edges[n], self.cuts.get(n, 0.0))
                for n, p in params.items())
            if evaluate_model:
                loss, accuracy, _ = evaluate(self.model, self.data.split(split), self.task)
            else:
                loss, accuracy = float("nan"), None
            others = [p for n, p in self.model.named_parameters() if n not in params]
            pruned = sum(layer.numel - layer.nonzero for layer in layers)
            prunable = sum(layer.numel for layer in layers)
            return Snapshot(
                accuracy=accuracy, loss=loss, sparsity=pruned / max(prunable, 1),
                params=prunable + sum(p.numel() for p in others),
                nonzero=sum(layer.nonzero for layer in layers)
                + sum(int(torch.count_nonzero(p)) for p in others),
                layers=layers, split=split, task=self.task,
                prune=None if self.prune_config is None else {
                    "mode": self.prune_config.mode, "value": self.prune_config.value,
                    "scope": self.prune_config.scope},
                warnings=self.warnings)

    def save_checkpoint(self, path: str | Path) -> None:
        """Write the dense base as a shippable checkpoint (weights_only loadable)."""
        ckpt.save(path, self.base, self.config, self.history)
