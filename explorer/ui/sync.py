"""ControlSync: set controls from the session without setting off their observers.

When the app shows another model or base (a new session, a slot switch, Undo, the end of
a job), the layer list, the bar pages, the curves selector and the pruning controls must
follow. Options are always set before values (a Dropdown refuses a value its options do
not hold yet, issue 15 item 1), and while this happens the app's observers stand still.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ..engine.metrics import Snapshot
from . import plots
from .controls import SLIDER_RANGES, Controls
from .state import AppState, slot_label


class ControlSync:
    """Quietly sets controls; `active` tells the app's observers to stand still.

    It reads the settings from `state` like the rest of the app, and writes the widgets
    (not the state): a value must fit the options and range set beside it, and the
    widget's link carries the value it accepted into the state."""

    def __init__(self, c: Controls, state: AppState) -> None:
        self.c, self.state = c, state
        self.active = False

    @contextmanager
    def quiet(self) -> Iterator[None]:
        previous, self.active = self.active, True
        try:
            yield
        finally:
            self.active = previous

    def layers(self, layers: list[str]) -> None:
        """The layer dropdown and the bar pages for a model's layers."""
        c = self.c
        with self.quiet():
            if list(c.layer.options) != layers:
                c.layer.options = layers
            if self.state.layer not in layers:
                c.layer.value = layers[0]
            n, per = len(layers), plots.MAX_BARS
            pages = max(1, -(-n // per))
            options = [("all", 0)] if pages == 1 else [
                (f"layers {i * per + 1}-{min(n, (i + 1) * per)} of {n}", i)
                for i in range(pages)]
            if list(c.page.options) != options:
                c.page.options = options
            c.page.value = 0
            c.page.layout.display = "none" if pages == 1 else ""

    def curves(self, present: list[str], selected: str, prefer: str | None = None) -> None:
        """The curves selector lists the models there are; shows `prefer` (a job's model
        while it trains), else the selected model: the curves follow the model the rest
        of the page shows, not the last job's (issue 28)."""
        c = self.c
        if prefer is not None and prefer not in present:
            present = [*present, prefer]
        value = prefer or selected
        with self.quiet():
            options = [(slot_label(s), s) for s in present]
            if list(c.curves.options) != options:
                c.curves.options = options
            c.curves.value = value
            c.curves.layout.display = "" if len(present) > 1 else "none"

    def slider_mode(self, mode: str, keep: float | None = None) -> None:
        """The slider's range, step, format and label for a pruning mode; its value `keep`
        (the setting of this mode that prunes as much as the one in force) or else its min. The x
        std rule is per layer, so the scope toggle, disabled then, shows per layer too (it
        showed "global" beside a per-layer prune)."""
        lo, hi, step, fmt = SLIDER_RANGES[mode]
        with self.quiet():
            s = self.c.slider
            s.value = lo
            s.min, s.max, s.step, s.readout_format = lo, hi, step, fmt
            s.description = mode
            if keep is not None:
                s.value = min(max(round(keep / step) * step, lo), hi)
            if mode == "std":
                self.c.scope.value = "layer"

    def pruning(self, snap: Snapshot) -> None:
        """Pruning controls as the Snapshot's pruning setting (nothing is recomputed)."""
        c, prune = self.c, snap.prune
        with self.quiet():
            if prune is None:
                c.slider.value = c.slider.min
                return
            if self.state.mode != prune["mode"]:
                c.mode.value = prune["mode"]
                self.slider_mode(prune["mode"])
            c.scope.value = prune["scope"]
            c.slider.value = prune["value"]
            c.structured.value = bool(snap.extra.get("structured"))
