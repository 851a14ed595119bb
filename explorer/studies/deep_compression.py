"""Han, Mao & Dally 2016, "Deep Compression": prune, share weights, Huffman-code.

LeNet-300-100 and LeNet-5 on mnist-5k, one chain per model and seed:
1. Han et al. 2015's pruning as explorer.studies.han runs it (dense training, the chain
   of quality x std thresholds with retraining at a tenth of the learning rate, the step
   chosen on validation within han.BUDGET of the dense accuracy);
2. k-means weight sharing per layer with linear initialisation (Session.quantize);
3. centroid fine-tuning (Session.finetune_codebook: each centroid's gradient is the sum
   of its weights'), at the same retraining rate;
4. Huffman coding of the indices (the sizes of measure(): bytes_huffman, weights only).
The paper's bit widths (its Tables 2 and 3): 6 bits on every layer of LeNet-300-100;
8 on LeNet-5's convolutions and 5 on its fully connected layers (Session.quantize's
per-layer bits). Deviation from the paper: its sizes count its own sparse layout, ours
the cheaper of the dense-index and sparse layouts after Huffman coding
(explorer.engine.qbytes).
"""

from __future__ import annotations

from typing import Any

from ..engine.train import EpochEvent
from . import common, han
from .common import Log, compression, make_session, quiet, seeded, test_accuracy
from .stats import claim, fmt, holm, paired, summarize

MODELS = ("lenet300", "lenet5")
PAPER: dict[str, Any] = {
    "source": "Han, Mao & Dally 2016 (Deep Compression), Tables 1-3, full MNIST",
    "lenet300": {"kb_before": 1070, "kb_after": 27, "ratio": 40.0,
                 "error_before": 0.0164, "error_after": 0.0158},
    "lenet5": {"kb_before": 1720, "kb_after": 44, "ratio": 39.0,
               "error_before": 0.0080, "error_after": 0.0074}}
BITS: dict[str, Any] = {"lenet300": 6, "lenet5": {"conv": 8, "linear": 5}}  # the paper's


def bits_label(bits: Any) -> str:
    """"6-bit", or "conv 8-bit, linear 5-bit" for per-layer widths."""
    if isinstance(bits, int):
        return f"{bits}-bit"
    return ", ".join(f"{kind} {b}-bit" for kind, b in bits.items())
SETTINGS = {True: dict(dense_epochs=6, steps=4, quality_step=0.5, finetune_epochs=1,
                       codebook_epochs=1),
            False: dict(dense_epochs=40, steps=20, quality_step=0.25, finetune_epochs=10,
                        codebook_epochs=5)}
NO_WORSE_MARGIN = han.BUDGET  # half a point, fixed before the run (as han's claim)


def _prune_as_han(s, cfg: dict, log: Log, tag: str) -> dict:
    """Han's chain on session `s`; leaves `s` at the step chosen on validation."""
    dense_val = s.snapshot("val").accuracy
    qualities = [cfg["quality_step"] * k for k in range(1, cfg["steps"] + 1)]
    steps: list[dict] = []

    def on_event(event) -> None:
        if isinstance(event, EpochEvent) and event.epoch == event.epochs:
            steps.append({"val_accuracy": event.val_accuracy, "compression": compression(s),
                          "state": {k: v.detach().clone()
                                    for k, v in s.model.state_dict().items()},
                          "masks": {k: v.clone() for k, v in (s.slot.masks or {}).items()}})

    s.prune_iteratively(std=qualities, finetune_epochs=cfg["finetune_epochs"], lr=han.FT_LR,
                        batch_size=han.BATCH, on_event=on_event)
    within = [r for r in steps if r["val_accuracy"] >= dense_val - han.BUDGET - 1e-9]
    best = max(within, key=lambda r: r["compression"], default=None)
    if best is None:
        log(f"{tag}: no pruning step within budget; quantizing the dense model")
        s.reset_pruning()
        return {"step": 0, "compression": 1.0}
    s.slot.set_base(best["state"])  # the chosen step's weights and masks, exactly
    s.pruning.install_masks(best["masks"])
    return {"step": steps.index(best) + 1, "compression": best["compression"]}


