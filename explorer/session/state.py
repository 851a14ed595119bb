"""The plain values a model slot keeps: a state (name -> tensor), masks, and the undo
entry one Undo brings back. Below explorer.session.slots and .quant, so that the
protocols quant is typed against (explorer.session.quant_host) can name them."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import PruneConfig
from .quant_setting import QUANT_UNKNOWN, QuantSetting

State = dict[str, torch.Tensor]
Masks = dict[str, torch.Tensor]


def clone_state(state: State) -> State:
    """A detached copy of every tensor (states are never shared between owners)."""
    return {k: v.detach().clone() for k, v in state.items()}


def same_state(a: State, b: State) -> bool:
    """The same names, shapes, dtypes and bits."""
    return a.keys() == b.keys() and all(
        a[k].dtype == b[k].dtype and a[k].shape == b[k].shape and torch.equal(a[k], b[k])
        for k in a)


@dataclass(frozen=True)
class UndoEntry:
    """What one Undo brings back: the dense base and the pruning in force before a job,
    and the id of that job (its history records carry it, so Undo removes them too)."""

    base: State
    masks: Masks | None = None
    prune_config: PruneConfig | None = None
    cuts: dict[str, float] | None = None
    warnings: tuple[str, ...] = ()
    job: int | None = None
    # the quantization in force before the job (explorer.session.quant); QUANT_UNKNOWN
    # (an entry saved before the setting was recorded) keeps the current one
    quant: QuantSetting | None | str = QUANT_UNKNOWN
    # a reset's entry (Session.reset(keep_undo=True)): the whole history before it, whose
    # records of the jobs it threw away come back with its Undo (not saved to files)
    history: tuple[dict, ...] | None = None

