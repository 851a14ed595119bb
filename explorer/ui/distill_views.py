"""What the Distill tab reads from the session and draws: soft targets, dark knowledge,
the sweep curve, per-class accuracy, and the students' table.

A temperature move redraws only what depends on T (soft targets, dark knowledge, the
sweep's star), each in one batch_update; nothing retrains. What depends on the students
(calibration, per-class accuracy, the bias correction) is read after a job or a slot
change, not on slider moves.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from ..engine.regime import Regime
from .distill_figures import (
    PC_ALONE,
    PC_CORRECTED,
    PC_DISTILLED,
    PC_HARD,
    update_dark,
    update_per_class,
    update_soft,
    update_sweep,
)
from .distill_tables import students_table
from .host import Host
from .state import slot_label

STUDENT_ROWS = ("teacher", "student_alone", "student_hard", "student")
PER_CLASS_SLOTS = {PC_ALONE: "student_alone", PC_HARD: "student_hard",
                   PC_DISTILLED: "student"}
NO_DARK = "images only: a class-by-class view needs classes"


def regime_text(kwargs: dict) -> str:
    """The words for a regime (Regime.describe), e.g. "all labels"."""
    return Regime(**kwargs).describe()


class DistillViews:
    """Reads the session for the Distill tab's figure and tables (UI lock held)."""

    def __init__(self, host: Host, panel: Any) -> None:
        self.host, self.panel = host, panel
        self.bias: dict | None = None  # the last bias correction (a class left out)
        self._sweep_drawn: tuple | None = None  # what the sweep panel shows now
        self.missing: dict[str, str] = {}  # views that could not be read, and why

    @property
    def fig(self):
        return self.panel.fig

    def _safe(self, what: str, fn: Callable[[], Any]) -> Any:
        """A view that cannot be read (a session call that raises) becomes None and a
        note in `self.missing`, never a broken tab: these views add to the students'
        accuracy, they do not replace it."""
        try:
            return fn()
        except (RuntimeError, ValueError) as err:
            self.missing[what] = f"not available: {err}"
            return None

    def _can_soften(self) -> bool:
        return self.fig is not None and self.host.session.data.task == "classification"

    def draw_all(self) -> None:
        if not self._can_soften():
            return
        with self.fig.batch_update():  # one message (nested batches join this one)
            self.on_temperature()
            self.draw_students()

    def on_temperature(self) -> None:
        """Everything that follows the temperature slider, without training: one
        message to the figure."""
        if not self._can_soften():
            return
        with self.fig.batch_update():
            self.show_soft()
            self.show_dark()
            self.show_sweep()

    def show_soft(self) -> None:
        """Softened probabilities of one example at the slider's T."""
        session = self.host.session
        if not self._can_soften():
            return
        student = "student" if "student" in session.slots.names else None
        try:
            view = session.students.soft_targets(self.panel.example.value,
                                        self.panel.temperature.value, student=student)
        except ValueError as err:
            self.host.set_status(f"error: {err}", error=True)
            return
        update_soft(self.fig, view, self.host.theme)

    def show_dark(self) -> None:
        session = self.host.session
        if session.is_lm:
            update_dark(self.fig, self.host.theme, None, NO_DARK)
            return
        self.missing.pop("dark", None)
        view = self._safe("dark", lambda: session.students.dark_knowledge(
            float(self.panel.temperature.value)))
        update_dark(self.fig, self.host.theme, view, self.missing.get("dark", "")[:60])

    def show_sweep(self) -> None:
        """The sweep curve and its star; redrawn only when the rows or the selection
        changed (a temperature move without a sweep leaves that panel alone)."""
        sweep = self.panel.sweep_result
        metric = self.host.metric().name
        key = (id(sweep), 0 if sweep is None else len(sweep.rows), self.panel.selected_t(),
               metric, id(self.fig))
        if key == self._sweep_drawn:
            return
        self._sweep_drawn = key
        update_sweep(self.fig, self.host.theme, [] if sweep is None else sweep.rows,
                     None if sweep is None else sweep.alone, self.panel.selected_t(),
                     f"val {metric}",
                     # talk mode has no Sweep T button: do not point at it
                     hint="no temperature sweep yet" if self.host.talk else "press Sweep T")

    # ----- per student ------------------------------------------------------------------
    def draw_students(self) -> None:
        """Per-class accuracy on the test split (where there is one: the bias correction is
        chosen on validation, so its effect is read on test)."""
        if not self._can_soften():
            return
        session = self.host.session
        series: dict[int, list | None] = {}
        self.bias, split = None, self._split()
        self.missing.pop("per class", None)
        if not session.is_lm:
            for index, slot in PER_CLASS_SLOTS.items():
                series[index] = (self._safe("per class", partial(
                    session.students.per_class_accuracy, slot, split))
                                 if slot in session.slots.names else None)
            self.bias = self._safe("per class", self._bias) if split == "test" else None
            if self.bias is not None:
                series[PC_CORRECTED] = list(self.bias["per_class_after"])
        update_per_class(self.fig, self.host.theme, series, self._per_class_detail(split),
                         split)

    def _split(self) -> str:
        return "test" if getattr(self.host.session.data, "test", None) is not None else "val"

    def _bias(self) -> dict | None:
        session = self.host.session
        regime = session.students.regime("student") if "student" in session.slots.names else None
        if regime is None or regime.leave_out is None:
            return None
        return session.students.bias_correction("student", regime.leave_out)

    def _per_class_detail(self, split: str) -> str:
        if self.host.session.is_lm:
            return NO_DARK
        if "per class" in self.missing:
            return self.missing["per class"][:60]
        if self.bias is None:
            return "each class's share recognised"
        b = self.bias
        k = b["class"]
        return (f"class {k} left out; bias +{b['bias']:g} (val): "
                f"{b['per_class_before'][k]:.0%} &#8594; {b['per_class_after'][k]:.0%} test")

    def students_html(self, present: list[str]) -> str:
        session, metric = self.host.session, self.host.metric()
        rows = []
        for slot in STUDENT_ROWS:
            if slot not in present:
                continue
            snap = session.measure("val", slot=slot, full=False)
            rows.append({"label": self._label(slot),
                         "value": metric.text(metric.value(snap)),
                         "agreement": None if slot == "teacher"
                         else snap.extra.get("teacher_agreement"),
                         "ece": self._ece(slot), "nonzero": snap.nonzero,
                         "regime": self._regime(slot)})
        return students_table(rows, metric.name)

    def _label(self, slot: str) -> str:
        t = self.panel.student_t
        if slot == "student" and t is not None:
            return f"{slot_label(slot)} (T = {t:g})"
        return slot_label(slot)

    def _ece(self, slot: str) -> float | None:
        session = self.host.session
        if session.data.task != "classification" or session.is_lm:
            return None
        found = self._safe("ece", lambda: session.students.calibration(slot))
        return None if found is None else found["ece"]

    def _regime(self, slot: str) -> str:
        found = None if slot == "teacher" else self.host.session.students.regime(slot)
        return "all labels" if found is None else found.describe()
