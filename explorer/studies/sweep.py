"""Sweeps: a grid of settings, each point an independent seeded run from the same base.

Every point starts from the session's current dense base (shipped as a state dict), fixes
its torch thread count and seed, then prunes / fine-tunes / distils as its settings say.
The same job gives the same numbers wherever it runs: in this process, in a process pool
(the default, no extra dependency) or as a Ray task (the optional `ray` extra).
Importing this module does not import torch; run_point does, in the worker.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..config import (
    BATCH_SIZE_MAX,
    EPOCHS_MAX,
    EXECUTORS,
    GRID_POINTS_MAX,
    LR_MAX,
    LR_MIN,
    NORMS,
    OPTIMIZERS,
    SCOPES,
    SEED_MAX,
    STUDENT_WIDTH_MAX,
    STUDENT_WIDTH_MIN,
    TEMPERATURE_MAX,
    TEMPERATURE_MIN,
    THREADS_MAX,
    PruneConfig,
    check_choice,
    check_number,
)
from ..config import DATASETS as BUILTIN_DATASETS
from ..config import MODELS as BUILTIN_MODELS
from ..engine.schedule import SCHEDULES, STEPS_MAX, step_sparsities

if TYPE_CHECKING:
    from ..session.session import Session

RAY_HINT = ("executor='ray' needs Ray, which is not installed: pip install "
            "'compression-explorer[ray]' (or pip install 'ray[default]')")


def _num(low: float, high: float, integer: bool = False) -> Callable[[str, Any], Any]:
    return lambda key, v: check_number(key, v, low, high, integer=integer)


def _choice(choices: tuple[str, ...]) -> Callable[[str, Any], Any]:
    return lambda key, v: check_choice(key, v, choices)


def _flag(key: str, v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f"{key} must be True or False; got {v!r}")
    return v


def _rewind(key: str, v: Any) -> str:
    # A point starts from the baseline's weights alone (run_point): no epoch is recorded
    # there, so "init" is the one rewind point a sweep has (refused now, not after training).
    if v == "init":
        return v
    raise ValueError(f"{key} must be 'init' in a sweep (each point starts from the baseline's "
                     f"weights and records no epochs to rewind to); got {v!r}")


# Every key a point may set, with its check (the values the pipeline accepts).
KEYS: dict[str, Callable[[str, Any], Any]] = {
    "sparsity": _num(0.0, 1.0), "threshold": _num(0.0, math.inf), "std": _num(0.0, math.inf),
    "scope": _choice(SCOPES), "structured": _flag, "norm": _choice(NORMS),
    "schedule": _choice(SCHEDULES), "steps": _num(1, STEPS_MAX, True),
    "finetune_epochs": _num(0, EPOCHS_MAX, True), "rewind": _rewind,
    "lr": _num(LR_MIN, LR_MAX), "optimizer": _choice(OPTIMIZERS),
    "batch_size": _num(1, BATCH_SIZE_MAX, True),
    "student": _num(STUDENT_WIDTH_MIN, STUDENT_WIDTH_MAX),
    "temperature": _num(TEMPERATURE_MIN, TEMPERATURE_MAX), "alpha": _num(0.0, 1.0),
    "t_squared": _flag, "epochs": _num(1, EPOCHS_MAX, True), "student_lr": _num(LR_MIN, LR_MAX),
    "seed": _num(0, SEED_MAX, True),
}
DEFAULTS = {"scope": "layer", "structured": False, "norm": "l1", "schedule": "oneshot",
            "steps": 1, "finetune_epochs": 0, "rewind": None, "lr": 1e-4, "optimizer": "adam",
            "batch_size": 64, "temperature": None, "alpha": 0.7, "t_squared": True,
            "epochs": 5, "student_lr": 1e-3}
MODES = ("sparsity", "threshold", "std")
ITERATIVE_ONLY = ("schedule", "steps", "rewind", "structured")


def check_point(point: Mapping[str, Any]) -> dict[str, Any]:
    """One point's settings, checked (ValueError naming the bad key or value)."""
    out = {}
    for key, value in point.items():
        if key not in KEYS:
            raise ValueError(f"unknown sweep setting {key!r}; known: {', '.join(KEYS)}")
        out[key] = KEYS[key](key, value)
    modes = [m for m in MODES if m in out]
    if len(modes) > 1:
        raise ValueError(f"a point sets more than one pruning mode: {', '.join(modes)}")
    if modes:  # the same rules as Session.prune
        PruneConfig(**{modes[0]: out[modes[0]]}, scope=out.get("scope", "layer"),
                    structured=out.get("structured", False), norm=out.get("norm", "l1"))
    for key in ITERATIVE_ONLY:
        if key in out and "sparsity" not in out:
            raise ValueError(f"{key}={out[key]!r} needs sparsity= in the same point")
    if "sparsity" in out:
        step_sparsities(out["sparsity"], out.get("steps", 1), out.get("schedule", "oneshot"))
    for key in ("temperature", "alpha", "t_squared", "student_lr"):
        if key in out and "student" not in out:
            raise ValueError(f"{key}={out[key]!r} needs student= in the same point")
    return out


