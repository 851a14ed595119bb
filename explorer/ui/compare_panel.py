"""The Compare tab: pinned runs, the accuracy-vs-sparsity trade-off, and quality.

A one-shot sweep runs in the callback (a few dozen evaluations, well under a second on
the default model); the fine-tuned sweep retrains and so runs as a background job.

Pinning over several seeds (issue 16) also repeats the Prune tab's prune-and-fine-tune
recipe once per seed as a background job (studies.repeat.repeat_finetune): the pinned
point is then drawn at the seeds' mean with its 95% t-interval as error bars, and the table
gives both numbers. One accuracy on a few hundred validation images moves by a point or
more from seed to seed: a single run cannot tell two settings apart.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import ipywidgets as W
import numpy as np

from .. import config as C
from ..compat.plotly import make_responsive
from ..engine.metrics import Snapshot
from ..studies import tradeoff as analysis
from ..studies.repeat import repeat_finetune
from ..studies.sensitivity import sensitivity
from ..studies.stats import fmt, seed_list
from .cards import human_bytes
from .controls import button, control_on_first_use, row, tagged
from .figures import (
    quality_figure,
    tradeoff_figure,
    update_heads,
    update_quality,
    update_sensitivity,
    update_tradeoff,
)
from .host import Host
from .plots import short_names

FINETUNE_LEVELS = (0.5, 0.7, 0.8, 0.9, 0.95)
SENSITIVITY_LEVELS = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98)  # issue 9: one layer at a time
# The table's columns, the ones that decide first: the control column is about 360 px
# wide, so cells never wrap and the rest of the columns scroll sideways within the table.
COLUMNS = [("label", "run"), ("accuracy", "accuracy"), ("sparsity", "sparsity"),
           ("quant", "weights"), ("nonzero", "nonzero"), ("bytes_sparse", "bytes sparse"),
           ("bytes_huffman", "bytes Huffman"),
           ("latency_ms_b1", "ms b1"), ("model_slot", "model"),
           ("bytes_shrunk", "bytes shrunk"), ("bytes_dense", "bytes dense"),
           ("flops_effective", "FLOPs (nonzero)"), ("latency_ms_b256", "ms b256")]
MEASURED = ("bytes_dense", "bytes_sparse", "bytes_shrunk", "flops_effective",
            "latency_ms_b1", "latency_ms_b256", "bytes_huffman")


def quant_label(extra: dict) -> str:
    """A pin's weights as the Prune tab's bits control left them ("fp32": off)."""
    quant = extra.get("quant")
    return "fp32" if not quant else str(quant["label"])


def _cell(key: str, row: dict) -> str:
    value = row.get(key)
    if key == "accuracy" and row.get("repeat") is not None:
        return _repeat_cell(row["repeat"], short=True) + "*"
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


def _footnote(row: dict) -> str:
    """What a starred accuracy is: the repeated recipe, and the pinned state's own value."""
    rep, state = row["repeat"], row.get("accuracy")
    own = "n/a" if state is None else f"{state:.1%}"
    return (f"* {html.escape(row['label'])}: the Prune tab's prune and fine-tune repeated "
            f"per seed, {_repeat_cell(rep)}; plotted there. The pinned state itself: {own}.")


def _repeat_cell(repeat: dict | None, short: bool = False) -> str:
    """'93.1 [92.0, 94.2]% (3 seeds)' (short: without the seeds), 'running...' while the
    job runs, '-' for one seed."""
    if repeat is None:
        return "-"
    if repeat.get("running"):
        return "running..."
    if repeat.get("failed"):
        return html.escape(f"failed ({repeat['failed']})")
    if not repeat.get("n"):
        return "stopped before a seed finished"
    scale, digits = (100.0, 1) if repeat["metric"] == "accuracy" else (1.0, 4)
    unit = "%" if repeat["metric"] == "accuracy" else " MSE"
    text = f"{fmt(repeat, scale=scale, digits=digits)}{unit}"
    return text if short else f"{text} ({repeat['n']} seeds)"


