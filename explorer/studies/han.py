"""Han et al. 2015, "Learning both Weights and Connections", LeNet-300-100 on mnist-5k.

The paper's procedure: train the dense net; then prune every layer at a threshold of
quality x the standard deviation of that layer's weights, retrain the survivors at a
tenth of the learning rate, and iterate. We run one chain of steps with a rising quality
factor q_k (each step thresholds at q_k * std of the layer's current weights, pruned
zeros included, and masks stack), measure validation accuracy after each retraining, and
choose the quality -- the step -- with the largest compression whose validation accuracy
stays within half a point of the dense net's. Test figures are read at that step.
"""

from __future__ import annotations

from typing import Any

from ..config import HAN_RETRAIN_LR_FACTOR
from ..engine.train import EpochEvent
from . import common
from .common import (
    Log,
    compression,
    kept_per_layer,
    make_session,
    quiet,
    seeded,
    test_accuracy,
)
from .stats import claim, holm, paired, summarize

PAPER: dict[str, Any] = {"source": "Han et al. 2015, LeNet-300-100 on MNIST",
                         "compression": 12.0, "error_before": 0.0164, "error_after": 0.0159,
                         "kept_per_layer": [0.08, 0.09, 0.26]}
# (quick, full): quality factors q_k = quality_step * k for k = 1..steps.
SETTINGS = {True: dict(dense_epochs=10, steps=6, quality_step=0.5, finetune_epochs=2),
            False: dict(dense_epochs=40, steps=20, quality_step=0.25, finetune_epochs=10)}
BUDGET = 0.005  # validation accuracy may drop at most half a point
NO_WORSE_MARGIN = BUDGET  # the claim's non-inferiority margin on test error (see combine)
LR, BATCH = 1e-3, 64
FT_LR = LR * HAN_RETRAIN_LR_FACTOR  # Han et al.: retrain at a tenth of the learning rate


def run(quick: bool = False, seed: int = 0, threads: int = 1, log: Log = quiet,
        dataset: str | None = None, settings: dict | None = None) -> dict:
    """One seed: dense training, the chain of quality steps, the step chosen on val."""
    cfg = dict(settings or SETTINGS[quick])
    dataset = dataset or common.DATASET  # read now, so tests can point it elsewhere
    seeded(seed, threads)
    s = make_session(seed, dataset=dataset)
    s.train(epochs=cfg["dense_epochs"], lr=LR, batch_size=BATCH)
    dense_val, dense_test = s.snapshot("val").accuracy, test_accuracy(s)
    log(f"han seed {seed}: dense val {dense_val:.4f} test {dense_test:.4f}")
    qualities = [cfg["quality_step"] * k for k in range(1, cfg["steps"] + 1)]
    steps: list[dict] = []

    def on_event(event) -> None:  # the weights at the end of each step's retraining
        if isinstance(event, EpochEvent) and event.epoch == event.epochs:
            steps.append({"step": len(steps) + 1, "quality": qualities[len(steps)],
                          "val_accuracy": event.val_accuracy,
                          "test_accuracy": test_accuracy(s), "compression": compression(s),
                          "kept_per_layer": kept_per_layer(s)})

    s.prune_iteratively(std=qualities, finetune_epochs=cfg["finetune_epochs"], lr=FT_LR,
                        batch_size=BATCH, on_event=on_event)
    records = [h for h in s.history if h["kind"] == "prune_step"]
    for row, h in zip(steps, records):
        row["thresholds"] = dict(h["cuts"])
        log(f"han seed {seed}: step {row['step']} q={row['quality']:g} compression "
            f"{row['compression']:.1f}x val {row['val_accuracy']:.4f}")
    within = [r for r in steps if r["val_accuracy"] >= dense_val - BUDGET - 1e-9]
    best = max(within, key=lambda r: r["compression"], default=None)
    if best is None:  # nothing within budget: the dense model is the answer
        best = {"step": 0, "quality": None, "val_accuracy": dense_val,
                "test_accuracy": dense_test, "compression": 1.0,
                "kept_per_layer": dict.fromkeys(s.slot.prunable, 1.0)}
    return {"seed": seed, "compression": best["compression"],
            "chosen_quality": best["quality"], "chosen_step": best["step"],
            "kept_per_layer": best["kept_per_layer"],
            "dense_test_error": 1 - dense_test, "pruned_test_error": 1 - best["test_accuracy"],
            "test_accuracy_drop": dense_test - best["test_accuracy"],
            "dense_val_accuracy": dense_val, "steps": steps,
            "settings": {**cfg, "qualities": qualities, "lr": LR, "finetune_lr": FT_LR,
                         "batch_size": BATCH, "budget_val_drop": BUDGET, "quick": quick,
                         "threads": threads, "dataset": dataset}}


