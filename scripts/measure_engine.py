"""Numbers for issue 3: LeNet-300-100 on mnist-5k, dense vs pruned, shrunk vs dense.

Run: PYTHONPATH=. python scripts/measure_engine.py [--threads 1] [--json out.json]
Accuracy is reported on validation (what we tune on) and test (what we report).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from explorer import Session
from explorer.engine.structure import count_params


def accuracies(session: Session) -> dict[str, float]:
    return {"val": session.snapshot("val").accuracy, "test": session.snapshot("test").accuracy}


@torch.inference_mode()
def latency_ms(model: torch.nn.Module, x: torch.Tensor, repeats: int) -> float:
    """Median wall time of one forward pass, after warm-up."""
    model.eval()
    for _ in range(10):
        model(x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model(x)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out: dict = {"threads": args.threads}
    session = Session("mnist-5k", "lenet300", seed=0)
    session.train(epochs=args.epochs, lr=1e-3)  # Adam
    session.adopt_as_original()
    out["dense"] = accuracies(session)
    session.prune(sparsity=0.9)  # one-shot, per layer, no fine-tuning
    out["oneshot90_layer"] = accuracies(session)
    session.prune(sparsity=0.9, scope="global")
    out["oneshot90_global"] = accuracies(session)
    session.reset()
    final = session.prune_iteratively(0.9, steps=3, schedule="agp", finetune_epochs=3, lr=1e-3)
    out["agp90_finetuned"] = accuracies(session) | {"sparsity": final.sparsity}

    session.reset()
    dense_model = session.shrink()  # nothing pruned: an identical plain copy
    snap = session.prune(sparsity=0.5, structured=True)
    out["structured50_no_finetune"] = accuracies(session) | {
        "param_fraction_removed": snap.extra["param_fraction_removed"]}
    small = session.shrink()
    with tempfile.TemporaryDirectory() as tmp:
        session.export(Path(tmp) / "shrunk.pt", kind="shrunk")
        torch.save(dense_model.state_dict(), Path(tmp) / "dense.pt")
        sizes = {k: (Path(tmp) / f"{k}.pt").stat().st_size for k in ("dense", "shrunk")}
    x = session.data.test.x
    with torch.no_grad():
        diff = float((small(x) - session.model(x)).abs().max())
    out["structured50"] = {
        "params": {"dense": count_params(dense_model), "shrunk": count_params(small)},
        "file_bytes": sizes,
        "max_abs_diff_vs_masked": diff,
        "latency_ms": {f"batch{b}": {
            "dense": latency_ms(dense_model, x[:b], 300 if b == 1 else 100),
            "shrunk": latency_ms(small, x[:b], 300 if b == 1 else 100)} for b in (256, 1)},
    }
    session.train(epochs=3, lr=1e-3)
    out["structured50_finetuned3"] = accuracies(session)
    text = json.dumps(out, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
