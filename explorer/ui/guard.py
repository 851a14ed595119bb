"""The app's UI lock, and the kernel-error list that browser tests read.

Every widget callback and every job update runs holding one re-entrant lock, so figure
writes from the kernel thread and the job's pump thread never interleave (plotly's
batch_update is not thread-safe).

In test mode ($EXPLORER_TEST_MODE=1, set by the browser tests' dashboard server) every
error logged in the kernel (a widget message whose handler raised, plotly's front-end
delta handler, an exception in one of our callbacks) is listed in a hidden element
`.cx-kernel-errors`, so a test can assert that nothing raised behind the page.
"""

from __future__ import annotations

import html
import logging
import os
import threading
from collections.abc import Callable
from functools import wraps

import ipywidgets as W

TEST_MODE_ENV = "EXPLORER_TEST_MODE"
MAX_ERRORS = 50


class UiLock:
    """A re-entrant lock that can say whether the calling thread holds it."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._owner: int | None = None
        self._depth = 0

    def __enter__(self) -> UiLock:
        self._lock.acquire()
        self._owner = threading.get_ident()
        self._depth += 1
        return self

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        if not self._depth:
            self._owner = None
        self._lock.release()

    def held(self) -> bool:
        return self._owner == threading.get_ident()


class _Collect(logging.Handler):
    def __init__(self, sink: KernelErrors) -> None:
        super().__init__(level=logging.ERROR)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                text += f": {type(record.exc_info[1]).__name__}: {record.exc_info[1]}"
            self.sink.add(f"{record.name}: {text}")
        except Exception:  # a logging handler must never raise
            pass


class KernelErrors:
    """Errors raised in the kernel while the app runs, readable from the page."""

    def __init__(self, enabled: bool | None = None, lock: UiLock | None = None) -> None:
        self.enabled = (os.environ.get(TEST_MODE_ENV, "") == "1") if enabled is None \
            else enabled
        # errors are logged from any thread (a job's, the curve's, a comm handler): the
        # list and its widget are written under the app's UI lock like every other widget
        self.lock = lock if lock is not None else UiLock()
        self.errors: list[str] = []
        self.widget = W.HTML("")
        self.widget.add_class("cx-kernel-errors")
        self._handler: _Collect | None = None
        if self.enabled:
            self._handler = _Collect(self)
            logging.getLogger().addHandler(self._handler)

    def add(self, text: str) -> None:
        with self.lock:
            if len(self.errors) < MAX_ERRORS:
                self.errors.append(text)
            if self.enabled:
                self.widget.value = "<br>".join(html.escape(e) for e in self.errors)

    def close(self) -> None:
        if self._handler is not None:
            logging.getLogger().removeHandler(self._handler)
            self._handler = None


def guarded(lock: UiLock, report: Callable[[BaseException], None]) -> Callable:
    """Decorator: run a widget callback under the UI lock; report what it raises."""
    def wrap(fn: Callable) -> Callable:
        @wraps(fn)
        def call(*args, **kwargs):
            with lock:
                try:
                    return fn(*args, **kwargs)
                except Exception as err:  # said on the page; ipywidgets would only log it
                    report(err)
                    return None
        return call
    return wrap
