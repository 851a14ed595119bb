"""Sweeps: a grid of settings, each point an independent seeded run from the same base.

Every point starts from the session's current dense base (shipped as a state dict), fixes
its torch thread count and seed, then prunes / fine-tunes / distils as its settings say.
The same job gives the same numbers wherever it runs: in this process, in a process pool
(the default, no extra dependency) or as a Ray task (the optional `ray` extra); fanning the
jobs out is executors.fan_out's work.
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
from ..files import write_text
from .executors import Progress, bar, check_resources, default_workers, fan_out

if TYPE_CHECKING:
    from ..session.session import Session

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
            write_text(path, buf.getvalue(), newline="")  # csv wrote its own line ends
        return buf.getvalue()

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        text = json.dumps({"rows": self.rows, "meta": self.meta}, indent=1)
        if path is not None:
            write_text(path, text)
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
        conf = session.slot.config
        name = session.data.name
        job = {"dataset": name if name in BUILTIN_DATASETS else session.data.to("cpu"),
               "model": conf["model"] if conf["model"] in BUILTIN_MODELS else None,
               "module": None, "width": conf.get("width", 1.0),
               "init": conf.get("init", "default"), "hidden": conf.get("hidden"),
               "data_seed": conf.get("seed", session.seed), "device": str(session.device),
               "threads": threads,
               "state": {k: v.detach().cpu().clone() for k, v in session.slot.base.items()},
               "initial": {k: v.detach().cpu().clone() for k, v in session.slot.initial.items()}}
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
        device = job["device"]
        if device == "auto":  # a GPU point: CUDA where this worker has it (Ray sets which)
            device = "cuda" if torch.cuda.is_available() else "cpu"
        s = Session(job["dataset"], job["model"] or job["module"], width=job["width"],
                    init=job["init"], seed=job["data_seed"], pretrained=False, hidden=hidden,
                    device=device)
        with s.lock:
            s.slot.initial = {k: v.to(s.device) for k, v in job["initial"].items()}
            s.slot.set_base({k: v.to(s.device) for k, v in job["state"].items()})
            s.pruning.adopt_as_original()
        p = {**DEFAULTS, **job["point"]}
        s.seed = p.get("seed", s.seed)  # batch order and student init; not the data split
        torch.manual_seed(s.seed)
        row: dict = dict(job["point"])
        if "student" in p:
            s.students.distill(p["student"], temperature=p["temperature"], alpha=p["alpha"],
                      epochs=p["epochs"], lr=p["student_lr"], t_squared=p["t_squared"],
                      batch_size=p["batch_size"], optimizer=p["optimizer"], seed=s.seed + 1)
            s.select("student")
            row["student_test_accuracy"] = evaluate(s.model, s.data.test, s.data.task)[1]
            s.select("teacher")
        _prune(s, p)
        snap = s.snapshot("test")
        row.update(test_accuracy=snap.accuracy, test_loss=snap.loss,
                   val_accuracy=s.snapshot("val").accuracy, actual_sparsity=snap.sparsity,
                   nonzero=snap.nonzero, params=snap.params,
                   seconds=round(time.perf_counter() - start, 3))
        if job["device"] == "auto":
            row["device"] = device
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


def sweep(session: Session, grid, executor: str = "local", address: str | None = None,
          workers: int | None = None, threads: int = 1, stop: threading.Event | None = None,
          on_row: Callable[[dict], None] | None = None,
          on_progress: Callable[[Progress], None] | None = None,
          cpus_per_point: float | None = None, gpus_per_point: float | None = None,
          warn: Callable[[str], None] | None = None) -> SweepTable:
    """Run every point of `grid` from the session's current dense base (the session is not
    changed). Rows come back in grid order; a stopped sweep keeps the rows finished
    (``meta["stopped"]``). ``on_row(row)`` and ``on_progress(Progress)`` are called after
    each point (``format_progress`` makes a progress line of it).

    Executors and their options are ``fan_out``'s. Under Ray each point holds
    ``cpus_per_point`` CPUs (default: ``threads``) and ``gpus_per_point`` GPUs (default: 1
    when the session is on CUDA, else 0); with GPUs, each point runs on CUDA when its
    worker has it (else on CPU) and its row gains ``device`` and ``gpu_ids`` (the ids Ray
    assigned)."""
    check_choice("executor", executor, EXECUTORS)
    threads = int(check_number("threads", threads, 1, THREADS_MAX, integer=True))
    if executor != "ray":
        for name, value in (("address", address), ("cpus_per_point", cpus_per_point),
                            ("gpus_per_point", gpus_per_point)):
            if value is not None:
                raise ValueError(f"{name}={value!r} needs executor='ray'")
    points = expand(grid)
    on_cuda = str(session.device).startswith("cuda")
    cpus = threads if cpus_per_point is None else cpus_per_point
    gpus = (1 if on_cuda else 0) if gpus_per_point is None else gpus_per_point
    cpus, gpus = check_resources(cpus, gpus)
    jobs = make_jobs(session, points, threads)
    if gpus_per_point:  # the worker decides: CUDA where Ray gave it a GPU it can use
        jobs = [{**job, "device": "auto"} for job in jobs]

    def progress(p: Progress) -> None:
        if gpus_per_point and p.result is not None:
            p.result["gpu_ids"] = ",".join((p.placement or {}).get("gpu_ids", []))
        if on_row is not None:
            on_row(p.result)
        if on_progress is not None:
            on_progress(p)

    start = time.perf_counter()
    with session.trial():  # in-process points reseed the global random generators
        rows = fan_out(run_point, jobs, executor=executor, workers=workers, address=address,
                       cpus_per_job=cpus, gpus_per_job=gpus, stop=stop,
                       on_progress=progress, warn=warn)
    done = [r for r in rows if r is not None]
    meta = {"executor": executor, "workers": _workers_used(executor, workers, len(jobs), cpus),
            "threads": threads, "points": len(points), "done": len(done),
            "stopped": len(done) < len(points),
            "seconds": round(time.perf_counter() - start, 3), "model": session.slot.config}
    if executor == "ray":
        meta.update(address=address, cpus_per_point=cpus, gpus_per_point=gpus)
    return SweepTable(done, meta)


def _workers_used(executor: str, workers: int | None, n: int, cpus: float) -> int:
    if workers is None:
        return default_workers(n, cpus)
    return max(workers, 1) if executor == "ray" else workers


def format_progress(p: Progress, width: int = 20) -> str:
    """'[#####---------------] 2/8  sparsity=0.5 finetune_epochs=1: test 0.9611 (1.2 s)'."""
    row = p.result or {}
    point = " ".join(f"{k}={v}" for k, v in row.items() if k in KEYS)
    acc = row.get("test_accuracy")
    result = f"test {acc:.4f}" if isinstance(acc, float) else "done"
    if row.get("gpu_ids"):
        result += f" on GPU {row['gpu_ids']}"
    return f"{bar(p.done, p.total, width)}  {point}: {result} ({p.elapsed:.1f} s)"
