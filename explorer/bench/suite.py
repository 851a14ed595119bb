"""The benchmark suite behind ``explorer bench``: each figure beside its floor, same run.

Ratios are measured pair by pair (app, then floor, back to back) and reported as the
median of the per-pair ratios, so a noisy neighbour slows both sides of a pair alike.
The UI is imported lazily (this module sits in the core); widgets get a fake comm that
serialises every message as a kernel would (JSON plus binary buffers) and sends nowhere.
torch and the models are imported inside the functions too, so that explorer.cli.main can
register the subcommand without importing torch.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..files import write_text
from .byo import BYO_KEYS, BYO_TARGETS, byo_figures

SLIDER_VALUES = (0.1, 0.5, 0.3, 0.9, 0.7, 0.2, 0.8, 0.4, 0.6, 0.95)
SIZES_FULL = (1e5, 1e6, 1e7, 2.5e7)
# issue 29: a page's own cost in Chromium, beside a one-widget and a one-FigureWidget page
PAGE_KEYS = ("fresh_pages_drawn", "page_script_s", "page_task_s", "page_js_bytes",
             "page_widget_models", "page_ready_s", "trivial_script_s", "trivial_task_s",
             "trivial_js_bytes", "trivial_widget_models", "onefig_ready_preheat_s",
             "onefig_script_s", "onefig_task_s", "onefig_js_bytes", "onefig_widget_models")
BROWSER_KEYS = ("browser_roundtrip_p50_ms", "dashboard_ready_s", "dashboard_ready_preheat_s",
                "trivial_ready_preheat_s", "dashboard_ready_preheat_ratio", "kernel_rss_mib",
                *PAGE_KEYS)
KEYS = ("slider_p50_ms", "slider_p95_ms", "slider_floor_ratio", "train_overhead_ratio",
        "train_overhead_ratio_lenet300", "update_bytes_small", "update_bytes_large",
        "slider_ms_by_params", "structured_speedup_b256", "structured_speedup_b1",
        "masked_speedup_b256", "browser_roundtrip_p50_ms", "dashboard_ready_s",
        "dashboard_ready_preheat_s", "trivial_ready_preheat_s", "dashboard_ready_preheat_ratio",
        "gpu_epoch_speedup", "peer_slider_ratio",
        "peer_slider_ms", "kernel_rss_mib", "visitors_ready_s_p95", "visitors_slider_p95_ms",
        "distill_temperature_p50_ms", "distill_temperature_bytes", *BYO_KEYS, *PAGE_KEYS)
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


def make_app(session):
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
        app.session.distill(epochs=1)
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


def bench_train_overhead(session, epochs: int, pairs: int) -> float:
    """Median over pairs of (app job time / bare masked loop time) on the same model."""
    from .models import bare_epochs

    with counting_comms():
        app = make_app(session)
        app.c.slider.value = 0.5  # masks active
        masks = {n: m.clone() for n, m in session.masks.items()}
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


def _step(results: dict, notes: dict, key: str, fn: Callable[[], object]) -> None:
    """Run one measurement; a failure becomes null plus a note, never a lost suite."""
    start = time.perf_counter()
    try:
        value = fn()
    except Exception as err:  # report and go on: one broken figure must not hide the rest
        value = None
        notes[key] = f"failed: {type(err).__name__}: {err}"
    if isinstance(value, dict) and key.startswith("_"):
        results.update(value)
    else:
        results[key] = value
    print(f"  [{time.perf_counter() - start:6.1f} s] {key.lstrip('_')}", flush=True)


def run_bench(quick: bool = False, json_path: str | Path | None = None,
              gpu_check: bool = False, tiny: bool = False, browser: bool | None = None) -> dict:
    """Measure every figure of issue 7; print a table; write JSON when `json_path` is set.

    `tiny` shrinks every model and repeat count (for the test that keeps the suite alive);
    `browser` defaults to on unless quick or tiny. The soak is `soak_command`.
    """
    import torch

    from .models import mlp_session, structured_figures

    if gpu_check:
        from .gpu import gpu_check as run_check

        return {"gpu_check_exit": run_check()}
    browser = (not quick and not tiny) if browser is None else browser
    large = 2e5 if tiny else 1e7
    moves, pairs = (5, 3) if tiny else (15, 5) if quick else (40, 9)
    results: dict = dict.fromkeys(KEYS)
    notes: dict = {}
    print(f"explorer bench ({'tiny' if tiny else 'quick' if quick else 'full'}; "
          f"torch threads {torch.get_num_threads()}; load {_load()})", flush=True)
    _step(results, notes, "_slider_default", lambda: bench_slider_default(moves, tiny))
    _step(results, notes, "_distill_temperature", lambda: bench_temperature(moves))
    big: dict = {}
    _step(results, notes, "slider_floor_ratio",
          lambda: big.update(bench_slider_large(large, pairs)) or big["ratio"])
    results["update_bytes_large"] = big.get("bytes")
    results["large_model_params"] = big.get("params")
    sizes = (2e4, 1e5) if tiny else SIZES_FULL[:3] if quick else SIZES_FULL
    _step(results, notes, "slider_ms_by_params",
          lambda: bench_slider_by_params(sizes, 3 if tiny else 5))
    results["slider_ms_by_params"] = results["slider_ms_by_params"] or None
    _step(results, notes, "_peer", lambda: bench_peer((2e4,) if tiny else PEER_SIZES,
                                                      3 if tiny else 5 if quick else 9))
    epochs = 1 if tiny else 5
    _step(results, notes, "train_overhead_ratio", lambda: bench_train_overhead(
        mlp_session(2e4) if tiny else _default_session(), epochs, pairs))
    _step(results, notes, "train_overhead_ratio_lenet300", lambda: bench_train_overhead(
        _session("digits" if tiny else "mnist-5k", "lenet300"), 1 if tiny else 3, pairs))
    _step(results, notes, "_structured", lambda: structured_figures(tiny, quick))
    _step(results, notes, "_byo", lambda: byo_figures(tiny, quick))  # issue 18 (bench/byo)
    from .gpu import bench_gpu_epoch  # imports torch: not at the CLI's start

    _step(results, notes, "gpu_epoch_speedup", lambda: bench_gpu_epoch(tiny))
    if browser:
        from .browser import browser_figures

        _step(results, notes, "_browser", lambda: browser_figures(quick, notes))
    else:
        notes["browser"] = "skipped (--quick or tiny run)"
    results["meta"] = {"quick": quick, "tiny": tiny, "torch_threads": torch.get_num_threads(),
                       "cpu_count": os.cpu_count(), "load_average": _load(),
                       "torch": torch.__version__, "notes": notes,
                       "when": time.strftime("%Y-%m-%d %H:%M:%S")}
    print(format_table(results))
    if json_path is not None:
        write_text(json_path, json.dumps(results, indent=2, default=float) + "\n")
        print(f"wrote {json_path}")
    return results


def unmeasured(results: dict) -> list[str]:
    """Figures this run should have measured and did not (null): the exit status says so.
    Browser figures count only when the browser ran; figures a machine cannot give (a
    GPU's, the room's) are never required."""
    meta = results.get("meta", {})
    notes = meta.get("notes", {})
    optional = {"gpu_epoch_speedup", "visitors_ready_s_p95", "visitors_slider_p95_ms",
                "peer_slider_ms", "slider_ms_by_params"}
    if "browser" in notes:  # skipped on purpose (quick or tiny)
        optional |= set(BROWSER_KEYS)
    return [k for k in KEYS if results.get(k) is None and k not in optional
            and not (meta.get("tiny") and k.startswith("byo_"))]


def _default_session():
    from ..session.session import Session

    return Session.default(device="cpu")


def _session(dataset: str, model: str):
    from ..session.session import Session

    return Session(dataset, model, device="cpu", pretrained=False)


def _load() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


TARGETS = {"slider_p50_ms": "<= 10", "slider_floor_ratio": "<= 1.3",
           "train_overhead_ratio": "<= 1.10", "train_overhead_ratio_lenet300": "<= 1.10",
           "update_bytes_small": "<= 20000", "update_bytes_large": "<= 20000, <= 1.2x small",
           "structured_speedup_b256": ">= 1.6", "browser_roundtrip_p50_ms": "<= 150",
           "dashboard_ready_s": "<= 10", "dashboard_ready_preheat_s": "<= 5",
           "dashboard_ready_preheat_ratio": "<= 1.3 (ours / trivial notebook)",
           "peer_slider_ratio": "<= 0.2", "peer_slider_ms": "ours vs peer, ms",
           "kernel_rss_mib": "<= 350", "visitors_ready_s_p95": "<= 20 (8 visitors)",
           "visitors_slider_p95_ms": "<= 1500",
           "distill_temperature_p50_ms": "soft targets + dark knowledge, ms", **BYO_TARGETS,
           "fresh_pages_drawn": "all (k of n)", "page_script_s": "<= 1.2 (CDP ScriptDuration)",
           "page_js_bytes": "<= 5e6"}


def _note_for(key: str, notes: dict) -> str:
    """The note that says why `key` is null: its own, or its group's (``_browser``...)."""
    if key in notes:
        return str(notes[key])
    if key in BROWSER_KEYS and "_browser" in notes:
        return str(notes["_browser"])
    failed = [k.lstrip("_") for k, v in notes.items()
              if k.startswith("_") and str(v).startswith("failed")]
    return f"see meta.notes: {', '.join(failed)} failed" if failed else ""


