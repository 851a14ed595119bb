"""Several seeds, one number each: means, 95% t-intervals, paired differences, claims.

One accuracy on 1,000 test images has a standard error near 0.8 points, so a claim that
compares two settings rests on several seeds: the mean of the per-seed paired differences
and its 95% t-interval (mean +- t_{0.975, n-1} * sd / sqrt(n)). Words follow intervals
(DESIGN.md section 4): a difference is "higher" / "lower" only when its interval excludes
zero on that side, otherwise "not shown" (an interval that contains zero is no evidence of
equality). A NaN is "could not measure"; one seed, or seeds that all gave the same value,
give no interval (zero spread is not a point interval: the seeds did not vary).

A claim (`claim`) is "better" only when its difference clears zero, "no worse by more than
m" only from a non-inferiority margin m fixed beforehand and written in the claim; the
claims of one report are corrected together by Holm (`holm`), and the verdict follows the
Holm-adjusted p-value of each claim's paired t-test. A ratio of means (`ratio_of_means`,
e.g. the share of a gap closed) gets Fieller's interval over all seeds, none dropped.

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
ALPHA = 1 - CONFIDENCE
NOT_SHOWN = "not shown"
COULD_NOT_MEASURE = "could not measure"
ONE_SEED = "no interval: one seed"
NO_SPREAD = "no interval: every seed gave the same value"
# What a claim asserts about its difference (a - b), and the verdict when it is shown:
# "higher"/"lower": above/below zero (superiority); "not lower"/"not higher": above -m /
# below +m for a margin m fixed beforehand (non-inferiority); "within": between -m and +m.
SHOWN = {"higher": "better", "lower": "better",
         "not lower": "no worse by more than the margin",
         "not higher": "no worse by more than the margin", "within": "within the margin"}
MARGIN_WANTS = ("not lower", "not higher", "within")


def t_quantile(df: int, confidence: float = CONFIDENCE) -> float:
    """Two-sided Student t critical value (scipy's t.ppf)."""
    from scipy.stats import t

    return float(t.ppf(0.5 + confidence / 2, df))


def _t_sf(x: float, df: int) -> float:
    from scipy.stats import t

    return float(t.sf(x, df))


def no_interval_reason(n: int, mean: float, sd: float | None) -> str | None:
    """Why these values give no interval (NaN, one seed, zero spread), or None."""
    if not math.isfinite(mean) or (sd is not None and not math.isfinite(sd)):
        return COULD_NOT_MEASURE
    if n < 2:
        return ONE_SEED
    if sd is None or sd <= 1e-12 * max(1.0, abs(mean)):
        return NO_SPREAD
    return None


def summarize(values: Sequence[float], confidence: float = CONFIDENCE) -> dict:
    """{"values", "n", "mean", "sd", "ci95_low", "ci95_high"}; no interval (None, and
    "note" says why) for one value, for NaN or infinite values, or for zero spread."""
    vals = [float(v) for v in values]
    n = len(vals)
    if n == 0:
        raise ValueError("summarize needs at least one value")
    mean = sum(vals) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / (n - 1)) if n > 1 else None
    out = {"values": vals, "n": n, "mean": mean, "sd": sd, "ci95_low": None,
           "ci95_high": None}
    reason = no_interval_reason(n, mean, sd)
    if reason is not None or sd is None:  # no reason means a finite spread
        return {**out, "note": reason or NO_SPREAD}
    half = t_quantile(n - 1, confidence) * sd / math.sqrt(n)
    return {**out, "ci95_low": mean - half, "ci95_high": mean + half}


def verdict(low: float | None, high: float | None) -> str:
    """A difference's interval in words: "higher" / "lower" only when it excludes zero on
    that side; "not shown" when it contains zero; "could not measure" for NaN; "no
    interval" without one."""
    if low is None or high is None:
        return "no interval"
    if math.isnan(low) or math.isnan(high):
        return COULD_NOT_MEASURE
    if low > 0:
        return "higher"
    if high < 0:
        return "lower"
    return NOT_SHOWN