def run_model(model: str, quick: bool, seed: int, dataset: str, cfg: dict, log: Log) -> dict:
    s = make_session(seed, model=model, dataset=dataset)
    s.train(epochs=cfg["dense_epochs"], lr=han.LR, batch_size=han.BATCH)
    dense_test = test_accuracy(s)
    dense_bytes = s.measure("test", full=False).extra["bytes_dense"]
    tag = f"deep-compression {model} seed {seed}"
    pruned = _prune_as_han(s, cfg, log, tag)
    pruned_test = test_accuracy(s)
    s.quantize(bits=BITS[model], scheme="kmeans")
    quantized_test = test_accuracy(s)
    s.jobs.finetune_codebook(epochs=cfg["codebook_epochs"], lr=han.FT_LR, batch_size=han.BATCH)
    final = s.measure("test", full=False)
    log(f"{tag}: errors dense {1 - dense_test:.4f} pruned {1 - pruned_test:.4f} "
        f"quantized {1 - quantized_test:.4f} fine-tuned {1 - final.accuracy:.4f}; "
        f"{dense_bytes} -> {final.extra['bytes_huffman']} bytes")
    return {"dense_error": 1 - dense_test, "pruned_error": 1 - pruned_test,
            "quantized_error": 1 - quantized_test, "final_error": 1 - final.accuracy,
            "bytes_dense": dense_bytes, "bytes_huffman": final.extra["bytes_huffman"],
            "bytes_quantized": final.extra["bytes_quantized"],
            "ratio": dense_bytes / final.extra["bytes_huffman"],
            "prune_compression": pruned["compression"], "chosen_step": pruned["step"],
            "bits": BITS[model]}


def run(quick: bool = False, seed: int = 0, threads: int = 1, log: Log = quiet,
        dataset: str | None = None, settings: dict | None = None,
        models: tuple[str, ...] = MODELS) -> dict:
    """One seed: both models through prune -> share -> fine-tune centroids -> Huffman."""
    cfg = dict(settings or SETTINGS[quick])
    dataset = dataset or common.DATASET
    out: dict = {"seed": seed}
    for model in models:
        seeded(seed, threads)
        out[model] = run_model(model, quick, seed, dataset, cfg, log)
    out["settings"] = {**cfg, "bits": {m: BITS[m] for m in models}, "lr": han.LR,
                       "finetune_lr": han.FT_LR, "batch_size": han.BATCH, "quick": quick,
                       "threads": threads, "dataset": dataset, "models": list(models)}
    return out


KEYS = ("dense_error", "pruned_error", "quantized_error", "final_error", "ratio",
        "bytes_dense", "bytes_huffman", "prune_compression")


def combine(per_seed: list[dict]) -> dict:
    """Per model: means and intervals, and the claims (Holm over all of them)."""
    models = per_seed[0]["settings"]["models"]
    out: dict = {}
    claims = []
    for m in models:
        rows = [p[m] for p in per_seed]
        out[m] = {k: summarize([r[k] for r in rows]) for k in KEYS}
        final_vs_dense = paired([r["final_error"] for r in rows],
                                [r["dense_error"] for r in rows])
        tuned_vs_shared = paired([r["final_error"] for r in rows],
                                 [r["quantized_error"] for r in rows])
        ratio_vs_paper = paired([r["ratio"] for r in rows],
                                [PAPER[m]["ratio"]] * len(rows))
        out[m].update(final_vs_dense=final_vs_dense, tuned_vs_shared=tuned_vs_shared,
                      ratio_vs_paper=ratio_vs_paper)
        claims += [
            claim(f"{m}: prune + {bits_label(BITS[m])} sharing + Huffman raises the test "
                  f"error by no more than {NO_WORSE_MARGIN * 100:g} points (paper: "
                  f"{PAPER[m]['error_before']:.2%} -> {PAPER[m]['error_after']:.2%})",
                  final_vs_dense, "not higher", margin=NO_WORSE_MARGIN),
            claim(f"{m}: fine-tuning the centroids lowers the test error of the shared "
                  "weights", tuned_vs_shared, "lower"),
            claim(f"{m}: the size ratio to dense fp32 exceeds the paper's "
                  f"{PAPER[m]['ratio']:.0f}x", ratio_vs_paper, "higher", unit="x"),
        ]
    out["claims"] = holm(claims)
    return out


def _ratio(s: dict) -> str:
    return f"{s['mean']:.1f}x" if s["ci95_low"] is None else \
        f"{s['mean']:.1f}x [{s['ci95_low']:.1f}, {s['ci95_high']:.1f}]"


def format_result(result: dict) -> str:
    from .common import table

    rows = []
    for m in result["settings"]["models"]:
        r, p = result[m], PAPER[m]
        kb = f"{r['bytes_dense']['mean'] / 1e3:.0f} -> {r['bytes_huffman']['mean'] / 1e3:.1f}"
        rows += [(f"{m}: size kB, weights only", kb, f"{p['kb_before']} -> {p['kb_after']}"),
                 (f"{m}: ratio to dense fp32", _ratio(r["ratio"]), f"{p['ratio']:.0f}x"),
                 (f"{m}: test error dense (%)", fmt(r["dense_error"], digits=2),
                  f"{p['error_before']:.2%}"),
                 (f"{m}: pruned (%)", fmt(r["pruned_error"], digits=2), ""),
                 (f"{m}: shared {bits_label(BITS[m])} (%)", fmt(r["quantized_error"],
                                                                 digits=2), ""),
                 (f"{m}: + centroids tuned (%)", fmt(r["final_error"], digits=2),
                  f"{p['error_after']:.2%}")]
    return table(("Deep Compression (Han et al. 2016)", "ours", "paper"), rows)