def error_bars(pinned: list[dict]) -> dict:
    """The pinned trace's error_y: each repeated row's mean to its interval's ends (plain
    lists: numpy arrays nested in a trace's dict freeze plotly's front end, PITFALLS)."""
    up, down = [], []
    for pin in pinned:
        rep = pin.get("repeat") or {}
        ok = rep.get("metric") == "accuracy" and rep.get("ci95_low") is not None
        up.append(float(rep["ci95_high"] - rep["mean"]) if ok else 0.0)
        down.append(float(rep["mean"] - rep["ci95_low"]) if ok else 0.0)
    return {"type": "data", "symmetric": False, "array": up, "arrayminus": down,
            "visible": any(up) or any(down), "thickness": 2, "width": 8}


def drawn_rows(pinned: list[dict]) -> list[dict]:
    """Pinned rows as the figure draws them: a repeated run at its seeds' mean."""
    out = []
    for pin in pinned:
        rep = pin.get("repeat") or {}
        repeated = rep.get("metric") == "accuracy" and rep.get("mean") is not None
        out.append({**pin, "accuracy": rep["mean"]} if repeated else pin)
    return out


def pinned_view(rows: list[dict], bars: dict) -> dict:
    """The pinned panel's y range and label positions: the range spans the points and
    their error bars with some room (on a 0-100% axis a 3-point interval hid under its
    marker), and each label goes above or below its point, alternating in accuracy order,
    so that two pins at the same sparsity do not print one label over the other."""
    ys = [r["accuracy"] for r in rows]
    known = [i for i, y in enumerate(ys) if y is not None]
    if not known:
        return {"range": [0.0, 1.02], "textposition": ["top center"] * len(rows)}
    lo = min(ys[i] - bars["arrayminus"][i] for i in known)
    hi = max(ys[i] + bars["array"][i] for i in known)
    pad = max(0.03, 0.3 * (hi - lo))
    where = ["top center"] * len(rows)
    for rank, i in enumerate(sorted(known, key=lambda i: ys[i])):
        where[i] = "bottom center" if rank % 2 == 0 and len(known) > 1 else "top center"
    return {"range": [max(0.0, lo - pad), min(1.02, hi + pad)], "textposition": where}


# The tab's controls, made when the tab first opens (as the Distill tab's, which see).
CONTROLS = ("label", "pin", "seeds", "sweep", "with_ft", "sens_button", "table")


