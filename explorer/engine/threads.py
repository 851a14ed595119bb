"""How many torch (OpenMP) threads a session's work gets: one for a small model.

Why (issue 31, measured on this project's 2-core machine with other work running): every
op that fans out to OpenMP threads (addmm, histc (grain 200), an elementwise op above
32k elements) ends at a barrier that waits for each thread; when the machine has more
runnable threads than cores, the second thread can wait a whole scheduler slice for a
core, about 10 ms an op. The digits MLP's bits move then took 69-212 ms with torch's 2
default threads against 2-5 ms with one, a sparsity move the same, and a training epoch
2-10x longer. A small model's op is tens of microseconds of work, so a second thread
saves almost nothing even on an idle machine; above SMALL_MODEL_PARAMS the ops are long
enough to share, and the default stands.

This is the one place the project lowers thread counts for interactive work: the
session's lock (WorkLock) applies it to whoever holds it, so every slider move and every
optimizer step of a small model runs on one thread. It only ever lowers the count (an
explicit `--threads 1` stays) and restores it on release. OpenMP's thread count is a
per-thread setting (libgomp's nthreads-var), so another thread's work keeps its own; only
a thread whose first parallel op runs while the count is lowered starts with the lower
one (torch reads its global count once per thread), which a small model wants anyway.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import torch

SMALL_MODEL_PARAMS = 1_000_000  # below this, one torch thread (see the module docstring)


def threads_for(params: int, available: int | None = None) -> int:
    """Torch threads for work on a model of `params` parameters (at most `available`,
    torch.get_num_threads() by default)."""
    available = torch.get_num_threads() if available is None else available
    return 1 if params < SMALL_MODEL_PARAMS else available


class WorkLock:
    """A re-entrant lock whose holder works with threads_for(params()) torch threads:
    the session's "one optimizer step or one slider move at a time". `params` is asked
    on the outermost acquire only; if it fails (a session still being built) nothing
    changes."""

    def __init__(self, params: Callable[[], int]) -> None:
        self._lock = threading.RLock()
        self._params = params
        self._depth = 0  # re-entry depth of the holding thread
        self._restore: int | None = None

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if not self._lock.acquire(blocking, timeout):
            return False
        self._depth += 1
        if self._depth == 1:
            try:
                size = self._params()
            except Exception:  # noqa: BLE001 - no model yet: leave the threads alone
                size = SMALL_MODEL_PARAMS
            before = torch.get_num_threads()
            wanted = threads_for(size, before)
            self._restore = before if wanted != before else None
            if self._restore is not None:
                torch.set_num_threads(wanted)
        return True

    def release(self) -> None:
        self._depth -= 1
        if self._depth == 0 and self._restore is not None:
            torch.set_num_threads(self._restore)
            self._restore = None
        self._lock.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
