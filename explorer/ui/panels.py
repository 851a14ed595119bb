"""The Prune tab and the training row (layout), and the two jobs they start.

Train and Prune and fine-tune record their steps into the curves of the model they train
and leave an Undo checkpoint; their status says which model they report on, and Prune
and fine-tune says how much of the pruning's loss came back.
"""

from __future__ import annotations

import ipywidgets as W

from .. import config as C
from ..session.jobs import JobResult
from .controls import Controls, rewind_value, row, tagged
from .host import Host
from .layer_search import layer_search
from .state import slot_label


def prune_box(c: Controls, talk: bool, bits: W.Widget | None = None) -> W.VBox:
    """The Prune tab: the slider first, then the bits control (explorer.ui.quant_panel);
    fine-tune settings folded away (none in talk mode)."""
    quant = [] if bits is None else [bits]
    if talk:
        return W.VBox([c.slider, *quant, row(c.prune_finetune, c.reset_pruning), c.why_not])
    settings = W.Accordion(children=[W.VBox([row(c.schedule, c.steps, c.finetune_epochs),
                                             c.rewind])], titles=("Fine-tune settings",))
    settings.selected_index = None
    return W.VBox([c.mode, c.slider, c.criteria.box, *quant, row(c.scope, c.structured, c.norm),
                   c.why_not, row(c.prune_finetune, c.reset_pruning), settings,
                   row(c.layer, layer_search(c.layer, c.page), c.log_y), c.page])


def train_rows(c: Controls, talk: bool) -> list[W.Widget]:
    """The training budget, then the job bar (Train, Stop, Undo, Reset, the progress and
    the status), then the curves' model. The job bar is its own child of the control
    column so that it can stick to the window's bottom edge while the column is taller
    than the window (Fine-tune settings open, Distill tables): what a job says, and its
    Stop, never fall below the fold (theme.css: .cx-jobbar)."""
    # talk mode too: a Stop with no Train beside it reads as a leftover (issue 28); there
    # "Undo" keeps the four buttons on one row at talk type (the bar sticks to the window's
    # bottom: a second row would cover more of a long tab)
    if talk:
        c.undo.description = "Undo"
    bar = tagged(W.VBox([row(c.train, c.stop, c.undo, c.reset), c.progress, c.status]),
                 "jobbar")
    return [bar] if talk else [row(c.epochs, c.lr), bar, c.curves]


