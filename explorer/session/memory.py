"""What a model slot keeps for Undo and rewind, sized by bytes (issue 18, sessions that scale).

A count cap alone (config.UNDO_MAX steps, REWIND_EPOCHS_KEPT rewind points) is right for
the digits MLP (0.4 MB a state) and wrong for an 11M-parameter model (44 MB a state: 20
undo steps would hold 880 MB). So each slot also keeps its undo steps within
config.UNDO_BYTES_MAX (the oldest go first, the last step always stays) and its rewind
points within config.REWIND_BYTES_MAX (the earliest epochs stay: lottery-ticket rewinding
goes back to early weights; later epochs are not recorded). What was dropped is counted,
and `kept_note` says it in one plain sentence for the app's status line.

Bytes are counted per storage: a mask set shared by several undo steps counts once.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from .. import config
from .bounded import BoundedList


def mib(n: int) -> str:
    """Bytes as MiB with one decimal ("43.9 MiB")."""
    return f"{n / 2**20:.1f} MiB"


def storage_bytes(tensors: Iterable[torch.Tensor], seen: set[int] | None = None) -> int:
    """Bytes of the distinct storages behind `tensors` (`seen` carries across calls)."""
    seen = set() if seen is None else seen
    total = 0
    for tensor in tensors:
        storage = tensor.untyped_storage()
        key = storage.data_ptr()
        if key not in seen:
            seen.add(key)
            total += storage.nbytes()
    return total


def entry_tensors(entry: Any) -> list[torch.Tensor]:
    """The tensors an undo entry holds: its base state and its masks."""
    return [*entry.base.values(), *(entry.masks or {}).values()]


class UndoStack(BoundedList):
    """The undo stack: at most `limit` steps and at most config.UNDO_BYTES_MAX bytes
    (read at each trim, so a test may lower it); the newest step always stays."""

    def __init__(self, items: Iterable = (), limit: int = config.UNDO_MAX) -> None:
        self.dropped = 0  # steps dropped for memory (not for the count cap)
        self.dropped_bytes = 0
        super().__init__(items, limit)

    def clear(self) -> None:
        """Empty it (reset, adopt_as_original): nothing is dropped any more either."""
        super().clear()
        self.dropped = self.dropped_bytes = 0

    def nbytes(self) -> int:
        seen: set[int] = set()
        return sum(storage_bytes(entry_tensors(e), seen) for e in self)

    def _trim(self) -> None:
        super()._trim()
        budget = config.UNDO_BYTES_MAX
        while len(self) > 1 and self.nbytes() > budget:
            oldest = self.pop(0)
            self.dropped += 1
            kept: set[int] = set()  # storages the remaining steps still hold (shared masks)
            storage_bytes([t for e in self for t in entry_tensors(e)], kept)
            self.dropped_bytes += storage_bytes(entry_tensors(oldest), kept)


def nothing_to_undo(undo: list) -> str:
    """Why Undo has nothing left: no job yet, or older steps dropped for memory."""
    dropped = getattr(undo, "dropped", 0)
    if not dropped:
        return "nothing to undo: no job has changed the base yet"
    steps = f"{dropped} older step{'s were' if dropped != 1 else ' was'}"
    return (f"nothing more to undo: {steps} dropped ({mib(getattr(undo, 'dropped_bytes', 0))})"
            f" to keep Undo within {mib(config.UNDO_BYTES_MAX)} (config.UNDO_BYTES_MAX)")


def rewind_fits(kept: dict[int, dict[str, torch.Tensor]],
                state: dict[str, torch.Tensor]) -> bool:
    """Whether one more rewind point fits config.REWIND_BYTES_MAX."""
    seen: set[int] = set()
    used = sum(storage_bytes(s.values(), seen) for s in kept.values())
    return used + storage_bytes(state.values()) <= config.REWIND_BYTES_MAX


def kept_note(slot: Any) -> str:
    """One plain sentence on what the slot's memory budget left out ("" when nothing)."""
    undo: UndoStack = slot.undo_stack
    parts = []
    if undo.dropped:
        parts.append(f"Undo keeps the last {len(undo)} step{'s' * (len(undo) != 1)} "
                     f"({mib(undo.nbytes())} of at most {mib(config.UNDO_BYTES_MAX)}); "
                     f"{undo.dropped} older one{'s' * (undo.dropped != 1)} "
                     f"({mib(undo.dropped_bytes)}) dropped")
    skipped = [e for e in slot.rewind_skipped if e <= slot.epochs_trained]
    if skipped:
        kept = sorted(slot.rewind_states)
        where = f"epochs {kept[0]}-{kept[-1]}" if kept else "no epoch"
        parts.append(f"rewind points kept for {where} only ({mib(config.REWIND_BYTES_MAX)} "
                     f"at most); epochs {_ranges(skipped)} not kept")
    return "; ".join(parts)


def _ranges(epochs: list[int]) -> str:
    """[3, 4, 5, 9] -> "3-5, 9"."""
    out: list[str] = []
    for e in sorted(set(epochs)):
        if out and out[-1].split("-")[-1] == str(e - 1):
            out[-1] = f"{out[-1].split('-')[0]}-{e}"
        else:
            out.append(str(e))
    return ", ".join(out)


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether two tensors of one dtype and shape hold the same bytes."""
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    return torch.equal(a.detach().cpu().reshape(-1).view(torch.uint8),
                       b.detach().cpu().reshape(-1).view(torch.uint8))


MASKED_BASE = "base*masks"  # a saved model_state: the model shows exactly base * masks


def live_state(slot: Any, share: SharedTensors) -> dict[str, torch.Tensor] | str:
    """The slot's live weights as saved: MASKED_BASE when they are, bit for bit, what
    the slot's base and masks give (loading rebuilds them so), else the tensors (shared)."""
    live = slot.model.state_dict()
    masks = slot.masks
    if masks is not None and all(
            same_bits(t, torch.mul(slot.base[k], masks[k]) if k in masks else slot.base[k])
            for k, t in live.items()):
        return MASKED_BASE
    return share.state(live)


class SharedTensors:
    """Hands out one CPU tensor per distinct value, so torch.save writes equal states once.

    A saved slot holds up to 4 + rewind + undo states, and many are equal bit for bit (the
    base and the live weights after dense training, the original and the first undo step,
    the masks every undo step of one pruning shares). Candidates are found by name, shape,
    dtype and a float64 sum, then confirmed bit for bit (`same_bits`: torch.equal would
    take -0.0 for 0.0, and a masked weight's zero keeps the sign it was multiplied with).
    """

    def __init__(self) -> None:
        self._kept: dict[tuple, list[torch.Tensor]] = {}
        self.shared_bytes = 0  # bytes not written twice

    def __call__(self, name: str, tensor: torch.Tensor) -> torch.Tensor:
        t = tensor.detach()
        total = float(t.double().sum()) if t.dtype != torch.bool else int(t.sum())
        key = (name, tuple(t.shape), t.dtype, total)
        for kept in self._kept.get(key, []):
            if same_bits(kept, t):
                self.shared_bytes += t.numel() * t.element_size()
                return kept
        copy = t.cpu().clone()
        self._kept.setdefault(key, []).append(copy)
        return copy

    def state(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: self(k, v) for k, v in state.items()}
