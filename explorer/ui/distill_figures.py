"""The Distill tab's one figure: four panels, a fixed set of traces, updated in place.

Top left, one example's softened teacher and student probabilities; top right, the
students' accuracy against temperature (each swept T's seed mean and 95% interval, the
student alone as a dashed line, the selected T starred); bottom left, dark knowledge:
the teacher's mean soft probabilities between classes at the slider's T; bottom right,
per-class accuracy of the student alone, the student on the teacher's hard labels and
the distilled student (and after the bias correction when a class was left out).

No legend box: each panel's title carries its coloured words (as plots.py does), so
nothing is printed over a title at any width or font size (issue 25, item 4).
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .plots import LARGE_TYPE, layout_for, plain, swatch
from .served import figure_widget
from .theme import Theme

TEMPERATURE_TICKS = (1, 2, 4, 8, 16)
SOFT_TOP_CHARS = 15  # a language model's next-character view: its most likely ones
# Trace indices, fixed at construction.
(SOFT_TEACHER, SOFT_STUDENT, CURVE, ALONE, SELECTED, DARK, PC_ALONE, PC_HARD, PC_DISTILLED,
 PC_CORRECTED) = range(10)
PER_CLASS = (PC_ALONE, PC_HARD, PC_DISTILLED, PC_CORRECTED)
# Subplot title annotations, in make_subplots order.
T_SOFT, T_CURVE, T_DARK, T_PER_CLASS = range(4)
HEIGHT = 700


def _colors(theme: Theme) -> dict[int, str]:
    return {PC_ALONE: "#999999", PC_HARD: "#56B4E9", PC_DISTILLED: theme.accent,
            PC_CORRECTED: theme.pruned}  # Okabe-Ito, readable on both themes


def _title(head: str, detail: str = "") -> str:
    # two lines: the coloured words, then the detail in smaller type (short lines fit a
    # 330 px panel at talk mode's font)
    return head + (f"<br><span style='font-size:0.85em'>{detail}</span>" if detail else "")


def distill_figure(theme: Theme) -> go.FigureWidget:
    large = theme.font_size >= LARGE_TYPE
    fig = figure_widget(make_subplots(
        rows=2, cols=2, vertical_spacing=0.24 if large else 0.2, horizontal_spacing=0.16,
        subplot_titles=("soft targets", "accuracy vs T", "dark knowledge", "per class")))
    fig.update_layout({**layout_for(theme, "", HEIGHT + (120 if large else 0)),
                       "margin": {"l": 64, "r": 20, "t": 70, "b": 50}, "barmode": "group",
                       "bargap": 0.2})
    fig.add_bar(name="teacher", x=[], y=[], marker_color=theme.kept, row=1, col=1)
    fig.add_bar(name="student", x=[], y=[], marker_color=theme.pruned, row=1, col=1)
    fig.add_scatter(name="distilled", x=[], y=[], mode="lines+markers", row=1, col=2,
                    line={"color": theme.accent}, error_y={"type": "data", "array": [],
                                                           "visible": False})
    fig.add_scatter(name="student alone", x=[], y=[], mode="lines", row=1, col=2,
                    line={"color": theme.line, "dash": "dash"})
    fig.add_scatter(name="selected T", x=[], y=[], mode="markers", row=1, col=2,
                    cliponaxis=False, marker={"size": 15, "symbol": "star",
                                              "color": theme.pruned,
                                              "line": {"color": theme.line, "width": 1}})
    fig.add_heatmap(name="dark knowledge", z=[[0]], zmin=0, row=2, col=1, showscale=False,
                    colorscale=[[0.0, theme.background], [1.0, theme.kept]],
                    hovertemplate="true %{y}, class %{x}: %{z:.3f}<extra></extra>")
    for index, name in zip(PER_CLASS, ("alone", "hard labels", "distilled", "corrected")):
        fig.add_bar(name=name, x=[], y=[], marker_color=_colors(theme)[index], row=2, col=2)
    fig.update_xaxes(title_text="class", dtick=1, row=1, col=1)
    fig.update_yaxes(title_text="probability", range=[0, 1.0], row=1, col=1)
    fig.update_xaxes(title_text="temperature T", type="log", range=[-0.05, 1.3],
                     tickvals=list(TEMPERATURE_TICKS),
                     ticktext=[str(t) for t in TEMPERATURE_TICKS], row=1, col=2)
    fig.update_yaxes(title_text="val accuracy", tickformat=".0%", range=[0, 1.02],
                     dtick=0.5 if large else 0.25, row=1, col=2)
    fig.update_xaxes(title_text="class (teacher's soft answer)", dtick=1, row=2, col=1)
    fig.update_yaxes(title_text="true class", dtick=1, autorange="reversed", row=2, col=1)
    fig.update_xaxes(title_text="class", dtick=1, row=2, col=2)
    fig.update_yaxes(title_text="val accuracy", range=[0, 1.02], tickformat=".0%",
                     dtick=0.5 if large else 0.25, row=2, col=2)
    for ann in fig.layout.annotations:
        ann.font = {"size": theme.font_size + 1}
    return fig


def soft_title(theme: Theme, view: dict, student: bool) -> str:
    who = swatch(theme.kept, "teacher") + (f" {swatch(theme.pruned, 'student')}"
                                           if student else "")
    kl = view.get("kl")
    where = (f"Next character after {view['prompt']!r}" if view.get("prompt") is not None
             else f"example {view['index']} (label {view['label']})")
    return _title(who, f"{where}, T = {view['temperature']:g}"
                  + ("" if kl is None else f", KL {kl:.3g}"))


def update_soft(fig: go.FigureWidget, view: dict, theme: Theme) -> None:
    classes: list = list(range(len(view["teacher"])))
    student = view.get("student")
    if view.get("classes") is not None:  # characters: the teacher's top ones, by name
        top = np.argsort(-np.asarray(view["teacher"]), kind="stable")[:SOFT_TOP_CHARS]
        classes = [repr(view["classes"][i])[1:-1] or "?" for i in top]
        view = {**view, "teacher": [view["teacher"][i] for i in top],
                "student": student and [student[i] for i in top]}
        student = view["student"]
    with fig.batch_update():
        fig.data[SOFT_TEACHER].update(x=classes, y=plain(view["teacher"], 5))
        fig.data[SOFT_STUDENT].update(x=classes if student else [], y=plain(student or [], 5))
        fig.layout.annotations[T_SOFT].text = soft_title(theme, view, bool(student))


def update_sweep(fig: go.FigureWidget, theme: Theme, rows: list[dict],
                 alone: dict | None, selected: float | None, scale_label: str,
                 hint: str = "press Sweep T") -> None:
    """Each swept T's mean with its 95% interval; the alone mean; the selected T."""
    temps = [r["temperature"] for r in rows]
    means = [r["summary"]["mean"] for r in rows]
    up = [0.0 if r["summary"]["ci95_high"] is None else r["summary"]["ci95_high"] - m
          for r, m in zip(rows, means)]
    down = [0.0 if r["summary"]["ci95_low"] is None else m - r["summary"]["ci95_low"]
            for r, m in zip(rows, means)]
    chosen = next((r for r in rows if r["temperature"] == selected), None)
    n = rows[0]["summary"]["n"] if rows else 0
    with fig.batch_update():
        fig.data[CURVE].update(x=plain(temps, 4), y=plain(means, 5), error_y={
            "type": "data", "symmetric": False, "array": plain(up, 5),
            "arrayminus": plain(down, 5), "visible": n > 1, "thickness": 1.5, "width": 6})
        fig.data[ALONE].update(x=[1.0, 16.0] if alone and rows else [],
                               y=[alone["mean"]] * 2 if alone and rows else [])
        fig.data[SELECTED].update(
            x=[] if chosen is None else [chosen["temperature"]],
            y=[] if chosen is None else plain([chosen["summary"]["mean"]], 5))
        accuracy = scale_label.endswith("accuracy")
        fig.layout.yaxis2.title.text = scale_label
        fig.layout.yaxis2.tickformat = ".0%" if accuracy else ""
        # accuracy keeps its 0-100% axis (an interval over 2 seeds can reach past both
        # ends: the table gives its numbers); perplexity fits its values
        fig.layout.yaxis2.range = [0, 1.02] if accuracy else None
        fig.layout.yaxis2.autorange = None if accuracy else True
        head = (f"{swatch(theme.accent, 'distilled', '&#9472;')} "
                f"{swatch(theme.line, 'alone', '&#9476;')}")
        detail = (hint if not rows else
                  f"mean of {n} seed{'s' if n > 1 else ''}"
                  + (", 95% interval" if n > 1 else "")
                  + ("" if chosen is None else f"; T = {chosen['temperature']:g} &#9733;"))
        fig.layout.annotations[T_CURVE].text = _title(head, detail)


