"""The Compare tab: pinned runs, the accuracy-vs-sparsity trade-off, and quality.

A one-shot sweep runs in the callback (a few dozen evaluations, well under a second on
the default model); the fine-tuned sweep retrains and so runs as a background job.
"""

from __future__ import annotations

import html

import ipywidgets as W
import numpy as np

from ..engine.metrics import Snapshot
from ..studies import tradeoff as analysis
from ..studies.sensitivity import sensitivity
from .cards import human_bytes
from .controls import button, tagged
from .figures import (
    quality_figure,
    tradeoff_figure,
    update_heads,
    update_quality,
    update_tradeoff,
)
from .host import Host

FINETUNE_LEVELS = (0.5, 0.7, 0.8, 0.9, 0.95)
SENSITIVITY_LEVELS = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98)  # issue 9: one layer at a time
SENSITIVITY_TRACE = "sensitivity (one layer pruned)"
COLUMNS = [("label", "run"), ("model_slot", "model"), ("accuracy", "accuracy"),
           ("sparsity", "sparsity"), ("nonzero", "nonzero"), ("bytes_dense", "bytes dense"),
           ("bytes_sparse", "bytes sparse"), ("bytes_shrunk", "bytes shrunk"),
           ("flops_effective", "FLOPs (nonzero)"), ("latency_ms_b1", "ms b1"),
           ("latency_ms_b256", "ms b256")]


def _cell(key: str, value) -> str:
    if value is None:
        return "n/a"
    if key.startswith("bytes"):
        return human_bytes(value)
    if key in ("accuracy", "sparsity"):
        return f"{value:.1%}"
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, int):
        return f"{value:,}"
    return html.escape(str(value))


