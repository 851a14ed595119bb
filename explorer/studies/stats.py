"""Several seeds, one number each: means, 95% t-intervals and paired differences.

One accuracy on 1,000 test images has a standard error near 0.8 points, so a claim that
compares two settings rests on several seeds: the mean of the per-seed paired differences
and its 95% t-interval (mean +- t_{0.975, n-1} * sd / sqrt(n)). A comparison "holds" in a
direction when its interval excludes zero on that side; an interval that contains zero
means no difference we can detect with these seeds, not that there is none.

Seeds fan out over a local process pool (spawned processes, one job per seed), as the
sweep executor does; each job fixes its own torch thread count, so the numbers are those
of a run in this process.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from ..validate import check_seed_range

CONFIDENCE = 0.95


def t_quantile(df: int, confidence: float = CONFIDENCE) -> float:
    """Two-sided Student t critical value (scipy's t.ppf)."""
    from scipy.stats import t

    return float(t.ppf(0.5 + confidence / 2, df))


def summarize(values: Sequence[float], confidence: float = CONFIDENCE) -> dict:
    """{"values", "n", "mean", "sd", "ci95_low", "ci95_high"}; no interval for n < 2."""
    vals = [float(v) for v in values]
    n = len(vals)
    if n == 0:
        raise ValueError("summarize needs at least one value")
    mean = sum(vals) / n
    if n < 2:
        return {"values": vals, "n": n, "mean": mean, "sd": None, "ci95_low": None,
                "ci95_high": None}
    sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / (n - 1))
    half = t_quantile(n - 1, confidence) * sd / math.sqrt(n)
    return {"values": vals, "n": n, "mean": mean, "sd": sd, "ci95_low": mean - half,
            "ci95_high": mean + half}


def verdict(low: float | None, high: float | None) -> str:
    """"higher" / "lower" when the interval excludes zero, "no detectable difference"
    when it contains it, "one seed: no interval" without one."""
    if low is None or high is None:
        return "one seed: no interval"
    if low > 0:
        return "higher"
    if high < 0:
        return "lower"
    return "no detectable difference"


def paired(a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE) -> dict:
    """Per-seed differences a - b, their mean ("mean_diff") and its t-interval."""
    if len(a) != len(b):
        raise ValueError(f"paired values need one of each per seed; got {len(a)} and "
                         f"{len(b)}")
    s = summarize([x - y for x, y in zip(a, b)], confidence)
    return {"values": s["values"], "n": s["n"], "mean_diff": s["mean"], "sd": s["sd"],
            "ci95_low": s["ci95_low"], "ci95_high": s["ci95_high"],
            "verdict": verdict(s["ci95_low"], s["ci95_high"])}


def claim(text: str, comparison: dict, want: str | tuple[str, ...]) -> dict:
    """A paper's claim checked against a paired comparison: holds when the comparison's
    verdict is `want` ("higher", "lower", or "no detectable difference"; a tuple accepts
    any of several, e.g. "match or beat" = ("higher", "no detectable difference"))."""
    v = comparison["verdict"]
    wants = (want,) if isinstance(want, str) else tuple(want)
    return {"claim": text, "want": list(wants), "verdict": v,
            "holds": None if v.startswith("one seed") else v in wants,
            "mean_diff": comparison["mean_diff"], "ci95_low": comparison["ci95_low"],
            "ci95_high": comparison["ci95_high"]}


def fmt(summary: dict, scale: float = 100.0, digits: int = 1, key: str = "mean") -> str:
    """"93.4 [92.9, 93.9]" (mean and 95% interval), or the mean alone for one seed."""
    mean = summary[key] * scale
    if summary["ci95_low"] is None:
        return f"{mean:.{digits}f}"
    return (f"{mean:.{digits}f} [{summary['ci95_low'] * scale:.{digits}f}, "
            f"{summary['ci95_high'] * scale:.{digits}f}]")


def seed_list(seed: int, seeds: int) -> list[int]:
    """`seeds` consecutive seeds starting at `seed`."""
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds must be a whole number >= 1; got {seeds!r}")
    first, count = check_seed_range(seed, seeds)  # the last seed must be a seed too
    return [first + i for i in range(count)]


def default_workers(n_jobs: int, threads: int) -> int:
    """As many parallel jobs as the cores allow at `threads` torch threads each."""
    return max(1, min(n_jobs, (os.cpu_count() or 1) // max(threads, 1)))


def stderr_log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def map_seeds(fn: Callable[..., dict], seeds: Sequence[int], workers: int | None = None,
              threads: int = 1, **kwargs: Any) -> list[dict]:
    """[fn(seed=s, threads=threads, **kwargs) for s in seeds], in seed order.

    workers <= 1 (or one seed) runs in this process; otherwise a spawned process pool, so
    `fn` and `kwargs` must pickle (module-level functions, plain values).
    """
    seeds = list(seeds)
    n = default_workers(len(seeds), threads) if workers is None else max(int(workers), 1)
    if n <= 1 or len(seeds) == 1:
        return [fn(seed=s, threads=threads, **kwargs) for s in seeds]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    before = set(multiprocessing.active_children())
    # spawn, not fork: forking a process whose torch thread pools already ran can hang.
    # Workers ignore Ctrl-C (no traceback from each); we end them when it reaches us.
    with ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_ignore_ctrl_c) as pool:
        futures = [pool.submit(fn, seed=s, threads=threads, **kwargs) for s in seeds]
        try:
            return [f.result() for f in futures]
        except KeyboardInterrupt:
            for future in futures:
                future.cancel()
            for worker in set(multiprocessing.active_children()) - before:
                worker.terminate()  # the seeds still running would hold the exit for minutes
            raise


def _ignore_ctrl_c() -> None:
    """A seed worker's start: Ctrl-C is for the parent, which ends the workers."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


SWEEP_NUMBERS = ("test_accuracy", "val_accuracy", "test_loss", "student_test_accuracy",
                 "actual_sparsity")


def seed_groups(rows: list[dict], keys: Sequence[str]) -> list[dict]:
    """Sweep rows that differ only in their seed, grouped: the point's settings, the
    seeds, and per number (test accuracy, ...) its summary over the seeds."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(tuple(repr(row.get(k)) for k in keys), []).append(row)
    out = []
    for members in groups.values():
        entry = {"point": {k: members[0].get(k) for k in keys},
                 "seeds": [m.get("seed") for m in members]}
        for name in SWEEP_NUMBERS:
            values = [m.get(name) for m in members]
            if all(isinstance(v, (int, float)) for v in values):
                entry[name] = summarize(values)
        out.append(entry)
    return out


def format_seed_groups(groups: list[dict]) -> str:
    """One line per point: its settings, test accuracy mean [95% interval] over seeds."""
    lines = ["over seeds: test accuracy, mean [95% interval]"]
    for g in groups:
        point = " ".join(f"{k}={v}" for k, v in g["point"].items())
        acc = g.get("test_accuracy")
        lines.append(f"{point}: {fmt(acc, digits=2) if acc else '-'} (n={len(g['seeds'])})")
    return "\n".join(lines)
