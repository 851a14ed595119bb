"""What a distillation run shows beyond accuracy: dark knowledge, calibration, per-class
accuracy, and the bias correction for a class left out of the student's transfer set.

Functions over a session's public state (logic in explorer.engine.dark); Session exposes
them as dark_knowledge(), calibration(), per_class_accuracy(), bias_correction() and
regime(). Nothing is trained; the teacher's outputs come from its cache.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ..config import (
    DEFAULT_LEAVE_OUT_CLASS,
    TEMPERATURE_MAX,
    TEMPERATURE_MIN,
    check_choice,
    check_number,
)
from ..engine import dark
from ..engine.distill import agreement
from ..engine.regime import Regime
from .slots import SLOT_NAMES
from .students import slot_outputs

if TYPE_CHECKING:
    from .host import Host

SPLITS = ("train", "val", "test")


def _classification(session: Host, what: str) -> None:
    if session.data.task != "classification" or session.is_lm:
        raise ValueError(f"{what} applies to classification; this session's task is "
                         f"{'language modelling' if session.is_lm else session.data.task}")


def class_names(session: Host) -> list[str]:
    return [str(c) for c in range(session.data.n_outputs)]


def outputs(session: Host, slot: str, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, labels) of `slot` on `split`; the teacher's come from its cache."""
    check_choice("slot", slot, SLOT_NAMES)
    check_choice("split", split, SPLITS)
    data = session.data.split(split)
    with session.lock:
        if slot == "teacher":
            logits = session.students.teacher_cache.outputs(session.slots.model("teacher"), split,
                                                   data.x)
        else:
            session.slots.model(slot)  # ValueError naming an empty slot
            logits = slot_outputs(session, (slot,), data.x)[0]
    return logits.detach().float().cpu(), data.y.cpu()


def dark_knowledge(session: Host, temperature: float, split: str = "val") -> dict:
    """The teacher's mean softmax(logits / T) per true class (rows) over `split`."""
    _classification(session, "dark_knowledge")
    temperature = check_number("temperature", temperature, TEMPERATURE_MIN, TEMPERATURE_MAX)
    logits, y = outputs(session, "teacher", split)
    return {"temperature": temperature, "split": split, "classes": class_names(session),
            "matrix": dark.dark_matrix(logits, y, session.data.n_outputs, temperature)}


def calibration(session: Host, slot: str, split: str = "val", bins: int = 15) -> dict:
    """ECE (T = 1, equal-width bins), accuracy and agreement with the teacher of `slot`."""
    _classification(session, "calibration")
    logits, y = outputs(session, slot, split)
    teacher, _ = outputs(session, "teacher", split)
    return {"slot": slot, "split": split, **dark.calibration(logits, y, bins),
            "teacher_agreement": agreement(logits, teacher)}


def check_bias(session: Host, bias: dict | None) -> dict[int, float] | None:
    if bias is None:
        return None
    if not isinstance(bias, dict):
        raise ValueError(f"bias must be a dict {{class: logit offset}}, got {bias!r}")
    n = session.data.n_outputs
    return {int(check_number("bias class", c, 0, n - 1, integer=True)):
            check_number(f"bias of class {c}", v, -1e4, 1e4) for c, v in bias.items()}


def per_class_accuracy(session: Host, slot: str, split: str = "val",
                       bias: dict | None = None) -> list[float]:
    """Accuracy of `slot` on each true class of `split`, its logits offset by `bias`."""
    _classification(session, "per_class_accuracy")
    checked = check_bias(session, bias)
    logits, y = outputs(session, slot, split)
    return dark.per_class_accuracy(logits, y, session.data.n_outputs, checked)


def regime(session: Host, slot: str) -> Regime | None:
    """The regime a student slot trained under (None: an empty slot or the teacher)."""
    check_choice("slot", slot, SLOT_NAMES)
    if slot == "teacher" or slot not in session.slots:
        return None
    saved = session.slots[slot].config.get("regime")
    return Regime() if saved is None else Regime(**saved)


def bias_correction(session: Host, slot: str = "student", cls: int | None = None) -> dict:
    """Hinton et al.'s correction: raise class `cls`'s logit bias by the grid value with
    the best validation accuracy; report before and after on validation and test.

    `cls` defaults to the class the slot's regime left out, else DEFAULT_LEAVE_OUT_CLASS.
    The test split is read only after the value is chosen.
    """
    _classification(session, "bias_correction")
    if cls is None:
        trained = regime(session, slot)
        cls = trained.leave_out if trained is not None and trained.leave_out is not None \
            else DEFAULT_LEAVE_OUT_CLASS
    n = session.data.n_outputs
    cls = int(check_number("cls", cls, 0, n - 1, integer=True))
    val_logits, val_y = outputs(session, slot, "val")
    value = dark.choose_bias(val_logits, val_y, cls)
    test_logits, test_y = outputs(session, slot, "test")
    after = {cls: value}
    return {"slot": slot, "class": cls, "bias": value,
            "per_class_before": dark.per_class_accuracy(test_logits, test_y, n),
            "per_class_after": dark.per_class_accuracy(test_logits, test_y, n, after),
            "val_accuracy_before": dark.accuracy(val_logits, val_y),
            "val_accuracy_after": dark.accuracy(val_logits, val_y, after),
            "test_accuracy_before": dark.accuracy(test_logits, test_y),
            "test_accuracy_after": dark.accuracy(test_logits, test_y, after)}
