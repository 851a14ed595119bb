"""Choose the default distillation regime (issue 25) by measurement.

    PYTHONPATH=. python scripts/choose_distill_default.py search  [digits,mnist-5k]
    PYTHONPATH=. python scripts/choose_distill_default.py confirm [digits,mnist-5k] L W T A E

search: each candidate (labelled fraction, student width, T, alpha, epochs) with seeds
0-4, scored on the VALIDATION split: distilled minus alone (points), its 95% interval,
and the hard-label student. confirm: one configuration with seeds 5-9 on the TEST split.
The teacher is the shipped checkpoint on digits, and an MLP trained once (seed 0,
20 epochs) on mnist-5k; the data split is seed 0's (the teacher's), so test rows never
trained the teacher. A seed changes the student's init, batch order and labelled rows.
Prints one JSON line per configuration with its wall time.
"""

from __future__ import annotations

import json
import sys
import time

import torch

from explorer import Session
from explorer.session.distill_views import outputs
from explorer.studies.stats import paired

CANDIDATES = [  # (labelled, width, T, alpha, epochs)
    (0.1, 0.25, 4.0, 0.7, 20),
    (0.1, 0.25, 4.0, 0.7, 40),
    (0.1, 0.25, 2.0, 0.7, 20),
    (0.1, 0.25, 8.0, 0.7, 20),
    (0.1, 0.25, 4.0, 0.9, 20),
    (0.05, 0.25, 4.0, 0.7, 20),
    (0.2, 0.25, 4.0, 0.7, 20),
]


def teacher_session(dataset: str) -> Session:
    torch.manual_seed(0)
    session = Session(dataset, "mlp", seed=0)
    if not session.pretrained:
        session.train(epochs=20)
    return session


def accuracy(session: Session, slot: str, split: str) -> float:
    logits, y = outputs(session, slot, split)
    return float((logits.argmax(-1) == y).float().mean())


def score(session: Session, config: tuple, seeds: range, split: str) -> dict:
    labelled, width, temperature, alpha, epochs = config
    runs: dict[str, list[float]] = {"alone": [], "distilled": [], "hard": []}
    start = time.perf_counter()
    for seed in seeds:
        common = {"epochs": epochs, "seed": seed, "labelled": labelled}
        session.train_student_alone(width, **common)
        session.train_student_hard(width, **common)
        session.distill(width, temperature=temperature, alpha=alpha, **common)
        for name, slot in (("alone", "student_alone"), ("distilled", "student"),
                           ("hard", "student_hard")):
            runs[name].append(accuracy(session, slot, split))
    diff = paired(runs["distilled"], runs["alone"])
    soft = paired(runs["distilled"], runs["hard"])
    return {"dataset": session.data.name, "split": split, "labelled": labelled,
            "width": width, "T": temperature, "alpha": alpha, "epochs": epochs,
            "seeds": [seeds.start, seeds.stop - 1],
            "teacher": accuracy(session, "teacher", split),
            **{f"{k}_mean": sum(v) / len(v) for k, v in runs.items()},
            "distilled_minus_alone": [round(100 * diff[k], 2)
                                      for k in ("mean_diff", "ci95_low", "ci95_high")],
            "distilled_minus_hard": [round(100 * soft[k], 2)
                                     for k in ("mean_diff", "ci95_low", "ci95_high")],
            "wall_s": round(time.perf_counter() - start, 1)}


def main(argv: list[str]) -> None:
    torch.set_num_threads(1)
    mode = argv[0]
    datasets = (argv[1] if len(argv) > 1 else "digits,mnist-5k").split(",")
    if mode == "search":
        configs, seeds, split = CANDIDATES, range(0, 5), "val"
    else:
        configs = [(float(argv[2]), float(argv[3]), float(argv[4]), float(argv[5]),
                    int(argv[6]))]
        seeds, split = range(5, 10), "test"
    for dataset in datasets:
        session = teacher_session(dataset)
        for config in configs:
            print(json.dumps(score(session, config, seeds, split)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