class ComparePanel:
    def __init__(self, host: Host) -> None:
        self.host = host
        self.fig = self.fig_quality = None
        self.pinned: list[dict] = []
        self.oneshot: list = []
        self.finetuned: list = []
        self.label = tagged(W.Text(value="", placeholder="name this run",
                                   layout=W.Layout(width="180px")), "pin-label")
        self.pin = button("Pin current state", "pin", "primary")
        self.sweep = button("Sweep sparsity (one-shot)", "sweep-sparsity")
        self.with_ft = tagged(W.Checkbox(value=False, indent=False,
                                         description="with fine-tuning (background job)"),
                              "sweep-finetune")
        self.sens_button = button("Layer sensitivity (background job)", "sensitivity")
        self.sensitivity: dict | None = None
        self.table = tagged(W.HTML("<i>No pinned runs yet.</i>"), "pinned-table")
        self.sens_button.on_click(lambda _: self.run_sensitivity())
        self.pin.on_click(lambda _: self.pin_now())
        self.sweep.on_click(lambda _: self.run_sweep())
        self.figure_box = W.VBox([])
        self.box = W.VBox([W.HBox([self.label, self.pin, self.sweep, self.with_ft,
                                   self.sens_button]),
                           self.table, self.figure_box])

    def figures(self) -> list:
        return [f for f in (self.fig, self.fig_quality) if f is not None]

    def controls(self) -> list[W.Widget]:
        return [self.pin, self.sweep, self.with_ft, self.sens_button]

    def open(self) -> None:
        if self.fig is None:
            self.fig = tagged(tradeoff_figure(self.host.theme), "fig-tradeoff")
            self.fig_quality = tagged(quality_figure(self.host.theme), "fig-quality")
            # issue 9: one extra trace on the trade-off panel, all layers' curves in one
            # (NaN between layers, a marker colour and a label per layer): no new figure.
            self.fig.add_scatter(name=SENSITIVITY_TRACE, x=[], y=[], mode="lines+markers+text",
                                 textposition="top right", line={"dash": "dot"},
                                 row=1, col=1)
            self.figure_box.children = [self.fig, self.fig_quality]
            self.redraw()
            self.host.measure(latency=False)

    def adopt(self) -> None:
        self.oneshot, self.finetuned = [], []
        self.redraw()

    def redraw(self) -> None:
        if self.fig is None:
            return
        snap = self.host.snap
        update_tradeoff(self.fig, self.oneshot, self.finetuned, (snap.sparsity, snap.accuracy),
                        self.pinned)
        self.draw_sensitivity()

    def pin_now(self) -> dict | None:
        """Measure everything (latency included) and add a row."""
        measured = self.host.measure(latency=True)
        snap = self.host.snap
        row = {"label": self.label.value or f"run {len(self.pinned) + 1}",
               "model_slot": self.host.session_selected(), "accuracy": snap.accuracy,
               "sparsity": snap.sparsity, "nonzero": snap.nonzero,
               **{k: measured.get(k) for k, _ in COLUMNS[5:]}}
        self.pinned.append(row)
        self.label.value = ""
        head = "".join(f"<th>{title}</th>" for _, title in COLUMNS)
        body = "".join("<tr>" + "".join(f"<td>{_cell(k, r.get(k))}</td>" for k, _ in COLUMNS)
                       + "</tr>" for r in self.pinned)
        self.table.value = f'<table class="cx-table"><tr>{head}</tr>{body}</table>'
        self.redraw()
        self.host.set_status(f"pinned {row['label']}")
        return row

    def run_sweep(self) -> bool:
        host, kwargs = self.host, self.host.prune_kwargs()
        scope, structured = kwargs["scope"], bool(kwargs.get("structured"))
        if not self.with_ft.value:
            try:
                self.oneshot = analysis.sparsity_sweep(host.session, scope=scope,
                                                       structured=structured)
            except ValueError as err:
                host.set_status(f"error: {err}", error=True)
                return False
            self.redraw()
            host.set_status(f"swept {len(self.oneshot)} sparsity levels (one-shot)")
            return True
        lr = host.c.lr.value / 10

        def work(stop, ev):
            self.finetuned = analysis.finetuned_sweep(host.session, FINETUNE_LEVELS, epochs=1,
                                                      lr=lr, stop=stop, on_event=ev)
            return self.finetuned

        return host.jobs.start("fine-tuned sweep", work, len(FINETUNE_LEVELS),
                               on_done=lambda _: self.redraw() or "")

    def show_quality(self, snap: Snapshot) -> None:
        if self.fig_quality is None:
            return
        extra = snap.extra
        if extra.get("heads") is not None:  # a language model: its heads, not a V x V matrix
            update_heads(self.fig_quality, extra["heads"],
                         f"Attention heads ({self.host.session_selected()}): pruned fraction, "
                         "removed heads dark")
        elif snap.task == "classification":
            update_quality(self.fig_quality, extra.get("confusion"), None,
                           f"Confusion matrix ({self.host.session_selected()}, validation)")
        else:
            true, pred = self.host.session.predictions("val", limit=2000)
            update_quality(self.fig_quality, None, (np.ravel(true), np.ravel(pred)),
                           "Predicted vs true (validation)")

    # ----- layer sensitivity (issue 9) ----------------------------------------------
    def run_sensitivity(self) -> bool:
        """Prune one layer at a time (background job); curves join the trade-off plot."""
        host = self.host
        total = len(host.session.prunable) * len(SENSITIVITY_LEVELS)

        def work(stop, ev):
            def on_event(event):
                if isinstance(event, dict):  # one point measured: progress and status
                    host.c.progress.value = min(event["done"], host.c.progress.max)
                    host.set_status(f"sensitivity: {event['layer']} at "
                                    f"{event['sparsity']:.0%}: {event['accuracy']:.1%}")
                ev(event)

            self.sensitivity = sensitivity(host.session, SENSITIVITY_LEVELS, stop=stop,
                                           on_event=on_event)
            return self.sensitivity

        return host.jobs.start("layer sensitivity", work, total,
                               on_done=lambda _: self.draw_sensitivity() or "")

    def draw_sensitivity(self) -> None:
        if self.fig is None or self.sensitivity is None:
            return
        palette = ["#2b7bb9", "#e4572e", "#17a589", "#8e44ad", "#f1c40f", "#7f8c8d"]
        x, y, color, text = [], [], [], []
        for i, (name, accs) in enumerate(self.sensitivity["layers"].items()):
            levels = self.sensitivity["sparsities"][:len(accs)]
            x += [*levels, np.nan]
            y += [np.nan if a is None else a for a in accs] + [np.nan]
            color += [palette[i % len(palette)]] * (len(accs) + 1)
            text += [""] * (len(accs) - 1) + [name.removesuffix(".weight"), ""]
        trace = next(t for t in self.fig.data if t.name == SENSITIVITY_TRACE)
        with self.fig.batch_update():
            trace.update(x=np.array(x, dtype=np.float32), y=np.array(y, dtype=np.float32),
                         text=text, marker={"color": color})
