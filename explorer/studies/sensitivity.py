"""Per-layer sensitivity analysis (as Distiller did) and per-layer sparsity targets.

`sensitivity` prunes one layer at a time from the dense base to each sparsity, optionally
fine-tunes, records validation accuracy, and leaves the session exactly as it found it.
`derive_budget` turns the curves into per-layer targets for an accuracy budget, and
`layer_masks` / `prune_per_layer` apply such targets (the one addition to the pruning
path: a different sparsity per layer, which PruneConfig cannot express).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from ..config import EPOCHS_MAX, check_number, check_targets

if TYPE_CHECKING:
    from ..session.session import Session

DEFAULT_SPARSITIES = (0.0, 0.2, 0.4, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98)


def sensitivity(session: Session, sparsities: Sequence[float] = DEFAULT_SPARSITIES,
                finetune_epochs: int = 0, layers: Sequence[str] | None = None,
                lr: float = 1e-4, stop: threading.Event | None = None,
                on_event: Callable | None = None) -> dict:
    """Validation accuracy with one layer pruned at a time, for each sparsity.

    Returns {"sparsities", "layers": {name: [accuracy, ...]}, "dense_accuracy",
    "finetune_epochs", "split": "val"}. `on_event` gets training events and, after each
    point, a dict {"layer", "sparsity", "accuracy", "done", "total"}. A stopped run returns
    the points measured so far. The session (base, masks, history) is restored exactly.
    """
    if not sparsities:
        raise ValueError("sparsities must name at least one level; got an empty list")
    levels = [check_number("sparsity", s, 0.0, 1.0) for s in sparsities]
    finetune_epochs = int(check_number("finetune_epochs", finetune_epochs, 0, EPOCHS_MAX,
                                       integer=True))
    names = list(session.slot.prunable if layers is None else layers)
    check_targets(dict.fromkeys(names, 0.0), session.slot.prunable)
    out: dict = {"sparsities": levels, "layers": {n: [] for n in names},
                 "finetune_epochs": finetune_epochs, "split": "val"}
    total, done = len(names) * len(levels), 0
    # The lock is taken per step, not for the whole run, so a UI can read snapshots
    # between points; the job mark keeps other threads from pruning meanwhile.
    with session.jobs.job("layer sensitivity"), session.trial():
        session.reset_pruning()
        out["dense_accuracy"] = session.snapshot("val").accuracy
        for name in names:
            for level in levels:
                if stop is not None and stop.is_set():
                    return out
                with session.trial():  # each point starts from the dense base
                    session.pruning.per_layer({name: level})
                    if finetune_epochs:
                        session.train(epochs=finetune_epochs, lr=lr, stop=stop,
                                      on_event=on_event)
                    acc = session.snapshot("val").accuracy
                out["layers"][name].append(acc)
                done += 1
                if on_event is not None:
                    on_event({"layer": name, "sparsity": level, "accuracy": acc,
                              "done": done, "total": total})
    return out


def derive_budget(result: Mapping, max_drop: float) -> dict[str, float]:
    """Per-layer sparsity targets: for each layer the highest tested sparsity such that it
    and every lower tested level keep accuracy >= dense - max_drop (accuracy fraction)."""
    max_drop = check_number("max_drop", max_drop, 0.0, 1.0)
    if "layers" not in result or "sparsities" not in result:
        raise ValueError("result must be what sensitivity() returned")
    floor = result["dense_accuracy"] - max_drop - 1e-9  # float32 accuracies: no false miss
    targets = {}
    for name, accs in result["layers"].items():
        best = 0.0
        for level, acc in sorted(zip(result["sparsities"], accs)):
            if acc is None or acc < floor:
                break
            best = level
        targets[name] = best
    return targets


def sensitivity_table(result: Mapping) -> str:
    """Plain-text table: one row per layer, one column per sparsity (validation accuracy)."""
    levels = result["sparsities"]
    width = max([len("layer"), *(len(n) for n in result["layers"])])
    head = "layer".ljust(width) + "".join(f"{s:>8.0%}" for s in levels)
    rows = [n.ljust(width) + "".join("       -" if a is None else f"{a:>8.2%}" for a in accs)
            for n, accs in result["layers"].items()]
    return "\n".join([head, "-" * len(head), *rows])

