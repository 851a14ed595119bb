"""The one-shot accuracy-vs-sparsity curve, computed in the background and cached.

Once per (session, model, base, scope) the curve is measured on a copy of the weights
(explorer.session.views.oneshot_curve) in a daemon thread: never as a Session job, and the
slider never waits for it. A newer request cancels an older one still running.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

from ..session import exit as exit_join
from ..session.session import Session
from ..session.views import CURVE_LEVELS, CurvePoint, oneshot_curve

CACHE_SIZE = 12
LM_LEVELS = CURVE_LEVELS[::3]  # a language model's evaluation costs more per level


class CurveWorker:
    """request() returns cached points, or None and computes them in the background."""

    def __init__(self, on_ready: Callable[[Hashable, list[CurvePoint]], None],
                 on_error: Callable[[Hashable, BaseException], None]) -> None:
        self.on_ready, self.on_error = on_ready, on_error
        self._cache: OrderedDict[Hashable, list[CurvePoint]] = OrderedDict()
        self._lock = threading.Lock()
        self._running: tuple[Hashable, threading.Event, threading.Thread] | None = None
        self.computed = 0  # curves measured (tests: once per base)

    def cached(self, key: Hashable) -> list[CurvePoint] | None:
        with self._lock:
            return self._cache.get(key)

    def request(self, key: Hashable, session: Session, scope: str, structured: bool,
                norm: str) -> list[CurvePoint] | None:
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
            if self._running is not None and self._running[0] == key:
                return None
            self._cancel_locked()
            stop = threading.Event()
            levels = LM_LEVELS if session.is_lm else CURVE_LEVELS
            thread = threading.Thread(target=self._run, name="explorer-curve", daemon=True,
                                      args=(key, session, levels, scope, structured, norm,
                                            stop))
            self._running = (key, stop, thread)
        exit_join.start(thread, stop)
        return None

    def _run(self, key, session: Session, levels, scope, structured, norm, stop) -> None:
        try:
            points = oneshot_curve(session, levels, scope=scope, structured=structured,
                                   norm=norm, stop=stop)
        except Exception as err:  # shown beside the curve, never raised into a thread
            if not stop.is_set():
                self.on_error(key, err)
            return
        finally:
            with self._lock:
                if self._running is not None and self._running[1] is stop:
                    self._running = None
        if stop.is_set():
            return
        with self._lock:
            self._cache[key] = points
            self.computed += 1
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        self.on_ready(key, points)

    def _cancel_locked(self) -> None:
        if self._running is not None:
            self._running[1].set()
            self._running = None

    def cancel(self) -> None:
        with self._lock:
            self._cancel_locked()

    def wait(self, timeout: float = 60.0) -> bool:
        """Block until no curve is being computed (tests)."""
        with self._lock:
            running = self._running
        if running is not None:
            running[2].join(timeout)
            return not running[2].is_alive()
        return True
