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
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..config import EPOCHS_MAX, PruneConfig, check_number
from ..engine.metrics import Snapshot
from ..engine.prune import MagnitudeIndex, MaskResult, _cut, _mask_dropping, n_to_prune

if TYPE_CHECKING:
    from ..session.session import Session

DEFAULT_SPARSITIES = (0.0, 0.2, 0.4, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98)


@dataclass(frozen=True)
class PerLayerConfig(PruneConfig):
    """A per-layer sparsity request; `sparsity` holds the overall pruned fraction.

    Note: code that re-applies a PruneConfig by mode/value (analysis.restore_pruning)
    re-prunes uniformly at that overall fraction, not per layer.
    """

    targets: tuple[tuple[str, float], ...] = ()


def check_targets(targets: Mapping[str, float], prunable: Sequence[str]) -> dict[str, float]:
    """Validated {layer: sparsity}; unknown names or bad values raise ValueError."""
    if not isinstance(targets, Mapping) or not targets:
        raise ValueError(f"targets must map layer names to sparsities; got {targets!r}")
    for name in targets:
        if name not in prunable:
            raise ValueError(f"unknown layer {name!r}; prunable layers: {', '.join(prunable)}")
    return {n: check_number(f"sparsity of {n}", s, 0.0, 1.0) for n, s in targets.items()}


def layer_masks(index: MagnitudeIndex, targets: Mapping[str, float]) -> MaskResult:
    """Masks pruning round(s * n) smallest |w| of each named layer; others stay dense."""
    masks, cuts = {}, {}
    for name, w in index.weights.items():
        sparsity = targets.get(name, 0.0)
        sorted_mags, order = index.layer(name)
        k = n_to_prune(sparsity, w.numel())
        masks[name], cuts[name] = _mask_dropping(order, k, w.shape), _cut(sorted_mags, k)
    return MaskResult(masks, cuts)


def prune_per_layer(session: Session, targets: Mapping[str, float]) -> Snapshot:
    """Prune each named layer of the dense base to its own sparsity (others dense)."""
    targets = check_targets(targets, session.prunable)
    with session._lock:
        index = MagnitudeIndex({n: session.base[n] for n in session.prunable})
        result = layer_masks(index, targets)
        pruned = sum(int((~m).sum()) for m in result.masks.values())
        total = sum(m.numel() for m in result.masks.values())
        config = PerLayerConfig(sparsity=pruned / max(total, 1), scope="layer",
                                targets=tuple(sorted(targets.items())))
        session._install_masks(result, config)
        return session.engine_snapshot()


def _saved(session: Session) -> dict:
    """What a sensitivity run may change, to be put back exactly."""
    return {"masks": session.masks, "config": session.prune_config, "cuts": session.cuts,
            "warnings": session.warnings, "stack": list(session.undo_stack),
            "base": session.base,
            "history": len(session.history), "total_steps": session.total_steps,
            "epochs": getattr(session, "epochs_trained", None),
            "rewind": dict(getattr(session, "rewind_states", {}))}


def _restore(session: Session, saved: dict) -> None:
    # By value, not by undo() count: the undo stack is bounded (explorer.session.bounded), so at
    # its limit a fine-tune drops the oldest entry and the depth does not grow.
    if session.base is not saved["base"]:
        session.undo_stack[:] = saved["stack"]
        session._set_base(saved["base"])
    result = MaskResult(saved["masks"] or {}, saved["cuts"], saved["warnings"])
    if saved["masks"] is None:
        session.reset_pruning()
    else:
        session._install_masks(result, saved["config"])
    del session.history[saved["history"]:]
    session.total_steps = saved["total_steps"]
    if saved["epochs"] is not None:
        session.epochs_trained, session.rewind_states = saved["epochs"], saved["rewind"]


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
    names = list(session.prunable if layers is None else layers)
    check_targets(dict.fromkeys(names, 0.0), session.prunable)
    out: dict = {"sparsities": levels, "layers": {n: [] for n in names},
                 "finetune_epochs": finetune_epochs, "split": "val"}
    total, done = len(names) * len(levels), 0
    # The lock is taken per step, not for the whole run, so a UI can read snapshots
    # between points (as analysis.finetuned_sweep does); don't start other jobs meanwhile.
    with session._lock:
        saved = _saved(session)
    try:
        session.reset_pruning()
        out["dense_accuracy"] = session.snapshot("val").accuracy
        for name in names:
            for level in levels:
                if stop is not None and stop.is_set():
                    return out
                acc = _one_point(session, name, level, finetune_epochs, lr, stop,
                                 on_event, saved)
                out["layers"][name].append(acc)
                done += 1
                if on_event is not None:
                    on_event({"layer": name, "sparsity": level, "accuracy": acc,
                              "done": done, "total": total})
    finally:
        with session._lock:
            _restore(session, saved)
    return out


def _one_point(session: Session, name: str, level: float, epochs: int, lr: float,
               stop: threading.Event | None, on_event: Callable | None,
               saved: dict) -> float | None:
    prune_per_layer(session, {name: level})
    if epochs:
        session.train(epochs=epochs, lr=lr, stop=stop, on_event=on_event)
    accuracy = session.snapshot("val").accuracy
    if session.base is not saved["base"]:  # back to the dense base before the next point
        with session._lock:
            session.undo_stack[:] = saved["stack"]
            session._set_base(saved["base"])
    return accuracy


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


def total_sparsity(session: Session, targets: Mapping[str, float]) -> float:
    """Overall pruned fraction of prunable weights that `targets` would give."""
    sizes = {n: session.base[n].numel() for n in session.prunable}
    pruned = sum(n_to_prune(targets.get(n, 0.0), k) for n, k in sizes.items())
    return pruned / max(sum(sizes.values()), 1)