def paired(a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE) -> dict:
    """Per-seed differences a - b, their mean ("mean_diff"), its t-interval, the paired
    t-test's two-sided p-value against zero ("p_value") and the words ("verdict")."""
    if len(a) != len(b):
        raise ValueError(f"paired values need one of each per seed; got {len(a)} and "
                         f"{len(b)}")
    s = summarize([x - y for x, y in zip(a, b)], confidence)
    out = {"values": s["values"], "n": s["n"], "mean_diff": s["mean"], "sd": s["sd"],
           "ci95_low": s["ci95_low"], "ci95_high": s["ci95_high"], "p_value": None}
    if "note" in s:
        return {**out, "verdict": s["note"]}
    se = s["sd"] / math.sqrt(s["n"])
    p = min(1.0, 2 * _t_sf(abs(s["mean"]) / se, s["n"] - 1))
    return {**out, "p_value": p, "verdict": verdict(s["ci95_low"], s["ci95_high"])}


def claim(text: str, comparison: dict, want: str, margin: float | None = None,
          unit: str = "points") -> dict:
    """A claim about a paired comparison (a - b), before the report's Holm correction.

    `want`: "higher" / "lower" (a - b above / below zero: "better" when shown, "worse"
    when the opposite is), or, with a `margin` m > 0 fixed beforehand (and stated in
    `text`), "not lower" (a - b > -m), "not higher" (a - b < m) or "within" (-m < a - b
    < m). `p_value`: the paired t-test's, on the two-sided scale (twice the one-sided p
    against the claim's threshold, at most 1), so p < 0.05 exactly when the 95% interval
    clears it. `holm` then sets `p_holm`, `verdict` and `holds` for the whole report;
    until then they are this claim's alone. `unit` ("points": differences of fractions,
    shown x100) is for display.
    """
    if want not in SHOWN:
        raise ValueError(f"want must be one of {', '.join(SHOWN)}; got {want!r}")
    if want in MARGIN_WANTS:
        if margin is None or not math.isfinite(margin) or margin <= 0:
            raise ValueError(f"a {want!r} claim needs a margin > 0 fixed beforehand; got "
                             f"{margin!r}")
    elif margin is not None:
        raise ValueError(f"a {want!r} claim takes no margin; got {margin!r}")
    values = comparison["values"]
    n, mean = len(values), comparison["mean_diff"]
    sd = comparison.get("sd")
    out = {"claim": text, "want": want, "margin": margin, "unit": unit,
           "mean_diff": mean, "ci95_low": comparison["ci95_low"],
           "ci95_high": comparison["ci95_high"], "n": n, "sd": sd}
    reason = no_interval_reason(n, mean, sd)
    if reason is not None or sd is None:  # no reason means a finite spread
        reason = reason or NO_SPREAD
        return {**out, "p_value": None, "p_holm": None, "family": 0,
                "verdict_unadjusted": reason, "verdict": reason, "holds": None}
    p = _claim_p(want, mean, sd / math.sqrt(n), n - 1, margin or 0.0)
    out.update(p_value=p, p_holm=p, family=1)
    out["verdict_unadjusted"] = _words(out, p)
    out["verdict"] = out["verdict_unadjusted"]
    out["holds"] = out["verdict"] == SHOWN[want]
    return out


def _claim_p(want: str, mean: float, se: float, df: int, m: float) -> float:
    if want in ("higher", "lower"):  # the ordinary two-sided paired t-test
        return min(1.0, 2 * _t_sf(abs(mean) / se, df))
    above = _t_sf((mean + m) / se, df)  # one-sided p of "a - b <= -m"
    below = _t_sf((m - mean) / se, df)  # one-sided p of "a - b >= m"
    one_sided = {"not lower": above, "not higher": below, "within": max(above, below)}
    return min(1.0, 2 * one_sided[want])


