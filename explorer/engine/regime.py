"""Distillation regimes: which training images a student sees, and with which targets.

A regime (DESIGN section 4, "Distillation regimes") has two knobs:

- `labelled`: the fraction of the transfer set whose labels the student sees, drawn per
  class (stratified) with the regime's seed. The distilled student gets the teacher's soft
  answers on the whole transfer set; the student alone trains on the labelled rows only;
  a third student gets the labels where labelled and the teacher's argmax elsewhere.
- `leave_out`: a class with no example in the student's transfer set (Hinton et al.'s
  missing digit). The teacher still saw it; the student can learn of it only through the
  teacher's soft answers on the other classes' images.

The loss on a mixed batch (labelled and unlabelled rows) of the distilled student:

    L = (1 - alpha) * mean_{labelled i} CE(y_i, softmax(z_s,i))
        + alpha * [T**2] * mean_{all i} KL(softmax(z_t,i / T) || softmax(z_s,i / T))

so an unlabelled row contributes the soft term only, and a batch without a labelled row
has no hard term (its CE would be 0/0). With labelled = 1 this is explorer.engine.distill's
kd_loss exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..config import LABELLED_MIN, check_number
from ..data.datasets import Split
from .distill import soft_kl
from .train import LossFn

NO_LABEL = -1  # the target of a row whose label the student does not see


@dataclass(frozen=True)
class Regime:
    """What the student's training set holds (see the module doc)."""

    labelled: float = 1.0
    leave_out: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        check_number("labelled", self.labelled, LABELLED_MIN, 1.0)
        if self.leave_out is not None:
            check_number("leave_out", self.leave_out, 0, 10**6, integer=True)
        check_number("regime seed", self.seed, 0, 2**63 - 1, integer=True)

    @property
    def full(self) -> bool:
        """All labels and no class left out: the plain setting (no subset)."""
        return self.labelled >= 1.0 and self.leave_out is None

    def describe(self, classes: list[str] | None = None) -> str:
        """The regime in words, shown wherever a result is shown."""
        if self.labelled >= 1.0:
            text = "all labels"
        else:
            text = (f"student sees labels for {self.labelled:.0%} of the images; "
                    "the teacher's soft answers for all")
        if self.leave_out is not None:
            name = (classes[self.leave_out] if classes is not None
                    and self.leave_out < len(classes) else str(self.leave_out))
            text += f"; class {name} left out of the student's transfer set"
        return text

    def to_dict(self) -> dict:
        return {"labelled": self.labelled, "leave_out": self.leave_out, "seed": self.seed}


@dataclass(frozen=True)
class SubsetSplit(Split):
    """Some rows of a split; `rows[i]` is row i's position in the original split, so a
    loss that gets sample indices of the subset can look up per-row data of the original
    (cached teacher outputs, the labelled mask)."""

    rows: torch.Tensor


@dataclass(frozen=True)
class RegimeRows:
    """Original-split positions: the transfer set and its labelled part (sorted)."""

    transfer: torch.Tensor
    labelled: torch.Tensor


def select_rows(regime: Regime, y: torch.Tensor, n_classes: int) -> RegimeRows:
    """The transfer set (every row not of the left-out class) and, per class, a seeded
    round(labelled * n_c) of its rows (at least one) that keep their labels."""
    if regime.leave_out is not None and regime.leave_out >= n_classes:
        raise ValueError(f"leave_out must be a class in 0..{n_classes - 1}, got "
                         f"{regime.leave_out}")
    y = y.cpu()
    keep = torch.ones_like(y, dtype=torch.bool)
    if regime.leave_out is not None:
        keep &= y != regime.leave_out
    transfer = torch.nonzero(keep).flatten()
    if transfer.numel() == 0:
        raise ValueError("the regime leaves no training image for the student")
    generator = torch.Generator().manual_seed(regime.seed)
    chosen = []
    for cls in range(n_classes):
        members = transfer[y[transfer] == cls]
        if members.numel() == 0:
            continue
        count = max(1, round(regime.labelled * members.numel()))
        order = torch.randperm(members.numel(), generator=generator)
        chosen.append(members[order[:count]])
    labelled = torch.sort(torch.cat(chosen)).values
    return RegimeRows(transfer, labelled)


def subset(split: Split, rows: torch.Tensor, y: torch.Tensor | None = None) -> SubsetSplit:
    """The rows `rows` of `split` (targets `y[rows]` when given, else the split's)."""
    index = rows.to(split.x.device)
    targets = (split.y if y is None else y.to(split.y.device))[index]
    return SubsetSplit(split.x[index], targets, rows.to(split.x.device))


def masked_targets(y: torch.Tensor, labelled: torch.Tensor) -> torch.Tensor:
    """`y` with NO_LABEL on every row not in `labelled`: what the distilled student may
    read (its loss never sees the hidden labels)."""
    out = torch.full_like(y, NO_LABEL)
    index = labelled.to(y.device)
    out[index] = y[index]
    return out


def hard_targets(y: torch.Tensor, labelled: torch.Tensor,
                 teacher_logits: torch.Tensor) -> torch.Tensor:
    """Labels where labelled, the teacher's argmax elsewhere (the third student's)."""
    out = teacher_logits.argmax(-1).to(y.dtype).to(y.device)
    index = labelled.to(y.device)
    out[index] = y[index]
    return out


def partial_kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                    targets: torch.Tensor, temperature: float, alpha: float,
                    t_squared: bool = True) -> torch.Tensor:
    """The module doc's loss: hard term over rows whose target is not NO_LABEL only."""
    has_label = targets != NO_LABEL
    scale = temperature ** 2 if t_squared else 1.0
    soft = alpha * scale * soft_kl(student_logits, teacher_logits.detach(), temperature)
    if not bool(has_label.any()):
        return soft
    hard = F.cross_entropy(student_logits[has_label], targets[has_label])
    return (1.0 - alpha) * hard + soft


def regime_kd_loss(train: SubsetSplit, teacher_logits: torch.Tensor, targets: torch.Tensor,
                   temperature: float, alpha: float, t_squared: bool) -> LossFn:
    """A train_steps loss over `train`: `teacher_logits` and `targets` (masked_targets)
    are rows of the original split, looked up through train.rows by sample index."""
    rows = train.rows

    def loss_fn(out: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
                index: torch.Tensor) -> torch.Tensor:
        original = rows[index]
        return partial_kd_loss(out, teacher_logits[original], targets[original],
                               temperature, alpha, t_squared)

    return loss_fn
