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
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from ..config import HISTORY_MAX, UNDO_MAX, PruneConfig, TrainConfig
from ..data.datasets import Dataset, from_tensors, load_dataset
from ..engine import checkpoint as ckpt
from ..engine.metrics import Snapshot, binned, histogram_edges, layer_stats, threshold_layer_stats
from ..engine.prune import MagnitudeIndex, MaskResult, apply_masks, compute_masks, prunable_names
from ..engine.structure import model_groups, removed_fraction, structured_masks
from ..engine.train import DIVERGED, EpochEvent, StepEvent, StopEvent, evaluate, train_steps
from ..models.zoo import build_model, check_fits
from ..validate import (
    check_bool,
    check_device_available,
    check_job_hooks,
    check_prunable,
    check_seed,
)
from .bounded import BoundedList
from .slots import StudentsMixin
from .workflows import CompressionMixin
from .workflows import clone_state as _clone

Event = StepEvent | EpochEvent | StopEvent
State = dict[str, torch.Tensor]
REWIND_EPOCHS_KEPT = 20  # rewind=k is possible for k up to this many training epochs


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """CUDA when present, else CPU; an explicit device wins."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"device must be auto, cpu or cuda; got {device!r}") from err


class Session(StudentsMixin, CompressionMixin):
    """Owns the model under study and every change made to it."""

    is_lm = False  # a text corpus and gpt-tiny give an LMSession (explorer.session.lm_session)

    def __new__(cls, dataset: object = None, model: object = "mlp", *args, **kwargs):
        from .lm_session import LMSession, is_text_request

        if cls is Session and is_text_request(dataset, model):
            return super().__new__(LMSession)
        return super().__new__(cls)

    def __init__(self, dataset: str | Dataset | None = None, model: str | nn.Module = "mlp",
                 *, width: float = 1.0, init: str = "default", seed: int = 0,
                 device: str | torch.device | None = None, pretrained: bool = True,
                 hidden: tuple[int, ...] | None = None, train: object = None,
                 val: object = None, test: object = None,
                 task: str = "classification") -> None:
        self.device = check_device_available(pick_device(device))
        seed = check_seed("seed", seed)
        check_bool("pretrained", pretrained)
        self.seed = seed
        self.data = self._load_data(dataset, train, val, test, task, seed).to(self.device)
        self.task = self.data.task
        if isinstance(model, nn.Module):
            self.model, self.model_name = model, type(model).__name__
        else:
            self.model = build_model(model, self.data.input_shape, self.data.n_outputs,
                                     width=width, init=init, seed=seed, hidden=hidden,
                                     image_shape=self.data.image_shape)
            self.model_name = model
        self.model.to(self.device)
        check_fits(self.model, self.model_name, self.data)
        self.config = {"dataset": self.data.name, "model": self.model_name, "width": width,
                       "init": init, "seed": seed}
        if hidden is not None:
            self.config["hidden"] = list(hidden)
        self.initial: State = _clone(self.model.state_dict())  # lottery-ticket rewind "init"
        self.rewind_states: dict[int, State] = {}  # weights after epoch k (rewind=k)
        self.epochs_trained = 0
        shipped = ckpt.load_matching(self.model, self.config) if pretrained else None
        self.pretrained = shipped is not None
        # epoch records and pruning events, in order; a shipped model brings its own
        self.history: list[dict] = BoundedList(shipped or [], HISTORY_MAX)
        # optimizer steps over all jobs, the curves' x axis
        self.total_steps = max((h.get("step", 0) for h in self.history), default=0)
        self._lock = threading.RLock()
        self._prunable = prunable_names(self.model)
        check_prunable(self.model, self.model_name, self._prunable)
        self.original: State = _clone(self.model.state_dict())
        self.undo_stack: list[State] = BoundedList(limit=UNDO_MAX)
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
        self._sorted_values: dict[str, torch.Tensor] = {}  # lazily, for fast snapshots
        self._mark_exact()  # the model shows the base: survivors are its nonzeros

    @property
    def prunable(self) -> list[str]:
        return list(self._prunable)

    def _params(self) -> dict[str, nn.Parameter]:
        named = dict(self.model.named_parameters())
        return {n: named[n] for n in self._prunable}

    # ----- pruning -----------------------------------------------------------------
    def prune(self, threshold: float | None = None, sparsity: float | None = None,
              std: float | None = None, scope: str = "layer", structured: bool = False,
              norm: str = "l1") -> Snapshot:
        """Magnitude-prune from the dense base with exactly one mode; return a Snapshot.

        `structured=True` removes whole neurons/filters (and their biases and BatchNorm
        entries), ranked by `norm`; `sparsity` is then the fraction of channels removed per
        layer, and Snapshot.extra["param_fraction_removed"] the parameter fraction.
        Bad arguments raise ValueError before anything changes.
        """
        config = PruneConfig(threshold=threshold, sparsity=sparsity, std=std, scope=scope,
                             structured=structured, norm=norm)
        with self._lock:
            if structured:
                groups, _ = model_groups(self.model)
                result = structured_masks(self.base, groups, config.value, norm)
            else:
                result = compute_masks(self._index, config)
            self._install_masks(result, config)
            return self.engine_snapshot()

    def reset_pruning(self) -> Snapshot:
        """Drop the masks: the model holds the dense base again, bit for bit."""
        with self._lock:
            apply_masks(self._params_for(self.masks), self.base, None)
            self.masks, self.prune_config, self.cuts, self.warnings = None, None, {}, ()
            self._mark_exact()
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
        check_job_hooks(stop, on_event)
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
            if isinstance(event, StopEvent) and event.reason.startswith(DIVERGED) and \
                    stop is not None:
                stop.set()  # callers looping over jobs (iterative, sweeps) stop too
            if isinstance(event, EpochEvent):
                self._record_epoch()
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
            apply_masks(self._params_for(masks), self.base, masks)
            self.masks, self.prune_config = masks, prune_config

    # ----- measuring ---------------------------------------------------------------
    def snapshot(self, split: str = "val", evaluate_model: bool = True) -> Snapshot:
        """Freeze the current state: metrics on `split`, per-layer sparsity, histograms."""
        with self._lock:
            params = self._params()
            layers = tuple(self._layer_stats(n, p) for n, p in params.items())
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
        plain = [{k: v for k, v in h.items() if k != "snapshot"} for h in self.history]
        ckpt.save(path, self.base, self.config, plain)

    # ----- pruning engine: data/model checks, masks, iterative, rewind, shrink, export ---
    def _load_data(self, dataset: str | Dataset | None, train: object, val: object,
                   test: object, task: str, seed: int) -> Dataset:
        if train is None and val is None and test is None:
            return (dataset if isinstance(dataset, Dataset)
                    else load_dataset(dataset or "digits", seed=seed, device=self.device))
        if dataset is not None:
            raise ValueError(f"give either dataset={dataset!r} or train=/val= tensors, not both")
        if train is None or val is None:
            raise ValueError("bring-your-own data needs both train= and val=")
        return from_tensors(train, val, test, task)

    def _params_for(self, *mask_sets: dict[str, torch.Tensor] | None) -> dict[str, nn.Parameter]:
        """Prunable weights plus every tensor some mask covers (structured: biases, BN)."""
        named = dict(self.model.named_parameters())
        names = dict.fromkeys(self._prunable)
        for masks in mask_sets:
            names.update(dict.fromkeys(masks or {}))
        return {n: named[n] for n in names}

    def _install_masks(self, result: MaskResult, config: PruneConfig) -> None:
        """Show base * mask (tensors no longer masked get their base back)."""
        apply_masks(self._params_for(self.masks, result.masks), self.base, result.masks)
        self.masks, self.prune_config = result.masks, config
        self.cuts, self.warnings = result.cuts, result.warnings
        if result.exact_cuts and not config.structured:
            self._mark_exact()

    # ----- fast snapshots (issue 7: a slider move costs masks + one forward pass) ------
    def _mark_exact(self) -> None:
        """Record that each prunable weight now equals base * (|base| >= cut).

        Keyed by the tensor and its version counter, which any in-place change (optimizer
        step, mask multiply, load_state_dict) bumps: a stale record is simply not used.
        """
        self._exact = {n: (id(p), p._version) for n, p in self._params().items()}

    def _layer_stats(self, name: str, param: torch.Tensor):
        cut = self.cuts.get(name, 0.0)
        if getattr(self, "_exact", {}).get(name) != (id(param), param._version):
            return layer_stats(name, param, self._base_counts[name], self._edges[name], cut)
        if name not in self._sorted_values:
            self._sorted_values[name] = torch.sort(self.base[name].flatten())[0]
        return threshold_layer_stats(name, self._sorted_values[name],
                                     self._base_counts[name], self._edges[name], cut)

    def engine_snapshot(self, split: str = "val") -> Snapshot:
        """snapshot() plus which sparsity a structured number means (PITFALLS)."""
        snap = self.snapshot(split)
        if self.prune_config is None or not self.prune_config.structured:
            return snap
        extra = {"structured": True, "norm": self.prune_config.norm,
                 "channel_fraction_removed": self.prune_config.value,
                 "param_fraction_removed": removed_fraction(self.model)}
        return replace(snap, extra={**snap.extra, **extra})

    def _record_epoch(self) -> None:
        """Remember early weights so that rewind=k can return to them (lottery ticket)."""
        self.epochs_trained += 1
        if self.epochs_trained <= REWIND_EPOCHS_KEPT:
            self.rewind_states.setdefault(self.epochs_trained, _clone(self.model.state_dict()))


def available_devices() -> list[str]:
    """Devices a user can pick here: always cpu, plus cuda when present."""
    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]
