"""The three live figures. Each update is one batch_update with float32/int32 arrays.

Trace counts never change after construction; updates replace data in place. Lines
(thresholds) are Scatter traces, never layout shapes, which go stale under batching.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from ..metrics import Snapshot
from .theme import Theme

MAX_POINTS = 1500  # per trace on the curves figure


def _layout(theme: Theme, title: str, height: int = 300) -> dict:
    return {"template": theme.template, "title": {"text": title, "x": 0.02},
            "height": height, "margin": {"l": 50, "r": 20, "t": 40, "b": 40},
            "paper_bgcolor": theme.background, "plot_bgcolor": theme.background,
            "font": {"color": theme.text, "size": theme.font_size},
            "legend": {"orientation": "h", "y": -0.2}}


def sparsity_figure(theme: Theme) -> go.FigureWidget:
    """Per-layer stacked bars: kept and pruned weight counts."""
    fig = go.FigureWidget(layout=_layout(theme, "Per-layer sparsity"))
    fig.add_bar(name="kept", x=[], y=[], marker_color=theme.kept)
    fig.add_bar(name="pruned", x=[], y=[], marker_color=theme.pruned)
    fig.update_layout(barmode="stack", yaxis_title="weights", clickmode="event")
    return fig


def update_sparsity(fig: go.FigureWidget, snap: Snapshot, selected: str) -> None:
    names = [layer.name for layer in snap.layers]
    kept = np.array([layer.nonzero for layer in snap.layers], dtype=np.int32)
    pruned = np.array([layer.numel - layer.nonzero for layer in snap.layers], dtype=np.int32)
    text = [f"{layer.sparsity:.1%} pruned" for layer in snap.layers]
    widths = [3 if n == selected else 0 for n in names]
    with fig.batch_update():
        fig.data[0].update(x=names, y=kept, marker_line_width=widths)
        fig.data[1].update(x=names, y=pruned, text=text, marker_line_width=widths)


def histogram_figure(theme: Theme) -> go.FigureWidget:
    """Selected layer: dense ghost, surviving weights, and the cut as two lines."""
    fig = go.FigureWidget(layout=_layout(theme, "Weights of the selected layer"))
    fig.add_bar(name="dense original", x=[], y=[], marker_color=theme.ghost)
    fig.add_bar(name="kept", x=[], y=[], marker_color=theme.kept)
    fig.add_scatter(name="threshold", x=[], y=[], mode="lines",
                    line={"color": theme.line, "dash": "dash", "width": 2})
    fig.update_layout(barmode="overlay", bargap=0, xaxis_title="weight value",
                      yaxis_title="count")
    return fig


def update_histogram(fig: go.FigureWidget, snap: Snapshot, selected: str,
                     log_y: bool) -> None:
    layer = snap.layer(selected)
    edges = layer.hist_edges
    centers = ((edges[:-1] + edges[1:]) / 2).astype(np.float32)
    top = float(max(layer.hist_base_counts.max(initial=1), 1))
    cut = np.float32(layer.cut)
    line_x = np.array([-cut, -cut, np.nan, cut, cut], dtype=np.float32)
    line_y = np.array([0, top, np.nan, 0, top], dtype=np.float32)
    if layer.cut <= 0:
        line_x = line_y = np.array([], dtype=np.float32)
    with fig.batch_update():
        fig.data[0].update(x=centers, y=layer.hist_base_counts)
        fig.data[1].update(x=centers, y=layer.hist_counts)
        fig.data[2].update(x=line_x, y=line_y)
        fig.layout.title.text = f"Weights of {selected} ({layer.sparsity:.1%} pruned)"
        fig.layout.yaxis.type = "log" if log_y else "linear"


def curves_figure(theme: Theme) -> go.FigureWidget:
    """Training loss per step, validation loss and accuracy per epoch."""
    fig = go.FigureWidget(layout=_layout(theme, "Training curves"))
    fig.add_scatter(name="train loss (step)", x=[], y=[], mode="lines",
                    line={"color": theme.pruned, "width": 1})
    fig.add_scatter(name="val loss", x=[], y=[], mode="lines+markers",
                    line={"color": theme.line})
    fig.add_scatter(name="val accuracy", x=[], y=[], mode="lines+markers", yaxis="y2",
                    line={"color": theme.accent})
    fig.update_layout(xaxis_title="step", yaxis_title="loss",
                      yaxis2={"title": "accuracy", "overlaying": "y", "side": "right",
                              "range": [0, 1.02]})
    return fig


def downsample(xs: np.ndarray, ys: np.ndarray, limit: int = MAX_POINTS
               ) -> tuple[np.ndarray, np.ndarray]:
    """At most `limit` points, evenly strided, always keeping the newest."""
    if len(xs) <= limit:
        return xs, ys
    idx = np.unique(np.linspace(0, len(xs) - 1, limit).astype(np.int64))
    return xs[idx], ys[idx]


def update_curves(fig: go.FigureWidget, steps: np.ndarray, step_losses: np.ndarray,
                  epochs: list[dict]) -> None:
    sx, sy = downsample(steps, step_losses)
    ex = np.array([e["step"] for e in epochs], dtype=np.float32)
    vloss = np.array([e["val_loss"] for e in epochs], dtype=np.float32)
    vacc = np.array([np.nan if e["val_accuracy"] is None else e["val_accuracy"]
                     for e in epochs], dtype=np.float32)
    ex, vloss = downsample(ex, vloss)
    _, vacc = downsample(np.array([e["step"] for e in epochs]), vacc)
    with fig.batch_update():
        fig.data[0].update(x=sx.astype(np.float32), y=sy.astype(np.float32))
        fig.data[1].update(x=ex, y=vloss)
        fig.data[2].update(x=ex, y=vacc)
