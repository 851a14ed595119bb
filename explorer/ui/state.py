"""AppState: what the app shows and asks for, as plain traits (no widgets, no plotly).

Controls are linked to these traits and panels observe them (glue's viewer state is the
model). One observer in the app sorts a change into a tier: a compute trait (mode, value,
scope, structured, norm) prunes again; a view trait (layer, log axis, bar page, curves)
only redraws the last Snapshot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from traitlets import Bool, Float, HasTraits, Int, Unicode

if TYPE_CHECKING:
    from ipywidgets import ValueWidget

COMPUTE = ("mode", "value", "scope", "structured", "norm")
VIEW = ("layer", "log_y", "page", "curves")
SLOT_LABELS = {"teacher": "teacher", "student": "distilled student",
               "student_alone": "student alone",
               "student_hard": "student on teacher's labels"}


def slot_label(slot: str) -> str:
    """How a model slot is named on the page (never the internal key)."""
    return SLOT_LABELS.get(slot, slot.replace("_", " "))


class AppState(HasTraits):
    """The app's settings and selection; panels observe it, controls are linked to it."""

    mode = Unicode("sparsity")  # sparsity | threshold | std
    value = Float(0.0)  # the slider: a sparsity, a threshold or a multiple of the std
    scope = Unicode("layer")
    structured = Bool(False)
    norm = Unicode("l1")
    layer = Unicode("")  # the selected layer (histogram, weight grid)
    log_y = Bool(False)
    page = Int(0)  # which page of per-layer bars (models with many layers)
    curves = Unicode("teacher")  # whose training curves are drawn
    base_version = Int(0)  # bumped whenever the selected model's dense base changes

    def prune_kwargs(self) -> dict:
        """Session.prune's arguments for the current pruning settings."""
        kwargs: dict = {self.mode: float(self.value), "scope": self.scope}
        if self.structured:
            kwargs.update(structured=True, norm=self.norm)
        return kwargs



def bind(widget: ValueWidget, state: HasTraits, name: str) -> None:
    """Keep `widget.value` and `state.<name>` equal, both ways (unlike traitlets.link, a
    NaN typed into a box is passed on to be refused with a message, not a TraitError)."""
    busy = [False]

    def push(target: HasTraits, attr: str):
        def handler(change: dict) -> None:
            if busy[0]:
                return
            busy[0] = True
            try:
                setattr(target, attr, change["new"])
            finally:
                busy[0] = False
        return handler

    setattr(state, name, widget.value)
    widget.observe(push(state, name), names="value")
    state.observe(push(widget, "value"), names=name)
