"""The whole state of a Session, copied and compared bit for bit (issue 19's tests)."""

from __future__ import annotations

import torch

from explorer import Session
from explorer.session.persist import plain


def fingerprint(s: Session) -> dict:
    """Every slot's tensors and settings, the history and the counters, copied."""
    def copy(value):
        if isinstance(value, torch.Tensor):
            return value.detach().clone()
        if isinstance(value, dict):
            return {k: copy(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [copy(v) for v in value]
        return value

    slots = {}
    for name, slot in getattr(s, "slots", {"teacher": s}).items():
        slots[name] = copy({"model": slot.model.state_dict(), "base": slot.base,
                            "masks": slot.masks, "original": slot.original,
                            "initial": slot.initial, "rewind": slot.rewind_states,
                            "undo": [(getattr(e, "base", e), getattr(e, "masks", None),
                                      getattr(e, "prune_config", None), getattr(e, "job", None))
                                     for e in slot.undo_stack],
                            "config": slot.prune_config, "epochs": slot.epochs_trained})
    return {"slots": slots, "history": plain(list(s.history)), "steps": s.jobs.total_steps,
            "selected": s.selected}


def same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k])
                                                                    for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and \
            all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and a != a:
        return b != b
    return a == b


def unchanged(before: dict, s: Session) -> None:
    after = fingerprint(s)
    for key in before:
        assert same(before[key], after[key]), f"{key} changed"