def combine(per_seed: list[dict]) -> dict:
    """Means, intervals, the pruned-vs-dense comparison and the claims."""
    layers = list(per_seed[0]["kept_per_layer"])
    out: dict[str, Any] = {key: summarize([p[key] for p in per_seed])
                           for key in ("compression", "dense_test_error", "pruned_test_error")}
    out["kept_per_layer"] = {n: summarize([p["kept_per_layer"][n] for p in per_seed])
                             for n in layers}
    out["chosen_quality"] = [p["chosen_quality"] for p in per_seed]
    pruned_vs_dense = paired([p["pruned_test_error"] for p in per_seed],
                             [p["dense_test_error"] for p in per_seed])
    out["pruned_vs_dense"] = pruned_vs_dense
    # A one-sample comparison: each seed's compression minus the paper's 12x.
    out["compression_vs_paper"] = paired([p["compression"] for p in per_seed],
                                         [PAPER["compression"]] * len(per_seed))
    first, last = layers[0], layers[-1]
    out["output_minus_first_kept"] = paired([p["kept_per_layer"][last] for p in per_seed],
                                            [p["kept_per_layer"][first] for p in per_seed])
    out["claims"] = holm([
        # Margin: the half point of accuracy our procedure already lets pruning cost on
        # validation (BUDGET); the paper's "no loss" cannot be shown as zero, only as a
        # loss smaller than a margin fixed before the run.
        claim(f"pruning (the step chosen on validation) raises the test error by no more "
              f"than {NO_WORSE_MARGIN * 100:g} points (paper: 1.64% -> 1.59%)",
              pruned_vs_dense, "not higher", margin=NO_WORSE_MARGIN),
        claim(f"compression exceeds the paper's {PAPER['compression']:.0f}x",
              out["compression_vs_paper"], "higher", unit="x"),
        claim("the output layer keeps a larger share of its weights than the first layer "
              "(paper: 26% vs 8%)", out["output_minus_first_kept"], "higher"),
    ])
    return out


def format_result(result: dict) -> str:
    from .common import table
    from .stats import fmt

    kept = " / ".join(f"{k['mean']:.0%}" for k in result["kept_per_layer"].values())
    comp = result["compression"]
    comp_text = f"{comp['mean']:.1f}x" if comp["ci95_low"] is None else \
        f"{comp['mean']:.1f}x [{comp['ci95_low']:.1f}, {comp['ci95_high']:.1f}]"
    rows = [("compression (params / nonzero)", comp_text, f"{PAPER['compression']:.0f}x"),
            ("test error, dense (%)", fmt(result["dense_test_error"], digits=2),
             f"{PAPER['error_before']:.2%}"),
            ("test error, pruned (%)", fmt(result["pruned_test_error"], digits=2),
             f"{PAPER['error_after']:.2%}"),
            ("pruned - dense error (pts)", fmt(result["pruned_vs_dense"], digits=2,
                                               key="mean_diff"),
             f"{(PAPER['error_after'] - PAPER['error_before']) * 100:+.2f}"),
            ("kept per layer (mean)", kept,
             " / ".join(f"{k:.0%}" for k in PAPER["kept_per_layer"])),
            ("quality chosen on validation", ", ".join(
                "-" if q is None else f"{q:g}" for q in result["chosen_quality"]), "")]
    return table(("Han et al. 2015 (LeNet-300-100)", "ours", "paper"), rows)
