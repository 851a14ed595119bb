"""ModelSlot: one model under study and everything the session keeps per model.

A session holds up to three slots: "teacher" (the model it was built with), "student"
(distilled) and "student_alone" (the same student trained on labels only). Each slot owns
its model, the dense base the slider prunes from, the masks in force, the undo stack and
the lottery-ticket rewind points; the session picks one as the selected slot, and
prune(), train(), undo() and snapshot() act on that one.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping

import torch
from torch import nn

from ..config import REWIND_EPOCHS_KEPT, UNDO_MAX, PruneConfig
from ..engine.metrics import (
    LayerStats,
    binned,
    histogram_edges,
    layer_stats,
    threshold_layer_stats,
)
from ..engine.prune import MagnitudeIndex, MaskResult, apply_masks, prunable_names
from .memory import UndoStack, kept_note, rewind_fits
from .quant import apply_quant, snapshot_extra
from .quant_cache import QuantCache
from .quant_setting import QuantSetting
from .state import Masks, State, UndoEntry, clone_state, same_state  # also imported from here

SLOT_NAMES = ("teacher", "student", "student_alone", "student_hard")



def _stamp(param: torch.Tensor) -> tuple[int, int]:
    """A weight as it is now: the tensor and its version counter, which any in-place change
    (an optimizer step, a copy_) bumps."""
    return id(param), param._version

class ModelSlot:
    """A model, its dense base, masks, undo stack and rewind points."""

    def __init__(self, model: nn.Module, model_name: str, config: dict,
                 initial: State | None = None) -> None:
        self.model, self.model_name, self.config = model, model_name, config
        self.prunable: list[str] = prunable_names(model)
        live = model.state_dict()
        self.initial: State = initial if initial is not None else \
            clone_state(live)  # lottery-ticket rewind "init"
        self.rewind_states: dict[int, State] = {}  # weights after epoch k (rewind=k)
        self.epochs_trained = 0
        # What reset() returns to. When it equals `initial` (an hf: model, a model built
        # untrained) the two share one copy: both are read-only (every change replaces a
        # state whole), and a big model then holds three copies of its weights, not four.
        self.original: State = self.initial if initial is None or \
            same_state(self.initial, live) else clone_state(live)
        self.undo_stack: list[UndoEntry] = UndoStack(limit=UNDO_MAX)  # by count and bytes
        self.rewind_skipped: list[int] = []  # epochs whose rewind point did not fit
        self.quant: QuantSetting | None = None  # explorer.session.quant: kept over moves
        self.quant_layers: dict = {}
        self.quant_cache = QuantCache()  # per-layer results across bits moves
        self.bn_samples = 0  # samples the last move's BatchNorm statistics came from
        self.set_base(self.original)

    @property
    def kept_note(self) -> str:
        """What the memory budget left out of Undo and rewind, in one sentence ("" when
        nothing; explorer.session.memory)."""
        return kept_note(self)

    # ----- the dense base and its caches -----------------------------------------------
    def set_base(self, base: State) -> None:
        """Adopt a new dense base: the model shows it unmasked, caches are rebuilt."""
        self.base: State = clone_state(base)
        self.model.load_state_dict(self.base)
        self.masks: Masks | None = None
        self.prune_config: PruneConfig | None = None
        self.cuts: dict[str, float] = {}
        self.warnings: tuple[str, ...] = ()
        # (masks, config) the last job trained with on this base; re-pruning respects them
        self.committed: tuple[Masks, PruneConfig | None] | None = None
        prunable_base = {n: self.base[n] for n in self.prunable}
        self.index = MagnitudeIndex(prunable_base)  # sorted magnitudes for fast masks
        edges = {n: histogram_edges(w).to(w.device) for n, w in prunable_base.items()}
        self.base_counts = {n: binned(w, edges[n]) for n, w in prunable_base.items()}
        self.edges = {n: e.cpu() for n, e in edges.items()}
        self._sorted_values: dict[str, torch.Tensor] = {}  # lazily, for fast snapshots
        self.known_stats: dict[str, tuple[LayerStats, int, int]] = {}  # install_masks
        self.tie_values: dict[str, torch.Tensor] = {}  # base values kept at |w| == cut
        self.mark_exact()  # the model shows the base: survivors are its nonzeros
        self.quant_cache.clear()  # keyed by the old base's tensors: none can match again
        apply_quant(self)

    def params(self) -> dict[str, nn.Parameter]:
        """The prunable weights of the model, by name."""
        named = dict(self.model.named_parameters())
        return {n: named[n] for n in self.prunable}

    def params_for(self, *mask_sets: Masks | None) -> dict[str, nn.Parameter]:
        """Prunable weights plus every tensor some mask covers (structured: biases, BN)."""
        named = dict(self.model.named_parameters())
        names = dict.fromkeys(self.prunable)
        for masks in mask_sets:
            names.update(dict.fromkeys(masks or {}))
        return {n: named[n] for n in names}

    # ----- masks ---------------------------------------------------------------------
    def install_masks(self, result: MaskResult, config: PruneConfig | None,
                      stats: dict[str, LayerStats] | None = None) -> None:
        """Show base * mask (tensors no longer masked get their base back). `stats`: the
        per-layer statistics of base * mask where the caller knows them without a pass
        over the weights (engine.rankstats); layer_stats returns them while the weight
        is unchanged since."""
        apply_masks(self.params_for(self.masks, result.masks), self.base, result.masks)
        self.known_stats = {}
        self.know_stats(stats or {})
        self.masks, self.prune_config = result.masks, config
        self.cuts, self.warnings = result.cuts, result.warnings
        if result.exact_cuts and not (config is not None and config.structured):
            self.tie_values = {n: self.base[n].flatten()[kept]
                               for n, kept in result.ties.items()}
            self.mark_exact()
        apply_quant(self)

    def know_stats(self, stats: dict[str, LayerStats]) -> None:
        """Per-layer statistics a caller knows without a pass over the weights (rank tables,
        a codebook's index counts): layer_stats returns them while each weight stays as it
        is now (keyed like mark_exact, by the tensor and its version counter)."""
        params = self.params()
        self.known_stats.update({n: (st, *_stamp(params[n])) for n, st in stats.items()})

    def clear_masks(self) -> None:
        """Drop the masks: the model holds the dense base again, bit for bit."""
        apply_masks(self.params_for(self.masks), self.base, None)
        self.known_stats = {}
        self.masks, self.prune_config, self.cuts, self.warnings = None, None, {}, ()
        self.tie_values = {}
        self.mark_exact()
        apply_quant(self)

    def reapply(self, masks: Masks | None, config: PruneConfig | None) -> None:
        """Put `masks` back on the current base (after a new base was adopted)."""
        if masks is not None:
            apply_masks(self.params_for(masks), self.base, masks)
            self.masks, self.prune_config = masks, config
            apply_quant(self)

    def undo_entry(self, job: int | None = None) -> UndoEntry:
        """The state Undo returns to, taken now (before a job changes the base)."""
        return UndoEntry(clone_state(self.base), self.masks, self.prune_config,
                         dict(self.cuts), self.warnings, job, self.quant)

    def restore(self, entry: UndoEntry) -> None:
        """Back to `entry`: its base, with its pruning and quantization applied again."""
        if not isinstance(entry.quant, str):
            self.quant = entry.quant  # set_base and reapply quantize by it
        self.set_base(entry.base)
        self.reapply(entry.masks, entry.prune_config)
        self.cuts, self.warnings = dict(entry.cuts or {}), entry.warnings

    def commit(self, before: UndoEntry) -> None:
        """Trained survivors become the base; pruned entries keep their old base values.

        `before` (taken when the job started) goes on the undo stack; the model stays
        pruned exactly as it was trained.
        """
        trained = clone_state(self.model.state_dict())
        if before.masks is not None:
            for name, mask in before.masks.items():
                trained[name] = torch.where(mask, trained[name], before.base[name])
        self.undo_stack.append(before)
        self.set_base(trained)
        self.reapply(before.masks, before.prune_config)
        self.cuts, self.warnings = dict(before.cuts or {}), before.warnings
        if before.masks is not None:
            self.committed = (before.masks, before.prune_config)

    def record_epoch(self) -> None:
        """Remember early weights so that rewind=k can return to them (lottery ticket)."""
        self.epochs_trained += 1
        epoch, state = self.epochs_trained, self.model.state_dict()
        if epoch > REWIND_EPOCHS_KEPT or epoch in self.rewind_states:
            return
        if rewind_fits(self.rewind_states, state):  # the earliest epochs stay (memory)
            self.rewind_states[epoch] = clone_state(state)
        else:
            self.rewind_skipped.append(epoch)

    # ----- fast per-layer statistics (a slider move costs masks + one forward pass) ----
    def mark_exact(self) -> None:
        """Record that each prunable weight now equals base * (|base| >= cut).

        Keyed by the tensor and its version counter, which any in-place change (optimizer
        step, mask multiply, load_state_dict) bumps: a stale record is simply not used.
        """
        self._exact = {n: _stamp(p) for n, p in self.params().items()}

    def is_exact(self) -> bool:
        """Whether every prunable weight still is base * (|base| >= cut) (see mark_exact)."""
        return all(self._exact.get(n) == (id(p), p._version) for n, p in self.params().items())

    def quant_extra(self) -> dict:
        """The quantization a Snapshot shows: the setting and the k-means codebooks
        (explorer.session.quant.snapshot_extra; empty when not quantized)."""
        return snapshot_extra(self)

    def layer_stats(self, name: str, param: torch.Tensor) -> LayerStats:
        """Per-layer counts and histogram; from sorted base values when exact."""
        cut = self.cuts.get(name, 0.0)
        known = self.known_stats.get(name)
        if known is not None and known[1:] == _stamp(param):
            return known[0]
        if self._exact.get(name) != _stamp(param):
            return layer_stats(name, param, self.base_counts[name], self.edges[name], cut)
        if name not in self._sorted_values:
            self._sorted_values[name] = torch.sort(self.base[name].flatten())[0]
        return threshold_layer_stats(name, self._sorted_values[name],
                                     self.base_counts[name], self.edges[name], cut,
                                     self.tie_values.get(name))


class Slots(MutableMapping[str, ModelSlot]):
    """Session.slots: the model slots by name (in SLOT_NAMES order) and which is selected.

    Changing the selection goes through Session.select (it checks that no job runs);
    emptying the selected slot falls back to the teacher.
    """

    def __init__(self, teacher: ModelSlot) -> None:
        self._slots: dict[str, ModelSlot] = {"teacher": teacher}
        self.selected = "teacher"  # which slot prune()/train()/snapshot() act on

    def __getitem__(self, name: str) -> ModelSlot:
        return self._slots[name]

    def __setitem__(self, name: str, slot: ModelSlot) -> None:
        if name not in SLOT_NAMES:
            raise ValueError(f"model slot must be one of {SLOT_NAMES}; got {name!r}")
        self._slots[name] = slot

    def __delitem__(self, name: str) -> None:
        del self._slots[name]
        if self.selected == name:
            self.selected = "teacher"

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self._slots)

    @property
    def names(self) -> tuple[str, ...]:
        """The slots that hold a model now, in SLOT_NAMES order."""
        return tuple(s for s in SLOT_NAMES if s in self._slots)

    @property
    def current(self) -> ModelSlot:
        """The selected slot."""
        return self._slots[self.selected]

    def model(self, name: str) -> nn.Module:
        """The model in slot `name`; ValueError when that slot is empty."""
        if name not in self._slots:
            raise ValueError(f"there is no {name} model yet; run distill() or "
                             "students.train_alone() first")
        return self._slots[name].model
