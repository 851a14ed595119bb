"""One background job at a time, with a stop event and the latest progress event.

A long loop in a widget callback would block the kernel's message handling (in Voila
the Stop click would never arrive), so training runs in a worker thread. The worker
only records the latest event; a reader (the UI pump) decides how often to show it.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import exit as exit_join


@dataclass(frozen=True)
class JobResult:
    """How a job ended: its return value, or the error it raised (never swallowed)."""

    name: str
    value: Any = None
    error: BaseException | None = None
    stopped: bool = False
    trace: str = ""


class JobRunner:
    """Runs at most one job; `start` refuses a second while one is alive."""

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._guard = threading.Lock()
        self.stop_event = threading.Event()
        self.name = ""
        self.latest: Any = None  # the newest progress event; older ones are dropped
        self.version = 0  # bumps on every publish, so readers can skip unchanged state
        self.result: JobResult | None = None
        self.started_count = 0

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def publish(self, event: Any) -> None:
        """Called by the job for each event; only the last one is kept."""
        self.latest = event
        self.version += 1

    def start(self, name: str, work: Callable[[threading.Event, Callable[[Any], None]], Any],
              on_done: Callable[[JobResult], None] | None = None) -> bool:
        """Start `work(stop_event, publish)` in a thread; False if a job is running."""
        with self._guard:
            if self.running:
                return False
            self.stop_event = threading.Event()
            self.name, self.latest, self.result = name, None, None
            self.started_count += 1
            stop = self.stop_event

            def run() -> None:
                try:
                    result = JobResult(name, value=work(stop, self.publish),
                                       stopped=stop.is_set())
                except Exception as err:  # reported to the UI, not lost in a thread
                    result = JobResult(name, error=err, stopped=stop.is_set(),
                                       trace=traceback.format_exc())
                self.result = result
                if on_done is not None:
                    on_done(result)

            self._thread = threading.Thread(target=run, name=f"explorer-{name}", daemon=True)
            exit_join.start(self._thread, stop)
            return True

    def stop(self) -> None:
        """Ask the running job to stop; it checks the event every batch."""
        self.stop_event.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the job; True when no job is running afterwards."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return not self.running