def check_grid_size(points: int) -> None:
    """At most GRID_POINTS_MAX points (config.py): counted before any is expanded."""
    if points > GRID_POINTS_MAX:
        raise ValueError(f"the grid has {points:,} points; at most {GRID_POINTS_MAX:,} "
                         "(split it into several sweeps)")


def expand(grid: Mapping[str, Sequence] | Sequence[Mapping[str, Any]]) -> list[dict]:
    """A dict of lists -> its cartesian product; a list of dicts -> those points."""
    if isinstance(grid, Mapping):
        if not grid:
            raise ValueError("grid must name at least one setting; got an empty grid")
        for key, values in grid.items():
            if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) \
                    or not values:
                raise ValueError(f"grid[{key!r}] must be a non-empty list; got {values!r}")
        keys = list(grid)
        check_grid_size(math.prod(len(v) for v in grid.values()))
        points = [dict(zip(keys, combo)) for combo in itertools.product(*grid.values())]
    else:
        points = [dict(p) for p in grid]
        if not points:
            raise ValueError("grid must hold at least one point; got an empty list")
        check_grid_size(len(points))
    return [check_point(p) for p in points]


@dataclass
class SweepTable:
    """Rows of a finished sweep, in grid order; printable, and writable as CSV or JSON."""

    rows: list[dict]
    meta: dict = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        return list(dict.fromkeys(k for r in self.rows for k in r))

    def to_csv(self, path: str | os.PathLike | None = None) -> str:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=self.columns)
        writer.writeheader()
        writer.writerows(self.rows)
        if path is not None:
            with open(path, "w", newline="") as f:
                f.write(buf.getvalue())
        return buf.getvalue()

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        text = json.dumps({"rows": self.rows, "meta": self.meta}, indent=1)
        if path is not None:
            with open(path, "w") as f:
                f.write(text)
        return text

    def __str__(self) -> str:
        def cell(v: Any) -> str:
            return f"{v:.4f}" if isinstance(v, float) else "-" if v is None else str(v)

        cols = self.columns
        cells = [cols, *[[cell(r.get(c)) for c in cols] for r in self.rows]]
        widths = [max(len(row[i]) for row in cells) for i in range(len(cols))]
        lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)


def make_jobs(session: Session, points: list[dict], threads: int) -> list[dict]:
    """Self-contained, picklable jobs: where the data and model come from, the base, a point."""
    with session.lock:
        conf = session.config
        name = session.data.name
        job = {"dataset": name if name in BUILTIN_DATASETS else session.data.to("cpu"),
               "model": conf["model"] if conf["model"] in BUILTIN_MODELS else None,
               "module": None, "width": conf.get("width", 1.0),
               "init": conf.get("init", "default"), "hidden": conf.get("hidden"),
               "data_seed": conf.get("seed", session.seed), "device": str(session.device),
               "threads": threads,
               "state": {k: v.detach().cpu().clone() for k, v in session.base.items()},
               "initial": {k: v.detach().cpu().clone() for k, v in session.initial.items()}}
        if job["model"] is None:
            import copy

            job["module"] = copy.deepcopy(session.model).cpu()
    return [{**job, "point": p, "index": i} for i, p in enumerate(points)]


def run_point(job: dict) -> dict:
    """Run one point from its job (in any process); returns the point plus its metrics."""
    import torch

    from ..engine.train import evaluate
    from ..session.session import Session

    threads_before = torch.get_num_threads()
    torch.set_num_threads(job["threads"])
    try:
        start = time.perf_counter()
        hidden = tuple(job["hidden"]) if job["hidden"] else None
        s = Session(job["dataset"], job["model"] or job["module"], width=job["width"],
                    init=job["init"], seed=job["data_seed"], pretrained=False, hidden=hidden,
                    device=job["device"])
        with s.lock:
            s.initial = {k: v.to(s.device) for k, v in job["initial"].items()}
            s.slot.set_base({k: v.to(s.device) for k, v in job["state"].items()})
            s.adopt_as_original()
        p = {**DEFAULTS, **job["point"]}
        s.seed = p.get("seed", s.seed)  # batch order and student init; not the data split
        torch.manual_seed(s.seed)
        row: dict = dict(job["point"])
        if "student" in p:
            s.distill(p["student"], temperature=p["temperature"], alpha=p["alpha"],
                      epochs=p["epochs"], lr=p["student_lr"], t_squared=p["t_squared"],
                      batch_size=p["batch_size"], optimizer=p["optimizer"], seed=s.seed + 1)
            s.select("student")
            row["student_test_accuracy"] = evaluate(s.model, s.data.test, s.task)[1]
            s.select("teacher")
        _prune(s, p)
        snap = s.snapshot("test")
        row.update(test_accuracy=snap.accuracy, test_loss=snap.loss,
                   val_accuracy=s.snapshot("val").accuracy, actual_sparsity=snap.sparsity,
                   nonzero=snap.nonzero, params=snap.params,
                   seconds=round(time.perf_counter() - start, 3))
        return row
    finally:
        torch.set_num_threads(threads_before)


