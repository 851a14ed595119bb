"""Session's students: distillation, a student trained alone, soft targets.

A mixin of explorer.session.session.Session (typed against SessionCore); the work
is done by explorer.session.students and, for language models, explorer.session.language.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from torch import nn

from ..config import (
    DEFAULT_ALPHA,
    DEFAULT_TEMPERATURE,
    STUDENT_INITS,
    TrainConfig,
    check_choice,
)
from ..engine.lm import SAMPLE_PROMPT
from ..engine.metrics import Snapshot
from ..engine.train import Event
from . import language, students
from .tasks import LanguageModelling

if TYPE_CHECKING:  # what the methods use of the Session they are mixed into
    from .core import SessionCore as _Base
else:
    _Base = object


class StudentAPI(_Base):
    """distill, train_student_alone, make_student, build_student, soft_targets."""

    def _language(self, what: str) -> LanguageModelling:
        if not isinstance(self.objective, LanguageModelling):
            raise ValueError(f"{what} applies to a language model on text (gpt-tiny); this "
                             f"session holds {self.config['model']!r} on "
                             f"{self.config['dataset']!r}")
        return self.objective

    def distill(self, student: float | nn.Module | None = None,
                temperature: float | None = None, alpha: float = DEFAULT_ALPHA,
                epochs: int | None = None, lr: float = 1e-3, optimizer: str = "adam",
                batch_size: int = 64, t_squared: bool = True, seed: int | None = None,
                stop: threading.Event | None = None,
                on_event: Callable[[Event], None] | None = None, *,
                layers: int | None = None, student_init: str = "random",
                steps: int | None = None) -> Snapshot:
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
        """
        student = self._student(student, layers, student_init, seed)
        config = self._student_config(epochs, lr, optimizer, batch_size, steps)
        return students.distill(self, student, temperature, alpha, config, t_squared, seed,
                                stop, on_event)

    def train_student_alone(self, student: float | nn.Module | None = None,
                            epochs: int | None = None, lr: float = 1e-3,
                            optimizer: str = "adam", batch_size: int = 64,
                            seed: int | None = None, stop: threading.Event | None = None,
                            on_event: Callable[[Event], None] | None = None, *,
                            layers: int | None = None, student_init: str = "random",
                            steps: int | None = None) -> Snapshot:
        """The same student as distill() (same init, same order, same budget), labels only."""
        student = self._student(student, layers, student_init, seed)
        config = self._student_config(epochs, lr, optimizer, batch_size, steps)
        return students.run_student(self, "student_alone", student, None, config, seed, stop,
                                    on_event, {"distill": None})

    def _student_config(self, epochs: int | None, lr: float, optimizer: str,
                        batch_size: int, steps: int | None) -> TrainConfig:
        epochs = self.objective.default_distill_epochs if epochs is None else epochs
        return TrainConfig(epochs=epochs, lr=lr, optimizer=optimizer, batch_size=batch_size,
                           steps=steps)

    def _student(self, student: float | nn.Module | None, layers: int | None,
                 student_init: str, seed: int | None) -> float | nn.Module:
        """The width (or module) of the student; a shaped GPT student when asked for."""
        student = self.objective.default_student if student is None else student
        if layers is None and student_init == "random":
            return student
        self._language("layers= and student_init=")
        check_choice("student_init", student_init, STUDENT_INITS)
        width = 1.0 if isinstance(student, nn.Module) else float(student)
        return language.make_student(self, width, layers, student_init, seed)

    def make_student(self, width: float = 1.0, layers: int | None = None,
                     init: str = "random", seed: int | None = None) -> nn.Module:
        """An untrained GPT student of the teacher (see explorer.session.language)."""
        self._language("make_student")
        return language.make_student(self, width, layers, init, seed)

    def build_student(self, student: float | nn.Module, seed: int) -> tuple[nn.Module, dict]:
        """The untrained student model and its config (see distill)."""
        if self.is_lm:
            return language.build_student(self, student, seed)
        return students.build_student(self, student, seed)

    def soft_targets(self, index: int = 0, temperature: float | None = None,
                     student: str | None = "student", prompt: str | None = None) -> dict:
        """Teacher's and student's softened probabilities for validation example `index`
        (a language model: for the next character after `prompt`).

        Also the KL(teacher || student) at that temperature. Nothing is retrained, so a
        temperature slider can call this on every move. `student=None` shows the teacher
        alone (before any student exists); then "student" and "kl" are None.
        """
        temperature = (self.objective.default_temperature or DEFAULT_TEMPERATURE) \
            if temperature is None else temperature
        if self.is_lm:
            return {"index": index, **language.soft_targets(
                self, temperature, student, SAMPLE_PROMPT if prompt is None else prompt)}
        return students.soft_targets(self, index, temperature, student)
