"""A language model's text sample, generated in the background once the slider settles.

Generating 60 characters takes 60 forward passes: done inside each slider move it was
about a third of gpt-tiny's prune-to-draw time (issue 15 item 3). The app asks for a
sample after every evaluated change; a request waits SETTLE_S for the slider to rest,
then a daemon thread generates on a copy of the model (explorer.session.views), so the
slider never waits for it. The latest request wins: one still waiting is replaced, and a
result that a newer request overtook is dropped, never shown.
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Callable, Hashable

from ..session import exit as exit_join
from ..session.session import Session
from ..session.views import SAMPLE_PROMPT, text_sample

SETTLE_S = 0.4  # a drag sends moves faster than this: only its last one gets a sample


class SampleWorker:
    """request() schedules a sample; on_ready(key, text) or on_error(key, err) follows."""

    def __init__(self, on_ready: Callable[[Hashable, str], None],
                 on_error: Callable[[Hashable, BaseException], None],
                 settle_s: float = SETTLE_S) -> None:
        self.on_ready, self.on_error, self.settle_s = on_ready, on_error, settle_s
        self._lock = threading.Lock()
        self._latest = 0  # the newest request's number; older results are dropped
        self._timer: threading.Timer | None = None
        self._thread: threading.Thread | None = None
        self.generated = 0  # samples generated (tests, benchmarks)

    def request(self, key: Hashable, session: Session) -> None:
        """A sample of `session`'s selected model, once no newer request comes for a while."""
        with self._lock:
            self._latest += 1
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(self.settle_s, self._start,
                                          args=(self._latest, key, session))
            self._timer.daemon = True
            self._timer.start()

    def _start(self, number: int, key: Hashable, session: Session) -> None:
        with self._lock:
            if number != self._latest:
                return
            self._timer = None
            thread = threading.Thread(target=self._run, args=(number, key, session),
                                      name="explorer-sample", daemon=True)
            self._thread = thread
            # started under the lock: wait() must never see the new thread not yet alive
            # while the timer that made it has already ended (it would report idle)
            exit_join.start(thread)

    def _run(self, number: int, key: Hashable, session: Session) -> None:
        try:
            text = text_sample(session)
        except Exception as err:  # shown in the sample line, never raised into a thread
            if number == self._latest:
                self.on_error(key, err)
            return
        with self._lock:
            self.generated += 1
            current = number == self._latest
        if current:
            self.on_ready(key, text)

    def cancel(self) -> None:
        """Drop what is waiting or running (another session is shown)."""
        with self._lock:
            self._latest += 1
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def wait(self, timeout: float = 60.0) -> bool:
        """Block until no sample waits or runs (tests, benchmarks)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                busy = [t for t in (self._timer, self._thread) if t is not None and t.is_alive()]
            left = deadline - time.monotonic()
            if not busy or left <= 0:
                return not busy
            busy[0].join(left)


def sample_html(head: str, text: str | None, note: str = "") -> str:
    """The sample line: '<head>: <prompt><text>' and a note (updating..., an error)."""
    body = f"<code>{html.escape(SAMPLE_PROMPT)}<b>{html.escape(text or '')}</b></code>"
    tail = f" <i>({html.escape(note)})</i>" if note else ""
    return f'<div class="cx-note">{html.escape(head)}: {body}{tail}</div>'
