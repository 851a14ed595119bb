"""SessionCore: the state a session owns and the operations every front end calls.

Everything a front end shows comes from a frozen Snapshot returned here; nothing
outside reaches into the model. Pruning never stacks masks: each request rebuilds
them from the dense base, so moving a slider back restores the base bit for bit.
Training on a pruned model commits (DESIGN section 3): survivors become the base,
pruned entries keep their old base values, and the previous base goes on an undo stack.
The per-model state lives in ModelSlot objects; the attributes below that name the
selected slot's state (model, base, masks, ...) read and write that slot.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from ..config import (
    BN_RECALIBRATION_SAMPLES,
    FAST_EVAL_MIN_PARAMS,
    FAST_EVAL_SAMPLES,
    HISTORY_MAX,
    PruneConfig,
    check_choice,
)
from ..data.datasets import Dataset, Split, from_tensors, load_dataset
from ..data.images import is_image_folder, load_image_folder
from ..engine.attention import example_of
from ..engine.compact import refuse_twin, twin_of
from ..engine.distill import TeacherCache
from ..engine.metrics import Snapshot
from ..engine.prune import compute_masks
from ..engine.structure import (
    has_batchnorm,
    model_groups,
    recalibrate_bn,
    removed_fraction,
    settle_norms,
    structured_masks,
    within_committed,
)
from ..engine.train import (
    evaluate,
)
from ..validate import check_prunable
from . import moves
from .bounded import BoundedList
from .jobs_mixin import JobsMixin
from .memory import nothing_to_undo
from .slots import SLOT_NAMES, ModelSlot
from .tasks import Task


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """CUDA when present, else CPU; an explicit device wins."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"device must be auto, cpu or cuda; got {device!r}") from err


def available_devices() -> list[str]:
    """Devices a user can pick here: always cpu, plus cuda when present."""
    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


