"""The Distill tab: student width, temperature, alpha, the T^2 switch, jobs, and the
teacher, student alone and distilled student side by side.

Moving the temperature only re-softens stored logits (Session.soft_targets): nothing
is retrained, so the probability plot follows the slider at once. Each student keeps its
own training curves; every status names the model it reports on.
"""

from __future__ import annotations

import ipywidgets as W

from ..compat.plotly import make_responsive
from ..studies import tradeoff as analysis
from .controls import FULL, STYLE, button, int_box, row, tagged
from .figures import distill_figure, update_soft, update_temperature_curve
from .host import Host
from .state import slot_label

T_SQUARED_NOTE = ("T&sup2; multiplies the soft term so its gradients keep the same scale "
                  "as T changes (Hinton et al. 2015); Distiller and TextBrewer leave it out.")
NO_TEMPERATURE = ("Regression has no temperature: the student learns the teacher's "
                  "outputs with MSE (no softened probabilities to show).")
SWEEP_TEMPERATURES = (1.0, 2.0, 4.0, 8.0, 16.0)
SLOTS = ("teacher", "student", "student_alone")
JOBS = {"distill": ("distilling", "student"), "alone": ("student alone", "student_alone"),
        "sweep": ("temperature sweep", None)}


class DistillPanel:
    def __init__(self, host: Host) -> None:
        self.host = host
        self.fig = None
        slider = dict(continuous_update=True, style={"description_width": "100px"},
                      layout=FULL)
        self.width = tagged(W.FloatSlider(value=0.25, min=0.05, max=1.0, step=0.05,
                                          description="Student width", **slider),
                            "student-width")
        self.temperature = tagged(W.FloatSlider(value=4.0, min=1.0, max=20.0, step=0.5,
                                                description="Temperature", **slider),
                                  "temperature")
        self.alpha = tagged(W.FloatSlider(value=0.7, min=0.0, max=1.0, step=0.05,
                                          description="alpha (soft)", **slider), "alpha")
        self.t_squared = tagged(W.Checkbox(value=True, description="multiply soft loss by T²",
                                           indent=False, layout=W.Layout(width="auto")),
                                "t-squared")
        self.epochs = int_box("Epochs", "distill-epochs", 10, 1, 1000)
        self.example = int_box("Example", "example", 0, 0, 10**6)
        self.train = button("Train student (distil)", "distill-train", "primary")
        self.alone = button("Train student alone", "student-alone")
        self.sweep = button("Sweep T", "sweep-t")
        self.slot = tagged(W.ToggleButtons(options=[("teacher", "teacher")], value="teacher",
                                           description="Prune & show",
                                           style={**STYLE, "button_width": "auto"}),
                           "model-slot")
        self.note = tagged(W.HTML(), "distill-note")
        self.table = tagged(W.HTML(""), "distill-table")
        self.sweep_rows: list[dict] = []
        g = host.guard
        self.train.on_click(g(lambda _: self.start("distill")))
        self.alone.on_click(g(lambda _: self.start("alone")))
        self.sweep.on_click(g(lambda _: self.start("sweep")))
        self.temperature.observe(g(lambda _: self.show_soft()), names="value")
        self.example.observe(g(lambda _: self.show_soft()), names="value")
        self.slot.observe(g(self._on_slot), names="value")
        self._syncing = False
        self.figure_box = tagged(W.VBox([]), "distill-figures")
        talk = getattr(host, "talk", False)
        more = [] if talk else [self.width, self.alpha, row(self.t_squared, self.epochs,
                                                             self.example),
                                W.HTML(f'<div class="cx-note">alpha weights the soft (teacher) '
                                       f'term, 1 - alpha the labels. {T_SQUARED_NOTE}</div>')]
        self.box = W.VBox([self.temperature, *more,
                           row(self.train, self.alone, *([] if talk else [self.sweep])),
                           self.slot, self.note, self.table])

    def figures(self) -> list:
        return [] if self.fig is None else [self.fig]

    def controls(self) -> list[W.Widget]:
        return [self.width, self.alpha, self.t_squared, self.epochs, self.train, self.alone,
                self.sweep, self.slot]

    def _regression(self) -> bool:
        return self.host.session.task != "classification"

    def open(self) -> None:
        """Build the figure the first time the tab is shown (not for regression)."""
        if self._regression():
            self.figure_box.children = [tagged(W.HTML(f'<div class="cx-note">{NO_TEMPERATURE}'
                                                      '</div>'), "no-soft")]
            return
        if self.fig is None:
            self.fig = tagged(distill_figure(self.host.theme), "fig-distill")
            make_responsive(self.fig)
        self.figure_box.children = [self.fig]
        self.show_soft()
        update_temperature_curve(self.fig, self.sweep_rows, self.temperature.value)

    def apply_rules(self) -> None:
        """Temperature and Sweep T only where there is a temperature; say why not."""
        regression = self._regression()
        for widget in (self.temperature, self.sweep):
            widget.layout.display = "none" if regression else ""
        self.note.value = f'<div class="cx-reason">{NO_TEMPERATURE}</div>' if regression \
            else ""

    def adopt(self) -> None:
        session = self.host.session
        self.example.max = max(len(session.data.val) - 1, 0)
        self.sweep_rows = []
        self.apply_rules()
        self.refresh()
        if self.figure_box.layout.display != "none":
            self.open()

    def refresh(self) -> None:
        """Slot choices and the side-by-side table, as the session is now."""
        session = self.host.session
        present = list(session.models)
        self._syncing = True
        try:
            self.slot.options = [(slot_label(s), s) for s in SLOTS if s in present]
            self.slot.value = session.selected
        finally:
            self._syncing = False
        self.table.value = self._table(present)

    def _table(self, present: list[str]) -> str:
        if len(present) < 2:
            return ""
        metric, session = self.host.metric(), self.host.session
        rows = []
        for slot in ("teacher", "student_alone", "student"):
            if slot not in present:
                continue
            snap = session.measure_slot(slot, "val", full=False)
            agree = snap.extra.get("teacher_agreement")
            rows.append(f"<tr><td style='text-align:left'>{slot_label(slot)}</td>"
                        f"<td>{metric.text(metric.value(snap))}</td>"
                        f"<td>{'-' if agree is None or slot == 'teacher' else f'{agree:.1%}'}"
                        f"</td><td>{snap.nonzero:,}</td></tr>")
        return (f'<table class="cx-table"><tr><th style="text-align:left">model</th>'
                f'<th>val {metric.name}</th><th>agrees with teacher</th><th>nonzero params'
                f'</th></tr>{"".join(rows)}</table>')

    def _on_slot(self, change: dict) -> None:
        if self._syncing or not change["new"] or change["new"] == self.host.session_selected():
            return
        self.host.select_slot(change["new"])

    def show_soft(self) -> None:
        """Softened probabilities at the slider's T: no retraining."""
        session = self.host.session
        if self.fig is None or self._regression():
            return
        student = "student" if "student" in session.models else None
        try:
            view = session.soft_targets(self.example.value, self.temperature.value,
                                        student=student)
        except ValueError as err:
            self.host.set_status(f"error: {err}", error=True)
            return
        update_soft(self.fig, view)

    def start(self, kind: str) -> bool:
        host = self.host
        session, width, epochs = host.session, self.width.value, self.epochs.value
        common = dict(epochs=epochs, lr=host.c.lr.value)
        soft = dict(alpha=self.alpha.value, t_squared=self.t_squared.value)
        if not self._regression():
            soft["temperature"] = self.temperature.value
        name, slot = JOBS[kind]
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
        if slot is not None:
            host.book.start(slot)  # a new student: its curves start over
            host.show_curves_of(slot)
        return host.jobs.start(name, work, hint, on_done=lambda r: self._done(kind, r),
                               slot=slot, who=slot_label(slot) if slot else "students")

    def _done(self, kind: str, result) -> str:
        host = self.host
        metric = host.metric()
        if kind == "sweep":
            host.book.start("student")  # the last student of the sweep, no curves
        else:
            host.book.set_dense(JOBS[kind][1], metric.value(result.value))
        self.refresh()
        self.show_soft()
        if self.fig is not None:
            update_temperature_curve(self.fig, self.sweep_rows, self.temperature.value)
        host.slots_changed()
        if kind == "sweep":
            best = max(self.sweep_rows, key=lambda r: r["accuracy"] or 0, default=None)
            return ("temperature sweep done (distilled students): best val accuracy "
                    + ("n/a" if best is None else f"{best['accuracy']:.1%} at T = "
                       f"{best['temperature']:g}"))
        slot = JOBS[kind][1]
        others = [f"{slot_label(s)} "
                  f"{metric.text(metric.value(host.session.measure_slot(s, full=False)))}"
                  for s in ("teacher", "student_alone", "student")
                  if s != slot and s in host.session.models]
        return (f"{JOBS[kind][0]} done ({slot_label(slot)}): val {metric.name} "
                f"{metric.text(metric.value(result.value))}"
                + (f" ({', '.join(others)})" if others else ""))
