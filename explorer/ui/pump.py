"""The one writer during a job: polls the runner and applies only the latest event.

Widget updates from a thread work in JupyterLab and Voila (ipykernel >= 7.1); the
pump caps them at a few per second so training is not slowed by its own plots.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from ..session import exit as exit_join
from ..session.jobs import JobResult, JobRunner

PUMP_INTERVAL_S = 0.25


class Pump:
    """Applies progress at most every `interval` seconds, then the job's result once."""

    def __init__(self, runner: JobRunner, on_progress: Callable[[Any], None],
                 on_done: Callable[[JobResult | None], None],
                 on_error: Callable[[BaseException], None],
                 interval: float = PUMP_INTERVAL_S) -> None:
        self.runner, self.interval = runner, interval
        self.on_progress, self.on_done, self.on_error = on_progress, on_done, on_error
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="explorer-pump", daemon=True)
        exit_join.start(self._thread)  # its last call may run torch: exit waits for it

    def _loop(self) -> None:
        seen = -1
        while self.runner.running:
            self.runner.join(self.interval)
            if self.runner.version != seen and self.runner.running:
                seen = self.runner.version
                self._safely(self.on_progress, self.runner.latest)
        self._safely(self.on_done, self.runner.result)

    def _safely(self, fn: Callable[[Any], None], arg: Any) -> None:
        try:
            fn(arg)
        except Exception as err:  # a plotting error must not kill the pump silently
            self.on_error(err)

    def join(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
        return self._thread is None or not self._thread.is_alive()
