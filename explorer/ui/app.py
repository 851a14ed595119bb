"""ExplorerApp: one compound widget that drives a Session and shows it live.

Controls are linked to an AppState; one observer sorts each change into a tier: a compute
change (slider, mode, scope, structured) calls the Session once and updates the main
figure with one batch_update, a view change (layer, log axis, bar page, curves) only
redraws the last Snapshot. Jobs (training, fine-tuning, distillation, sweeps) run in a
worker thread, one at a time; every callback and job update holds one UI lock.
"""

from __future__ import annotations

import dataclasses
import html
import os
import weakref
from collections.abc import Callable

import ipywidgets as W

from ..compat.plotly import make_responsive, seed_view_state
from ..engine.metrics import Snapshot
from ..session.roots import Roots, allowed_roots, own_folders, roots_from_env
from ..session.session import Session
from . import plots
from .actions import Actions
from .background import CurveWorker
from .cards import Cards
from .compare_panel import ComparePanel
from .controls import SLIDER_RANGES, apply_rules, build_controls, model_changing, tagged
from .curves import CurveBook
from .display import Display
from .distill_panel import DistillPanel
from .guard import KernelErrors, UiLock, guarded
from .guide import Guide
from .headline import Metric
from .jobs import JobController
from .layout import build_layout
from .model_panel import ModelPanel
from .model_view import MainView, bar_page
from .panels import Starters
from .quant_panel import QuantControls
from .refine import Refiner
from .resizer import Resizer
from .served import share_lock
from .state import COMPUTE, VIEW, AppState, bind, slot_label
from .sync import ControlSync
from .theme import get_theme

REPR_CURVE_WAIT_S = 10.0
LINKED = ("mode", "value", "scope", "structured", "norm", "layer", "log_y", "page", "curves")


# A disabled control's own tooltip while a job's reason shows (kept beside the widget, not
# on it: ipywidgets' objects get no attributes of ours).
_OWN_TOOLTIPS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def busy_tooltip(widget: W.Widget, why: str | None) -> None:
    """Show `why` as the widget's tooltip while it is disabled (None: its own again)."""
    if why is not None:
        _OWN_TOOLTIPS.setdefault(widget, widget.tooltip)
        widget.tooltip = why
    elif widget in _OWN_TOOLTIPS:
        widget.tooltip = _OWN_TOOLTIPS.pop(widget)


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


