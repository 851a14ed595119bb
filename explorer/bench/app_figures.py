"""The app's figures for explorer.bench.suite: slider moves, the temperature slider, the
training overhead and peers, each measured through a real ExplorerApp.

Widgets get a fake comm that serialises every message as a kernel would (JSON plus binary
buffers) and sends nowhere, so the bytes a move costs are counted. The UI and torch are
imported inside the functions (explorer.cli.main registers the subcommand without them).
"""

from __future__ import annotations

import copy
import json
import math
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..session.session import Session

SLIDER_VALUES = (0.1, 0.5, 0.3, 0.9, 0.7, 0.2, 0.8, 0.4, 0.6, 0.95)
PEER_SIZES = (1e6, 1e7)


# ----- a comm that serialises and counts ----------------------------------------------
class _Counter:
    bytes = 0
    messages = 0


@contextmanager
def counting_comms() -> Iterator[type[_Counter]]:
    """Widgets created inside get a comm that JSON-encodes each message and counts bytes."""
    import comm
    from comm.base_comm import BaseComm

    class CountingComm(BaseComm):
        def publish_msg(self, msg_type, data=None, metadata=None, buffers=None, **keys):
            # What jupyter_client would put on the wire: JSON content plus raw buffers.
            body = json.dumps({"msg_type": msg_type, "data": data, "metadata": metadata or {},
                               "comm_id": self.comm_id}, default=str)
            _Counter.bytes += len(body.encode()) + sum(memoryview(b).nbytes
                                                       for b in buffers or ())
            _Counter.messages += 1

    previous = comm.create_comm
    comm.create_comm = lambda *args, **kwargs: CountingComm(*args, **kwargs)
    try:
        yield _Counter
    finally:
        comm.create_comm = previous


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


# ----- slider ------------------------------------------------------------------------
def settle(app) -> None:
    """Wait for the app's background work (the one-shot curve; a big model's full-set answer,
    which starts 0.3 s after a subset answer and holds the session while it evaluates), so a
    timed move or floor pass never runs beside it (it once doubled the 10M ratio)."""
    app.curve.wait(120.0)
    app.refiner.wait(120.0)


def slider_moves(app, moves: int, warmup: int = 3, offset: int = 0
                 ) -> tuple[list[float], list[int]]:
    """Seconds and bytes of each slider move (value set -> observers done), after warm-up;
    the app's background work settles between moves."""
    times, sizes = [], []
    settle(app)
    slider = app.c.slider
    for i in range(warmup + moves):
        value = SLIDER_VALUES[(offset + i) % len(SLIDER_VALUES)]
        if slider.value == value:
            value = SLIDER_VALUES[(offset + i + 1) % len(SLIDER_VALUES)]
        _Counter.bytes = 0
        start = time.perf_counter()
        slider.value = value
        elapsed = time.perf_counter() - start
        if i >= warmup:
            times.append(elapsed)
            sizes.append(_Counter.bytes)
        settle(app)
    return times, sizes


def make_app(session: Session):
    from ..ui import ExplorerApp

    return ExplorerApp(session)


def bench_slider_default(moves: int, tiny: bool) -> dict:
    from ..session.session import Session
    from .models import mlp_session

    session = mlp_session(2e4) if tiny else Session.default(device="cpu")
    with counting_comms():
        app = make_app(session)
        times, sizes = slider_moves(app, moves)
    return {"slider_p50_ms": 1e3 * statistics.median(times),
            "slider_p95_ms": 1e3 * pct(times, 0.95),
            "update_bytes_small": statistics.median(sizes)}


def bench_temperature(moves: int) -> dict:
    """The Distill tab's temperature slider (issue 25): value set -> soft targets, dark
    knowledge and the sweep's star redrawn, on the default digits MLP with a student."""
    from ..session.session import Session

    with counting_comms():
        app = make_app(Session.default(device="cpu"))
        app.session.students.distill(epochs=1)
        app.tabs.selected_index = 1  # the tab's figure is built when it opens
        times, sizes = [], []
        for i in range(3 + moves):
            _Counter.bytes = 0
            start = time.perf_counter()
            app.distill.temperature.value = 2.0 + (i % 8) * 2.0
            if i >= 3:
                times.append(time.perf_counter() - start)
                sizes.append(_Counter.bytes)
    return {"distill_temperature_p50_ms": 1e3 * statistics.median(times),
            "distill_temperature_bytes": statistics.median(sizes)}


def bench_slider_large(n_params: float, pairs: int) -> dict:
    """App slider move vs the bare-PyTorch floor, pair by pair, on an MLP of n_params."""
    from .models import FloorPrune, mlp_session

    session = mlp_session(n_params)
    floor_prune = FloorPrune(session)
    with counting_comms():
        app = make_app(session)
        slider_moves(app, 0, warmup=2)
        floor_prune(0.5)
        ratios, app_times, sizes = [], [], []
        for i in range(pairs):
            times, moved = slider_moves(app, 1, warmup=0, offset=i)
            floor = floor_prune(app.c.slider.value)
            ratios.append(times[0] / floor)
            app_times.append(times[0])
            sizes.extend(moved)
    return {"ratio": statistics.median(ratios), "ms": 1e3 * statistics.median(app_times),
            "bytes": statistics.median(sizes),
            "params": sum(p.numel() for p in session.model.parameters())}


