"""Session.pruning: masks beyond the slider, lottery-ticket rewinds, the original base.

Per-layer targets, given masks, rewinding survivors to early weights, adopting the base
as the original, and the bytes of the shrunk model. Every change acts on the selected
ModelSlot under the session's lock and refuses while a job runs in another thread.
Iterative pruning lives in explorer.session.iterative (Session.prune_iteratively).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..config import EXPORT_KINDS, PerLayerConfig, check_choice, check_number, check_targets
from ..engine import checkpoint as ckpt
from ..engine.export import export_model
from ..engine.measure import bytes_dense
from ..engine.metrics import Snapshot
from ..engine.prune import MaskResult, layer_masks, value_for
from ..files import atomic_folder
from ..validate import check_masks, check_output_path
from . import calibrated, core, language
from .slots import State, clone_state

if TYPE_CHECKING:
    from .host import Host


class Pruning:
    """per_layer, install_masks, one_shot, rewind_state, rewind_to, adopt_as_original,
    bytes_shrunk, value_for."""

    def __init__(self, session: Host) -> None:
        self._session = session

    def one_shot(self, criterion: str = "sparsegpt", sparsity: float | None = 0.5,
                 pattern: str = "unstructured", calibration: int | None = None,
                 **options: Any) -> Snapshot:
        """SparseGPT (updates weights: commits, one Undo away) or the papers' sequential
        Wanda, block by block as a blocking job; options: blocksize, damp, seed, stop,
        on_event (explorer.session.calibrated)."""
        return calibrated.prune_one_shot(self._session, criterion, sparsity, pattern,
                                         calibration, **options)

    def rewind_state(self, rewind: str | int) -> State:
        """The weights `rewind` names: "init", or those after `rewind` training epochs."""
        slot = self._session.slot
        if rewind == "init":
            return slot.initial
        if isinstance(rewind, numbers.Integral) and not isinstance(rewind, bool) and \
                int(rewind) in slot.rewind_states:
            return slot.rewind_states[int(rewind)]
        raise ValueError(f"rewind must be None, 'init' or a recorded epoch "
                         f"{sorted(slot.rewind_states)}; got {rewind!r}")

    def rewind_to(self, rewind: str | int) -> None:
        """Reset survivors to the rewind weights; pruned entries keep their base values."""
        session = self._session
        with session.lock:
            session.jobs.check_idle("rewinding")
            slot = session.slot
            target = self.rewind_state(rewind)
            new_base = clone_state(target)
            for name, mask in (slot.masks or {}).items():
                new_base[name] = torch.where(mask, target[name], slot.base[name])
            before = slot.undo_entry()
            slot.undo_stack.append(before)
            slot.set_base(new_base)
            slot.reapply(before.masks, before.prune_config)

    def adopt_as_original(self) -> None:
        """Make the current dense base what reset() returns to (e.g. after first training)."""
        session = self._session
        with session.lock:
            session.jobs.check_idle("adopting the base as the original")
            session.slot.original = clone_state(session.slot.base)
            session.slot.undo_stack.clear()

    def install_masks(self, masks: dict[str, torch.Tensor],
                      config: PerLayerConfig | None = None) -> Snapshot:
        """Apply given boolean masks (one per prunable weight, or fewer) to the dense base
        (e.g. a lottery ticket's)."""
        session = self._session
        with session.lock:
            session.jobs.check_idle("installing masks")
            slot = session.slot
            masks = check_masks(masks, slot.base, slot.params_for())
            if config is None:
                pruned = sum(int((~m).sum()) for m in masks.values())
                total = sum(m.numel() for m in masks.values())
                config = PerLayerConfig(sparsity=pruned / max(total, 1), scope="layer")
            slot.install_masks(MaskResult(masks, {}), config)
            return core.engine_snapshot(session)

    def per_layer(self, targets: Mapping[str, float]) -> Snapshot:
        """Prune each named layer of the dense base to its own sparsity; others stay
        dense."""
        session = self._session
        targets = check_targets(targets, list(session.slot.prunable))
        with session.lock:
            session.jobs.check_idle("pruning")
            slot = session.slot
            result = layer_masks(slot.index, targets)
            pruned = sum(int((~m).sum()) for m in result.masks.values())
            total = sum(m.numel() for m in result.masks.values())
            config = PerLayerConfig(sparsity=pruned / max(total, 1), scope="layer",
                                    targets=tuple(sorted(targets.items())))
            slot.install_masks(result, config)
            return core.engine_snapshot(session)

    def value_for(self, mode: str, sparsity: float, step: float = 0.0) -> float:
        """The threshold (mode "threshold") or multiple of each layer's std ("std") that
        prunes the selected model's dense base nearest to `sparsity` overall (a multiple
        of `step` when given): where "Prune by" starts its slider (issue 28)."""
        check_choice("mode", mode, ("threshold", "std"))
        sparsity = check_number("sparsity", sparsity, 0.0, 1.0)
        step = check_number("step", step, 0.0, math.inf)
        with self._session.lock:
            return value_for(self._session.slot.index, mode, sparsity, step)

    def bytes_shrunk(self) -> int | None:
        """fp32 bytes of the physically shrunk model, when structured pruning is in
        force."""
        session = self._session
        if session.is_lm:
            small = language.as_gpt(session.shrink())
            differs = language.shrunk_differs(small, language.as_gpt(session.model))
            return bytes_dense(small) if differs else None
        if not getattr(session.slot.prune_config, "structured", False):
            return None
        return bytes_dense(session.shrink())


def export_session(session: Host, path: str | Path, kind: str = "masked") -> dict:
    """Session.export: the selected model as masked | zeros | shrunk (explorer.engine.export;
    a language model's shrunk export holds its GPT config), or the dense base as a
    checkpoint, or (kind="hf") an hf: model as a save_pretrained folder (export_hf)."""
    if kind == "hf":
        return export_hf(session, path)
    if kind == "checkpoint":
        path = check_output_path("path", path)  # before anything is built
        plain = [{k: v for k, v in h.items() if k != "snapshot"} for h in session.history]
        ckpt.save(path, session.slot.base, session.slot.config, plain)
        return {"path": str(path), "kind": kind}
    if session.is_lm and kind == "shrunk":
        return language.export_shrunk(language.as_gpt(session.shrink()),
                                      check_output_path("path", path))
    check_choice("kind", kind, EXPORT_KINDS)  # a bad kind changes nothing
    with session.lock:
        core.full_norms(session)
    path = check_output_path("path", path)
    with session.lock:
        slot = session.slot
        masks = slot.masks or {n: torch.ones_like(slot.base[n], dtype=torch.bool)
                               for n in slot.prunable}
        return export_model(path, slot.model, kind, base=slot.base, masks=masks)


def export_hf(session: Host, path: str | Path) -> dict:
    """kind="hf": the selected `hf:` model, pruned weights as they are (pruned entries
    zero), as a `save_pretrained` folder with the corpus tokenizer beside it when the
    model reads text with its own (so ``Session(data, "hf:FOLDER")`` opens it again)."""
    from ..models.hf import HFModel, save_hf

    if not isinstance(session.model, HFModel):
        raise ValueError(f"kind='hf' exports an hf: model; this session holds "
                         f"{session.slot.config['model']!r}")
    target = Path(path).expanduser()
    if target.exists() and not target.is_dir():
        raise ValueError(f"kind='hf' writes a folder; {str(path)!r} is a file")
    if not target.parent.is_dir():
        raise ValueError(f"kind='hf': the folder {str(target.parent)!r} does not exist")
    corpus = getattr(session.objective, "corpus", None)
    tokenizer = getattr(getattr(corpus, "vocab", None), "tokenizer", None)
    with session.lock, atomic_folder(target) as folder:  # the old export stays until done
        save_hf(session.model, folder, tokenizer)
    return {"path": str(target), "kind": "hf", "tokenizer": tokenizer is not None}