def _prune(s: Session, p: dict) -> None:
    train = {"lr": p["lr"], "optimizer": p["optimizer"], "batch_size": p["batch_size"]}
    if "sparsity" in p:
        s.prune_iteratively(p["sparsity"], steps=p["steps"], schedule=p["schedule"],
                            finetune_epochs=p["finetune_epochs"], rewind=p["rewind"],
                            scope=p["scope"], structured=p["structured"], norm=p["norm"],
                            **train)
        return
    mode = next((m for m in ("threshold", "std") if m in p), None)
    if mode is not None:
        s.prune(**{mode: p[mode]}, scope=p["scope"])
        if p["finetune_epochs"]:
            s.train(epochs=p["finetune_epochs"], **train)


def default_workers(n_points: int, threads: int) -> int:
    return max(1, min(n_points, (os.cpu_count() or 1) // max(threads, 1)))


def run_local(jobs: list[dict], workers: int, stop: threading.Event | None,
              on_row: Callable[[dict], None] | None) -> list[dict | None]:
    """workers <= 1: one after the other in this process; else a spawned process pool."""
    results: list[dict | None] = [None] * len(jobs)
    if workers <= 1:
        for job in jobs:
            if stop is not None and stop.is_set():
                break
            results[job["index"]] = row = run_point(job)
            if on_row is not None:
                on_row(row)
        return results
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    # spawn, not fork: forking a process whose torch thread pools already ran can hang.
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        pending = {pool.submit(run_point, job): job["index"] for job in jobs}
        while pending:
            done, _ = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for future in done:
                results[pending.pop(future)] = row = future.result()
                if on_row is not None:
                    on_row(row)
            if stop is not None and stop.is_set():
                for future in pending:
                    future.cancel()
                break
    return results


def run_ray(jobs: list[dict], address: str | None, workers: int,
            stop: threading.Event | None,
            on_row: Callable[[dict], None] | None) -> list[dict | None]:
    """Each point a Ray task: on a local instance (127.0.0.1, no dashboard) or `address`."""
    try:
        import ray
    except ImportError:
        raise ImportError(RAY_HINT) from None
    started = not ray.is_initialized()
    if started:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:  # nothing of ours may listen beyond loopback
            # a loaded 2-core machine can take longer than Ray's default to start a raylet
            os.environ.setdefault("RAY_raylet_start_wait_time_s", "120")
            ray.init(_node_ip_address="127.0.0.1", include_dashboard=False, num_cpus=workers,
                     log_to_driver=False)
    try:
        gpus = 1 if jobs and jobs[0]["device"].startswith("cuda") else 0
        task = ray.remote(run_point).options(num_cpus=jobs[0]["threads"] if jobs else 1,
                                             num_gpus=gpus)
        refs = {task.remote(job): job["index"] for job in jobs}
        results: list[dict | None] = [None] * len(jobs)
        while refs:
            done, _ = ray.wait(list(refs), num_returns=1, timeout=0.5)
            for ref in done:
                results[refs.pop(ref)] = row = ray.get(ref)
                if on_row is not None:
                    on_row(row)
            if stop is not None and stop.is_set():
                for ref in refs:
                    ray.cancel(ref, force=True)
                break
        return results
    finally:
        if started:
            ray.shutdown()


def sweep(session: Session, grid, executor: str = "local", address: str | None = None,
          workers: int | None = None, threads: int = 1, stop: threading.Event | None = None,
          on_row: Callable[[dict], None] | None = None) -> SweepTable:
    """Run every point of `grid` from the session's current dense base (the session is not
    changed). Rows come back in grid order; a stopped sweep keeps the rows finished."""
    check_choice("executor", executor, EXECUTORS)
    threads = int(check_number("threads", threads, 1, THREADS_MAX, integer=True))
    points = expand(grid)
    if workers is not None:
        workers = int(check_number("workers", workers, 0, 1024, integer=True))
    if address is not None and executor != "ray":
        raise ValueError(f"address={address!r} needs executor='ray'")
    n = default_workers(len(points), threads) if workers is None else max(workers, 1)
    jobs = make_jobs(session, points, threads)
    start = time.perf_counter()
    if executor == "ray":
        rows = run_ray(jobs, address, n, stop, on_row)
    else:
        with session.trial():  # in-process points reseed the global random generators
            rows = run_local(jobs, workers if workers is not None else n, stop, on_row)
    meta = {"executor": executor, "workers": n, "threads": threads, "points": len(points),
            "seconds": round(time.perf_counter() - start, 3), "model": session.config}
    return SweepTable([r for r in rows if r is not None], meta)