def format_table(results: dict) -> str:
    notes = results.get("meta", {}).get("notes", {})
    lines = [f"{'figure':34} {'value':>14}  target", "-" * 62]
    for key in KEYS:
        value = results.get(key)
        if isinstance(value, dict):
            lines.append(f"{key:34} {'':>14}  {TARGETS.get(key, 'linear in params')}")
            lines.extend(f"  {k:32} {v:14.2f}" for k, v in value.items())
            continue
        if value is None:  # a failed figure says why, here and not only in the JSON
            why = _note_for(key, notes)
            lines.append(f"{key:34} {'null':>14}  {TARGETS.get(key, '')}"
                         + (f"  [{why[:160]}]" if why else ""))
            continue
        text = value if isinstance(value, str) else \
            f"{value:14.3f}" if value < 100 else f"{value:14.0f}"
        lines.append(f"{key:34} {text:>14}  {TARGETS.get(key, '')}")
    return "\n".join(lines)


# ----- command line ------------------------------------------------------------------
def add_bench_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("bench", help="measure slider latency, training overhead, ...",
                              description="Run the benchmark suite; print a table.")
    p.add_argument("--quick", action="store_true",
                   help="under 3 minutes: skips the 25M model and the browser figures")
    p.add_argument("--json", metavar="PATH", default=None, help="also write the figures here")
    p.add_argument("--gpu-check", action="store_true",
                   help="run the whole core on CUDA (train, prune, fine-tune, distil, export)"
                        "; exit 1 with 'no CUDA device' when there is none")
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op threads (default: torch's own choice)")
    p.add_argument("--visitors", type=int, default=None, metavar="N",
                   help="room check instead: N Chromium pages open a --preheat N dashboard at "
                        "once, then each sets its slider every 2 s for 60 s (loopback only)")
    p.add_argument("--preheat", type=int, default=None, metavar="N",
                   help="with --visitors: kernels kept warm (default: as many as visitors)")
    p.add_argument("--soak", action="store_true",
                   help="long-use check instead: 10,000 slider moves and 50 train/stop cycles "
                        "(with --quick: 300 and 25); resident-memory growth and history lengths")
    return p


def bench_command(args: argparse.Namespace) -> int:
    import torch

    if args.threads is not None:
        if args.threads < 1:
            raise SystemExit(f"--threads must be >= 1; got {args.threads}")
        torch.set_num_threads(args.threads)
    if args.soak:
        return soak_command(args.quick, args.json)
    if args.visitors is not None:
        return visitors_command(args.visitors, args.quick, args.json, args.preheat)
    results = run_bench(quick=args.quick, json_path=args.json, gpu_check=args.gpu_check)
    if args.gpu_check:
        return int(results["gpu_check_exit"])
    missed = unmeasured(results)
    if missed:
        print(f"explorer bench: not measured: {', '.join(missed)}", flush=True)
        return 1
    return 0


def visitors_command(n: int, quick: bool, json_path: str | None,
                     preheat: int | None = None) -> int:
    """`explorer bench --visitors N`: a room of N pages (30 s of sliding with --quick)."""
    from .visitors import run_visitors

    if n < 1:
        raise SystemExit(f"--visitors must be >= 1; got {n}")
    print(f"explorer bench --visitors {n} (load {_load()})", flush=True)
    result = run_visitors(n, duration_s=30.0 if quick else 60.0, preheat=preheat)
    result["meta"] = {"cpu_count": os.cpu_count(), "load_average": _load(),
                      "when": time.strftime("%Y-%m-%d %H:%M:%S")}
    print(json.dumps(result, indent=2))
    if json_path is not None:
        write_text(json_path, json.dumps(result, indent=2) + "\n")
    return 0


def soak_command(quick: bool, json_path: str | None) -> int:
    """`explorer bench --soak`: memory growth and bounded histories under long use."""
    from .soak import run_soak

    result = run_soak(quick=quick)
    print(json.dumps(result, indent=2))
    if json_path is not None:
        write_text(json_path, json.dumps(result, indent=2) + "\n")
    return 0 if result["rss_ok"] and all(result["bounded"].values()) else 1


def main_bench(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="explorer bench")
    sub = parser.add_subparsers(dest="command")
    add_bench_parser(sub)
    return bench_command(parser.parse_args(["bench", *(argv or [])]))