def bench_slider_by_params(sizes: tuple[float, ...], moves: int) -> dict:
    from .models import mlp_session, params_label

    out = {}
    for n in sizes:
        session = mlp_session(n)
        with counting_comms():
            app = make_app(session)
            times, _ = slider_moves(app, moves, warmup=2)
        out[params_label(n)] = 1e3 * statistics.median(times)
        del app, session
    return out


def bench_peer(sizes: tuple[float, ...], moves: int) -> dict:
    """Our slider move vs the peer notebook (explorer/bench/peer.py), p50 of each, on the
    same model and data; the ratio is the worst over ``sizes``."""
    from .models import mlp_session, params_label
    from .peer import PeerNotebook

    ms: dict = {}
    for n in sizes:
        session = mlp_session(n)
        peer = PeerNotebook(session.model, session.data.val.x, session.data.val.y)
        with counting_comms():
            app = make_app(session)
            ours, _ = slider_moves(app, moves, warmup=2)
        theirs = [peer.move(v) for v in (0.5, 0.3)]  # warm-up
        theirs = [peer.move(SLIDER_VALUES[i % len(SLIDER_VALUES)]) for i in range(moves)]
        ms[f"{params_label(n)} ours"] = 1e3 * statistics.median(ours)
        ms[f"{params_label(n)} peer"] = 1e3 * statistics.median(theirs)
        del app, session, peer
    ratios = [ms[f"{params_label(n)} ours"] / ms[f"{params_label(n)} peer"] for n in sizes]
    return {"peer_slider_ms": ms, "peer_slider_ratio": max(ratios)}


# ----- training ----------------------------------------------------------------------
def app_epochs(app, epochs: int) -> float:
    """Seconds of the app's training job (masks on, live updates on): Train click until the
    worker has committed; the pump's final redraw after that is not training."""
    app.c.epochs.value = epochs
    start = time.perf_counter()
    if not app.start_training():
        raise RuntimeError("the app refused to start training")
    app.jobs.runner.join(600)
    elapsed = time.perf_counter() - start
    app.jobs.wait(600)
    if app.jobs.runner.result is None or app.jobs.runner.result.error is not None:
        raise RuntimeError(f"the app's training failed: {app.jobs.runner.result}")
    return elapsed


def bench_train_overhead(session: Session, epochs: int, pairs: int) -> float:
    """Median over pairs of (app job time / bare masked loop time) on the same model."""
    from .models import bare_epochs

    with counting_comms():
        app = make_app(session)
        app.c.slider.value = 0.5  # masks active
        masks = {n: m.clone() for n, m in (session.slot.masks or {}).items()}
        bare_model = copy.deepcopy(session.model)
        lr = app.c.lr.value
        app_epochs(app, 1)  # warm-up both sides
        bare_epochs(bare_model, session.data.train, masks, 1, lr)
        ratios = []
        for _ in range(pairs):
            t_app = app_epochs(app, epochs)
            t_bare = bare_epochs(bare_model, session.data.train, masks, epochs, lr)
            ratios.append(t_app / t_bare)
    return statistics.median(ratios)


# ----- the network panel (issue 28) --------------------------------------------------
def network_moves(app, moves: int) -> tuple[list[float], list[int]]:
    """Kernel seconds and bytes of the network panel's part of each slider move: the rest
    of the move is drawn first (the network left out), then the session is read for the
    masks and the panel updated, timed and counted alone."""
    from unittest import mock

    times, sizes = [], []
    settle(app)
    app.display.network()  # the link set of this base, once
    slider = app.c.slider
    for i in range(moves + 1):
        value = SLIDER_VALUES[i % len(SLIDER_VALUES)]
        with mock.patch.object(app.display, "network", return_value=None):
            slider.value = value
        app.display.settle()
        _Counter.bytes = 0
        start = time.perf_counter()
        network = app.display.network()
        with app.fig.batch_update():
            app.view.show_network(*network, app.c.layer.value)
        if i:  # the first move warms up
            times.append(time.perf_counter() - start)
            sizes.append(_Counter.bytes)
        settle(app)
    return times, sizes


def bench_network(moves: int, tiny: bool, large: float) -> dict:
    """network_update_bytes / network_update_ms: the worse median of the default model and
    an MLP of `large` parameters (two 3,000-wide layers at 1e7: binned to 16 per column)."""
    from ..session.session import Session
    from .models import mlp_session

    medians = []
    for session in (mlp_session(2e4) if tiny else Session.default(device="cpu"),
                    mlp_session(large)):
        with counting_comms():
            times, sizes = network_moves(make_app(session), moves)
        medians.append((1e3 * statistics.median(times), statistics.median(sizes)))
    return {"network_update_ms": max(m[0] for m in medians),
            "network_update_bytes": max(m[1] for m in medians)}
