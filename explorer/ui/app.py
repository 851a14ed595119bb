"""ExplorerApp: one compound widget that drives a Session and shows it live.

A compute input (slider, mode, scope) calls the Session once and updates each figure
with one batch_update; a view input (selected layer, log axis) only replots the last
Snapshot. Training runs in a worker thread; a Pump applies its latest progress.
"""

from __future__ import annotations

import copy
import html

import ipywidgets as W
import numpy as np

from ..jobs import JobResult, JobRunner
from ..metrics import Snapshot
from ..session import Session
from ..train import EpochEvent, StepEvent, StopEvent
from . import plots
from .controls import SLIDER_RANGES, Controls, build_controls, tagged
from .pump import Pump
from .theme import css, get_theme


class ExplorerApp(W.VBox):
    """Prune with a slider, train in the background, watch sparsity, weights, curves."""

    def __init__(self, session: Session, theme: str | None = None) -> None:
        self.session = session
        self.theme = get_theme(theme)
        self.runner = JobRunner()
        self.pump: Pump | None = None
        self.c: Controls = build_controls(session.prunable)
        self.fig_sparsity = plots.sparsity_figure(self.theme)
        self.fig_hist = plots.histogram_figure(self.theme)
        self.fig_curves = plots.curves_figure(self.theme)
        self._steps: list[int] = []
        self._step_losses: list[float] = []
        self._reconfiguring = False
        super().__init__(self._layout())
        self.add_class("cx-app")
        self.add_class(f"cx-theme-{self.theme.name}")
        self._wire()
        self.snap = session.snapshot()
        self._show(self.snap)
        self._draw_curves()

    def _repr_mimebundle_(self, **kwargs):
        # A FigureWidget inside a box is never displayed itself, so plotly never copies
        # its current traces into the synced state a new front-end view starts from.
        for fig in (self.fig_sparsity, self.fig_hist, self.fig_curves):
            fig._widget_layout = copy.deepcopy(fig._layout_obj._props)
            fig._widget_data = copy.deepcopy(fig._data)
        return super()._repr_mimebundle_(**kwargs)

    @classmethod
    def default(cls, theme: str | None = None) -> ExplorerApp:
        """The app on the shipped digits MLP: what `make demo` serves."""
        return cls(Session.default(), theme=theme)

    # ----- layout and wiring -------------------------------------------------------
    def _layout(self) -> list[W.Widget]:
        c = self.c
        title = W.HTML(css(self.theme) + '<div class="cx-title">Compression Explorer</div>')
        figs = [tagged(self.fig_sparsity, "fig-sparsity"), tagged(self.fig_hist, "fig-hist")]
        return [
            title,
            W.HBox([c.mode, c.scope]),
            W.HBox([c.slider, c.summary]),
            W.HBox([c.layer, c.log_y]),
            W.HBox([c.epochs, c.lr, c.train, c.stop, c.reset, c.progress]),
            c.status,
            W.HBox(figs),
            tagged(self.fig_curves, "fig-curves"),
        ]

    def _wire(self) -> None:
        c = self.c
        c.slider.observe(self._on_compute, names="value")
        c.scope.observe(self._on_compute, names="value")
        c.mode.observe(self._on_mode, names="value")
        c.layer.observe(self._on_view, names="value")
        c.log_y.observe(self._on_view, names="value")
        c.train.on_click(lambda _: self.start_training())
        c.stop.on_click(lambda _: self.stop())
        c.reset.on_click(lambda _: self._guarded(self.session.reset))
        self.fig_sparsity.data[0].on_click(self._on_bar_click)
        self.fig_sparsity.data[1].on_click(self._on_bar_click)

    # ----- compute tier ------------------------------------------------------------
    def _on_compute(self, _change: dict | None = None) -> None:
        if self._reconfiguring:
            return
        mode = self.c.mode.value
        self._guarded(lambda: self.session.prune(**{mode: self.c.slider.value},
                                                 scope=self.c.scope.value))

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

    def _guarded(self, action) -> None:
        """Run a Session call; show its Snapshot, or its error in the status line."""
        try:
            snap = action()
        except ValueError as err:
            self.set_status(f"error: {err}", error=True)
            return
        self._show(snap)
        self.set_status("ready")

    # ----- view tier ---------------------------------------------------------------
    def _on_view(self, _change: dict) -> None:
        self._show(self.snap)

    def _on_bar_click(self, _trace, points, _state) -> None:
        if points.point_inds:
            self.c.layer.value = self.snap.layers[points.point_inds[0]].name

    def _show(self, snap: Snapshot) -> None:
        self.snap = snap
        layer = self.c.layer.value
        plots.update_sparsity(self.fig_sparsity, snap, layer)
        plots.update_histogram(self.fig_hist, snap, layer, self.c.log_y.value)
        quality = ("" if snap.accuracy is None
                   else f" &middot; val accuracy {snap.accuracy:.1%}")
        self.c.summary.value = (f"Global sparsity: {snap.sparsity:.1%} &middot; "
                                f"{snap.nonzero:,} of {snap.params:,} parameters nonzero"
                                f"{quality}")

    def set_status(self, text: str, error: bool = False) -> None:
        klass = "cx-status-error" if error else "cx-status-ok"
        self.c.status.value = f'<span class="{klass}">{html.escape(text)}</span>'

    # ----- jobs --------------------------------------------------------------------
    def start_training(self) -> bool:
        """Start a training job; False (and a message) when one is already running."""
        if self.runner.running:
            self.set_status("a job is already running: stop it first", error=True)
            return False
        epochs, lr = self.c.epochs.value, self.c.lr.value

        def work(stop, publish):
            def on_event(event):
                if isinstance(event, StepEvent):
                    self._steps.append(self.session.total_steps)
                    self._step_losses.append(event.loss)
                publish(event)
            return self.session.train(epochs=epochs, lr=lr, stop=stop, on_event=on_event)

        self._set_busy(True)
        self.c.progress.max, self.c.progress.value = epochs, 0
        self.set_status(f"training: epoch 1/{epochs}")
        self.runner.start("train", work)
        self.pump = Pump(self.runner, self._on_progress, self._on_done, self._on_pump_error)
        self.pump.start()
        return True

    def stop(self) -> None:
        if self.runner.running:
            self.set_status("stopping...")
            self.runner.stop()

    def wait(self, timeout: float = 120.0) -> bool:
        """Block until the job and its pump finish (for tests and scripts)."""
        self.runner.join(timeout)
        return self.pump is None or self.pump.join(timeout)

    def _set_busy(self, busy: bool) -> None:
        for widget in self.c.model_changing():
            widget.disabled = busy
        self.c.stop.disabled = not busy

    def _on_progress(self, event) -> None:
        if isinstance(event, (StepEvent, EpochEvent)):
            done = event.epoch - (1 if isinstance(event, StepEvent) else 0)
            self.c.progress.value = done
            n = self.c.progress.max
            self.set_status(f"training: epoch {min(event.epoch, n)}/{n}, step {event.step}")
        self._show(self.session.snapshot(evaluate_model=False))
        self._draw_curves()

    def _on_done(self, result: JobResult | None) -> None:
        self._set_busy(False)
        self._draw_curves()
        if result is None or result.error is not None:
            err = None if result is None else result.error
            self.set_status(f"error: {err}", error=True)
            return
        snap = result.value
        self._show(snap)
        last = self.runner.latest
        if isinstance(last, StopEvent):
            self.set_status(f"{last.reason} after {last.step} steps; kept the trained weights")
        else:
            self.c.progress.value = self.c.progress.max
            acc = "" if snap.accuracy is None else f": val accuracy {snap.accuracy:.1%}"
            self.set_status(f"done{acc}")

    def _on_pump_error(self, err: BaseException) -> None:
        self.set_status(f"error: {err}", error=True)

    def _draw_curves(self) -> None:
        epochs = [h for h in self.session.history if h.get("kind") == "epoch"]
        n = min(len(self._steps), len(self._step_losses))
        plots.update_curves(self.fig_curves, np.array(self._steps[:n], dtype=np.float32),
                            np.array(self._step_losses[:n], dtype=np.float32), epochs)
