"""The full-set answer that follows a big model's subset answer (Session.quick_subset).

A slider move on a model of 2M+ parameters shows accuracy on a fixed 256-sample subset at
once (the headline says so); this worker then waits a moment, and if no newer move came,
evaluates the whole validation split off the widget thread and shows it. A newer move, a
job, or a snapshot without a subset cancels the pending refinement.
"""

from __future__ import annotations

import threading
from typing import Any

from ..engine.metrics import Snapshot
from ..session import exit as exit_join

SETTLE_S = 0.3  # wait this long for the slider to rest before the full pass


class Refiner:
    """Shows `session.refine()` after a subset snapshot, unless something newer came."""

    def __init__(self, host: Any) -> None:
        self.host = host
        self.generation = 0
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()

    def after(self, snap: Snapshot | None) -> None:
        """Call after every pruning answer: schedules the full pass when `snap` is partial."""
        with self.lock:
            self.generation += 1
            if snap is None or not snap.extra.get("eval_samples"):
                return
            generation = self.generation
            self.thread = threading.Thread(target=self._run, args=(generation,), daemon=True,
                                           name="explorer-refine")
            exit_join.start(self.thread)

    def _current(self, generation: int) -> bool:
        return generation == self.generation and not self.host.jobs.busy

    def _run(self, generation: int) -> None:
        threading.Event().wait(SETTLE_S)
        if not self._current(generation):
            return
        try:
            snap = self.host.session.refine()
        except ValueError:  # the session changed under us (a new model): nothing to show
            return
        with self.host.ui_lock:
            if self._current(generation):
                self.host.show(snap)

    def wait(self, timeout: float = 60.0) -> bool:
        thread = self.thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True
