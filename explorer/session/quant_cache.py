"""Per-layer quantization results remembered across bits moves (issue 31's speed).

A layer's quantized weights are a pure function of its float input (the dense base
tensor and the mask) and the setting, so a move back to a setting seen before is a
lookup. The input is keyed by the tensors themselves and their version counters (any
in-place change bumps `_version`), so a new base, new masks or a trained base never
finds a stale entry. An entry also keeps its byte counts (explorer.engine.qbytes), so
the Huffman pass runs once per (layer, setting). Memory is bounded: entries for a layer
whose input changed are dropped at once, and the oldest go past QUANT_CACHE_BYTES.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import torch

from ..engine.quantize import LayerQuant

QUANT_CACHE_BYTES = 256 << 20  # values + indices of the cached layers, at most


def _source(base: torch.Tensor, mask: torch.Tensor | None) -> tuple:
    return (base, base._version, mask, None if mask is None else mask._version)


def _same(a: tuple, b: tuple) -> bool:
    return a[0] is b[0] and a[1] == b[1] and a[2] is b[2] and a[3] == b[3]


def _nbytes(lq: LayerQuant) -> int:
    return sum(t.numel() * t.element_size() for t in (lq.values, lq.indices, lq.codebook))


class QuantCache:
    """(layer, setting) -> LayerQuant and its byte counts, valid while the layer's
    base tensor and mask are the same objects at the same versions."""

    def __init__(self, max_bytes: int = QUANT_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple, list] = OrderedDict()  # [source, lq, bytes]
        self._held = 0
        self.hits = self.misses = 0

    def layer(self, name: str, setting: object, base: torch.Tensor,
              mask: torch.Tensor | None, make: Callable[[], LayerQuant]) -> LayerQuant:
        """The cached result for (name, setting) on this input, else `make()` stored."""
        source = _source(base, mask)
        key = (name, setting)
        entry = self._entries.get(key)
        if entry is not None and _same(entry[0], source):
            self._entries.move_to_end(key)
            self.hits += 1
            return entry[1]
        self.misses += 1
        self._drop(lambda k, e: k[0] == name and not _same(e[0], source))
        lq = make()
        self._entries[key] = [source, lq, None]
        self._held += _nbytes(lq)
        while self._held > self.max_bytes and len(self._entries) > 1:
            _, old = self._entries.popitem(last=False)
            self._held -= _nbytes(old[1])
        return lq

    def layer_bytes(self, name: str, setting: object, lq: LayerQuant,
                    count: Callable[[], dict[str, int]]) -> dict[str, int]:
        """The byte counts of `lq` (the entry's), counted once."""
        entry = self._entries.get((name, setting))
        if entry is None or entry[1] is not lq:
            return count()
        if entry[2] is None:
            entry[2] = count()
        return entry[2]

    def _drop(self, stale: Callable[[tuple, list], bool]) -> None:
        for key in [k for k, e in self._entries.items() if stale(k, e)]:
            self._held -= _nbytes(self._entries.pop(key)[1])

    def clear(self) -> None:
        self._entries.clear()
        self._held = 0
