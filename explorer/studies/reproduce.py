"""Three published results rerun on our engine with the papers' own procedures.

`reproduce(name, quick, seed, seeds)` runs one of han / hinton / lottery for several seeds
(fanned out over a local process pool), then reports every figure as a mean with a 95%
t-interval and every comparison a claim rests on as a paired difference (`mean_diff`,
`ci95_low`, `ci95_high`, `p_value`), and says which of the paper's claims its intervals
show, Holm-corrected over the report's claims (explorer.studies.stats.claim and holm). The
procedures live in explorer.studies.han, .hinton and .lottery; the statistics in
explorer.studies.stats. Our data set is mnist-5k, so compare shapes and ratios with the
papers, not the last decimal.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import ModuleType

from . import deep_compression, han, hinton, llm_pruning, lottery
from .common import DATA_NOTE, DATASET, Log, quiet, test_accuracy
from .stats import COULD_NOT_MEASURE, NOT_SHOWN, ONE_SEED, holm, map_seeds, seed_list

EXPERIMENTS: dict[str, ModuleType] = {"han": han, "hinton": hinton, "lottery": lottery,
                                      "deep-compression": deep_compression,
                                      "llm-pruning": llm_pruning}
RUNS: dict[str, Callable[..., dict]] = {n: m.run for n, m in EXPERIMENTS.items()}
PAPERS = {n: m.PAPER for n, m in EXPERIMENTS.items()}

__all__ = ["DATASET", "DATA_NOTE", "EXPERIMENTS", "PAPERS", "RUNS", "format_result",
           "reproduce", "test_accuracy"]


def reproduce(name: str, quick: bool = False, seed: int = 0, seeds: int = 1,
              threads: int = 1, workers: int | None = None, log: Log = quiet,
              **options) -> dict:
    """Run experiment `name` for seeds seed .. seed + seeds - 1 and combine them.

    `workers`: parallel seeds (default: as many as the cores allow at `threads` threads;
    0 or 1 runs them one after another here). `log` must pickle when workers > 1 (a
    module-level function such as explorer.studies.stats.stderr_log). `options` go to the
    experiment's run() (e.g. rewind=2 for the lottery, dataset= for tests).
    """
    if name not in EXPERIMENTS:
        raise ValueError(f"experiment must be one of {', '.join(EXPERIMENTS)}; got {name!r}")
    module = EXPERIMENTS[name]
    seeds_run = seed_list(seed, seeds)
    start = time.perf_counter()
    per_seed = map_seeds(module.run, seeds_run, workers, threads, quick=quick, log=log,
                         **options)
    result = {"experiment": name, "paper": module.PAPER,
              "dataset": per_seed[0]["settings"]["dataset"],
              "data_note": getattr(module, "DATA_NOTE", DATA_NOTE), "quick": quick,
              "seeds": seeds_run,
              "threads": threads, "settings": per_seed[0]["settings"],
              "per_seed": per_seed, **module.combine(per_seed)}
    # The study corrects its own claims; again here over the whole list (Holm reads only
    # p-values, so this changes nothing unless a claim was added after its correction).
    holm(result["claims"])
    result["seconds"] = round(time.perf_counter() - start, 1)
    return result


def format_claims(claims: list[dict]) -> str:
    """One line per claim, led by its Holm-adjusted verdict, with the difference, its
    interval and both p-values."""
    return "\n".join(f"- {claim_line(c)}" for c in claims)


def claim_line(c: dict) -> str:
    """"shown (better): <claim>; +0.74 [+0.07, +1.41] points, p = 0.030, Holm p = 0.24
    over 8 claims", "not shown: ...", "untested (no interval: one seed; --seeds N ...)"."""
    if c["p_value"] is None:
        why = c["verdict"] + ("; --seeds N, N >= 2, gives one" if c["verdict"] == ONE_SEED
                              else "")
        lead = c["verdict"] if c["verdict"] == COULD_NOT_MEASURE else f"untested ({why})"
        return f"{lead}: {c['claim']}"
    verdict = c["verdict"]
    lead = ("not shown" if verdict == NOT_SHOWN else
            f"the opposite shown ({verdict})" if verdict == "worse" else f"shown ({verdict})")
    scale, unit = (100.0, " points") if c["unit"] == "points" else (1.0, c["unit"])
    diff = (f"{c['mean_diff'] * scale:+.2f} [{c['ci95_low'] * scale:+.2f}, "
            f"{c['ci95_high'] * scale:+.2f}]{unit}")
    return (f"{lead}: {c['claim']}; {diff}, p = {c['p_value']:.2g}, Holm p = "
            f"{c['p_holm']:.2g} over {c['family']} claim{'s' if c['family'] > 1 else ''}")


def format_result(name: str, result: dict) -> str:
    """Our numbers beside the published ones, the claims, and the data-set caveat."""
    module = EXPERIMENTS[name]
    mode = "quick" if result["quick"] else "full"
    seeds = result["seeds"]
    head = (f"{module.PAPER['source']} -- ours in {mode} mode, test split, {len(seeds)} "
            f"seed{'s' if len(seeds) > 1 else ''} ({', '.join(map(str, seeds))})")
    return (f"{head}\n{module.format_result(result)}\nclaims on this data:\n"
            f"{format_claims(result['claims'])}\n{getattr(module, 'DATA_NOTE', DATA_NOTE)}")
