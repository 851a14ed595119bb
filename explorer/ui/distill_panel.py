"""The Distill tab: student width, temperature, alpha, the T^2 switch, and jobs.

Moving the temperature only re-softens stored logits (Session.soft_targets): nothing
is retrained, so the probability plot follows the slider at once.
"""

from __future__ import annotations

import ipywidgets as W

from ..studies import tradeoff as analysis
from .controls import STYLE, button, int_box, tagged
from .figures import distill_figure, update_soft, update_temperature_curve
from .host import Host

T_SQUARED_NOTE = ("T&sup2; multiplies the soft term so its gradients keep the same scale "
                  "as T changes (Hinton et al. 2015); Distiller and TextBrewer leave it out.")
NO_TEMPERATURE = ("Regression has no temperature: the student learns the teacher's "
                  "outputs with MSE.")
SWEEP_TEMPERATURES = (1.0, 2.0, 4.0, 8.0, 16.0)
SLOTS = [("teacher", "teacher"), ("distilled student", "student"),
         ("student alone", "student_alone")]


class DistillPanel:
    def __init__(self, host: Host) -> None:
        self.host = host
        self.fig = None
        slider = dict(continuous_update=True, style={"description_width": "110px"},
                      layout=W.Layout(width="380px"))
        self.width = tagged(W.FloatSlider(value=0.25, min=0.05, max=1.0, step=0.05,
                                          description="Student width", **slider),
                            "student-width")
        self.temperature = tagged(W.FloatSlider(value=4.0, min=1.0, max=20.0, step=0.5,
                                                description="Temperature", **slider),
                                  "temperature")
        self.alpha = tagged(W.FloatSlider(value=0.7, min=0.0, max=1.0, step=0.05,
                                          description="alpha (soft)", **slider), "alpha")
        self.t_squared = tagged(W.Checkbox(value=True, description="multiply soft loss by T²",
                                           indent=False), "t-squared")
        self.epochs = int_box("Epochs", "distill-epochs", 10, 1, 1000)
        self.example = int_box("Example", "example", 0, 0, 10**6)
        self.train = button("Train student (distil)", "distill-train", "primary")
        self.alone = button("Train student alone", "student-alone")
        self.sweep = button("Sweep T", "sweep-t")
        self.slot = tagged(W.ToggleButtons(options=SLOTS[:1], value="teacher",
                                           description="Prune & show", style=STYLE),
                           "model-slot")
        self.note = tagged(W.HTML(), "distill-note")
        self.sweep_rows: list[dict] = []
        self.train.on_click(lambda _: self.start("distill"))
        self.alone.on_click(lambda _: self.start("alone"))
        self.sweep.on_click(lambda _: self.start("sweep"))
        self.temperature.observe(lambda _: self.show_soft(), names="value")
        self.example.observe(lambda _: self.show_soft(), names="value")
        self.slot.observe(self._on_slot, names="value")
        self.figure_box = W.VBox([])
        self.box = W.VBox([
            W.HBox([self.width, self.epochs, self.example]),
            W.HBox([self.temperature, self.alpha, self.t_squared]),
            W.HTML(f'<div class="cx-note">alpha weights the soft (teacher) term, 1 - alpha '
                   f'the labels. {T_SQUARED_NOTE}</div>'),
            W.HBox([self.train, self.alone, self.sweep, self.slot]), self.note,
            self.figure_box])

    def figures(self) -> list:
        return [] if self.fig is None else [self.fig]

    def controls(self) -> list[W.Widget]:
        return [self.width, self.alpha, self.t_squared, self.epochs, self.train, self.alone,
                self.sweep, self.slot]

    def open(self) -> None:
        """Build the figure the first time the tab is shown."""
        if self.fig is None:
            self.fig = tagged(distill_figure(self.host.theme), "fig-distill")
            self.figure_box.children = [self.fig]
            self.show_soft()
            update_temperature_curve(self.fig, self.sweep_rows, self.temperature.value)

    def adopt(self) -> None:
        session = self.host.session
        regression = session.task != "classification"
        self.temperature.disabled = regression
        self.note.value = f'<div class="cx-note">{NO_TEMPERATURE}</div>' if regression else ""
        self.example.max = max(len(session.data.val) - 1, 0)
        self._refresh_slots()
        self.show_soft()

    def _refresh_slots(self) -> None:
        present = getattr(self.host.session, "models", ("teacher",))
        options = [(label, slot) for label, slot in SLOTS if slot in present]
        with self.slot.hold_trait_notifications():
            self.slot.options = options
            self.slot.value = self.host.session_selected()

    def _on_slot(self, change: dict) -> None:
        if change["new"] and change["new"] != self.host.session_selected():
            self.host.run(lambda: self.host.session.select(change["new"]),
                          f"showing the {change['new'].replace('_', ' ')}")
            self.host.slots_changed()

    def show_soft(self) -> None:
        """Softened probabilities at the slider's T: no retraining."""
        session = self.host.session
        if self.fig is None or session.task != "classification":
            return
        present = getattr(session, "models", ("teacher",))
        student = "student" if "student" in present else None
        try:
            view = session.soft_targets(self.example.value, self.temperature.value,
                                        student=student)
        except ValueError as err:
            self.host.set_status(f"error: {err}", error=True)
            return
        update_soft(self.fig, view)

    def start(self, kind: str) -> bool:
        session, width, epochs = self.host.session, self.width.value, self.epochs.value
        lr = self.host.c.lr.value
        common = dict(epochs=epochs, lr=lr)
        soft = dict(alpha=self.alpha.value, t_squared=self.t_squared.value)
        if session.task == "classification":
            soft["temperature"] = self.temperature.value
        if kind == "distill":
            def work(stop, ev):
                return session.distill(student=width, stop=stop, on_event=ev, **common, **soft)
        elif kind == "alone":
            def work(stop, ev):
                return session.train_student_alone(student=width, stop=stop, on_event=ev,
                                                   **common)
        else:
            soft.pop("temperature", None)

            def work(stop, ev):
                rows = analysis.temperature_sweep(session, SWEEP_TEMPERATURES, student=width,
                                                  stop=stop, on_event=ev, **common, **soft)
                self.sweep_rows = rows
                return rows
        hint = epochs * (len(SWEEP_TEMPERATURES) if kind == "sweep" else 1)
        name = {"distill": "distilling", "alone": "student alone",
                "sweep": "temperature sweep"}[kind]
        return self.host.jobs.start(name, work, hint, on_done=self._done)

    def _done(self, _result) -> str:
        self._refresh_slots()
        self.show_soft()
        if self.fig is not None:
            update_temperature_curve(self.fig, self.sweep_rows, self.temperature.value)
        self.host.slots_changed()
        return ""
