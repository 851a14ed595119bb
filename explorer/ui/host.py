"""Host: the app as its panels, Display, Actions and the layout see it (one protocol).

The app builds its panels and hands itself to them as a Host; no panel imports app.py,
so the ui package has no import cycle (app -> panels -> host -> jobs, controls, theme).
The panels above host (cards, compare, distill, model) are named by their Panel shape.
What is asked for and shown (pruning settings, layer, page, curves) is read from
`state` (AppState); the controls are linked to it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import ipywidgets as W

from ..engine.metrics import Snapshot
from ..session.session import Session
from .background import CurveWorker
from .controls import Controls
from .curves import CurveBook
from .guard import KernelErrors, UiLock
from .guide import Guide
from .headline import Metric
from .jobs import JobController
from .model_view import MainView
from .quant_panel import QuantControls
from .resizer import Resizer
from .state import AppState
from .sync import ControlSync
from .theme import Theme


class Panel(Protocol):
    """A tab's panel as the layout places it: its controls and its figures."""

    box: W.Widget
    figure_box: W.Box


class Host(Protocol):
    """The app as its parts see it: the session, state, controls, views, status and jobs."""

    session: Session
    data_roots: tuple[str, ...]  # the folders a loaded session file may name
    snap: Snapshot  # the Snapshot shown now
    theme: Theme
    talk: bool
    c: Controls  # shared controls (the panels read lr and drive progress)
    state: AppState  # what is asked for and shown (panels observe it)
    jobs: JobController
    book: CurveBook  # training curves per model
    ui_lock: UiLock
    guard: Callable[[Callable], Callable]  # wraps a widget callback: UI lock, errors shown
    sync: ControlSync  # writes the controls from a Snapshot without a recompute
    view: MainView  # the main figure's panels
    fig: W.DOMWidget  # the main figure
    curve: CurveWorker  # the one-shot curve, computed in the background
    resizer: Resizer  # its `fired` count tells that a page is drawing the app
    sample: W.HTML  # the language model's sample line
    errors: KernelErrors
    guide: Guide  # the next-step line
    quant: QuantControls
    cards: Panel
    distill: Panel
    compare: Panel
    model_panel: Panel

    def set_status(self, text: str, error: bool = False) -> None: ...

    def session_selected(self) -> str:
        """The model slot shown and pruned: teacher, student or student_alone."""

    def who(self, slot: str | None = None) -> str:
        """How the page names a model slot (default: the selected one)."""

    def metric(self) -> Metric:
        """The headline quantity of this session (accuracy, MSE or perplexity)."""

    def dense_value(self, slot: str | None = None) -> float | None:
        """The headline quantity of that model before pruning."""

    def run(self, action: Callable[[], Snapshot], done: str = "ready",
            during_job: bool = False) -> bool:
        """Run a Session call; show its Snapshot, or its error in the status line."""

    def prune_kwargs(self) -> dict:
        """Session.prune's arguments for the current pruning controls."""

    def adopt_session(self, session: Session) -> None:
        """Show a (new) session everywhere."""

    def select_slot(self, slot: str) -> bool:
        """Prune and show another model slot."""

    def show_curves_of(self, prefer: str | None = None) -> None:
        """Draw the training curves of `prefer` (a model slot), listing it if new."""

    def measure(self, latency: bool = True) -> dict:
        """Full metrics for the selected model, shown in the cards and the Compare tab."""

    def request_curve(self) -> None:
        """The one-shot curve for the shown model, base and scope (background)."""

    def after_model_change(self, snap: Snapshot, prefer: str | None = None) -> None:
        """Another model or base is shown: layers, controls, figures start over."""

    def set_busy(self, busy: bool) -> None:
        """Disable (or enable again) the controls that change the model."""

    def job_progress(self) -> None:
        """Show the running job's effect (bars, weights, curves), without evaluating; read
        the session first, then take the UI lock to draw."""

    def job_finished(self, slot: str | None, failed: bool) -> None:
        """The job ended: show the session as it is now (evaluated), curves included."""

    def apply_pruning(self, during_job: bool = False) -> bool:
        """Prune by the current pruning settings (AppState)."""

    def slots_changed(self) -> None:
        """A student was trained or another slot selected: per-model views start over."""
