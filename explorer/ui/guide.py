"""The next step, in one line under the headline: a first visit needs no README.

The steps are the story the app tells (drag the slider, prune and fine-tune, compare,
distil); the current one is highlighted and the line moves on as the person does each
thing, in any order. Whether a step is done is read from what the app shows (the
Snapshot's sparsity, the session's history, the pinned runs, the models held), never
from status texts, and a step once done stays done (an Undo does not send the line back).
"""

from __future__ import annotations

import ipywidgets as W

from ..engine.metrics import Snapshot
from ..session.session import Session
from .controls import tagged

DRAG_TO = 0.9
# (key, what to do); talk mode has no Compare tab, so it skips that step
STEPS = (("drag", f"Drag <i>sparsity</i> to {DRAG_TO}"),
         ("finetune", "Press <i>Prune and fine-tune</i>"),
         ("compare", "Pin the result in <i>Compare</i>"),
         ("distill", "Train a small student in <i>Distill</i>"))
DONE = ("All steps done: try <i>Structured</i> pruning, or another model in "
        "<i>Data &amp; model</i>")


class Guide:
    """The next-step line (an HTML widget, class cx-guide, and cx-story as talk mode's)."""

    def __init__(self, talk: bool) -> None:
        self.steps = [(k, text) for k, text in STEPS if not (talk and k == "compare")]
        self.seen: set[str] = set()
        self.widget = tagged(W.HTML(""), "guide")
        self.widget.add_class("cx-story")
        self._draw()

    def current(self) -> str | None:
        """The key of the step to do next (None: all done)."""
        return next((k for k, _ in self.steps if k not in self.seen), None)

    def refresh(self, snap: Snapshot | None, session: Session, pinned: bool) -> None:
        """Mark what the app now shows (`pinned`: the Compare tab holds a result) as done
        and redraw the line if that changed."""
        before = set(self.seen)
        if snap is not None and snap.sparsity >= DRAG_TO - 0.05:
            self.seen.add("drag")
        if any(h.get("kind") == "prune_step" for h in list(session.history)[-200:]):
            self.seen.add("finetune")
        if pinned:
            self.seen.add("compare")
        if len(session.slots.names) > 1:  # a student was trained
            self.seen.add("distill")
        if self.seen != before:  # a later step done first gets its tick too
            self._draw()

    def _draw(self) -> None:
        now = self.current()
        if now is None:
            self.widget.value = f'<div class="cx-guide-line">{DONE}</div>'
            return
        parts = []
        for i, (key, text) in enumerate(self.steps, 1):
            if key == now:
                parts.append(f'<span class="cx-now"><b>{i}</b> {text}</span>')
            else:
                mark = "&#10003;" if key in self.seen else f"<b>{i}</b>"
                parts.append(f'<span class="cx-later">{mark} {text}</span>')
        self.widget.value = ('<div class="cx-guide-line">Next: ' +
                             ' &rarr; '.join(parts) + '</div>')
