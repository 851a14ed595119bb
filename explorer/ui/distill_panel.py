"""The Distill tab: the regime, student width, temperature, alpha, the T^2 switch, jobs,
and the teacher and its three students side by side.

Moving the temperature only re-softens stored logits (Session.soft_targets and
Session.dark_knowledge): nothing is retrained, so the figure follows the slider at once.
After Sweep T the slider snaps to the swept temperatures; moving it selects that row of
the sweep table and puts that temperature's student in the student slot, so the table's
"distilled student" row, the soft targets and the star always name the same T.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as W

from .. import config as C
from ..compat.plotly import make_responsive
from .controls import STYLE, button, control_on_first_use, full, int_box, row, tagged
from .distill_figures import distill_figure
from .distill_sweep import SWEEP_TEMPERATURES, Sweep, run_sweep
from .distill_tables import sweep_table
from .distill_views import DistillViews, regime_text
from .host import Host
from .state import slot_label

T_SQUARED_NOTE = ("T&sup2; multiplies the soft term so its gradients keep the same scale "
                  "as T changes (Hinton et al. 2015); Distiller and TextBrewer leave it out.")
NO_TEMPERATURE = ("Regression has no temperature: the student learns the teacher's "
                  "outputs with MSE (no softened probabilities to show).")
IMAGES_ONLY = ("Labelled fraction and leave-out apply to image classification; this "
               "session's students see every label.")
SLOTS = ("teacher", "student", "student_hard", "student_alone")
JOBS: dict[str, tuple[str, Any]] = {  # kind -> (job name, the slot it fills)
    "distill": ("distilling", "student"), "alone": ("student alone", "student_alone"),
    "hard": ("student on the teacher's labels", "student_hard"),
    "sweep": ("temperature sweep", None)}
LABELLED_CHOICES = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
NO_CLASS = -1  # the leave-out choice "none" (a Dropdown cannot hold None as a value)


def _labelled_options() -> list[tuple[str, float]]:
    values = sorted({*LABELLED_CHOICES, float(C.DEFAULT_LABELLED)})
    return [(f"{v:.0%}", v) for v in values]


# The tab's controls, made when the tab first opens (issue 29): a page receives every
# widget model of the app when it loads, and these (about 60 with their layouts and
# styles) cost it script time for a tab most visitors never open. Code that reaches one
# of them first (a test, a bench) builds the tab as opening it would.
CONTROLS = ("width", "temperature", "alpha", "t_squared", "labelled", "leave_out",
            "all_labels", "regime", "epochs", "seeds", "example", "train", "alone", "hard",
            "sweep", "slot", "note", "table", "sweep_box")


class DistillPanel:
    def __init__(self, host: Host) -> None:
        self.host = host
        self.fig: Any = None  # a FigureWidget once the tab opens
        self.sweep_result: Sweep | None = None
        self.student_t: float | None = None  # the T of the student in the slot (UI-known)
        self.views = DistillViews(host, self)
        self._syncing = False
        self.built = False
        self.figure_box = tagged(W.VBox([]), "distill-figures")
        self.box = tagged(W.VBox([]), "distill-tab")  # the controls go in on build()

    def __getattr__(self, name: str) -> Any:
        return control_on_first_use(self, name, CONTROLS)

    def build(self) -> None:
        """Make the tab's controls and show the session in them (once)."""
        if self.built:
            return
        self.built = True  # first: the controls' own set-up must not build again
        self._make_controls()
        self._wire()
        self.box.children = self._layout(getattr(self.host, "talk", False))
        self._sync()
        if self.host.jobs.busy:  # opened during a job: its controls wait like the rest
            self.host.set_busy(True)

    def _make_controls(self) -> None:
        def slider() -> dict:  # a Layout of its own per slider (see controls.full)
            return dict(continuous_update=True, style={"description_width": "100px"},
                        layout=full())

        self.width = tagged(W.FloatSlider(value=C.DEFAULT_STUDENT_WIDTH, min=0.05, max=1.0,
                                          step=0.05, description="Student width", **slider()),
                            "student-width")
        self.temperature = tagged(W.FloatSlider(value=C.DEFAULT_TEMPERATURE, min=1.0,
                                                max=20.0, step=0.5, description="Temperature",
                                                **slider()),
                                  "temperature")
        self.alpha = tagged(W.FloatSlider(value=C.DEFAULT_ALPHA, min=0.0, max=1.0, step=0.05,
                                          description="alpha (soft)", **slider()), "alpha")
        self.t_squared = tagged(W.Checkbox(value=True, description="multiply soft loss by T²",
                                           indent=False, layout=W.Layout(width="auto")),
                                "t-squared")
        self.labelled = tagged(W.SelectionSlider(
            options=_labelled_options(), value=float(C.DEFAULT_LABELLED),
            description="Labelled fraction", continuous_update=False,
            style={"description_width": "118px"}, layout=full()), "labelled")
        self.leave_out = tagged(W.Dropdown(options=[("none", NO_CLASS)], value=NO_CLASS,
                                           description="Leave out a class", style={
                                               "description_width": "initial"},
                                           layout=W.Layout(width="210px")), "leave-out")
        self.all_labels = button("All labels", "all-labels",
                                 tooltip="every label, no class left out")
        self.regime = tagged(W.HTML(), "regime")
        self.epochs = int_box("Epochs", "distill-epochs", C.DEFAULT_DISTILL_EPOCHS, 1, 1000)
        self.seeds = tagged(W.BoundedIntText(
            value=1, min=1, max=C.PIN_SEEDS_MAX, description="Seeds",
            style={"description_width": "initial"}, layout=W.Layout(width="110px"),
            tooltip="Sweep T trains each temperature (and the student alone) once per seed "
                    "and gives the mean with its 95% interval"), "distill-seeds")
        self.example = int_box("Example", "example", 0, 0, 10**6)
        self.train = button("Train student (distil)", "distill-train", "primary")
        self.alone = button("Train student alone", "student-alone")
        self.hard = button("Student on teacher's labels", "student-hard",
                           tooltip="labels where labelled, the teacher's top class elsewhere")
        self.sweep = button("Sweep T", "sweep-t")
        self.slot = tagged(W.ToggleButtons(options=[("teacher", "teacher")], value="teacher",
                                           description="Prune & show",
                                           style={**STYLE, "button_width": "auto"}),
                           "model-slot")
        self.note = tagged(W.HTML(), "distill-note")
        self.table = tagged(W.HTML(""), "distill-table")
        self.sweep_box = tagged(W.HTML(""), "sweep-table")

    def _wire(self) -> None:
        g = self.host.guard
        self.train.on_click(g(lambda _: self.start("distill")))
        self.alone.on_click(g(lambda _: self.start("alone")))
        self.hard.on_click(g(lambda _: self.start("hard")))
        self.sweep.on_click(g(lambda _: self.start("sweep")))
        self.all_labels.on_click(g(lambda _: self.use_all_labels()))
        self.temperature.observe(g(self._on_temperature), names="value")
        self.example.observe(g(lambda _: self.views.show_soft()), names="value")
        self.labelled.observe(g(lambda _: self.show_regime()), names="value")
        self.leave_out.observe(g(lambda _: self.show_regime()), names="value")
        self.slot.observe(g(self._on_slot), names="value")

    def _layout(self, talk: bool) -> list[W.Widget]:
        regime = [self.regime, self.labelled, row(self.leave_out, self.all_labels)]
        more = [] if talk else [self.width, self.alpha, row(self.t_squared, self.epochs,
                                                             self.example),
                                W.HTML(f'<div class="cx-note">alpha weights the soft (teacher) '
                                       f'term, 1 - alpha the labels. {T_SQUARED_NOTE}</div>')]
        return [*regime, self.temperature, *more,
                row(self.train, self.alone, *([] if talk else [self.hard])),
                *([] if talk else [row(self.seeds, self.sweep)]),
                self.slot, self.note]

    def figures(self) -> list:
        return [] if self.fig is None else [self.fig]

    def controls(self) -> list[W.Widget]:
        if not self.built:
            return []
        return [self.width, self.alpha, self.t_squared, self.epochs, self.train, self.alone,
                self.hard, self.sweep, self.seeds, self.slot, self.labelled, self.leave_out,
                self.all_labels]

    def _regression(self) -> bool:
        return self.host.session.data.task != "classification"

    def _images(self) -> bool:
        return not self._regression() and not self.host.session.is_lm

    def open(self) -> None:
        """Build the figure the first time the tab is shown (not for regression)."""
        self.build()
        tables = [self.table, self.sweep_box]  # wide: under the figure, not in the side
        if self._regression():
            self.figure_box.children = [tagged(W.HTML(f'<div class="cx-note">{NO_TEMPERATURE}'
                                                      '</div>'), "no-soft"), *tables]
            return
        if self.fig is None:
            self.fig = tagged(distill_figure(self.host.theme), "fig-distill")
            make_responsive(self.fig)
        self.figure_box.children = [self.fig, *tables]
        self.views.draw_all()

    def apply_rules(self) -> None:
        """Temperature and Sweep T only where there is a temperature; the regime controls
        only for images; say why not."""
        if not self.built:
            return
        regression, images = self._regression(), self._images()
        for widget in (self.temperature, self.sweep, self.seeds):
            widget.layout.display = "none" if regression else ""
        for widget in (self.labelled, self.leave_out, self.all_labels, self.hard):
            widget.layout.display = "" if images else "none"
        reasons = ([NO_TEMPERATURE] if regression else []) + ([] if images else [IMAGES_ONLY])
        self.note.value = "".join(f'<div class="cx-reason">{r}</div>' for r in reasons)

    def adopt(self) -> None:
        self.sweep_result, self.student_t = None, None
        if not self.built:
            return
        self._sync()
        if self.figure_box.layout.display != "none":
            self.open()

    def _sync(self) -> None:
        """The controls as the session is now: its classes, students and sweep."""
        session = self.host.session
        self.example.max = max(len(session.data.val) - 1, 0)
        n_classes = session.data.n_outputs if self._images() else 0
        first = [C.DEFAULT_LEAVE_OUT_CLASS] if n_classes > C.DEFAULT_LEAVE_OUT_CLASS else []
        self.leave_out.value = NO_CLASS
        self.leave_out.options = [("none", NO_CLASS)] + [
            (str(k), k) for k in first + [k for k in range(n_classes) if k not in first]]
        self.apply_rules()
        self.show_regime()
        self.refresh()

    # ----- the regime -----------------------------------------------------------------
    def regime_kwargs(self) -> dict:
        """labelled= and leave_out= for the next student job (empty where a regime does not
        apply: regression, text). Always explicit: Session's default labels only a part."""
        if not self._images():
            return {}
        out: dict = {"labelled": float(self.labelled.value)}
        if self.leave_out.value != NO_CLASS:
            out["leave_out"] = int(self.leave_out.value)
        return out

    def show_regime(self) -> None:
        text = regime_text(self.regime_kwargs()) if self._images() else "all labels"
        self.regime.value = (f'<div class="cx-regime"><b>Regime:</b> {text} '
                             "<span class='cx-reason'>(next students)</span></div>")

    def use_all_labels(self) -> None:
        self.labelled.value = 1.0
        self.leave_out.value = NO_CLASS

    # ----- what is shown ----------------------------------------------------------------
    def refresh(self) -> None:
        """Slot choices, the students' table and the sweep table, as the session is now."""
        if not self.built:
            return
        session = self.host.session
        present = list(session.slots.names)
        self._syncing = True
        try:
            self.slot.options = [(slot_label(s), s) for s in SLOTS if s in present]
            self.slot.value = session.selected
        finally:
            self._syncing = False
        self.table.value = self.views.students_html(present)
        self.sweep_box.value = sweep_table(self.sweep_result, self.selected_t())
        if self.fig is not None:
            self.views.draw_students()

    def selected_t(self) -> float | None:
        """The sweep row the slider shows (None without a live sweep)."""
        sweep = self.sweep_result
        if sweep is None or not sweep.rows:
            return None
        return sweep.nearest(self.temperature.value)

    def _on_temperature(self, change: dict) -> None:
        if self.fig is None:
            self._follow_temperature(change)
            return
        with self.fig.batch_update():  # one message per move, a swept student's views too
            self._follow_temperature(change)

    def _follow_temperature(self, change: dict) -> None:
        sweep = self.sweep_result
        if sweep is not None and sweep.live and sweep.rows:
            snapped = sweep.nearest(change["new"])
            if snapped != change["new"]:
                self.temperature.value = snapped  # comes back here with the swept value
                return
            if snapped is not None and snapped != self.student_t and not self.host.jobs.busy:
                self._show_swept_student(sweep, snapped)
        self.views.on_temperature()

    def _show_swept_student(self, sweep: Sweep, temperature: float) -> None:
        """That temperature's kept student into the student slot (no training)."""
        self.host.session.students.put("student", sweep.students[temperature])
        self.student_t = temperature
        if self.host.session_selected() == "student":
            self.host.select_slot("student")
        self.host.slots_changed()
        self.refresh()

    def _on_slot(self, change: dict) -> None:
        if self._syncing or not change["new"] or change["new"] == self.host.session_selected():
            return
        self.host.select_slot(change["new"])

    # ----- jobs -------------------------------------------------------------------------
    def start(self, kind: str) -> bool:
        host = self.host
        session, width, epochs = host.session, self.width.value, self.epochs.value
        common = dict(epochs=epochs, lr=host.c.lr.value)
        soft = dict(alpha=self.alpha.value, t_squared=self.t_squared.value)
        regime = self.regime_kwargs()
        temperature = None if self._regression() else float(self.temperature.value)
        name, slot = JOBS[kind]
        if kind == "distill":
            def work(stop, ev):
                extra = {} if temperature is None else {"temperature": temperature}
                return session.students.distill(student=width, stop=stop, on_event=ev, **common,
                                       **soft, **extra, **regime)
        elif kind == "alone":
            def work(stop, ev):
                return session.students.train_alone(student=width, stop=stop, on_event=ev,
                                                   **common, **regime)
        elif kind == "hard":
            def work(stop, ev):
                return session.students.train_hard(student=width, stop=stop, on_event=ev,
                                                  **common, **regime)
        else:
            metric, seeds = host.metric(), int(self.seeds.value)
            words = regime_text(regime) if regime else ""

            def work(stop, ev):
                result = run_sweep(session, SWEEP_TEMPERATURES, seeds, metric.name,
                                   metric.higher_is_better, width, common, soft, regime,
                                   stop=stop, on_event=ev)
                result.regime = words
                return result
        runs = (len(SWEEP_TEMPERATURES) + 1) * int(self.seeds.value) if kind == "sweep" else 1
        if slot is not None:
            host.book.start(slot)  # a new student: its curves start over
            host.show_curves_of(slot)
        return host.jobs.start(name, work, epochs * runs,
                               on_done=lambda r: self._done(kind, r, temperature),
                               slot=slot, who=slot_label(slot) if slot else "students")

    def _done(self, kind: str, result, temperature: float | None) -> str:
        host = self.host
        metric = host.metric()
        if kind == "sweep":
            self.sweep_result = result.value
            for slot in ("student", "student_alone"):
                host.book.start(slot)  # the sweep's students: no curves
            best = self.sweep_result.best()
            self.student_t = None if best is None else best["temperature"]
            if best is not None:
                self.temperature.value = best["temperature"]  # the slider shows the best row
        else:
            host.book.set_dense(JOBS[kind][1], metric.value(result.value))
            if kind == "distill":
                self.student_t = temperature
                if self.sweep_result is not None:
                    self.sweep_result.live = False  # the slot no longer holds a swept student
        self.refresh()
        self.views.on_temperature()
        host.slots_changed()
        if kind == "sweep":
            return self._sweep_message()
        slot = JOBS[kind][1]
        others = [f"{slot_label(s)} "
                  f"{metric.text(metric.value(host.session.measure(slot=s, full=False)))}"
                  for s in SLOTS if s != slot and s in host.session.slots.names]
        return (f"{JOBS[kind][0]} done ({slot_label(slot)}): val {metric.name} "
                f"{metric.text(metric.value(result.value))}"
                + (f" ({', '.join(others)})" if others else ""))

    def _sweep_message(self) -> str:
        sweep = self.sweep_result
        best = None if sweep is None else sweep.best()
        if sweep is None or best is None:
            return "temperature sweep stopped before a temperature finished"
        n = len(sweep.seeds)
        text = self.host.metric().text(best["summary"]["mean"])
        return (f"temperature sweep done ({len(sweep.rows)} temperatures, {n} "
                f"seed{'s' if n > 1 else ''}): best val {sweep.metric} {text} at T = "
                f"{best['temperature']:g}; the slider and the table show T = "
                f"{best['temperature']:g}")