class Starters:
    """Starts the training and the prune-and-fine-tune jobs of the selected model."""

    def __init__(self, host: Host, optimizer, batch_size) -> None:
        self.host = host
        self.optimizer, self.batch_size = optimizer, batch_size  # callables (Data & model)

    def start_training(self) -> bool:
        host, c = self.host, self.host.c
        epochs, lr = c.epochs.value, c.lr.value
        slot = host.session_selected()
        session = host.session
        optimizer, batch = self.optimizer(), self.batch_size()

        def done(result: JobResult) -> str:
            return self._report("training", slot, result.value)

        return host.jobs.start("training", lambda stop, ev: session.train(
            epochs=epochs, lr=lr, optimizer=optimizer, batch_size=batch, stop=stop,
            on_event=ev), epochs, on_done=done, slot=slot, checkpoint=self._before())

    def _before(self) -> dict | None:
        """The pruning settings in force before a job (None: dense), for Undo."""
        snap = self.host.snap
        return None if snap.prune is None else self.host.prune_kwargs()

    def _report(self, name: str, slot: str, snap) -> str:
        host = self.host
        metric = host.metric()
        value = metric.value(snap) if snap is not None else None
        dense = host.dense_value(slot)
        change = "" if dense is None or snap.sparsity < 1e-9 else \
            f" (dense {metric.text(dense)})"
        return (f"{name} done ({slot_label(slot)}): val {metric.name} {metric.text(value)}"
                f"{change} at {snap.sparsity:.0%} sparsity")

    def finetune_settings(self) -> tuple[float, dict]:
        """The target sparsity and Session.prune_iteratively's settings that the Prune
        tab's controls ask for (any slider mode: a threshold becomes the sparsity it gives);
        ValueError says why there are none."""
        host, c = self.host, self.host.c
        if host.session.is_lm:
            raise ValueError("Prune and fine-tune is not available for gpt-tiny yet: "
                             "prune with the slider, then press Train")
        state = host.state  # the pruning settings (the Prune tab's controls are linked to it)
        target = state.value if state.mode == "sparsity" else round(host.snap.sparsity, 4)
        if target <= 0:
            raise ValueError("Prune and fine-tune needs a sparsity above 0: move the slider "
                             "first")
        return target, dict(steps=c.steps.value, schedule=c.schedule.value,
                            finetune_epochs=c.finetune_epochs.value,
                            rewind=rewind_value(c.rewind.value),
                            lr=c.lr.value * C.FINETUNE_LR_FACTOR, optimizer=self.optimizer(),
                            batch_size=self.batch_size(),
                            scope=state.scope if state.mode != "std" else "layer",
                            structured=state.structured, norm=state.norm)

    def start_prune_finetune(self) -> bool:
        """Reach the slider's sparsity in steps, fine-tuning after each."""
        host = self.host
        snap, session = host.snap, host.session
        try:
            target, kwargs = self.finetune_settings()
        except ValueError as err:
            host.set_status(f"error: {err}", error=True)
            return False
        steps, ft = kwargs["steps"], kwargs["finetune_epochs"]
        slot, metric = host.session_selected(), host.metric()
        pruned = metric.value(snap) if snap.sparsity > 0 else None
        dense = host.dense_value(slot)
        marks_from = len(session.history)
        x0, first = host.book.step_count(slot), session.jobs.total_steps

        def done(result: JobResult) -> str:
            for h in list(session.history)[marks_from:]:  # pruning events on the curves
                if h.get("kind") == "prune_step":
                    host.book.add_mark(slot, x0 + h["step"] - first, h["loss"],
                                       f"prune step {h['k']}: {h['sparsity']:.0%}")
            final = result.value
            text = self._report("prune and fine-tune", slot, final)
            value = metric.value(final) if final is not None else None
            return text + recovered(metric, dense, pruned, value)

        return host.jobs.start("prune and fine-tune", lambda stop, ev: session.prune_iteratively(
            target, stop=stop, on_event=ev, **kwargs), steps * max(ft, 1), on_done=done,
            slot=slot, checkpoint=self._before())


def recovered(metric, dense: float | None, pruned: float | None, final: float | None) -> str:
    """'; recovered 31.2 of 34.1 points' (how much of what one-shot pruning lost came back).
    The share never exceeds the loss: a gain beyond it is named apart ("recovered all 1.4
    points lost (and 0.8 more)"), a further loss too ("recovered none of ... (0.3 more lost)")."""
    if dense is None or pruned is None or final is None:
        return ""
    lost = (dense - pruned) if metric.higher_is_better else (pruned - dense)
    back = (final - pruned) if metric.higher_is_better else (pruned - final)
    scale, unit = (100, " points") if metric.name == "accuracy" else (1, "")
    if lost * scale < 0.05:
        return "; one-shot pruning had lost nothing here"
    of = f"{lost * scale:.1f}{unit}"
    if back < 0:
        return f"; recovered none of {of} ({-back * scale:.1f} more lost)"
    if back < lost:  # 1.38 of 1.4 would print "1.4 of 1.4": say it is short of all
        part = f"{back * scale:.1f}"
        return f"; recovered {'almost all' if part == f'{lost * scale:.1f}' else part} of {of}"
    more = (back - lost) * scale
    return f"; recovered all {of} lost" + (f" (and {more:.1f} more)" if more >= 0.05 else "")

