"""Display: what the app shows for a Snapshot (figure, headline, cards, sample) and the
one-shot accuracy-vs-sparsity curve, which arrives from the background."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Hashable

from ..engine.metrics import Snapshot
from ..session.views import (  # value types, through session
    NetworkPicture,
    NetworkState,
    network_view,
)
from .cards import Cards
from .headline import Metric, headline_html
from .host import Host
from .sample import SampleWorker, sample_html
from .state import slot_label

GRID_INTERVAL_S = 1.0
FIGURE_MIN_INTERVAL_S = 0.15  # slider moves faster than this are drawn as the newest one


class Display:
    def __init__(self, host: Host, cards: Cards) -> None:
        self.host, self.cards = host, cards
        self.value: float | None = None  # the headline's last measured value
        self.curve_key: Hashable = None
        self._curve_drawn: tuple | None = None  # (key, measured?) of the curve on screen
        self._grid_at = 0.0
        self._picture: tuple[Hashable, NetworkPicture] | None = None
        self._drawn_at = 0.0
        self._pending: tuple | None = None
        self._timer: threading.Timer | None = None
        # The language model's sample line: its perplexity follows each change at once,
        # its text arrives from the background once the slider rests (issue 15 item 3).
        self.samples = SampleWorker(self._sample_ready, self._sample_failed)
        self._sample_text: str | None = None
        self._sample_head = ""

    def network(self, during_job: bool = False
                ) -> tuple[NetworkPicture, NetworkState] | None:
        """The network picture now (reads the session: never while holding the UI lock
        during a job, when the worker holds the session between steps). Its link set is
        kept per base (model, slot, base_version); during a job, at most once a second."""
        now = time.monotonic()
        if during_job and now - self._grid_at < GRID_INTERVAL_S:
            return None
        self._grid_at = now
        host = self.host
        key = (id(host.session), host.session.selected, host.state.base_version)
        picture = self._picture[1] if self._picture and self._picture[0] == key else None
        try:
            picture, state = network_view(host.session, picture)
        except ValueError:
            return None
        self._picture = (key, picture)
        return picture, state

    def show(self, snap: Snapshot, evaluated: bool = True,
             grid: tuple[NetworkPicture, NetworkState] | None = None) -> None:
        """Bars, weights, the network and the current point; headline and cards too.

        A job's snapshots are not evaluated: the headline keeps the last measured value
        while the sparsity and counts follow the job. During a job a view change (another
        layer) reads nothing from the session: the network follows at the next update."""
        host = self.host
        host.snap = snap
        layer = host.state.layer
        if layer not in snap.prunable:
            host.sync.layers(list(snap.prunable))
            layer = host.state.layer
        if grid is None and not host.jobs.runner.running:  # a worker holds the session
            grid = self.network()
        metric = host.metric()
        self._draw(snap, layer, metric, grid)
        value = metric.value(snap) if math.isfinite(snap.loss) else None
        if value is not None or evaluated:
            self.value = value
        host.c.summary.value = headline_html(snap, metric, host.dense_value(), host.who(),
                                             self.value)
        if evaluated:
            self.show_sample(snap)
            self.cards.show(snap)

    def _draw(self, snap: Snapshot, layer: str, metric: Metric, grid: tuple | None) -> None:
        """Draw now, or, while a page is drawing the app and drew less than
        FIGURE_MIN_INTERVAL_S ago, once that interval is over: a browser redraws every panel
        on each update, so during a drag the newest state replaces one still waiting
        (never queued). Headless (no page), every call draws at once."""
        wait = self._drawn_at + FIGURE_MIN_INTERVAL_S - time.monotonic()
        if self.host.resizer.fired and wait > 0:
            if grid is None and self._pending is not None and self._pending[1] == layer:
                grid = self._pending[3]
            self._pending = (snap, layer, metric, grid)
            if self._timer is None:
                self._timer = threading.Timer(wait, self._flush)
                self._timer.daemon = True
                self._timer.start()
            return
        self._pending = None
        self._drawn_at = time.monotonic()
        self.host.view.show(snap, layer, self.host.state.log_y, self.host.state.page,
                            metric, grid)

    def settle(self, timeout: float = 10.0) -> None:
        """Wait for a deferred draw (tests)."""
        timer = self._timer
        if timer is not None:
            timer.join(timeout)

    def _flush(self) -> None:
        with self.host.ui_lock:
            self._timer, pending, self._pending = None, self._pending, None
            if pending is not None:
                self._draw(*pending)

    def show_sample(self, snap: Snapshot) -> None:
        """Language model only: the perplexity now, the text when the background has it
        (the previous text, marked as updating, until then)."""
        host = self.host
        if not (host.session.is_lm or host.session.objective.headline == "perplexity"):
            host.sample.value = ""
            return
        perplexity = snap.extra.get("perplexity")
        if perplexity is None or not math.isfinite(perplexity):
            return  # a job's snapshot: keep the line as it is
        self._sample_head = f"Sample ({host.who()}, perplexity {perplexity:.2f})"
        if snap.extra.get("sample") is not None:  # a session that still samples inline
            self._sample_text = snap.extra["sample"]
            self._draw_sample("")
            return
        self._draw_sample("generating..." if self._sample_text is None else "updating...")
        self.samples.request((id(host.session), host.session.selected), host.session)

    def cancel_background(self) -> None:
        """Another session is shown (or the app closes): the curve and sample start over."""
        self.host.curve.cancel()
        self.samples.cancel()
        self._sample_text = None

    def wait_sample(self, timeout: float = 60.0) -> bool:
        """Wait for the background sample (tests, benchmarks)."""
        return self.samples.wait(timeout)

    def _draw_sample(self, note: str) -> None:
        self.host.sample.value = sample_html(self._sample_head, self._sample_text, note)

    def _sample_ready(self, key: Hashable, text: str) -> None:
        with self.host.ui_lock:
            if key == (id(self.host.session), self.host.session.selected):
                self._sample_text = text
                self._draw_sample("")

    def _sample_failed(self, key: Hashable, err: BaseException) -> None:
        with self.host.ui_lock:
            if key == (id(self.host.session), self.host.session.selected):
                self._draw_sample(f"no sample: {err}")

    def draw_curves(self) -> None:
        host = self.host
        slot = host.state.curves or host.session.selected
        host.view.show_curves(host.book.read(slot), host.metric(), slot_label(slot))

    def request_curve(self) -> None:
        """The one-shot curve for the shown model, base and scope (cached, background)."""
        host = self.host
        state, session = host.state, host.session
        scope = "layer" if state.mode == "std" else state.scope
        structured = state.structured and state.mode == "sparsity" and not session.is_lm
        key = (id(session), session.selected, host.state.base_version, scope, structured)
        self.curve_key = key
        points = host.curve.request(key, session, scope, structured, state.norm)
        if self._curve_drawn == (key, points is not None):
            return  # a slider move within one base: the curve on screen is this one
        self._curve_drawn = (key, points is not None)
        host.view.show_curve(points, host.metric(), "" if points is not None else
                             "(measuring...)")
        if points is not None:
            self._dense_from_curve(points)

    def curve_ready(self, key: Hashable, points: list) -> None:
        with self.host.ui_lock:
            if key == self.curve_key:
                self._curve_drawn = (key, True)
                self.host.view.show_curve(points, self.host.metric())
                self._dense_from_curve(points)

    def curve_failed(self, key: Hashable, err: BaseException) -> None:
        with self.host.ui_lock:
            if key == self.curve_key:
                self._curve_drawn = None  # asked again, it is drawn again
                self.host.view.show_curve(None, self.host.metric(), f"(not available: {err})")

    def _dense_from_curve(self, points: list) -> None:
        """A model shown already pruned: its curve's first point is the dense reference."""
        host = self.host
        if host.dense_value() is None and points and points[0].sparsity == 0:
            host.book.set_dense(host.session.selected, host.metric().point_value(points[0]))
            if host.snap is not None:
                self.show(host.snap, evaluated=False)