class ComparePanel:
    def __init__(self, host: Host,
                 finetune_settings: Callable[[], tuple[float, dict]] | None = None) -> None:
        self.host = host
        self.finetune_settings = finetune_settings  # the Prune tab's recipe (repeats)
        self.fig = self.fig_quality = None
        self.pinned: list[dict] = []
        self.oneshot: list = []
        self.finetuned: list = []
        self.sensitivity: dict | None = None
        self.built = False
        self.figure_box = tagged(W.VBox([]), "compare-figures")
        self.box = tagged(W.VBox([]), "compare-tab")  # the controls go in on build()

    def __getattr__(self, name: str) -> Any:
        return control_on_first_use(self, name, CONTROLS)

    def build(self) -> None:
        """Make the tab's controls (once)."""
        if self.built:
            return
        self.built = True  # first: the controls' own set-up must not build again
        self.label = tagged(W.Text(value="", placeholder="name this run",
                                   layout=W.Layout(width="170px")), "pin-label")
        self.pin = button("Pin current state", "pin", "primary")
        self.seeds = tagged(W.BoundedIntText(
            value=1, min=1, max=C.PIN_SEEDS_MAX, description="Seeds", style={
                "description_width": "initial"}, layout=W.Layout(width="110px"),
            tooltip="above 1, Pin also repeats the Prune tab's prune and fine-tune once "
                    "per seed (background job) and draws the mean with its 95% interval"),
            "pin-seeds")
        self.sweep = button("Sweep sparsity (one-shot)", "sweep-sparsity")
        self.with_ft = tagged(W.Checkbox(value=False, indent=False,
                                         description="with fine-tuning (background job)"),
                              "sweep-finetune")
        self.sens_button = button("Layer sensitivity (background job)", "sensitivity")
        self.table = tagged(W.HTML(""), "pinned-table")
        g = self.host.guard
        self.sens_button.on_click(g(lambda _: self.run_sensitivity()))
        self.pin.on_click(g(lambda _: self.pin_now()))
        self.sweep.on_click(g(lambda _: self.run_sweep()))
        self.box.children = [row(self.label, self.seeds, self.pin), row(self.sweep, self.with_ft),
                             row(self.sens_button), self.table]
        self.show_table()
        if self.host.jobs.busy:  # opened during a job: its controls wait like the rest
            self.host.set_busy(True)

    def figures(self) -> list:
        return [f for f in (self.fig, self.fig_quality) if f is not None]

    def controls(self) -> list[W.Widget]:
        if not self.built:
            return []
        return [self.pin, self.seeds, self.sweep, self.with_ft, self.sens_button]

    def open(self) -> None:
        self.build()
        if self.fig is None:
            self.host.set_status(f"Compare: measuring the {self.host.who()}...")
            self.fig = tagged(tradeoff_figure(self.host.theme), "fig-tradeoff")
            self.fig_quality = tagged(quality_figure(self.host.theme), "fig-quality")
            for fig in (self.fig, self.fig_quality):
                make_responsive(fig)
            self.figure_box.children = [self.fig, self.fig_quality]
            self.redraw()
            self.host.measure(latency=False)
            self.host.set_status(f"Compare: measured the {self.host.who()}")

    def adopt(self) -> None:
        self.oneshot, self.finetuned = [], []
        self.redraw()

    def redraw(self) -> None:
        self.show_table()
        if self.fig is None:
            return
        snap = self.host.snap
        with self.fig.batch_update():  # one message: the points and their error bars
            update_tradeoff(self.fig, self.oneshot, self.finetuned,
                            (snap.sparsity, snap.accuracy), drawn_rows(self.pinned))
            rows, bars = drawn_rows(self.pinned), error_bars(self.pinned)
            view = pinned_view(rows, bars)
            self.fig.data[3].update(error_y=bars, textposition=view["textposition"])
            self.fig.layout.yaxis2.update(range=view["range"], dtick=None, tickformat=".0%")
        self.draw_sensitivity()

    def pin_now(self) -> dict | None:
        """Measure everything (latency included) and add a row; over several seeds, also
        repeat the Prune tab's prune and fine-tune per seed (a background job)."""
        seeds = int(self.seeds.value)
        settings = None
        if seeds > 1:
            try:
                if self.finetune_settings is None:
                    raise ValueError("this app has no prune-and-fine-tune recipe to repeat")
                settings = self.finetune_settings()
            except ValueError as err:
                self.host.set_status(f"error: cannot repeat over seeds: {err}", error=True)
                return None
        measured = self.host.measure(latency=True)
        snap = self.host.snap
        row = {"label": self.label.value or f"run {len(self.pinned) + 1}",
               "model_slot": self.host.who(), "accuracy": snap.accuracy,
               "sparsity": snap.sparsity, "nonzero": snap.nonzero,
               "quant": quant_label(snap.extra),
               **{k: measured.get(k) for k in MEASURED}, "repeat": None}
        self.pinned.append(row)
        self.label.value = ""
        self.redraw()
        self.host.set_status(f"pinned {row['label']} ({self.host.who()})")
        if settings is not None:
            self.repeat(row, seeds, *settings)
        return row

    def show_table(self) -> None:
        if not self.built:
            return
        if not self.pinned:
            self.table.value = "<i>No pinned runs yet.</i>"
            return
        head = "".join(f"<th>{title}</th>" for _, title in COLUMNS)
        body = "".join("<tr>" + "".join(f"<td>{_cell(k, r)}</td>" for k, _ in COLUMNS)
                       + "</tr>" for r in self.pinned)
        notes = "".join(f'<div class="cx-note">{_footnote(r)}</div>' for r in self.pinned
                        if r.get("repeat") is not None)
        self.table.value = (f'<div class="cx-table-scroll"><table class="cx-table cx-pins">'
                            f'<tr>{head}</tr>{body}</table></div>{notes}')

    def repeat(self, row: dict, n: int, target: float, settings: dict) -> bool:
        """Prune to `target` and fine-tune once per seed (background job); the row gets
        each seed's value and their mean and 95% interval."""
        host = self.host
        seeds = seed_list(host.session.seed, n)
        row["repeat"] = {"running": True}
        self.show_table()

        def work(stop, ev):
            def on_seed(done: dict) -> None:  # the job's status line names the seed
                ev({"done": done["done"], "total": done["total"],
                    "layer": f"seed {done['seed']}", "sparsity": done["sparsity"],
                    "accuracy": done["value"] if host.session.data.task == "classification"
                    else None})
            try:
                return repeat_finetune(host.session, target, seeds, stop=stop,
                                       on_seed=on_seed, **settings)
            except BaseException as err:  # the status line says why; the row says so too
                row["repeat"] = {"failed": f"{type(err).__name__}: {err}"}
                raise

        def done(result) -> str:
            row["repeat"] = result.value
            self.redraw()
            return (f"repeated {row['label']} over {result.value['n']} seeds "
                    f"({host.who()}): {_repeat_cell(result.value)}")

        started = host.jobs.start("repeated run", work, n * max(settings["steps"], 1) *
                                  max(settings["finetune_epochs"], 1), on_done=done)
        if not started:  # another job runs: the row stays a single-state pin
            row["repeat"] = None
            self.show_table()
        return started

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
            host.set_status(f"swept {len(self.oneshot)} sparsity levels one-shot "
                            f"({host.who()})")
            return True
        # the Prune tab's Fine-tune settings (it was 1 epoch at lr/10 whatever they said,
        # which made fine-tuning look as if it did not help)
        epochs = max(int(host.c.finetune_epochs.value), 1)
        lr = host.c.lr.value * C.FINETUNE_LR_FACTOR

        def work(stop, ev):
            self.finetuned = analysis.finetuned_sweep(host.session, FINETUNE_LEVELS,
                                                      epochs=epochs, lr=lr, stop=stop,
                                                      on_event=ev)
            return self.finetuned

        def done(_result: object) -> str:
            self.redraw()
            return self._swept(epochs, lr)

        return host.jobs.start("fine-tuned sweep", work, len(FINETUNE_LEVELS) * epochs,
                               on_done=done)

    def _swept(self, epochs: int, lr: float) -> str:
        best = [p for p in self.finetuned if p.accuracy is not None]
        tail = "" if not best else (f": {best[-1].accuracy:.1%} at "
                                    f"{best[-1].actual_sparsity:.0%} after fine-tuning")
        return (f"fine-tuned sweep done ({self.host.who()}){tail} ({epochs} epoch"
                f"{'s' if epochs > 1 else ''} per level at lr {lr:g}, as Fine-tune settings)")

    def show_quality(self, snap: Snapshot) -> None:
        if self.fig_quality is None:
            return
        extra = snap.extra
        if extra.get("heads") is not None:  # a language model: its heads, not a V x V matrix
            update_heads(self.fig_quality, extra["heads"],
                         f"Attention heads ({self.host.who()}): pruned fraction, "
                         "removed heads dark")
        elif snap.task == "classification":
            update_quality(self.fig_quality, extra.get("confusion"), None,
                           f"Confusion matrix ({self.host.who()}, validation)")
        else:
            true, pred = self.host.session.students.predictions("val", limit=2000)
            update_quality(self.fig_quality, None, (np.ravel(true), np.ravel(pred)),
                           "Predicted vs true (validation)")

    # ----- layer sensitivity (issue 9) ----------------------------------------------
    def run_sensitivity(self) -> bool:
        """Prune one layer at a time (background job); curves join the trade-off plot."""
        host = self.host
        total = len(host.session.slot.prunable) * len(SENSITIVITY_LEVELS)

        def work(stop, ev):  # points arrive as dicts; the job's pump shows them
            self.sensitivity = sensitivity(host.session, SENSITIVITY_LEVELS, stop=stop,
                                           on_event=ev)
            return self.sensitivity

        def done(_result: object) -> str:
            self.draw_sensitivity()
            layers = len(self.sensitivity["layers"]) if self.sensitivity else 0
            return f"layer sensitivity done ({host.who()}): {layers} layers"

        return host.jobs.start("layer sensitivity", work, total, on_done=done)

    def draw_sensitivity(self) -> None:
        if self.fig is None or self.sensitivity is None:
            return
        names = list(self.sensitivity["layers"])  # unique short names, as the bars show them
        short = dict(zip(names, short_names(names)))
        update_sensitivity(self.fig, self.sensitivity, short.__getitem__)
