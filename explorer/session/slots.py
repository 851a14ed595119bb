"""Teacher and student side by side: distillation and the metrics that do not flatter.

Session inherits these methods (issue 4). The session holds several models in named
slots: "teacher" (the model it was built with), "student" (distilled) and
"student_alone" (the same student trained on labels only). The selected slot's state
lives in the Session's usual attributes (model, base, masks, undo_stack, ...), so
prune(), train(), undo() and snapshot() act on it unchanged; the other slots wait in
`_slots`. Every attribute not in _SHARED is per model and is swapped by select().
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace

import torch
from torch import nn

from ..config import UNDO_MAX, TrainConfig, check_choice
from ..engine import measure as m
from ..engine.distill import (
    DEFAULT_TEMPERATURE,
    REGRESSION_NO_TEMPERATURE,
    TeacherCache,
    agreement,
    check_distill_args,
    check_student,
    kd_loss,
    regression_kd_loss,
    soft_view,
    student_from,
)
from ..engine.metrics import Snapshot
from ..engine.prune import prunable_names
from ..engine.train import EpochEvent, StepEvent, StopEvent, evaluate, train_steps
from ..validate import check_bool, check_job_hooks, check_seed
from .bounded import BoundedList

Event = StepEvent | EpochEvent | StopEvent


def _clone(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in state.items()}


class StudentsMixin:
    """Slots, distill(), train_student_alone(), soft_targets(), select(), measure()."""

    _SHARED = frozenset({"device", "seed", "data", "task", "_lock", "history",
                         "total_steps", "pretrained", "_slots", "_selected",
                         "_teacher_cache"})
    SLOTS = ("teacher", "student", "student_alone")

    @property
    def selected(self) -> str:
        """Which model prune()/train()/snapshot() act on: teacher, student, student_alone."""
        return self.__dict__.get("_selected", "teacher")

    @property
    def models(self) -> tuple[str, ...]:
        """The slots that hold a model now."""
        return tuple(s for s in self.SLOTS if s == self.selected or s in self._slot_map())

    def _slot_map(self) -> dict[str, dict]:
        return self.__dict__.setdefault("_slots", {})

    def _cache(self) -> TeacherCache:
        return self.__dict__.setdefault("_teacher_cache", TeacherCache())

    def _stash(self) -> dict:
        return {k: v for k, v in vars(self).items() if k not in self._SHARED}

    def _slot_model(self, slot: str) -> nn.Module:
        if slot == self.selected:
            return self.model
        if slot not in self._slot_map():
            raise ValueError(f"there is no {slot} model yet; run distill() or "
                             "train_student_alone() first")
        return self._slot_map()[slot]["model"]

    def select(self, name: str) -> Snapshot:
        """Make `name` the model that pruning, training and snapshots act on.

        Not while a train() job runs: its commit lands on whichever slot is selected when
        it ends (the UI disables the selector during jobs). measure_slot() is safe then:
        it swaps and restores under the lock, between two optimizer steps.
        """
        check_choice("model slot", name, self.SLOTS)
        with self._lock:
            if name != self.selected:
                self._slot_model(name)  # raises when that slot is empty
                slots = self._slot_map()
                slots[self.selected] = self._stash()
                vars(self).update(slots.pop(name))
                self._selected = name
            return self.snapshot()

    def _install(self, slot: str, model: nn.Module, config: dict,
                 init: dict[str, torch.Tensor]) -> None:
        """Put a freshly trained model in `slot` as its own dense original (no undo)."""
        with self._lock:
            home, slots = self.selected, self._slot_map()
            slots[home] = self._stash()
            # Start from the teacher's per-model attributes so any attribute the class
            # adds later exists in every slot, then replace the model-specific ones.
            vars(self).update(dict(slots["teacher"]))
            self.model, self.model_name, self.config = model, config["model"], config
            self._prunable = prunable_names(model)
            self.original = _clone(model.state_dict())
            self.undo_stack = BoundedList(limit=UNDO_MAX)
            if "initial" in vars(self):  # the engine's lottery-ticket rewind points
                self.initial, self.rewind_states, self.epochs_trained = init, {}, 0
            self._set_base(self.original)
            slots[slot] = self._stash()
            vars(self).update(slots.pop(home))

    def _build_student(self, student: float | nn.Module, seed: int) -> tuple[nn.Module, dict]:
        teacher = self._slot_model("teacher")
        tconf = self._slot_map().get("teacher", {}).get("config", self.config)
        model = student_from(teacher, student, model_name=tconf["model"],
                             input_shape=self.data.input_shape,
                             n_outputs=self.data.n_outputs,
                             teacher_width=float(tconf.get("width", 1.0)),
                             init=tconf.get("init", "default"), seed=seed,
                             image_shape=self.data.image_shape if tconf["model"] != "mlp"
                             else None)
        model.to(self.device)
        check_student(model, teacher, self.data.val.x)
        width = None if isinstance(student, nn.Module) else float(student)
        config = {**tconf, "model": tconf["model"] if width is not None
                  else type(model).__name__, "student_width": width}
        return model, config

    def _run_student(self, slot: str, student: float | nn.Module, loss_fn, train_config,
                     seed: int | None, stop, on_event, record: dict) -> Snapshot:
        """Train a new student with `loss_fn` (None: labels only) and install it."""
        seed = self.seed + 1 if seed is None else check_seed("seed", seed)
        check_job_hooks(stop, on_event)
        model, config = self._build_student(student, seed=seed)
        init = _clone(model.state_dict())
        first_step = self.total_steps
        steps = train_steps(model, self.data.train, self.data.val, self.task, train_config,
                            stop=stop, seed=seed, loss_fn=loss_fn)
        for event in steps:
            if isinstance(event, EpochEvent):
                self.history.append({"kind": slot, "epoch": event.epoch,
                                     "step": first_step + event.step,
                                     "train_loss": event.train_loss,
                                     "val_loss": event.val_loss,
                                     "val_accuracy": event.val_accuracy})
            if isinstance(event, StepEvent):
                self.total_steps = first_step + event.step
            if on_event is not None:
                on_event(event)
        self._install(slot, model, {**config, **record}, init)
        return self.measure_slot(slot, "val", full=False)

    def distill(self, student: float | nn.Module = 0.5, temperature: float | None = None,
                alpha: float = 0.7, epochs: int = 20, lr: float = 1e-3,
                optimizer: str = "adam", batch_size: int = 64, t_squared: bool = True,
                seed: int | None = None, stop: threading.Event | None = None,
                on_event: Callable[[Event], None] | None = None) -> Snapshot:
        """Distil the teacher slot's current model into a new student (slot "student").

        `student` is a width multiplier of the teacher's architecture or a module (copied).
        Classification: Hinton's loss at `temperature` (default 4.0), see explorer.engine.distill.
        Regression: MSE to the teacher's outputs; giving a temperature is a ValueError.
        Teacher outputs come from a cache keyed by the teacher's state and sample index.
        `seed` fixes the student's init and batch order (default: the session's seed + 1).
        Returns the student's Snapshot on the validation split (with teacher_agreement).
        """
        if self.task != "classification" and temperature is not None:
            raise ValueError(REGRESSION_NO_TEMPERATURE)
        temperature = DEFAULT_TEMPERATURE if temperature is None else temperature
        temperature, alpha = check_distill_args(temperature, alpha)
        check_bool("t_squared", t_squared)
        train_config = TrainConfig(epochs=epochs, lr=lr, optimizer=optimizer,
                                   batch_size=batch_size)
        with self._lock:
            teacher = self._slot_model("teacher")
            targets = self._cache().outputs(teacher, "train", self.data.train.x)

        def loss_fn(out, x, y, index):  # rows of the cache picked by sample index
            if self.task != "classification":
                return regression_kd_loss(out, targets[index], y, alpha)
            return kd_loss(out, targets[index], y, temperature, alpha, t_squared)

        record = {"distill": {"temperature": temperature if self.task == "classification"
                              else None, "alpha": alpha, "t_squared": t_squared,
                              "epochs": epochs, "teacher": self._cache().key}}
        return self._run_student("student", student, loss_fn, train_config, seed, stop,
                                 on_event, record)

    def train_student_alone(self, student: float | nn.Module = 0.5, epochs: int = 20,
                            lr: float = 1e-3, optimizer: str = "adam", batch_size: int = 64,
                            seed: int | None = None, stop: threading.Event | None = None,
                            on_event: Callable[[Event], None] | None = None) -> Snapshot:
        """The same student as distill() (same init, same order, same budget), labels only."""
        train_config = TrainConfig(epochs=epochs, lr=lr, optimizer=optimizer,
                                   batch_size=batch_size)
        return self._run_student("student_alone", student, None, train_config, seed, stop,
                                 on_event, {"distill": None})

    def _slot_outputs(self, slots: tuple[str, ...], x: torch.Tensor) -> list[torch.Tensor]:
        """Each slot's outputs on `x` in eval mode; every model's mode is restored."""
        outs = []
        for slot in slots:
            model = self._slot_model(slot)
            was_training = model.training
            model.eval()
            with torch.inference_mode():
                outs.append(model(x))
            model.train(was_training)
        return outs

    def soft_targets(self, index: int, temperature: float = 4.0,
                     student: str | None = "student") -> dict:
        """Teacher's and student's softened probabilities for validation example `index`.

        Also the KL(teacher || student) at that temperature. Nothing is retrained, so a
        temperature slider can call this on every move. `student=None` shows the teacher
        alone (before any student exists); then "student" and "kl" are None.
        """
        if self.task != "classification":
            raise ValueError(REGRESSION_NO_TEMPERATURE)
        if student is not None:
            check_choice("student", student, ("student", "student_alone"))
        n = len(self.data.val)
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < n:
            raise ValueError(f"index must be a whole number in 0..{n - 1}; got {index!r}")
        slots = ("teacher",) if student is None else ("teacher", student)
        with self._lock:
            outs = [out[0] for out in
                    self._slot_outputs(slots, self.data.val.x[index:index + 1])]
        if student is None:
            view = {**soft_view(outs[0], outs[0], temperature), "student": None, "kl": None}
        else:
            view = soft_view(outs[0], outs[1], temperature)
        return {"index": index, "label": int(self.data.val.y[index]), "student_slot": student,
                **view}

    @torch.no_grad()
    def predictions(self, split: str = "val", limit: int = 2000) -> tuple:
        """(targets, outputs) of the selected model on `split` as NumPy, at most `limit` rows."""
        with self._lock:
            data = self.data.split(split)
            _, _, outputs = evaluate(self.model, data, self.task)
            return (data.y[:limit].cpu().numpy(), outputs[:limit].cpu().numpy())

    def measure(self, split: str = "val", *, full: bool = True, latency: bool = False,
                reference: torch.Tensor | None = None) -> Snapshot:
        """snapshot() plus the metrics that cost more (see explorer.engine.measure).

        full=False adds only the cheap ones (bytes, teacher agreement, mse); full=True adds
        precision/recall/F1/confusion, FLOPs and the speedup note; latency=True adds
        latency_ms_b1/_b256 (median of repeated runs). `reference`: outputs to measure
        teacher_agreement against (default: the teacher slot, for students).
        """
        return self.measure_slot(self.selected, split, full=full, latency=latency,
                                 reference=reference)

    def measure_slot(self, slot: str, split: str = "val", *, full: bool = True,
                     latency: bool = False, reference: torch.Tensor | None = None) -> Snapshot:
        """measure() for any slot; the selection is restored afterwards."""
        with self._lock:
            home = self.selected
            if slot != home:
                self.select(slot)
            try:
                # The engine's snapshot says which sparsity a structured number means.
                snap = getattr(self, "engine_snapshot", self.snapshot)(split)
                data = self.data.split(split)
                _, _, outputs = evaluate(self.model, data, self.task)
                if reference is None and slot != "teacher":
                    reference = self._cache().outputs(self._slot_model("teacher"), split,
                                                      data.x)
                extra: dict = {"model_slot": slot, "teacher_agreement": None,
                               "bytes_shrunk": self._bytes_shrunk()}
                if reference is not None and self.task == "classification":
                    extra["teacher_agreement"] = agreement(outputs, reference)
                if full:
                    shrunk = extra.get("bytes_shrunk") is not None
                    extra.update(m.model_metrics(self.model, data.x, data.y, self.task,
                                                 self.data.n_outputs, outputs,
                                                 snap.sparsity, latency=latency,
                                                 shrunk=shrunk))
                else:
                    extra.update({"bytes_dense": m.bytes_dense(self.model),
                                  "bytes_sparse": m.bytes_sparse(self.model),
                                  "mse": None if self.task == "classification"
                                  else snap.loss})
                return replace(snap, extra={**snap.extra, **extra})
            finally:
                if self.selected != home:
                    self.select(home)

    def _bytes_shrunk(self) -> int | None:
        """fp32 bytes of the physically shrunk model, when structured pruning is in force."""
        if not getattr(self.prune_config, "structured", False) or not hasattr(self, "shrink"):
            return None
        return m.bytes_dense(self.shrink())