class ExplorerApp(W.VBox):
    """Prune, retrain and distil a model; watch sparsity, weights, curves and costs.

    Its panels see it as a `host.Host`; its `jobs` (a JobController) see it as a JobView.
    """

    def __init__(self, session: Session, theme: str | None = None,
                 talk: bool | None = None, test_mode: bool | None = None,
                 data_roots: list[str] | tuple[str, ...] | None = None) -> None:
        self.session = session
        # The only folders a loaded session file may name (explorer.session.roots): these,
        # else the dashboard's --data-root ($EXPLORER_DATA_ROOTS), else this session's own.
        env_roots = roots_from_env()
        self.data_roots: Roots = (allowed_roots(data_roots) if data_roots is not None else
                                  env_roots if env_roots is not None else
                                  own_folders(session.slot.config))
        self.talk = env_flag("EXPLORER_TALK") if talk is None else talk
        self.theme = get_theme(theme)
        if self.talk:  # a projector at the back of a room: larger type on the plots too
            self.theme = dataclasses.replace(self.theme, font_size=self.theme.font_size + 5)
        self.ui_lock = UiLock()
        self.errors = KernelErrors(test_mode, self.ui_lock)
        self.guard = guarded(self.ui_lock, self._report)
        self.state, self.book = AppState(), CurveBook()
        self.jobs = JobController(self)
        self.c = build_controls(session.slot.prunable)
        self.fig = tagged(plots.main_figure(self.theme), "fig-main")
        for name in ("fig-sparsity", "fig-hist", "fig-curves"):
            self.fig.add_class(f"cx-{name}")
        self.view = MainView(self.fig, self.theme)
        self.snap: Snapshot | None = None
        self.sync = ControlSync(self.c, self.state)
        self.sample = tagged(W.HTML(""), "sample")
        self.cards = Cards(self, on_measured=lambda snap: self.compare.show_quality(snap))
        self.model_panel, self.distill = ModelPanel(self), DistillPanel(self)
        self.compare = ComparePanel(self, lambda: self.starters.finetune_settings())
        self.starters = Starters(self, self.model_panel.optimizer, self.model_panel.batch_size)
        self.display = Display(self, self.cards)
        self.actions = Actions(self)
        self.curve = CurveWorker(self.display.curve_ready, self.display.curve_failed)
        self.refiner = Refiner(self)  # a big model's subset answer, then the full set
        self.resizer = Resizer()
        self.guide = Guide(self.talk)
        for fig in self.figures():
            make_responsive(fig)
            share_lock(fig, self.ui_lock)
        self.quant = QuantControls(self.apply_quant)  # the bits control (issue 31)
        self.tabs, children = build_layout(self)
        super().__init__(children)
        self.add_class("cx-app")
        self.add_class(f"cx-theme-{self.theme.name}")
        if self.talk:
            self.add_class("cx-talk")
        self._wire()
        self.adopt_session(session)

    @classmethod
    def default(cls, theme: str | None = None, talk: bool | None = None) -> ExplorerApp:
        """The app on the shipped digits MLP (what `make demo` serves), or on the data set
        and model `explorer dashboard --dataset D --model M` put in the environment."""
        dataset, model = os.environ.get("EXPLORER_DATASET"), os.environ.get("EXPLORER_MODEL")
        if not dataset and not model:
            return cls(Session.default(), theme=theme, talk=talk)
        return cls(Session(dataset or "digits", model or "mlp"), theme=theme, talk=talk)

    def _repr_mimebundle_(self, **kwargs):
        # A FigureWidget in a box is never displayed itself, so plotly never copies its
        # traces into the state a new view starts from; an update sent before the page
        # draws the figure is lost, so the first one-shot curve is waited for.
        self.curve.wait(REPR_CURVE_WAIT_S)
        with self.ui_lock:
            for fig in self.figures():
                seed_view_state(fig)
        return super()._repr_mimebundle_(**kwargs)

    def figures(self) -> list:
        return [self.fig, *self.distill.figures(), *self.compare.figures()]

    def close(self) -> None:
        self.display.cancel_background()
        self.errors.close()
        super().close()

    # ----- wiring ------------------------------------------------------------------
    def _wire(self) -> None:
        c, g = self.c, self.guard
        for name in LINKED:
            bind(getattr(c, "slider" if name == "value" else name), self.state, name)
        self.state.observe(g(self._on_state), names=list(LINKED))
        c.prune_once.on_click(g(lambda _: self._on_compute()))
        c.prune_finetune.on_click(g(lambda _: self.start_prune_finetune()))
        c.reset_pruning.on_click(g(lambda _: self.reset_pruning()))
        c.undo.on_click(g(lambda _: self.undo()))
        c.reset.on_click(g(lambda _: self.reset()))
        c.train.on_click(g(lambda _: self.start_training()))
        c.stop.on_click(lambda _: self.jobs.stop())  # signals at once, then takes the lock
        for widget in (c.criteria.criterion, c.criteria.pattern, c.criteria.calibration):
            widget.observe(g(lambda _: self._on_compute()), names="value")
        c.criteria.sparsegpt.on_click(g(lambda _: self.start_sparsegpt()))
        self.fig.data[plots.KEPT].on_click(g(self._on_bar_click))
        self.fig.data[plots.PRUNED].on_click(g(self._on_bar_click))
        self.tabs.observe(g(self._on_tab), names="selected_index")

    def _report(self, err: BaseException) -> None:
        with self.ui_lock:  # called from guarded callbacks (held) and job threads
            self.errors.add(f"{type(err).__name__}: {err}")
            self.set_status(f"error: {err}", error=True)

    def _on_state(self, change: dict) -> None:
        if self.sync.active:
            return
        name = change["name"]
        if name == "mode":
            self._configure_slider(change["new"])
        if name in COMPUTE:
            self._on_compute()
        elif name == "curves":
            self.draw_curves()
        elif name in VIEW and self.snap is not None:
            self.show(self.snap, evaluated=False)

    def _on_tab(self, change: dict) -> None:
        box = self.tabs.children[change["new"]] if change["new"] is not None else None
        if box is self.model_panel.box:
            self.model_panel.build()  # a hidden tab's controls are made on first open
        for panel in (self.distill, self.compare):
            shown = box is panel.box
            panel.figure_box.layout.display = "" if shown else "none"
            if shown:
                panel.open()

    def _on_bar_click(self, _trace, points, _state) -> None:
        if points.point_inds and self.snap is not None:
            start, _ = bar_page(list(self.snap.prunable), self.state.page)
            self.state.layer = self.snap.prunable[start + points.point_inds[0]]

    # ----- what is shown -------------------------------------------------------------
    def adopt_session(self, session: Session) -> None:
        """Show a (new) session: layer list, figures, curves, cards, panels."""
        with self.ui_lock:
            self.display.cancel_background()
            session.settings.sample_in_snapshots = False  # Display samples off the slider's path
            self.session = session
            self.book = CurveBook()
            self.book.start("teacher", list(session.history))
            snap = session.snapshot()
            if snap.prune is None:
                self.book.set_dense("teacher", self.metric().value(snap))
            self.state.base_version += 1
            self.after_model_change(snap, "teacher")
            self.distill.adopt()
            self.compare.adopt()
            self.model_panel.adopt(session)

    def after_model_change(self, snap: Snapshot, prefer: str | None = None) -> None:
        """Another model or base is shown: layers, controls, figures start over."""
        self.sync.layers(list(snap.prunable))
        self.sync_controls(snap)
        self.forget_measures()
        self.view.forget()
        self.show(snap)
        self.show_curves_of(prefer)
        self.request_curve()

    def show_curves_of(self, prefer: str | None = None) -> None:
        """Draw the training curves of `prefer` (else the selected model), listing it."""
        self.sync.curves(list(self.session.slots.names), self.session.selected, prefer)
        self.draw_curves()

    def sync_controls(self, snap: Snapshot) -> None:
        """Pruning controls as the Snapshot's pruning setting (nothing is recomputed)."""
        self.sync.pruning(snap)
        self._apply_rules()

    def _configure_slider(self, mode: str) -> None:
        # the slider starts where the new mode prunes as much as now, not at its minimum:
        # the sparsity in force, or the threshold / x std nearest to it (issue 28)
        keep = self.snap.sparsity if self.snap is not None else None
        if keep and mode != "sparsity":
            keep = self.session.pruning.value_for(mode, keep, SLIDER_RANGES[mode][2])
        self.sync.slider_mode(mode, keep)

    @property
    def _reconfiguring(self) -> bool:
        return self.sync.active

    @_reconfiguring.setter
    def _reconfiguring(self, value: bool) -> None:
        self.sync.active = value

    def _apply_rules(self) -> None:
        apply_rules(self.c, self.state, self.jobs.busy, self.session.is_lm)
        self.c.criteria.show(self.metric().name == "perplexity" or self.session.is_lm)

    def metric(self) -> Metric:
        # an hf: causal LM is not on gpt-tiny's track (is_lm) but its headline is perplexity
        lm = self.session.is_lm or self.session.objective.headline == "perplexity"
        return Metric.for_session(self.session.data.task, lm)

    def dense_value(self, slot: str | None = None) -> float | None:
        return self.book.dense(slot or self.session.selected)

    def show(self, snap: Snapshot, evaluated: bool = True) -> None:
        """Bars, weights, the network and the current point; headline and cards too."""
        self.quant.follow(snap.extra)
        self.display.show(snap, evaluated)

    def draw_curves(self) -> None:
        self.display.draw_curves()

    def request_curve(self) -> None:
        self.display.request_curve()

    def set_status(self, text: str, error: bool = False) -> None:
        klass = "cx-status-error" if error else "cx-status-ok"
        self.c.status.value = f'<span class="{klass}">{html.escape(text)}</span>'
        # every action ends here: the next step may have changed
        self.guide.refresh(self.snap, self.session, bool(self.compare.pinned))

    def session_selected(self) -> str:
        return self.session.selected

    def who(self, slot: str | None = None) -> str:
        return slot_label(slot or self.session.selected)

    # ----- compute tier and actions --------------------------------------------------
    def prune_kwargs(self) -> dict:
        kwargs = self.state.prune_kwargs()
        if self.state.mode == "std":
            kwargs["scope"] = "layer"
        extra = self.c.criteria.kwargs(kwargs.get("sparsity"))  # Wanda, N:M (ui.criteria)
        return {"sparsity": None, **extra} if extra else kwargs

    def _on_compute(self) -> None:
        self._apply_rules()
        if self.jobs.defer_pruning():  # applied when the job ends: masks follow the last setting
            self.set_status(f"{self.jobs.name} running: the pruning change applies "
                            "when it ends")
            return
        self.apply_pruning()

    def apply_pruning(self, during_job: bool = False) -> bool:
        """Prune by the current pruning controls (slider, mode, scope, structured)."""
        done = self.run(lambda: self.session.prune(**self.prune_kwargs()),
                        f"pruned ({self.who()})", during_job=during_job)
        self.request_curve()
        self.refiner.after(self.snap if done else None)
        return done

    def run(self, action: Callable[[], Snapshot], done: str = "ready",
            during_job: bool = False) -> bool:
        """Run a Session call; show its Snapshot, or its error in the status line.

        Refused while a job runs (the buttons are disabled then, but a handler must not
        trust that): the job's commit would otherwise race with the change.
        """
        with self.ui_lock:
            if self.jobs.busy and not during_job:
                self.set_status(f"{self.jobs.name} running: stop it or wait before "
                                "changing the model", error=True)
                return False
            try:
                snap = action()
            except ValueError as err:
                self.set_status(f"error: {err}", error=True)
                return False
            self.forget_measures()
            self.show(snap)
            warn = "; ".join(snap.warnings)
            self.set_status(f"{done} (warning: {warn})" if warn else done, error=False)
            return True

    def apply_quant(self, bits: int, scheme: str) -> bool:
        """A bits or scheme move: Session.quantize once (32 bits: off)."""
        done = self.run(lambda: self.session.quantize(bits=bits, scheme=scheme),
                        f"quantized ({self.who()})" if bits != 32 else f"fp32 ({self.who()})")
        self.refiner.after(self.snap if done else None)  # a big model's full-set answer
        if not done:
            self.quant.follow(self.snap.extra if self.snap is not None else {})
        return done

    def start_training(self) -> bool:
        return self.starters.start_training()

    def start_sparsegpt(self) -> bool:
        """SparseGPT at the slider's sparsity (or the pattern's) as a job; it commits."""
        session, slot, cc = self.session, self.session.selected, self.c.criteria
        fixed = cc.pattern.value != "unstructured"
        sparsity, pattern = None if fixed else float(self.state.value), cc.pattern.value
        calibration = int(cc.calibration.value)

        def work(stop, on_event):
            return session.pruning.one_shot(
                "sparsegpt", sparsity, pattern, calibration, stop=stop,
                on_event=lambda p: on_event({"stage": f"block {p.done}/{p.total}" + (
                    f", {p.layer} column {p.column}/{p.columns}" if p.layer else "")}))

        def done(result) -> str:
            snap = result.value
            return ("SparseGPT done: " + ("" if snap is None else
                    f"{snap.sparsity:.0%} sparsity, one Undo away"))
        return self.jobs.start("SparseGPT", work, 1, on_done=done, slot=slot,
                               checkpoint=self.starters._before())

    def start_prune_finetune(self) -> bool:
        return self.starters.start_prune_finetune()

    def reset_pruning(self) -> bool:
        return self.actions.reset_pruning()

    def undo(self) -> bool:
        """Weights, masks, slider and curves as they were before the last job."""
        return self.actions.undo()

    def reset(self) -> bool:
        return self.actions.reset()

    def select_slot(self, slot: str) -> bool:  # teacher, distilled student, student alone
        return self.actions.select_slot(slot)

    # ----- jobs (run by self.jobs) and the panels' hooks -----------------------------
    def set_busy(self, busy: bool) -> None:
        """Disable the controls that change the model while a job runs (Stop: the reverse)."""
        why = f"{self.jobs.name or 'a job'} is running: Stop it or wait"
        for widget in (*model_changing(self.c), *self.quant.widgets(), *self.c.criteria.widgets(),
                       *self.model_panel.controls(),
                       *self.distill.controls(), *self.compare.controls()):
            widget.disabled = busy
            busy_tooltip(widget, why if busy else None)  # a disabled control says why
        self.c.stop.disabled = not busy
        self.c.stop.button_style = "warning" if busy else ""
        if not busy:
            self._apply_rules()
            self.distill.apply_rules()

    def job_progress(self) -> None:
        snap = self.session.snapshot(evaluate_model=False)  # the session lock, not the UI's
        grid = self.display.network(during_job=True)
        with self.ui_lock:
            self.display.show(snap, evaluated=False, grid=grid)
            self.draw_curves()

    def job_finished(self, slot: str | None, failed: bool) -> None:
        self.forget_measures()
        snap = self.session.refine()
        if slot is not None and slot == self.session.selected:
            self.state.base_version += 1
            if not failed and snap.sparsity == 0:
                self.book.set_dense(slot, self.metric().value(snap))
        # the curves go back to the selected model (a student's job showed its own live)
        if self.jobs.pruning_pending:
            self.show(snap)
            self.show_curves_of()
            return
        self.after_model_change(snap)

    def measure(self, latency: bool = True) -> dict:
        """Full metrics for the selected model, shown in the cards and the Compare tab."""
        return self.cards.measure_now(latency=latency)

    def forget_measures(self) -> None:
        self.cards.forget()

    def slots_changed(self) -> None:
        """A student was trained or another slot selected: per-model views start over."""
        self.show_curves_of()
        self.compare.adopt()
