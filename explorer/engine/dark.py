"""Views of dark knowledge and of what distillation changed, from logits alone.

Pure functions over (logits, labels): the teacher's mean soft answers per true class,
calibration (expected calibration error), per-class accuracy under a logit bias, and
Hinton et al.'s bias correction for a class the student never saw, chosen on validation.
Nothing here trains or runs a model, so a temperature slider can call them per move.
"""

from __future__ import annotations

import torch

from .distill import softened

BIAS_GRID = tuple(round(0.25 * k, 2) for k in range(0, 81))  # 0, 0.25, ..., 20 (logits)


def dark_matrix(logits: torch.Tensor, y: torch.Tensor, n_classes: int,
                temperature: float) -> list[list[float]]:
    """Row c: the mean of softmax(logits / T) over the examples of true class c (a row of
    NaN for a class with no example)."""
    probs = softened(logits.float(), temperature)
    onehot = torch.nn.functional.one_hot(y.long(), n_classes).to(probs.dtype)
    counts = onehot.sum(0)
    sums = onehot.T @ probs
    matrix = sums / counts.unsqueeze(1)  # 0/0 -> NaN for an absent class
    return matrix.tolist()


def calibration(logits: torch.Tensor, y: torch.Tensor, bins: int = 15) -> dict:
    """Expected calibration error at T = 1 over `bins` equal-width confidence bins:
    ECE = sum_b (n_b / n) * |accuracy_b - mean confidence_b|, and the bins themselves
    (a bin with no example has count 0 and None for its accuracy and confidence)."""
    if not isinstance(bins, int) or isinstance(bins, bool) or not 1 <= bins <= 1000:
        raise ValueError(f"bins must be a whole number in 1..1000, got {bins!r}")
    probs = torch.softmax(logits.float(), dim=-1)
    confidence, predicted = probs.max(-1)
    correct = (predicted == y).float()
    # Bin b holds confidences in (b/B, (b+1)/B]; a confidence of exactly 0 cannot happen.
    which = torch.clamp(torch.ceil(confidence * bins).long() - 1, 0, bins - 1)
    n = len(y)
    ece, counts = 0.0, []
    accs: list[float | None] = []
    confs: list[float | None] = []
    for b in range(bins):
        members = which == b
        count = int(members.sum())
        counts.append(count)
        if count == 0:
            accs.append(None)
            confs.append(None)
            continue
        acc, conf = float(correct[members].mean()), float(confidence[members].mean())
        accs.append(acc)
        confs.append(conf)
        ece += count / n * abs(acc - conf)
    return {"ece": ece, "accuracy": float(correct.mean()),
            "bins": {"edges": [b / bins for b in range(bins + 1)], "count": counts,
                     "accuracy": accs, "confidence": confs}}


def biased(logits: torch.Tensor, bias: dict[int, float] | None) -> torch.Tensor:
    """`logits` with `bias[c]` added to class c's logit."""
    if not bias:
        return logits
    out = logits.clone()
    for cls, value in bias.items():
        out[:, cls] += value
    return out


def per_class_accuracy(logits: torch.Tensor, y: torch.Tensor, n_classes: int,
                       bias: dict[int, float] | None = None) -> list[float]:
    """Accuracy on the examples of each true class (NaN for a class with none)."""
    predicted = biased(logits, bias).argmax(-1)
    out = []
    for cls in range(n_classes):
        members = y == cls
        out.append(float((predicted[members] == cls).float().mean())
                   if bool(members.any()) else float("nan"))
    return out


def accuracy(logits: torch.Tensor, y: torch.Tensor,
             bias: dict[int, float] | None = None) -> float:
    return float((biased(logits, bias).argmax(-1) == y).float().mean())


def choose_bias(val_logits: torch.Tensor, val_y: torch.Tensor, cls: int,
                grid: tuple[float, ...] = BIAS_GRID) -> float:
    """The offset of class `cls`'s logit, from `grid`, with the best validation accuracy
    (ties: the smallest offset). Only validation data enters; test never does."""
    best, best_acc = grid[0], -1.0
    for value in grid:
        acc = accuracy(val_logits, val_y, {cls: value})
        if acc > best_acc + 1e-12:
            best, best_acc = value, acc
    return float(best)
