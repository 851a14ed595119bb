"""Threads that run torch in the background are waited for when the interpreter exits.

A daemon thread still inside torch while Python finalizes aborts the process ("terminate
called without an active exception", exit status 134): a script, a benchmark or a test run
that ends while the app measures its one-shot curve, generates a text sample or runs a job
would fail after its work was done. Every such thread starts through `start()` with the
event that stops it, if it has one; at exit the events are set and the threads joined,
within EXIT_WAIT_S in all (a thread that will not end by then is left to the old fate).
"""

from __future__ import annotations

import atexit
import threading
import time
import weakref

EXIT_WAIT_S = 30.0

_lock = threading.Lock()
_live: list[tuple[weakref.ref[threading.Thread], threading.Event | None]] = []


def start(thread: threading.Thread, stop: threading.Event | None = None) -> None:
    """thread.start(), remembered (weakly) so that exit waits for it."""
    with _lock:
        _live[:] = [(ref, event) for ref, event in _live
                    if (alive := ref()) is not None and alive.is_alive()]
        _live.append((weakref.ref(thread), stop))
    thread.start()


def _join_all() -> None:
    """Stop and join every registered thread, and any that they start while ending (a job's
    last step hands over to a pump that may start a curve): until none is left, or time is."""
    deadline = time.monotonic() + EXIT_WAIT_S
    while time.monotonic() < deadline:
        with _lock:
            live = [(thread, event) for ref, event in _live
                    if (thread := ref()) is not None and thread.is_alive()
                    and thread is not threading.current_thread()]
        if not live:
            return
        for _, event in live:
            if event is not None:
                event.set()
        for thread, _ in live:
            thread.join(max(0.0, deadline - time.monotonic()))


atexit.register(_join_all)
