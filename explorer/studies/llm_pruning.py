"""`explorer reproduce llm-pruning`: one-shot pruning of a small BPE GPT, beside Wanda's
table (LLaMA-2-7B, WikiText perplexity).

Per seed (the seed draws the calibration windows; the model, its test split and magnitude
do not change with it): test perplexity of the dense model and of magnitude, Wanda (the
slider's form: dense input norms), Wanda sequential (the papers' form: each block's norms
from the already-pruned blocks) and SparseGPT, each at 50% unstructured, 4:8 and 2:4; and
60/70/80% unstructured curves (quick mode: magnitude, Wanda, SparseGPT; full mode: the
sequential Wanda too), in the result's "curves" (per criterion, 50% to 80%, each point with
its interval) and a second printed table. Claims (paired over seeds, Holm-corrected):
each calibrated criterion against magnitude, and SparseGPT against Wanda in the direction
the anchor table shows. The model comes from scripts/train_small_gpt.py (`make llm-gpt`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .common import Log, quiet, seeded
from .stats import holm, paired, summarize

PAPER: dict[str, Any] = {"source": "Sun et al. 2023 (Wanda), LLaMA-2-7B, WikiText perplexity",
         "dense": 5.12,
         "table": {("magnitude", "unstructured"): 14.89, ("sparsegpt", "unstructured"): 6.51,
                   ("wanda", "unstructured"): 6.42, ("magnitude", "4:8"): 16.48,
                   ("sparsegpt", "4:8"): 8.12, ("wanda", "4:8"): 7.97,
                   ("magnitude", "2:4"): 54.59, ("sparsegpt", "2:4"): 10.17,
                   ("wanda", "2:4"): 11.02}}
DATA_NOTE = ("Ours: a 0.93M-parameter GPT-2-architecture model with a 1,024-token BPE trained "
             "here on pydoc-text (CPython's help text), test-split perplexity per token; "
             "theirs: a 7B model on WikiText. Compare rankings, not values.")
DEFAULT_MODEL = "build/llm-gpt"
CRITERIA = ("magnitude", "wanda", "wanda-seq", "sparsegpt")
PATTERNS = ("unstructured", "4:8", "2:4")
CURVE = (0.6, 0.7, 0.8)
CURVE_CRITERIA = {True: ("magnitude", "wanda", "sparsegpt"), False: CRITERIA}
CALIBRATION = {True: 16, False: 64}  # windows of 64 tokens
EVAL_WINDOWS = {True: 96, False: None}  # test windows (None: all 256), the same every run


def model_path(model: str | None) -> str:
    path = Path(str(model or os.environ.get("EXPLORER_LLM_GPT", DEFAULT_MODEL))
                .removeprefix("hf:")).expanduser()
    if not (path / "config.json").is_file():
        raise ValueError(f"llm-pruning: no model at {path}; train it first: "
                         "nice -n 10 python scripts/train_small_gpt.py --out build/llm-gpt "
                         "(make llm-gpt), or pass --model hf:PATH")
    return str(path)


def _prune(s, criterion: str, sparsity: float, pattern: str, calibration: int,
           seed: int) -> None:
    from dataclasses import replace

    from ..session.calibrated import check_request, helper

    if criterion == "magnitude":
        s.prune(sparsity=sparsity) if pattern == "unstructured" else s.prune(pattern=pattern)
    elif criterion == "wanda":  # the slider's form, its calibration drawn with `seed`
        req = check_request(sparsity if pattern == "unstructured" else None, "wanda",
                            pattern, calibration)
        helper(s).prune(s, replace(req, seed=seed))
    else:
        s.pruning.one_shot("wanda" if criterion == "wanda-seq" else "sparsegpt",
                         sparsity if pattern == "unstructured" else None, pattern,
                         calibration, seed=seed)


def run(quick: bool = False, seed: int = 0, threads: int = 1, log: Log = quiet,
        model: str | None = None) -> dict:
    """One calibration seed: every criterion x pattern (and the curves in full mode)."""
    from ..session.session import Session

    path = model_path(model)
    seeded(seed, threads)
    s = Session("pydoc-text", f"hf:{path}", context=64, seed=0, max_train_windows=2048)
    calibration = CALIBRATION[quick]

    def measure(**row) -> dict:
        extra = s.snapshot("test", subset=EVAL_WINDOWS[quick]).extra
        return {**row, "perplexity": extra["perplexity"],
                "bits_per_char": extra.get("bits_per_char")}

    rows = [measure(criterion="dense", pattern="dense", sparsity=0.0)]
    settings = [(c, p, 0.5) for c in CRITERIA for p in PATTERNS]
    settings += [(c, "unstructured", x) for c in CURVE_CRITERIA[quick] for x in CURVE]
    for criterion, pattern, sparsity in settings:
        with s.trial():
            _prune(s, criterion, sparsity, pattern, calibration, seed)
            rows.append(measure(criterion=criterion, pattern=pattern, sparsity=sparsity))
        log(f"llm-pruning seed {seed}: {criterion} {pattern} {sparsity:.0%} "
            f"perplexity {rows[-1]['perplexity']:.2f}")
    return {"settings": {"dataset": "pydoc-text", "model": path, "calibration": calibration,
                         "context": 64, "test_windows": EVAL_WINDOWS[quick] or 256},
            "rows": rows}


def _key(row: dict) -> tuple:
    return row["criterion"], row["pattern"], row["sparsity"]


def combine(per_seed: list[dict]) -> dict:
    """Mean perplexity with a 95% interval per setting, and the claims."""
    keys = [_key(r) for r in per_seed[0]["rows"]]
    values = {k: [next(r["perplexity"] for r in p["rows"] if _key(r) == k)
                  for p in per_seed] for k in keys}
    table = [{"criterion": k[0], "pattern": k[1], "sparsity": k[2],
              **{f"perplexity_{f}" if f != "mean" else "perplexity": v
                 for f, v in summarize(values[k]).items() if f in ("mean", "ci95_low",
                                                                    "ci95_high")}}
             for k in keys]
    from .stats import claim

    claims = []
    for pattern in PATTERNS:
        for crit in ("wanda", "wanda-seq", "sparsegpt"):
            claims.append(claim(f"{crit} has lower perplexity than magnitude at {pattern}",
                                paired(values[(crit, pattern, 0.5)],
                                       values[("magnitude", pattern, 0.5)]),
                                "lower", unit=" ppl"))
        # the anchor: Wanda ahead at unstructured and 4:8, SparseGPT ahead at 2:4
        a, b = ("sparsegpt", "wanda") if pattern == "2:4" else ("wanda", "sparsegpt")
        claims.append(claim(f"{a} has lower perplexity than {b} at {pattern} (as in the "
                            "anchor table)", paired(values[(a, pattern, 0.5)],
                                                    values[(b, pattern, 0.5)]),
                            "lower", unit=" ppl"))
    holm(claims)
    return {"table": table, "claims": claims, "curves": curves(table)}


def curves(table: list[dict]) -> dict[str, list[dict]]:
    """Per criterion with a curve: its unstructured points in order of sparsity (50% and
    up), each with the mean perplexity and its interval over the calibration seeds."""
    out: dict[str, list[dict]] = {}
    for row in table:
        if row["pattern"] == "unstructured":
            out.setdefault(row["criterion"], []).append(row)
    return {c: sorted(points, key=lambda r: r["sparsity"]) for c, points in out.items()
            if len(points) > 1}


def _cell(row: dict) -> str:
    text = f"{row['perplexity']:.2f}"
    if row.get("perplexity_ci95_low") is not None:
        text += f" [{row['perplexity_ci95_low']:.2f}, {row['perplexity_ci95_high']:.2f}]"
    return text


def format_result(result: dict) -> str:
    from .common import table

    rows = []
    for r in result["table"]:
        if r["sparsity"] not in (0.0, 0.5):
            continue  # the curves' points: the second table
        ours = _cell(r)
        anchor = PAPER["dense"] if r["criterion"] == "dense" else PAPER["table"].get(
            (r["criterion"].removesuffix("-seq"), r["pattern"])) if r["sparsity"] == 0.5 \
            else None
        setting = "dense" if r["criterion"] == "dense" else \
            f"{r['criterion']} {r['pattern']} {r['sparsity']:.0%}"
        rows.append((setting, ours, "" if anchor is None else f"{anchor:.2f}"))
    text = table(("setting", "perplexity (ours, 95% CI)", "LLaMA-2-7B (anchor)"), rows)
    lines = result.get("curves") or curves(result["table"])
    if not lines:
        return text
    levels = sorted({p["sparsity"] for points in lines.values() for p in points})
    by = {c: {p["sparsity"]: _cell(p) for p in points} for c, points in lines.items()}
    curve = table(("unstructured", *(f"{x:.0%}" for x in levels)),
                  [(c, *(by[c].get(x, "") for x in levels)) for c in lines])
    return f"{text}\n\nperplexity vs sparsity (ours, 95% CI over calibration seeds)\n{curve}"
