"""The bits control of the Prune tab (issue 31): quantization as a slider move.

A row of bits (32 = off, then 8 down to 2) and the scheme (k-means weight sharing or
uniform per output channel). A change calls Session.quantize once, through the app's
`run` (errors go to the status line, state stays); the Snapshot it returns carries the
setting and the codebooks, which the histogram draws as lines (explorer.ui.model_view)
and the cost card turns into bytes (explorer.ui.cards). After Undo, Reset or Load the
controls follow the session's setting without calling it again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as W

from .. import config as C
from .controls import row, tagged

BITS_OPTIONS = [("32 (off)", 32)] + [(str(b), b) for b in C.QUANT_BITS if b != 32]
SCHEME_OPTIONS = [("k-means (shared)", "kmeans"), ("uniform per channel", "uniform")]
TOOLTIP = ("bits per weight, on top of the pruning mask: k-means shares 2^bits - 1 values "
           "per layer (Deep Compression), uniform rounds to a per-channel grid")


class QuantControls:
    """The bits and scheme toggles; `on_change(bits, scheme)` applies a move."""

    def __init__(self, on_change: Callable[[int, str], Any]) -> None:
        self.bits = tagged(W.ToggleButtons(options=BITS_OPTIONS, value=32, description="Bits",
                                           tooltip=TOOLTIP, style={"button_width": "auto",
                                                                   "description_width": "88px"}),
                           "bits")
        self.scheme = tagged(W.ToggleButtons(options=SCHEME_OPTIONS, value="kmeans",
                                             style={"button_width": "auto"}), "quant-scheme")
        self.box = row(self.bits, self.scheme, name="quant-row")
        self._following = False
        self._on_change = on_change
        self.bits.observe(self._changed, names="value")
        self.scheme.observe(self._changed, names="value")

    def _changed(self, _change: dict) -> None:
        if not self._following:
            self._on_change(int(self.bits.value), str(self.scheme.value))

    def follow(self, extra: dict) -> None:
        """Show the setting a Snapshot carries (after Undo, Reset, Load, another slot)."""
        setting = extra.get("quant")
        if setting is not None and not isinstance(setting["bits"], int):
            return  # per-layer widths (set from code): the label says them, no button can
        bits = 32 if setting is None else int(setting["bits"])
        scheme = self.scheme.value if setting is None else setting["scheme"]
        if (bits, scheme) == (self.bits.value, self.scheme.value):
            return
        self._following = True
        try:
            self.bits.value, self.scheme.value = bits, scheme
        finally:
            self._following = False

    def widgets(self) -> list[W.Widget]:
        """What a running job disables."""
        return [self.bits, self.scheme]


def codebook_lines(extra: dict, layer: str, top: float) -> tuple[list, list]:
    """x and y of the codebook's vertical lines for `layer` (None-separated), or empty."""
    books = (extra.get("quant") or {}).get("codebooks") or {}
    xs: list = []
    ys: list = []
    for c in books.get(layer, ()):
        xs += [float(c), float(c), None]
        ys += [0, top, None]
    return xs, ys


def size_rows(extra: dict) -> list[tuple[str, int | None, str]]:
    """(label, bytes, hint) rows of the cost card for a quantized snapshot."""
    setting = extra.get("quant")
    if setting is None:
        return []
    return [(f"bytes {setting['label']}, weights only", extra.get("bytes_quantized"),
             "index bits per weight + the codebook at fp32 (biases at fp32)"),
            ("bytes Huffman-coded, weights only", extra.get("bytes_huffman"),
             "indices Huffman-coded from their real frequencies (Deep Compression)")]
