"""ExplorerApp: one compound widget that drives a Session and shows it live.

A compute input (slider, mode, scope, structured) calls the Session once and updates
the main figure with one batch_update; a view input (selected layer, log axis) only
replots the last Snapshot. Jobs (training, fine-tuning, distillation, sweeps) run in a
worker thread, one at a time; a Pump applies their latest progress a few times a second.
"""

from __future__ import annotations

import copy
import dataclasses
import html
import os
from collections.abc import Callable

import ipywidgets as W
import numpy as np

from ..engine.metrics import Snapshot
from ..session.session import Session
from . import plots
from .cards import Cards
from .compare_panel import ComparePanel
from .controls import SLIDER_RANGES, build_controls, model_changing, rewind_value, tagged
from .distill_panel import DistillPanel
from .jobs import JobController
from .panels import ModelPanel, prune_panel
from .theme import css, get_theme


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


class ExplorerApp(W.VBox):
    """Prune, retrain and distil a model; watch sparsity, weights, curves and costs.

    Its panels see it as a `host.Host`; its `jobs` (a JobController) see it as a JobView.
    """

    def __init__(self, session: Session, theme: str | None = None,
                 talk: bool | None = None) -> None:
        self.session = session
        self.talk = env_flag("EXPLORER_TALK") if talk is None else talk
        self.theme = get_theme(theme)
        if self.talk:  # a projector at the back of a room: larger type on the plots too
            self.theme = dataclasses.replace(self.theme, font_size=self.theme.font_size + 5)
        self.jobs = JobController(self)
        self.c = build_controls(session.prunable)
        self.fig = tagged(plots.main_figure(self.theme), "fig-main")
        self.model_view = plots.ModelPanelsView(self.fig)
        for name in ("fig-sparsity", "fig-hist", "fig-curves"):
            self.fig.add_class(f"cx-{name}")
        self._reconfiguring = False
        # A language model's greedy sample from a fixed prompt, refreshed after each job.
        self.sample = tagged(W.HTML(""), "sample")
        self.cards = Cards(self, on_measured=lambda snap: self.compare.show_quality(snap))
        self.model_panel, self.distill = ModelPanel(self), DistillPanel(self)
        self.compare = ComparePanel(self)
        super().__init__(self._layout())
        self.add_class("cx-app")
        self.add_class(f"cx-theme-{self.theme.name}")
        if self.talk:
            self.add_class("cx-talk")
        self._wire()
        self.adopt_session(session)

    @classmethod
    def default(cls, theme: str | None = None, talk: bool | None = None) -> ExplorerApp:
        """The app on the shipped digits MLP: what `make demo` serves."""
        return cls(Session.default(), theme=theme, talk=talk)

    def _repr_mimebundle_(self, **kwargs):
        # A FigureWidget inside a box is never displayed itself, so plotly never copies
        # its current traces into the synced state a new front-end view starts from.
        for fig in self.figures():
            fig._widget_layout = copy.deepcopy(fig._layout_obj._props)
            fig._widget_data = copy.deepcopy(fig._data)
        return super()._repr_mimebundle_(**kwargs)

    def figures(self) -> list:
        return [self.fig, *self.distill.figures(), *self.compare.figures()]

    # ----- layout and wiring -------------------------------------------------------
    def _layout(self) -> list[W.Widget]:
        c = self.c
        title = W.HTML(css(self.theme) + '<div class="cx-title">Compression Explorer</div>')
        tabs = [("Prune", prune_panel(c)), ("Distill", self.distill.box),
                ("Compare", self.compare.box), ("Data & model", self.model_panel.box)]
        if self.talk:  # the story in order, fewer knobs
            tabs = tabs[:2]
        self.tabs = tagged(W.Tab(children=[box for _, box in tabs]), "tabs")
        for i, (name, _) in enumerate(tabs):
            self.tabs.set_title(i, name)
        self.tabs.observe(self._on_tab, names="selected_index")
        train_row = W.HBox([c.epochs, c.lr, c.train, c.stop, c.undo, c.reset, c.progress])
        story = W.HTML('<div class="cx-story">1 baseline &rarr; 2 prune (slider) &rarr; '
                       '3 fine-tune (Prune and fine-tune) &rarr; 4 distil (Distill tab)</div>')
        head = [title, story] if self.talk else [title]
        return [*head, W.HBox([c.summary]), self.tabs, train_row, c.status, self.sample,
                self.fig, self.cards.box]

    def _wire(self) -> None:
        c = self.c
        for widget in (c.slider, c.scope, c.structured, c.norm):
            widget.observe(self._on_compute, names="value")
        c.mode.observe(self._on_mode, names="value")
        c.layer.observe(self._on_view, names="value")
        c.log_y.observe(self._on_view, names="value")
        c.prune_once.on_click(lambda _: self._on_compute())
        c.prune_finetune.on_click(lambda _: self.start_prune_finetune())
        c.reset_pruning.on_click(lambda _: self.run(self._reset_pruning_keep_slider))
        c.undo.on_click(lambda _: self.run(self.session.undo, "undone: back to the base "
                                                               "before the last job"))
        c.reset.on_click(lambda _: self.run(self.session.reset, "back to the original model"))
        c.train.on_click(lambda _: self.start_training())
        c.stop.on_click(lambda _: self.jobs.stop())
        self.fig.data[plots.KEPT].on_click(self._on_bar_click)
        self.fig.data[plots.PRUNED].on_click(self._on_bar_click)

    def adopt_session(self, session: Session) -> None:
        """Show a (new) session: layer list, figures, curves, cards, panels."""
        self.session = session
        self.jobs.clear_steps()
        layers = session.prunable
        with self.c.layer.hold_trait_notifications():
            self.c.layer.options = layers
            self.c.layer.value = layers[0]
        self.snap = session.snapshot()
        self.show(self.snap)
        self.draw_curves()
        self.distill.adopt()
        self.compare.adopt()

    def _on_tab(self, change: dict) -> None:
        box = self.tabs.children[change["new"]] if change["new"] is not None else None
        for panel in (self.distill, self.compare):
            if box is panel.box:
                try:
                    panel.open()
                except Exception as err:  # ipywidgets would only log it: say it on the page
                    self.set_status(f"error: could not draw this tab: {err}", error=True)

    # ----- jobs (run by self.jobs) and the panels' hooks ----------------------------
    def start_training(self) -> bool:
        epochs, lr = self.c.epochs.value, self.c.lr.value
        return self.jobs.start("training", lambda stop, ev: self.session.train(
            epochs=epochs, lr=lr, optimizer=self.model_panel.optimizer(),
            batch_size=self.model_panel.batch_size(), stop=stop, on_event=ev), epochs)

    def start_prune_finetune(self) -> bool:
        c = self.c
        if c.mode.value != "sparsity":
            self.set_status("error: Prune and fine-tune needs a target sparsity; "
                            f"the slider is in {c.mode.value} mode", error=True)
            return False
        target, steps, ft = c.slider.value, c.steps.value, c.finetune_epochs.value
        kwargs = dict(steps=steps, schedule=c.schedule.value, finetune_epochs=ft,
                      rewind=rewind_value(c.rewind.value), scope=c.scope.value, lr=c.lr.value / 10,
                      structured=c.structured.value, norm=c.norm.value)
        return self.jobs.start("prune and fine-tune", lambda stop, ev:
                               self.session.prune_iteratively(target, stop=stop, on_event=ev,
                                                              **kwargs), steps * max(ft, 1))

    def set_busy(self, busy: bool) -> None:
        """Disable the controls that change the model while a job runs (Stop: the reverse)."""
        for widget in (*model_changing(self.c), *self.model_panel.controls(),
                       *self.distill.controls(), *self.compare.controls()):
            widget.disabled = busy
        self.c.stop.disabled = not busy

    def draw_curves(self) -> None:
        jobs = self.jobs
        n = min(len(jobs.steps), len(jobs.step_losses))
        plots.update_curves(self.fig, np.array(jobs.steps[:n]), np.array(jobs.step_losses[:n]),
                            list(self.session.history), self.session.task)
        ppl = [h["val_perplexity"] for h in self.session.history if "val_perplexity" in h]
        if ppl:  # a language model: name the validation trace by its perplexity too
            self.fig.data[plots.VAL_LOSS].name = f"val loss (perplexity {ppl[-1]:.2f})"

    def measure(self, latency: bool = True) -> dict:
        """Full metrics for the selected model, shown in the cards and the Compare tab."""
        return self.cards.measure_now(latency=latency)

    def forget_measures(self) -> None:
        self.cards.forget()

    def slots_changed(self) -> None:
        """A student was trained or another slot selected: per-model views start over."""
        self.compare.adopt()

    # ----- compute tier ------------------------------------------------------------
    def prune_kwargs(self) -> dict:
        c = self.c
        kwargs = {c.mode.value: c.slider.value, "scope": c.scope.value}
        if c.structured.value:
            kwargs.update(structured=True, norm=c.norm.value)
        return kwargs

    def _on_compute(self, _change: dict | None = None) -> None:
        if self._reconfiguring:
            return
        if self.jobs.defer_pruning():  # applied when the job ends: masks follow the last setting
            self.set_status(f"{self.jobs.name} running: the pruning change applies "
                            "when it ends")
            return
        self.apply_pruning()

    def apply_pruning(self, during_job: bool = False) -> bool:
        """Prune by the current pruning controls (slider, mode, scope, structured)."""
        return self.run(lambda: self.session.prune(**self.prune_kwargs()), during_job=during_job)

    def _on_mode(self, change: dict) -> None:
        lo, hi, step, fmt = SLIDER_RANGES[change["new"]]
        self._reconfiguring = True  # one recompute after the slider is reconfigured
        try:
            s = self.c.slider
            s.value = lo
            s.min, s.max, s.step, s.readout_format = lo, hi, step, fmt
            s.description = change["new"]
        finally:
            self._reconfiguring = False
        self._on_compute()

    def _reset_pruning_keep_slider(self) -> Snapshot:
        self._reconfiguring = True
        try:
            self.c.slider.value = self.c.slider.min
        finally:
            self._reconfiguring = False
        return self.session.reset_pruning()

    def run(self, action: Callable[[], Snapshot], done: str = "ready",
            during_job: bool = False) -> bool:
        """Run a Session call; show its Snapshot, or its error in the status line.

        Refused while a job runs (the buttons are disabled then, but a handler must not
        trust that): the job's commit would otherwise race with the change.
        """
        if self.jobs.busy and not during_job:
            self.set_status(f"{self.jobs.name} running: stop it or wait before changing "
                            "the model", error=True)
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

    # ----- view tier ---------------------------------------------------------------
    def _on_view(self, _change: dict) -> None:
        self.show(self.snap)

    def _on_bar_click(self, _trace, points, _state) -> None:
        if points.point_inds:
            self.c.layer.value = self.snap.layers[points.point_inds[0]].name

    def show(self, snap: Snapshot) -> None:
        self.snap = snap
        self.model_view.update(snap, self.c.layer.value, self.c.log_y.value)
        which = "" if self.session_selected() == "teacher" else f" [{self.session_selected()}]"
        quality = ("" if snap.accuracy is None else f" &middot; val accuracy {snap.accuracy:.1%}")
        if snap.accuracy is None:
            quality = f" &middot; val MSE {snap.loss:.4f}"
        self.c.summary.value = (f"Global sparsity: {snap.sparsity:.1%} &middot; "
                                f"{snap.nonzero:,} of {snap.params:,} parameters nonzero"
                                f"{quality}{which}")
        self._show_sample(snap)
        self.cards.show(snap)

    def _show_sample(self, snap: Snapshot) -> None:
        """Language model only; snapshots taken during a job carry no sample (kept)."""
        if not getattr(self.session, "is_lm", False):
            self.sample.value = ""
        elif snap.extra.get("sample") is not None:
            prompt, text = html.escape(snap.extra["prompt"]), html.escape(snap.extra["sample"])
            self.sample.value = (f'<div class="cx-note">Sample ({self.session_selected()}, '
                                 f'perplexity {snap.extra["perplexity"]:.2f}): '
                                 f'<code>{prompt}<b>{text}</b></code></div>')

    def session_selected(self) -> str:
        return getattr(self.session, "selected", "teacher")

    def set_status(self, text: str, error: bool = False) -> None:
        klass = "cx-status-error" if error else "cx-status-ok"
        self.c.status.value = f'<span class="{klass}">{html.escape(text)}</span>'