def _words(c: dict, p: float, alpha: float = ALPHA) -> str:
    """The verdict at p: shown only when p < ALPHA and the interval clears the threshold
    (the two agree up to rounding; requiring both keeps a bound of exactly 0 unshown)."""
    low, high, m, want = c["ci95_low"], c["ci95_high"], c["margin"] or 0.0, c["want"]
    if not p < alpha:
        return NOT_SHOWN
    clears = {"higher": low > 0, "lower": high < 0, "not lower": low > -m,
              "not higher": high < m, "within": -m < low and high < m}[want]
    if clears:
        return SHOWN[want]
    opposite = {"higher": high < 0, "lower": low > 0}.get(want, False)
    return "worse" if opposite else NOT_SHOWN


def holm(claims: list[dict], alpha: float = ALPHA) -> list[dict]:
    """Holm's correction over one report's claims, in place (and returned): each tested
    claim's `p_holm` = max over the claims ranked at or before it of min(1, (m - rank) *
    p), `family` = m (the claims with a p-value), and its `verdict`/`holds` follow
    `p_holm`. Idempotent: it reads only `p_value`."""
    tested = sorted((c for c in claims if c.get("p_value") is not None),
                    key=lambda c: c["p_value"])
    m, running = len(tested), 0.0
    for rank, c in enumerate(tested):
        running = max(running, min(1.0, (m - rank) * c["p_value"]))
        c["p_holm"], c["family"] = running, m
        c["verdict"] = _words(c, running, alpha)
        c["holds"] = c["verdict"] == SHOWN[c["want"]]
    return claims


def ratio_of_means(num: Sequence[float], den: Sequence[float],
                   confidence: float = CONFIDENCE) -> dict:
    """mean(num) / mean(den) over paired seeds, with Fieller's 95% interval (every seed,
    none dropped; a seed whose denominator is negative counts as it is).

    Returns {"mean" (the ratio), "numerator", "denominator", "n", "ci95_low", "ci95_high",
    "method"}; the interval is None, and "note" says why, for NaN, one seed, zero spread,
    or when the denominator's mean is not clearly away from zero (Fieller's set is then
    unbounded: the data allow any ratio).
    """
    if len(num) != len(den):
        raise ValueError(f"a ratio of means needs one numerator per denominator; got "
                         f"{len(num)} and {len(den)}")
    if not num:
        raise ValueError("a ratio of means needs at least one seed")
    x, y = [float(v) for v in num], [float(v) for v in den]
    sx, sy = summarize(x), summarize(y)
    n, mx, my = len(x), sx["mean"], sy["mean"]
    ratio = mx / my if my != 0 else math.nan
    out = {"mean": ratio, "numerator": mx, "denominator": my, "n": n, "ci95_low": None,
           "ci95_high": None, "method": "Fieller"}
    notes = {sx.get("note"), sy.get("note")}
    if not math.isfinite(ratio) or COULD_NOT_MEASURE in notes:
        return {**out, "note": COULD_NOT_MEASURE}
    if n < 2:
        return {**out, "note": ONE_SEED}
    if notes == {NO_SPREAD}:
        return {**out, "note": NO_SPREAD}
    vxx, vyy = sx["sd"] ** 2 / n, sy["sd"] ** 2 / n
    vxy = sum((a - mx) * (b - my) for a, b in zip(x, y)) / (n - 1) / n
    t2 = t_quantile(n - 1, confidence) ** 2
    # (mx - r my)^2 <= t^2 var(mx - r my): a r^2 + b r + c <= 0.
    a, b, c = my * my - t2 * vyy, -2 * (mx * my - t2 * vxy), mx * mx - t2 * vxx
    if a <= 0:
        return {**out, "note": "no bounded interval: the denominator's mean is not clearly "
                               "away from zero"}
    root = math.sqrt(max(b * b - 4 * a * c, 0.0))
    return {**out, "ci95_low": (-b - root) / (2 * a), "ci95_high": (-b + root) / (2 * a)}


def fmt(summary: dict, scale: float = 100.0, digits: int = 1, key: str = "mean") -> str:
    """"93.4 [92.9, 93.9]" (mean and 95% interval), the mean alone without an interval,
    "could not measure" for NaN."""
    if summary[key] is None or not math.isfinite(summary[key]):
        return COULD_NOT_MEASURE
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
            numbers = [v for v in values if isinstance(v, (int, float))]
            if len(numbers) == len(values):
                entry[name] = summarize(numbers)
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