def update_dark(fig: go.FigureWidget, theme: Theme, view: dict | None, note: str) -> None:
    """The teacher's mean soft probabilities, true class by class, at view's T."""
    with fig.batch_update():
        if view is None:
            fig.data[DARK].update(z=[[0.0]], x=None, y=None, zmax=1.0)
            fig.layout.annotations[T_DARK].text = _title("dark knowledge", note)
            return
        matrix = np.asarray(view["matrix"], dtype=np.float64)
        off = matrix.copy()
        np.fill_diagonal(off, 0.0)
        # colour the off-diagonal share (the diagonal is near 1 at low T and would wash
        # out everything the student learns beyond the label)
        top = float(off.max()) if off.size and off.max() > 0 else 1.0
        fig.data[DARK].update(z=[plain(r, 4) for r in matrix], zmin=0.0, zmax=top,
                              x=list(range(matrix.shape[1])),
                              y=list(range(matrix.shape[0])))
        fig.layout.annotations[T_DARK].text = _title(
            "dark knowledge", f"teacher's mean soft answer, T = {view['temperature']:g}")


def update_per_class(fig: go.FigureWidget, theme: Theme, series: dict[int, list | None],
                     detail: str, split: str = "val") -> None:
    """Per-class accuracy bars of each student present (None: that student is absent)."""
    words = {PC_ALONE: "alone", PC_HARD: "hard", PC_DISTILLED: "distilled",
             PC_CORRECTED: "corrected"}
    colors = _colors(theme)
    with fig.batch_update():
        for index in PER_CLASS:
            values = series.get(index)
            fig.data[index].update(x=list(range(len(values))) if values else [],
                                   y=plain(values, 4) if values else [])
        fig.layout.yaxis4.title.text = f"{split} accuracy"
        head = " ".join(swatch(colors[i], words[i]) for i in PER_CLASS if series.get(i))
        fig.layout.annotations[T_PER_CLASS].text = _title(head or "per class", detail)
