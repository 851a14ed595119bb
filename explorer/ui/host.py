"""Host: the part of the app a panel may use.

The app builds its panels and hands itself to them as a Host; no panel imports app.py,
so the ui package has no import cycle (app -> panels -> host -> jobs, controls, theme).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from ..engine.metrics import Snapshot
from ..session.session import Session
from .controls import Controls
from .curves import CurveBook
from .guard import UiLock
from .headline import Metric
from .jobs import JobController
from .state import AppState
from .theme import Theme


class Host(Protocol):
    """The app as its panels see it: the session, shared controls, status and jobs."""

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

    def slots_changed(self) -> None:
        """A student was trained or another slot selected: per-model views start over."""
