"""`explorer run --seeds N`: the same pipeline once per seed, then means and intervals.

Each seed is a whole `explorer run` (its own data split, init and batch order), run in a
spawned process of a local pool (or one after another with --workers 0). The report keeps
every seed's stages and adds, per stage, the mean and 95% t-interval of each number, and
the paired comparisons a conclusion rests on: pruned and fine-tuned vs the baseline,
distilled vs the student alone (differences of test accuracy, or of test MSE), each
"better" / "worse" only when its Holm-corrected test over the run's comparisons says so.
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import math
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..files import write_text
from .jsonsafe import json_safe
from .stats import (
    claim,
    default_workers,
    fmt,
    holm,
    map_seeds,
    paired,
    seed_list,
    summarize,
)

if TYPE_CHECKING:
    from ..session.session import Session

NUMBERS = ("accuracy", "loss", "mse", "f1", "teacher_agreement", "sparsity", "nonzero",
           "flops_effective", "perplexity")
COMPARISONS = (("pruned", "baseline"), ("finetuned", "baseline"),
               ("distilled", "student_alone"), ("distilled", "student_hard"))


def run_one(seed: int, threads: int, args: dict) -> dict:
    """One seed of `explorer run` (quiet), returned as its JSON report."""
    import torch

    from .pipeline import Progress, make_session, report, run_stages

    if threads:
        torch.set_num_threads(threads)
    ns = argparse.Namespace(**{**args, "seed": seed, "json": None, "export": None})
    session = make_session(ns)
    progress = Progress(stream=io.StringIO())  # dropped: per-seed bars would interleave
    stages = run_stages(session, ns, progress)
    return report(ns, session, stages)


def quality_key(reports: list[dict]) -> str:
    """The headline number: perplexity for a language model, accuracy, else MSE."""
    stage = next(iter(reports[0]["stages"].values()))
    if stage.get("perplexity") is not None:
        return "perplexity"
    return "accuracy" if stage.get("accuracy") is not None else "mse"


def combine(reports: list[dict]) -> dict:
    """Per stage and number: summarize over seeds; the paired comparisons."""
    stages = [s for s in reports[0]["stages"] if all(s in r["stages"] for r in reports)]
    summary = {}
    for stage in stages:
        rows = [r["stages"][stage] for r in reports]
        summary[stage] = {k: summarize([row[k] for row in rows]) for k in NUMBERS
                          if all(isinstance(row.get(k), (int, float)) and
                                 math.isfinite(row[k]) for row in rows)}
    key = quality_key(reports)
    comparisons, claims = {}, []
    for a, b in COMPARISONS:
        if a in stages and b in stages:
            comp = paired([r["stages"][a][key] for r in reports],
                          [r["stages"][b][key] for r in reports])
            # "better" means higher accuracy, or lower MSE; Holm over this run's comparisons.
            claims.append(claim(f"{a} is better than {b} on test {key}", comp,
                                "higher" if key == "accuracy" else "lower",
                                unit="points" if key == "accuracy" else key))
            comparisons[f"{a}_vs_{b}"] = {"metric": f"test {key}", **comp}
    holm(claims)
    for comp, c in zip(comparisons.values(), claims):
        # `verdict`: the Holm-adjusted words (better / worse / not shown / why untested);
        # `difference`: the interval's own words before correction (higher / lower / ...).
        comp.update(difference=comp["verdict"], verdict=c["verdict"], p_holm=c["p_holm"],
                    family=c["family"])
    out = {"summary": summary, "comparisons": comparisons, "metric": key,
           "regime": reports[0].get("regime")}
    curve = combine_curve([r.get("temperature_curve") or {} for r in reports])
    if curve is not None:
        out["temperature_curve"] = curve
    return out


def combine_curve(curves: list[dict]) -> dict | None:
    """Over seeds: each T's mean validation and test accuracy, the best T by mean
    validation accuracy, and its paired lead over T = 1 on test (a 95% lower bound above
    zero is a lead shown; None without a T = 1 run)."""
    temps = [t for t in curves[0] if all(t in c for c in curves)]
    if not temps:
        return None
    per_t = {t: {split: summarize([c[t][f"{split}_accuracy"] for c in curves])
                 for split in ("val", "test")} for t in temps}
    best = max(temps, key=lambda t: per_t[t]["val"]["mean"])
    lead = None
    if "1" in temps:
        lead = paired([c[best]["test_accuracy"] for c in curves],
                      [c["1"]["test_accuracy"] for c in curves])
        lead["lower_bound_above_zero"] = lead["ci95_low"] is not None and \
            lead["ci95_low"] > 0
    return {"per_t": per_t, "best_t": best, "best_vs_t1": lead}


def curve_text(curve: dict) -> list[str]:
    lines = ["temperature curve, test accuracy (mean [95% interval]): " + ", ".join(
        f"T={t} {fmt(v['test'], digits=2)}" for t, v in curve["per_t"].items())]
    best, lead = curve["best_t"], curve["best_vs_t1"]
    text = f"best T (on validation): {best}"
    if lead is not None and best != "1":
        shown = "yes" if lead["lower_bound_above_zero"] else "no"
        text += (f"; lead over T=1 on test {fmt(lead, digits=2, key='mean_diff')} points, "
                 f"95% lower bound above zero: {shown}")
    return [*lines, text]


def format_runs(result: dict) -> str:
    key = result["metric"]
    scale, digits = (100.0, 2) if key == "accuracy" else (1.0, 4)
    lines = [f"stage          test {key} (mean [95% interval]) over seeds "
             f"{', '.join(map(str, result['seeds']))}"]
    for stage, numbers in result["summary"].items():
        if key in numbers:
            lines.append(f"{stage:<14} {fmt(numbers[key], scale=scale, digits=digits)}")
    for name, comp in result["comparisons"].items():
        holm_p = "" if comp["p_holm"] is None else \
            f"; Holm p = {comp['p_holm']:.2g} over {comp['family']}"
        lines.append(f"{name:<28} {fmt(comp, scale=scale, digits=digits, key='mean_diff')} "
                     f"({comp['verdict']}{holm_p})")
    if result.get("regime"):
        lines.append(f"distillation regime: {result['regime']}")
    if result.get("temperature_curve"):
        lines.extend(curve_text(result["temperature_curve"]))
    return "\n".join(lines)


def run_repeated(args: argparse.Namespace) -> int:
    """Run every seed, print the per-seed lines and the summary, write the JSON."""
    seeds = seed_list(args.seed, args.seeds)
    plain = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
             if not callable(v) and k not in ("func", "handler")}
    plain = copy.deepcopy(plain)
    workers = default_workers(len(seeds), 1) if args.workers is None else args.workers
    start = time.perf_counter()
    try:
        reports = map_seeds(run_one, seeds, workers, threads=1 if workers > 1 else 0,
                            args=plain)
    except ValueError as err:  # a combination only the session can judge
        sys.stderr.write(f"explorer run: error: {err}\n")
        return 2
    result = {"seeds": seeds, "workers": workers, "per_seed": reports, **combine(reports),
              "seconds": round(time.perf_counter() - start, 1)}
    key = result["metric"]
    for seed, rep in zip(seeds, reports):
        print(f"seed {seed}: " + ", ".join(f"{stage} {st[key]:.4f}"
                                           for stage, st in rep["stages"].items()))
    print(format_runs(result))
    if args.json is not None:
        write_text(args.json, json.dumps(json_safe(result), indent=1))
        print(f"report written to {args.json}")
    return 0


def repeat_finetune(session: Session, target: float, seeds: Sequence[int],
                    stop: threading.Event | None = None, on_event: Callable | None = None,
                    on_seed: Callable[[dict], None] | None = None, **settings: Any) -> dict:
    """Prune the selected model's dense base to `target` and fine-tune
    (Session.prune_iteratively with `settings`), once per seed, in this process.

    The seed sets the fine-tuning's batch order (the data split and the base are the
    session's); each run is a Session.trial, so the session ends exactly as it was. Returns
    {"metric", "seeds", "values", "n", "mean", "sd", "ci95_low", "ci95_high"}: the
    validation accuracy (MSE for regression) of each finished seed and their 95%
    t-interval (stats.summarize). A Stop keeps the seeds finished before it.
    """
    key = "accuracy" if session.data.task == "classification" else "loss"
    done, values = [], []
    with session.jobs.job("repeated run"), session.trial():
        for seed in seeds:
            if stop is not None and stop.is_set():
                break
            with session.trial():
                session.seed = int(seed)  # what run_training derives the batch order from
                snap = session.prune_iteratively(target, stop=stop, on_event=on_event,
                                                 **settings)
            if stop is not None and stop.is_set():
                break  # a run cut short is not a sample of the finished recipe
            done.append(int(seed))
            values.append(float(getattr(snap, key)))
            if on_seed is not None:
                on_seed({"seed": int(seed), "value": values[-1], "done": len(done),
                         "total": len(seeds), "sparsity": snap.sparsity})
    if not values:
        return {"metric": key, "seeds": [], "values": [], "n": 0, "mean": None, "sd": None,
                "ci95_low": None, "ci95_high": None}
    return {"metric": key, "seeds": done, **summarize(values)}
