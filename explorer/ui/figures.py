"""The panel figures (trade-off, quality), built only when a tab opens (the Distill
tab's figure is in distill_figures.py).

Each FigureWidget ships its own copy of the widget's JavaScript, so the page starts with
one figure and the rest appear on demand. They size to their column (responsive), send
plain values (see plots.py), and keep a fixed number of traces.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .plots import layout_for, plain, plain_ints
from .served import figure_widget
from .theme import Theme

SENSITIVITY_TRACES = 8  # the most sensitive layers get a curve each (fixed trace count)
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442",
           "#999999")  # Okabe-Ito


def _two_panel(theme: Theme, titles: tuple[str, str], height: int = 340) -> go.FigureWidget:
    fig = figure_widget(make_subplots(rows=1, cols=2, subplot_titles=titles,
                                      horizontal_spacing=0.14))
    fig.update_layout({**layout_for(theme, "", height),
                       "margin": {"l": 60, "r": 20, "t": 40, "b": 55}})
    return fig


def tradeoff_figure(theme: Theme) -> go.FigureWidget:
    """Left: accuracy vs sparsity (sweeps, sensitivity, current). Right: pinned runs."""
    fig = _two_panel(theme, ("Accuracy vs sparsity", "Pinned runs"), 380)
    fig.add_scatter(name="one-shot sweep", x=[], y=[], mode="lines+markers",
                    line={"color": theme.kept}, row=1, col=1)
    fig.add_scatter(name="with fine-tuning", x=[], y=[], mode="lines+markers",
                    line={"color": theme.accent}, row=1, col=1)
    fig.add_scatter(name="current", x=[], y=[], mode="markers", cliponaxis=False,
                    marker={"size": 14, "color": theme.pruned, "symbol": "star"}, row=1, col=1)
    fig.add_scatter(name="pinned", x=[], y=[], mode="markers+text", text=[], cliponaxis=False,
                    textposition="top center", marker={"size": 8, "color": theme.line},
                    row=1, col=2)
    for i in range(SENSITIVITY_TRACES):
        fig.add_scatter(name=f"sensitivity {i}", x=[], y=[], mode="lines+markers",
                        line={"dash": "dot", "color": PALETTE[i % len(PALETTE)]},
                        marker={"size": 5}, row=1, col=1, showlegend=False)
    for col in (1, 2):
        fig.update_xaxes(title_text="sparsity", range=[-0.05, 1.05], tickformat=".0%",
                         dtick=0.25, row=1, col=col)
        fig.update_yaxes(title_text="validation accuracy", range=[0, 1.02], tickformat=".0%",
                         dtick=0.25, row=1, col=col)
    fig.update_layout(showlegend=True, legend={"orientation": "h", "y": -0.22, "x": 0})
    fig.update_layout(margin={"b": 95})
    return fig


def update_tradeoff(fig: go.FigureWidget, oneshot: list, finetuned: list,
                    current: tuple[float, float | None] | None, pinned: list[dict]) -> None:
    def xy(points):
        return (plain([p.actual_sparsity for p in points], 4),
                plain([np.nan if p.accuracy is None else p.accuracy for p in points], 5))

    with fig.batch_update():
        fig.data[0].x, fig.data[0].y = xy(oneshot)
        fig.data[1].x, fig.data[1].y = xy(finetuned)
        if current is not None and current[1] is not None:
            fig.data[2].x, fig.data[2].y = [current[0]], [current[1]]
        fig.data[3].update(
            x=plain([r["sparsity"] for r in pinned], 4),
            y=plain([np.nan if r["accuracy"] is None else r["accuracy"] for r in pinned], 5),
            text=[r["label"] for r in pinned])


def update_sensitivity(fig: go.FigureWidget, result: dict, short) -> None:
    """The most sensitive layers' curves (accuracy with that layer alone pruned)."""
    layers = result["layers"]
    drop = {n: -(min((a for a in accs if a is not None), default=0.0)) for n, accs in
            layers.items()}
    chosen = sorted(layers, key=lambda n: drop[n], reverse=True)[:SENSITIVITY_TRACES]
    chosen = [n for n in layers if n in chosen]  # model order
    with fig.batch_update():
        for i in range(SENSITIVITY_TRACES):
            trace = fig.data[4 + i]
            if i < len(chosen):
                accs = layers[chosen[i]]
                trace.update(x=plain(result["sparsities"][:len(accs)], 4),
                             y=plain([np.nan if a is None else a for a in accs], 5),
                             name=f"only {short(chosen[i])} pruned", showlegend=True)
            else:
                trace.update(x=[], y=[], showlegend=False)


def quality_figure(theme: Theme) -> go.FigureWidget:
    """Confusion matrix (classification) or predicted vs true (regression)."""
    fig = figure_widget(layout=layout_for(theme, "Confusion matrix (validation)", 420))
    fig.add_heatmap(z=[[0]], colorscale="Blues", showscale=False, name="confusion")
    fig.add_scatter(name="predicted vs true", x=[], y=[], mode="markers",
                    marker={"size": 4, "color": theme.kept, "opacity": 0.5})
    fig.update_xaxes(title_text="predicted", dtick=1)
    fig.update_yaxes(title_text="true", autorange="reversed", dtick=1, scaleanchor="x")
    return fig


def update_quality(fig: go.FigureWidget, confusion: list | None,
                   regression: tuple[np.ndarray, np.ndarray] | None, title: str) -> None:
    with fig.batch_update():
        if confusion is not None:
            z = [plain_ints(r) for r in np.asarray(confusion)]
            fig.data[0].update(z=z, text=z, texttemplate="%{text}", visible=True)
            fig.data[1].visible = False
            cells_only(fig, len(z), len(z))
        elif regression is not None:
            fig.data[0].visible = False
            fig.data[1].update(x=plain(regression[0], 5), y=plain(regression[1], 5),
                               visible=True)
            fig.layout.xaxis.update(autorange=True, constrain=None)
            fig.layout.yaxis.update(autorange=True, constrain=None, scaleanchor=None)
            fig.layout.xaxis.title.text, fig.layout.yaxis.title.text = "true", "predicted"
        fig.layout.title.text = title


def cells_only(fig: go.FigureWidget, rows: int, cols: int) -> None:
    """Axes spanning the heatmap's cells exactly, row 0 on top. Square cells
    (scaleanchor) shrink the plot's domain, not widen its range: plotly's default
    widens the range, and a 10-class matrix in a wide figure showed classes -5 to 14."""
    fig.layout.xaxis.update(range=[-0.5, cols - 0.5], autorange=False, constrain="domain")
    fig.layout.yaxis.update(range=[rows - 0.5, -0.5], autorange=False, constrain="domain",
                            scaleanchor="x")


def update_heads(fig: go.FigureWidget, grid: list[list[float]], title: str) -> None:
    """A language model's layers x heads: pruned fraction of each head (removed = 1, dark)."""
    z = np.asarray(grid, dtype=np.float64)
    with fig.batch_update():
        fig.data[0].update(z=[plain(r, 4) for r in z],
                           text=[plain_ints(np.round(r * 100)) for r in z],
                           texttemplate="%{text}%", zmin=0.0, zmax=1.0, visible=True)
        fig.data[1].visible = False
        cells_only(fig, *z.shape)
        fig.layout.xaxis.title.text, fig.layout.yaxis.title.text = "head", "layer"
        fig.layout.title.text = title
