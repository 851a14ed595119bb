"""The soak benchmark: an afternoon of use in a minute or two, then what grew.

`run_soak()` drives the default app headless: `moves` slider moves (with a mode, scope
or structured toggle every so often) and `cycles` train/stop cycles, and reports the
resident memory growth and the length of everything the app and the session keep, at
the half-way point and at the end, next to the cap each one is held to. It is
a benchmark (``explorer bench --soak``), not a test; tests/test_soak.py runs a short
version that checks only the bounds.

The app (ipywidgets) is imported inside run_soak, so importing this module keeps the
core free of UI libraries.
"""

from __future__ import annotations

import gc
import random
import resource
import time
from pathlib import Path

TARGET_RSS_GROWTH_MB = 50.0


def rss_mb() -> float:
    """Resident set size now, from /proc (Linux), else the peak from getrusage."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def limits() -> dict[str, int]:
    """The most each structure may hold (the caps that keep a long session bounded)."""
    from ..config import HIST_BINS, HISTORY_MAX, UNDO_MAX
    from ..session.slots import REWIND_EPOCHS_KEPT
    from ..ui.jobs import MAX_STEP_POINTS
    from ..ui.plots import MAX_POINTS

    return {"session.history": HISTORY_MAX, "undo_stack": UNDO_MAX,
            "rewind_states": REWIND_EPOCHS_KEPT, "app.jobs.steps": MAX_STEP_POINTS,
            "app.jobs.step_losses": MAX_STEP_POINTS,
            "figure points (largest trace)": max(MAX_POINTS, HIST_BINS + 1),
            "teacher cache splits": 3}


def kept_lengths(app) -> dict[str, int]:
    """How many items each growing structure holds now."""
    session = app.session
    curves = max((len(t.x) for t in app.fig.data if t.x is not None), default=0)
    return {"session.history": len(session.history), "undo_stack": len(session.slot.undo_stack),
            "rewind_states": len(session.slot.rewind_states), "app.jobs.steps": len(app.jobs.steps),
            "app.jobs.step_losses": len(app.jobs.step_losses),
            "figure points (largest trace)": curves,
            "teacher cache splits": len(session.students.teacher_cache._outputs)}


def _move(app, rng: random.Random, i: int) -> None:
    """One slider move; every 50th move toggles a setting instead (all valid ones)."""
    from ..ui.controls import SLIDER_RANGES

    c = app.c
    if i % 50 == 49:
        which = rng.choice(["mode", "scope", "structured"])
        if which == "mode":
            c.structured.value, c.scope.value = False, "layer"
            c.mode.value = rng.choice(["sparsity", "threshold", "std"])
        elif which == "scope" and c.mode.value != "std" and not c.structured.value:
            c.scope.value = "global" if c.scope.value == "layer" else "layer"
        elif c.mode.value == "sparsity" and c.scope.value == "layer":
            c.structured.value = not c.structured.value
        return
    lo, hi, step, _ = SLIDER_RANGES[c.mode.value]
    c.slider.value = round(rng.uniform(lo, hi) / step) * step


def _cycle(app, timeout: float = 60.0) -> None:
    """Start training, let it take a step or two, stop it, wait for the app to settle."""
    if not app.start_training():
        raise RuntimeError(f"training did not start: {app.c.status.value}")
    deadline = time.monotonic() + timeout
    runner = app.jobs.runner
    while runner.latest is None and runner.running and time.monotonic() < deadline:
        time.sleep(0.005)
    app.jobs.stop()
    if not app.jobs.wait(timeout):
        raise RuntimeError("a train/stop cycle did not finish")


def run_soak(moves: int = 10_000, cycles: int = 50, quick: bool = False,
             seed: int = 0) -> dict:
    """Soak the default app; returns RSS growth (MB), lengths, timings and the verdicts.

    quick=True shrinks the run (300 moves, 25 cycles: still past the undo limit).
    """
    import torch

    from ..ui import ExplorerApp

    if quick:
        moves, cycles = min(moves, 300), min(cycles, 25)
    torch.manual_seed(seed)
    rng = random.Random(seed)
    app = ExplorerApp.default()
    app.c.epochs.value = 1
    _move(app, rng, 0)  # warm up: first prune, first job, lazy allocations
    _cycle(app)
    gc.collect()
    start_rss, started = rss_mb(), time.perf_counter()
    halves: list[dict[str, int]] = []
    errors = 0
    for _half in range(2):
        for i in range(moves // 2):
            _move(app, rng, i)
            errors += "error:" in app.c.status.value
        for _ in range(cycles // 2):
            _cycle(app)
        gc.collect()
        halves.append(kept_lengths(app))
    growth = rss_mb() - start_rss
    caps = limits()
    bounded = {k: halves[1][k] <= caps[k] for k in halves[0]}
    return {"moves": moves, "cycles": cycles, "seconds": round(time.perf_counter() - started, 1),
            "rss_start_mb": round(start_rss, 1), "rss_growth_mb": round(growth, 1),
            "rss_target_mb": TARGET_RSS_GROWTH_MB,
            "rss_ok": growth < TARGET_RSS_GROWTH_MB, "lengths_half_way": halves[0],
            "lengths_end": halves[1], "limits": caps, "bounded": bounded, "status_errors": errors,
            "jobs": app.jobs.runner.started_count}


if __name__ == "__main__":  # python -m explorer.bench.soak [--quick]
    import json
    import sys

    print(json.dumps(run_soak(quick="--quick" in sys.argv), indent=2))
