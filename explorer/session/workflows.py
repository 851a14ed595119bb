"""Multi-step compression on top of a session: rewind, per-layer targets, export.

Functions over the session's public state (its lock and selected ModelSlot); Session
exposes them as rewind_state(), rewind_to(), prune_per_layer(), adopt_as_original()
and export(). Iterative pruning lives in explorer.session.iterative.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from pathlib import Path

import torch

from ..config import EXPORT_KINDS, PerLayerConfig, check_choice, check_targets
from ..engine.export import export_model
from ..engine.metrics import Snapshot
from ..engine.prune import MaskResult, layer_masks
from ..validate import check_masks, check_output_path
from .core import SessionCore
from .slots import State, clone_state


def rewind_state(session: SessionCore, rewind: str | int) -> State:
    """The weights `rewind` names: "init", or those after `rewind` training epochs."""
    if rewind == "init":
        return session.initial
    if isinstance(rewind, numbers.Integral) and not isinstance(rewind, bool) and \
            int(rewind) in session.rewind_states:
        return session.rewind_states[int(rewind)]
    raise ValueError(f"rewind must be None, 'init' or a recorded epoch "
                     f"{sorted(session.rewind_states)}; got {rewind!r}")


def rewind_to(session: SessionCore, rewind: str | int) -> None:
    """Reset survivors to the rewind weights; pruned entries keep their base values."""
    with session.lock:
        session.check_idle("rewinding")
        slot = session.slot
        target = rewind_state(session, rewind)
        new_base = clone_state(target)
        for name, mask in (slot.masks or {}).items():
            new_base[name] = torch.where(mask, target[name], slot.base[name])
        before = slot.undo_entry()
        slot.undo_stack.append(before)
        slot.set_base(new_base)
        slot.reapply(before.masks, before.prune_config)


def adopt_as_original(session: SessionCore) -> None:
    """Make the current dense base what reset() returns to (e.g. after first training)."""
    with session.lock:
        session.check_idle("adopting the base as the original")
        session.slot.original = clone_state(session.base)
        session.slot.undo_stack.clear()


def install_masks(session: SessionCore, masks: dict[str, torch.Tensor],
                  config: PerLayerConfig | None = None) -> Snapshot:
    """Apply the given masks (one per prunable weight, or fewer) to the dense base."""
    with session.lock:
        session.check_idle("installing masks")
        masks = check_masks(masks, session.base, session.slot.params_for())
        if config is None:
            pruned = sum(int((~m).sum()) for m in masks.values())
            total = sum(m.numel() for m in masks.values())
            config = PerLayerConfig(sparsity=pruned / max(total, 1), scope="layer")
        session.slot.install_masks(MaskResult(masks, {}), config)
        return session.engine_snapshot()


def prune_per_layer(session: SessionCore, targets: Mapping[str, float]) -> Snapshot:
    """Prune each named layer of the dense base to its own sparsity (others dense)."""
    targets = check_targets(targets, session.prunable)
    with session.lock:
        session.check_idle("pruning")
        result = layer_masks(session.slot.index, targets)
        pruned = sum(int((~m).sum()) for m in result.masks.values())
        total = sum(m.numel() for m in result.masks.values())
        config = PerLayerConfig(sparsity=pruned / max(total, 1), scope="layer",
                                targets=tuple(sorted(targets.items())))
        session.slot.install_masks(result, config)
        return session.engine_snapshot()


def export_session(session: SessionCore, path: str | Path, kind: str = "masked") -> dict:
    """Write the selected model as masked | zeros | shrunk (see explorer.engine.export)."""
    check_choice("kind", kind, EXPORT_KINDS)
    path = check_output_path("path", path)
    with session.lock:
        masks = session.masks or {n: torch.ones_like(session.base[n], dtype=torch.bool)
                                  for n in session.prunable}
        return export_model(path, session.model, kind, base=session.base, masks=masks)
