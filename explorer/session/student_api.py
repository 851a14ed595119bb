"""Session.students: distillation, students trained alone or on hard targets, the views
of a distillation, and the student slots a sweep holds aside.

The work is done by explorer.session.students (functions over a session), by
explorer.session.distill_views and, for language models, by explorer.session.language.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..config import (
    DEFAULT_ALPHA,
    DEFAULT_TEMPERATURE,
    STUDENT_INITS,
    TrainConfig,
    check_choice,
)
from ..engine.distill import TeacherCache
from ..engine.lm import SAMPLE_PROMPT
from ..engine.metrics import Snapshot
from ..engine.regime import Regime
from ..engine.train import Event
from . import distill_views, language, students
from .tasks import require_lm

if TYPE_CHECKING:
    from .host import Host
    from .slots import ModelSlot


class Students:
    """distill, train_alone, train_hard, make, build, soft_targets, predictions, the
    views of a distillation (regime, dark_knowledge, calibration, per_class_accuracy,
    bias_correction) and the teacher's cached outputs."""

    def __init__(self, session: Host) -> None:
        self._session = session
        self.teacher_cache = TeacherCache()  # teacher outputs by sample index

    def distill(self, student: float | nn.Module | None = None,
                temperature: float | None = None, alpha: float = DEFAULT_ALPHA,
                epochs: int | None = None, lr: float = 1e-3, optimizer: str = "adam",
                batch_size: int = 64, t_squared: bool = True, seed: int | None = None,
                stop: threading.Event | None = None,
                on_event: Callable[[Event], None] | None = None, *,
                layers: int | None = None, student_init: str = "random",
                steps: int | None = None, labelled: float | None = None,
                leave_out: int | None = None) -> Snapshot:
        """Distil the teacher slot's current model into a new student (slot "student").

        `student` is a width multiplier of the teacher's architecture (default 0.5; 1.0
        for a language model) or a module (copied). Classification: Hinton's loss at
        `temperature` (default 4.0; 2.0 for text), see explorer.engine.distill.
        Regression: MSE to the teacher's outputs; giving a temperature is a ValueError.
        `seed` fixes the student's init and batch order (default: the session's seed + 1).
        A language model's student may have fewer `layers` and start from the teacher's
        blocks (`student_init="teacher"`). `epochs` defaults to 20 (5 for text); `steps`
        gives a budget of optimizer steps instead. Returns the student's Snapshot on the
        validation split (with teacher_agreement).
        Classification regime (explorer.engine.regime): the student sees the labels of a
        `labelled` fraction of the training images (default config.DEFAULT_LABELLED) and
        the teacher's soft answers on all of them; `leave_out` removes a class from its
        transfer set. Every student then gets `epochs` passes over the transfer set.
        """
        regime = students.resolve_regime(self._session, labelled, leave_out, seed)
        student = self._student(student, layers, student_init, seed)
        config = self._config(epochs, lr, optimizer, batch_size, steps)
        return students.distill(self._session, student, temperature, alpha, config, t_squared, seed,
                                stop, on_event, regime)

    def train_alone(self, student: float | nn.Module | None = None,
                    epochs: int | None = None, lr: float = 1e-3,
                    optimizer: str = "adam", batch_size: int = 64,
                    seed: int | None = None, stop: threading.Event | None = None,
                    on_event: Callable[[Event], None] | None = None, *,
                    layers: int | None = None, student_init: str = "random",
                    steps: int | None = None, labelled: float | None = None,
                    leave_out: int | None = None) -> Snapshot:
        """The same student as distill() (same init, seed and number of optimizer steps),
        trained on the labelled images of its regime only (slot "student_alone")."""
        return self._labels_only("student_alone", "alone", student, epochs, lr, optimizer,
                                 batch_size, seed, stop, on_event, layers, student_init,
                                 steps, labelled, leave_out)

    def train_hard(self, student: float | nn.Module | None = None,
                   epochs: int | None = None, lr: float = 1e-3,
                   optimizer: str = "adam", batch_size: int = 64,
                   seed: int | None = None, stop: threading.Event | None = None,
                   on_event: Callable[[Event], None] | None = None, *,
                   layers: int | None = None, student_init: str = "random",
                   steps: int | None = None, labelled: float | None = None,
                   leave_out: int | None = None) -> Snapshot:
        """The same student on the whole transfer set with hard targets (slot
        "student_hard"): the label where the regime gives it, the teacher's argmax
        elsewhere. Against distill() it separates the gain from soft targets from the gain
        from more images."""
        return self._labels_only("student_hard", "hard", student, epochs, lr, optimizer,
                                 batch_size, seed, stop, on_event, layers, student_init,
                                 steps, labelled, leave_out)

    def _labels_only(self, slot: str, kind: str, student: float | nn.Module | None,
                     epochs: int | None, lr: float, optimizer: str, batch_size: int,
                     seed: int | None, stop: threading.Event | None,
                     on_event: Callable[[Event], None] | None, layers: int | None,
                     student_init: str, steps: int | None, labelled: float | None,
                     leave_out: int | None) -> Snapshot:
        regime = students.resolve_regime(self._session, labelled, leave_out, seed)
        student = self._student(student, layers, student_init, seed)
        config = self._config(epochs, lr, optimizer, batch_size, steps)
        train, config, _ = students.regime_training(self._session, regime, kind, config)
        return students.run_student(self._session, slot, student, None, config, seed, stop,
                                    on_event, {"distill": None, "regime": regime.to_dict()},
                                    train)

    def regime(self, slot: str) -> Regime | None:
        """The regime (labelled fraction, class left out) a student slot trained under."""
        return distill_views.regime(self._session, slot)

    def dark_knowledge(self, temperature: float, split: str = "val") -> dict:
        """{"temperature", "classes", "matrix"}: row c is the teacher's mean
        softmax(logits / T) over the examples of class c (cached logits: slider-cheap)."""
        return distill_views.dark_knowledge(self._session, temperature, split)

    def calibration(self, slot: str, split: str = "val", bins: int = 15) -> dict:
        """{"ece", "accuracy", "teacher_agreement", "bins"} of `slot` (ECE at T = 1)."""
        return distill_views.calibration(self._session, slot, split, bins)

    def per_class_accuracy(self, slot: str, split: str = "val",
                           bias: dict | None = None) -> list[float]:
        """Accuracy per true class of `slot`; `bias` {class: logit offset} is added first."""
        return distill_views.per_class_accuracy(self._session, slot, split, bias)

    def bias_correction(self, slot: str = "student", cls: int | None = None) -> dict:
        """Hinton's bias correction for class `cls` (default: the class the slot's regime
        left out), the offset chosen on validation only; before/after on val and test."""
        return distill_views.bias_correction(self._session, slot, cls)

    def _config(self, epochs: int | None, lr: float, optimizer: str,
                        batch_size: int, steps: int | None) -> TrainConfig:
        epochs = self._session.objective.default_distill_epochs if epochs is None else epochs
        return TrainConfig(epochs=epochs, lr=lr, optimizer=optimizer, batch_size=batch_size,
                           steps=steps)

    def _student(self, student: float | nn.Module | None, layers: int | None,
                 student_init: str, seed: int | None) -> float | nn.Module:
        """The width (or module) of the student; a shaped GPT student when asked for."""
        student = self._session.objective.default_student if student is None else student
        if layers is None and student_init == "random":
            return student
        require_lm(self._session, "layers= and student_init=")
        check_choice("student_init", student_init, STUDENT_INITS)
        width = 1.0 if isinstance(student, nn.Module) else float(student)
        return language.make_student(self._session, width, layers, student_init, seed)

    def make(self, width: float = 1.0, layers: int | None = None,
                     init: str = "random", seed: int | None = None) -> nn.Module:
        """An untrained GPT student of the teacher (see explorer.session.language)."""
        require_lm(self._session, "make_student")
        return language.make_student(self._session, width, layers, init, seed)

    def build(self, student: float | nn.Module, seed: int) -> tuple[nn.Module, dict]:
        """The untrained student model and its config (see distill)."""
        if self._session.is_lm:
            return language.build_student(self._session, student, seed)
        return students.build_student(self._session, student, seed)

    def soft_targets(self, index: int = 0, temperature: float | None = None,
                     student: str | None = "student", prompt: str | None = None) -> dict:
        """Teacher's and student's softened probabilities for validation example `index`
        (a language model: for the next character after `prompt`).

        Also the KL(teacher || student) at that temperature. Nothing is retrained, so a
        temperature slider can call this on every move. `student=None` shows the teacher
        alone (before any student exists); then "student" and "kl" are None.
        """
        temperature = (self._session.objective.default_temperature or DEFAULT_TEMPERATURE) \
            if temperature is None else temperature
        if self._session.is_lm:
            return {"index": index, **language.soft_targets(
                self._session, temperature, student, SAMPLE_PROMPT if prompt is None else prompt)}
        return students.soft_targets(self._session, index, temperature, student)

    def predictions(self, split: str = "val", limit: int = 2000) -> tuple:
        """(targets, outputs) of the selected model on `split` as NumPy, at most `limit`
        rows."""
        with torch.no_grad():
            return students.predictions(self._session, split, limit)

    # ----- a sweep's students, held aside and put back (explorer.ui.distill_sweep) -----
    def take(self, slot: str) -> ModelSlot | None:
        """The slot's current holder (None when empty), to put back later."""
        with self._session.lock:
            return self._session.slots.get(slot)

    def put(self, slot: str, held: ModelSlot | None, select: str | None = None) -> None:
        """Put a held slot back (None: empty it; the selection then falls back to the
        teacher), then select `select` when it names a slot that holds a model."""
        session = self._session
        with session.lock:
            session.jobs.check_idle("putting a student back")
            if held is None:
                session.slots.pop(slot, None)
            else:
                session.slots[slot] = held
            if select is not None and select in session.slots:
                session.slots.selected = select
