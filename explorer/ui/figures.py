"""The panel figures (trade-off, distillation, quality), built only when a tab opens.

Each FigureWidget carries plotly.js (about 5 MB) to the browser, so the page starts
with three figures and the rest appear on demand.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .plots import layout_for
from .theme import Theme


def _two_panel(theme: Theme, titles: tuple[str, str], height: int = 320) -> go.FigureWidget:
    fig = go.FigureWidget(make_subplots(rows=1, cols=2, subplot_titles=titles,
                                        horizontal_spacing=0.12))
    # Built while its tab opens, a figure cannot measure its container: give it a width.
    fig.update_layout({**layout_for(theme, "", height), "width": 1150,
                       "legend": {"orientation": "h", "y": -0.25}})
    return fig


def tradeoff_figure(theme: Theme) -> go.FigureWidget:
    """Left: accuracy vs sparsity (sweeps, current point). Right: pinned runs."""
    fig = _two_panel(theme, ("Accuracy vs sparsity", "Pinned runs"))
    fig.add_scatter(name="one-shot sweep", x=[], y=[], mode="lines+markers",
                    line={"color": theme.kept}, row=1, col=1)
    fig.add_scatter(name="with fine-tuning", x=[], y=[], mode="lines+markers",
                    line={"color": theme.accent}, row=1, col=1)
    fig.add_scatter(name="current", x=[], y=[], mode="markers",
                    marker={"size": 14, "color": theme.pruned, "symbol": "star"}, row=1, col=1)
    fig.add_scatter(name="pinned", x=[], y=[], mode="markers+text", text=[],
                    textposition="top center", marker={"size": 11, "color": theme.line},
                    row=1, col=2)
    for col in (1, 2):
        fig.update_xaxes(title_text="sparsity (pruned fraction of weights)", range=[-0.02, 1.0],
                         row=1, col=col)
        fig.update_yaxes(title_text="validation accuracy", range=[0, 1.02], row=1, col=col)
    fig.update_layout(margin={"b": 90})
    return fig


def update_tradeoff(fig: go.FigureWidget, oneshot: list, finetuned: list,
                    current: tuple[float, float | None] | None, pinned: list[dict]) -> None:
    def xy(points):
        return (np.array([p.actual_sparsity for p in points], dtype=np.float32),
                np.array([np.nan if p.accuracy is None else p.accuracy for p in points],
                         dtype=np.float32))

    with fig.batch_update():
        fig.data[0].x, fig.data[0].y = xy(oneshot)
        fig.data[1].x, fig.data[1].y = xy(finetuned)
        if current is not None and current[1] is not None:
            fig.data[2].x, fig.data[2].y = [current[0]], [current[1]]
        fig.data[3].update(
            x=np.array([r["sparsity"] for r in pinned], dtype=np.float32),
            y=np.array([np.nan if r["accuracy"] is None else r["accuracy"] for r in pinned],
                       dtype=np.float32),
            text=[r["label"] for r in pinned])


def distill_figure(theme: Theme) -> go.FigureWidget:
    """Left: softened teacher/student probabilities of one example. Right: accuracy vs T."""
    fig = _two_panel(theme, ("Softened probabilities", "Student accuracy vs temperature"))
    fig.add_bar(name="teacher", x=[], y=[], marker_color=theme.kept, row=1, col=1)
    fig.add_bar(name="student", x=[], y=[], marker_color=theme.pruned, row=1, col=1)
    fig.add_scatter(name="distilled", x=[], y=[], mode="lines+markers",
                    line={"color": theme.accent}, row=1, col=2)
    fig.add_scatter(name="current T", x=[], y=[], mode="lines",
                    line={"color": theme.line, "dash": "dash"}, row=1, col=2)
    fig.update_xaxes(title_text="class", dtick=1, row=1, col=1)
    fig.update_yaxes(title_text="probability", range=[0, 1.0], row=1, col=1)
    fig.update_xaxes(title_text="temperature T (press Sweep T)", type="log",
                     range=[-0.05, 1.35], row=1, col=2)
    fig.update_yaxes(title_text="validation accuracy", range=[0, 1.02], row=1, col=2)
    fig.update_layout(barmode="group")
    return fig


def update_soft(fig: go.FigureWidget, view: dict) -> None:
    classes = np.arange(len(view["teacher"]), dtype=np.int32)
    student = view.get("student")
    kl = view.get("kl")
    title = (f"Example {view['index']} (label {view['label']}) at T = "
             f"{view['temperature']:g}" + ("" if kl is None else f": KL = {kl:.4f}"))
    with fig.batch_update():
        fig.data[0].update(x=classes, y=np.asarray(view["teacher"], dtype=np.float32))
        fig.data[1].update(x=classes if student else [],
                           y=np.asarray(student or [], dtype=np.float32))
        fig.layout.annotations[0].text = title


def update_temperature_curve(fig: go.FigureWidget, sweep: list[dict],
                             temperature: float) -> None:
    temps = np.array([p["temperature"] for p in sweep], dtype=np.float32)
    accs = np.array([p["accuracy"] for p in sweep], dtype=np.float32)
    with fig.batch_update():
        fig.data[2].update(x=temps, y=accs)
        fig.data[3].update(x=[temperature, temperature] if len(sweep) else [],
                           y=[float(np.nanmin(accs)), float(np.nanmax(accs))] if len(sweep)
                           else [])


def quality_figure(theme: Theme) -> go.FigureWidget:
    """Confusion matrix (classification) or predicted vs true (regression)."""
    fig = go.FigureWidget(layout=layout_for(theme, "Confusion matrix (validation)", 420))
    fig.update_layout(width=560)
    fig.add_heatmap(z=[[0]], colorscale="Blues", showscale=False, name="confusion")
    fig.add_scatter(name="predicted vs true", x=[], y=[], mode="markers",
                    marker={"size": 4, "color": theme.kept, "opacity": 0.5})
    fig.update_xaxes(title_text="predicted", dtick=1)
    fig.update_yaxes(title_text="true", autorange="reversed", dtick=1)
    return fig


def update_quality(fig: go.FigureWidget, confusion: list | None,
                   regression: tuple[np.ndarray, np.ndarray] | None, title: str) -> None:
    with fig.batch_update():
        if confusion is not None:
            z = np.asarray(confusion, dtype=np.int32)
            fig.data[0].update(z=z, text=z, texttemplate="%{text}", visible=True)
            fig.data[1].visible = False
            fig.layout.yaxis.autorange = "reversed"
        elif regression is not None:
            fig.data[0].visible = False
            fig.data[1].update(x=regression[0].astype(np.float32),
                               y=regression[1].astype(np.float32), visible=True)
            fig.layout.yaxis.autorange = True
            fig.layout.xaxis.title.text, fig.layout.yaxis.title.text = "true", "predicted"
        fig.layout.title.text = title
