"""What the three reproductions share: the data set, sessions, test accuracy, seeds."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from ..engine.train import evaluate

if TYPE_CHECKING:
    from ..session.session import Session

DATASET = "mnist-5k"
DATA_NOTE = ("Our data set is mnist-5k: a 5,000-image subset of MNIST (3,000 train / "
             "1,000 validation / 1,000 test, a seeded split per seed), not the full "
             "60,000 / 10,000 the papers used. Figures are means over seeds with 95% "
             "t-intervals in brackets; one accuracy on 1,000 images has a standard error "
             "near 0.8 points.")

Log = Callable[[str], None]


def quiet(_: str) -> None:
    return None


def seeded(seed: int, threads: int) -> None:
    """Fix the torch thread count and the global seed (results differ between 1 and 2
    threads, DESIGN section 4)."""
    torch.set_num_threads(threads)
    torch.manual_seed(seed)


def split_accuracy(model: torch.nn.Module, data, split: str, task: str) -> float:
    with torch.no_grad():
        accuracy = evaluate(model, data.split(split), task)[1]
    if accuracy is None:
        raise ValueError(f"accuracy needs a classification task; got {task!r}")
    return float(accuracy)


def test_accuracy(session: Session) -> float:
    """Accuracy of the selected model on the test split."""
    return split_accuracy(session.model, session.data, "test", session.data.task)


def make_session(seed: int, hidden: tuple[int, ...] | None = None, model=None,
                 dataset: str | None = None):
    """A fresh, untrained LeNet-300-100 (or `hidden` widths, or `model`) on mnist-5k."""
    from ..session.session import Session

    return Session(dataset or DATASET, "lenet300" if model is None else model, seed=seed,
                   pretrained=False, hidden=hidden, device="cpu")


def kept_per_layer(session: Session) -> dict[str, float]:
    params = dict(session.model.named_parameters())
    return {n: float(torch.count_nonzero(params[n])) / params[n].numel()
            for n in session.slot.prunable}


def compression(session: Session) -> float:
    """All parameters over nonzero parameters (biases included), as Han et al. count."""
    params = list(session.model.parameters())
    total = sum(p.numel() for p in params)
    return total / max(sum(int(torch.count_nonzero(p)) for p in params), 1)


def table(head: tuple[str, ...], rows: list[tuple]) -> str:
    cells = [tuple(str(c) for c in r) for r in [head, *rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                       for i, (c, w) in enumerate(zip(r, widths))) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