class _SelectedSlot:
    """An attribute of the session that is the selected ModelSlot's attribute of that name."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, session: Any, owner: type | None = None) -> Any:
        return self if session is None else getattr(session.slot, self.name)

    def __set__(self, session: Any, value: Any) -> None:
        setattr(session.slot, self.name, value)


class SessionCore(JobsMixin):
    """Data, model slots, history and the lock; prune, train, undo, snapshot."""

    SLOTS = SLOT_NAMES
    # After structured pruning, re-estimate BatchNorm statistics on a few hundred training
    # samples (no gradient step) before anything is measured; set False to see stale ones.
    bn_recalibration = True
    bn_samples = 0  # samples the last move's BatchNorm statistics came from (0: restored)
    # A language model's snapshots carry a generated text sample (60 forward passes, about
    # a third of a prune's time on gpt-tiny); a front end that generates it itself, off the
    # slider's path, sets this False (the app does: issue 15 item 3). Session.sample() and
    # explorer.session.views.text_sample always work.
    sample_in_snapshots = True
    model = _SelectedSlot()
    model_name = _SelectedSlot()
    config = _SelectedSlot()
    base = _SelectedSlot()
    masks = _SelectedSlot()
    prune_config = _SelectedSlot()
    cuts = _SelectedSlot()
    warnings = _SelectedSlot()
    original = _SelectedSlot()
    initial = _SelectedSlot()
    rewind_states = _SelectedSlot()
    epochs_trained = _SelectedSlot()
    undo_stack = _SelectedSlot()

    def __init__(self, data: Dataset, slot: ModelSlot, objective: Task, *, seed: int,
                 device: torch.device, history: list[dict] | None = None,
                 pretrained: bool = False) -> None:
        self.device, self.seed, self.data, self.task = device, seed, data, data.task
        self.lock = threading.RLock()  # one optimizer step or one slider move at a time
        self.slots: dict[str, ModelSlot] = {"teacher": slot}
        self.selected = "teacher"  # which slot prune()/train()/snapshot() act on
        self.teacher_cache = TeacherCache()  # teacher outputs by sample index
        self.pretrained = pretrained
        self.objective = objective  # what differs between tasks (explorer.session.tasks)
        self.jobs_started = 0  # ids for jobs; their history records carry them
        self._job_owner: int | None = None  # the thread running a job
        self._job_name: str | None = None
        self._job_depth = 0
        # epoch records and pruning events, in order; a shipped model brings its own
        self.history: list[dict] = BoundedList(history or [], HISTORY_MAX)
        # optimizer steps over all jobs, the curves' x axis
        self.total_steps = max((h.get("step", 0) for h in self.history), default=0)
        check_prunable(slot.model, slot.model_name, slot.prunable)

    @staticmethod
    def load_data(dataset: object, train: object, val: object, test: object,
                  task: str, seed: int, device: torch.device) -> Dataset:
        """A built-in data set by name, a Dataset, or the user's train/val(/test) tensors."""
        if train is None and val is None and test is None:
            if isinstance(dataset, Dataset):
                return dataset
            if is_image_folder(dataset):
                return load_image_folder(str(dataset), seed=seed, device=device)
            return load_dataset(str(dataset or "digits"), seed=seed, device=device)
        if dataset is not None:
            raise ValueError(f"give either dataset={dataset!r} or train=/val= tensors, not both")
        if train is None or val is None:
            raise ValueError("bring-your-own data needs both train= and val=")
        return from_tensors(train, val, test, task)

    # ----- slots -------------------------------------------------------------------
    @property
    def slot(self) -> ModelSlot:
        """The selected model's slot."""
        return self.slots[self.selected]

    @property
    def models(self) -> tuple[str, ...]:
        """The slots that hold a model now."""
        return tuple(s for s in self.SLOTS if s in self.slots)

    @property
    def is_lm(self) -> bool:
        """Whether this is a language model on text (gpt-tiny)."""
        return self.objective.is_lm

    @property
    def prunable(self) -> list[str]:
        return list(self.slot.prunable)

    def slot_model(self, slot: str) -> nn.Module:
        """The model in `slot`; ValueError when that slot is empty."""
        if slot not in self.slots:
            raise ValueError(f"there is no {slot} model yet; run distill() or "
                             "train_student_alone() first")
        return self.slots[slot].model

    def select(self, name: str) -> Snapshot:
        """Make `name` the model that pruning, training and snapshots act on.

        Not while a train() job runs in another thread (the UI disables the selector during
        jobs); a job commits or rolls back the slot it started on whatever is selected.
        """
        check_choice("model slot", name, self.SLOTS)
        with self.lock:
            if name != self.selected:
                self.check_idle("selecting another model")
            self.slot_model(name)  # raises when that slot is empty
            self.selected = name
            return self.snapshot()

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
        with self.lock:
            self.check_idle("pruning")
            groups = model_groups(self.model)[0] if structured else None
            if groups is not None:
                result = structured_masks(self.base, groups, config.value, norm)
            else:
                result = compute_masks(self.slot.index, config)
            # at or above the sparsity of the masks the last job trained with, prune only
            # their survivors (engine.structure.within_committed; docs/api.md, re-pruning)
            result = within_committed(result, self.slot.committed, config, self.slot.index,
                                      self.base, groups)
            self.slot.install_masks(result, config)
            subset = self.quick_subset()
            settle_norms(self.model, self.base, self.data.train.x, recalibrate=False)
            # a big model's first answer runs on its survivors only (engine.compact)
            twin = twin_of(self.model, groups, example_of(self.model)) \
                if groups is not None and subset else None
            try:
                return moves.answer(self, structured, subset, twin)
            except RuntimeError:  # the twin failed where its first check passed: never again
                if twin is None:
                    raise
                refuse_twin(self.model)
                settle_norms(self.model, self.base, self.data.train.x, recalibrate=False)
                return moves.answer(self, structured, subset, None)

    def full_norms(self) -> None:
        """BatchNorm statistics re-estimated on all BN_RECALIBRATION_SAMPLES when the last
        move used the fast few (call under the lock, before measuring for good)."""
        if 0 < self.bn_samples < BN_RECALIBRATION_SAMPLES:
            recalibrate_bn(self.model, self.data.train.x, BN_RECALIBRATION_SAMPLES, self.seed)
            self.bn_samples = BN_RECALIBRATION_SAMPLES

    def quick_subset(self, split: str = "val") -> int | None:
        """FAST_EVAL_SAMPLES for a model of FAST_EVAL_MIN_PARAMS or more whose `split` is
        larger than that (a slider move's first answer), else None (evaluate everything)."""
        n = sum(p.numel() for p in self.model.parameters())
        size = len(self.data.split(split))
        big = n >= FAST_EVAL_MIN_PARAMS and size > FAST_EVAL_SAMPLES
        return FAST_EVAL_SAMPLES if big and not self.is_lm else None

    def refine(self, split: str = "val") -> Snapshot:
        """The full-set snapshot that follows a subset answer (run it in the background)."""
        with self.lock:
            return self.engine_snapshot(split)  # snapshot() redoes fast BN statistics

    def subset_split(self, split: str, n: int) -> Split:
        """The first `n` of a seeded permutation of `split`: the same rows every move."""
        whole = self.data.split(split)
        gen = torch.Generator().manual_seed(self.seed)
        idx = torch.randperm(len(whole), generator=gen)[:n].sort().values.to(whole.x.device)
        return Split(whole.x[idx], whole.y[idx])

    def reset_pruning(self) -> Snapshot:
        """Drop the masks: the model holds the dense base again, bit for bit."""
        with self.lock:
            self.check_idle("resetting the pruning")
            self.slot.clear_masks()
            settle_norms(self.model, self.base, self.data.train.x, recalibrate=False)
            self.bn_samples = 0
            return self.snapshot()

    def undo(self) -> Snapshot:
        """Return to the base, masks and curves before the last committed job."""
        with self.lock:
            self.check_idle("undo")
            if not self.undo_stack:
                raise ValueError(nothing_to_undo(self.undo_stack))
            entry = self.undo_stack.pop()
            self.slot.restore(entry)
            if entry.job is not None:
                self.forget_job(entry.job)
            return self.snapshot()

    def reset(self) -> Snapshot:
        """Back to the original trained model: no masks, empty undo stack."""
        with self.lock:
            self.check_idle("reset")
            self.undo_stack.clear()
            self.slot.set_base(self.original)
            return self.snapshot()

    # ----- measuring ---------------------------------------------------------------
    def snapshot(self, split: str = "val", evaluate_model: bool = True,
                 subset: int | None = None, model: nn.Module | None = None) -> Snapshot:
        """Freeze the current state: metrics on `split` (on `subset` seeded rows of it when
        given: Snapshot.extra then holds eval_samples and eval_total), per-layer sparsity,
        histograms. `model`: the slot model's compact twin (engine.compact), which then
        computes the outputs and the histograms (it holds the same nonzero weights)."""
        with self.lock:
            if evaluate_model and not subset:
                self.full_norms()  # a full measurement never uses the fast statistics
            slot = self.slot
            params = slot.params()
            layers = tuple(slot.layer_stats(n, p) for n, p in params.items()) \
                if model is None else moves.twin_layer_stats(slot, params, model)
            rows = self.data.split(split)
            partial = bool(subset) and len(rows) > int(subset or 0)
            if partial:
                rows = self.subset_split(split, int(subset or 0))
            if evaluate_model:
                loss, accuracy, _ = evaluate(model or slot.model, rows, self.task)
            else:
                loss, accuracy = float("nan"), None
            others = [p for n, p in slot.model.named_parameters() if n not in params]
            pruned = sum(layer.numel - layer.nonzero for layer in layers)
            prunable = sum(layer.numel for layer in layers)
            config = slot.prune_config
            snap = Snapshot(
                accuracy=accuracy, loss=loss, sparsity=pruned / max(prunable, 1),
                params=prunable + sum(p.numel() for p in others),
                nonzero=sum(layer.nonzero for layer in layers)
                + sum(int(torch.count_nonzero(p)) for p in others),
                layers=layers, split=split, task=self.task,
                prune=None if config is None else {
                    "mode": config.mode, "value": config.value, "scope": config.scope},
                warnings=slot.warnings)
            extra = self.objective.snapshot_extra(self, snap, evaluate_model)
            if partial and evaluate_model:
                extra = {**extra, "eval_samples": len(rows),
                         "eval_total": len(self.data.split(split))}
            return replace(snap, extra={**snap.extra, **extra}) if extra else snap

    def engine_snapshot(self, split: str = "val", subset: int | None = None,
                        model: nn.Module | None = None) -> Snapshot:
        """snapshot() plus which sparsity a structured number means (PITFALLS). `model`:
        what computes the outputs instead of the slot's model (its compact twin)."""
        snap = self.snapshot(split, subset=subset, model=model)
        config = self.prune_config
        if config is None or not config.structured:
            return snap
        extra = {"structured": True, "norm": config.norm,
                 "channel_fraction_removed": config.value,
                 "param_fraction_removed": removed_fraction(self.model),
                 "bn_recalibrated": bool(self.bn_recalibration and has_batchnorm(self.model)),
                 "bn_samples": self.bn_samples}
        return replace(snap, extra={**snap.extra, **extra})
