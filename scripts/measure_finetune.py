"""Measure the Prune-and-fine-tune defaults (issue 15): 90% target, mean of 3 seeds.

    PYTHONPATH=. python scripts/measure_finetune.py digits:mlp,mnist-5k:lenet300

For each data set and model, each candidate (steps, schedule, fine-tune epochs, lr) is run
from a dense model (the shipped checkpoint, else 10 epochs of training) with seeds 0-2;
it prints the mean dense and final test accuracy, the gap in points, and the slowest run.
The chosen defaults live in explorer/config.py (FINETUNE_*).
"""

from __future__ import annotations

import json
import sys
import time

import torch

from explorer import Session
from explorer import config as C

CANDIDATES = [
    dict(steps=3, schedule="agp", finetune_epochs=2, lr=1e-4),  # the old app default
    dict(steps=3, schedule="agp", finetune_epochs=2, lr=1e-3),
    dict(steps=3, schedule="agp", finetune_epochs=5, lr=1e-3),
    dict(steps=C.FINETUNE_STEPS, schedule=C.FINETUNE_SCHEDULE,
         finetune_epochs=C.FINETUNE_EPOCHS, lr=1e-3 * C.FINETUNE_LR_FACTOR),  # chosen
]


def main(setups: str) -> None:
    torch.set_num_threads(1)
    for pair in setups.split(","):
        dataset, model = pair.split(":")
        for candidate in CANDIDATES:
            rows = []
            for seed in (0, 1, 2):
                session = Session(dataset, model, seed=seed, device="cpu")
                if not session.pretrained:
                    session.train(epochs=10, lr=1e-3)
                dense = session.snapshot("test").accuracy
                start = time.perf_counter()
                session.prune_iteratively(0.9, **candidate)
                rows.append((dense, session.snapshot("test").accuracy,
                             time.perf_counter() - start))
            dense = sum(r[0] for r in rows) / 3
            after = sum(r[1] for r in rows) / 3
            print(json.dumps({"dataset": dataset, "model": model, **candidate,
                              "dense": round(dense, 4), "after": round(after, 4),
                              "gap_points": round(100 * (dense - after), 2),
                              "slowest_s": round(max(r[2] for r in rows), 1)}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "digits:mlp,mnist-5k:lenet300")
