"""The main live figure: per-layer sparsity, the selected layer's weights, the curves.

One FigureWidget holds all three panels: each FigureWidget carries plotly.js (about
5 MB) to the browser, and anywidget gives a widget 2 s to start, so fewer is safer and
faster. Trace counts never change; updates replace data in place inside one
batch_update, with float32/int32 arrays (sent as binary buffers). Lines are Scatter
traces, never layout shapes, which go stale under batching.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..engine.metrics import Snapshot
from .theme import Theme

MAX_POINTS = 1500  # per trace on the curves panel
# Trace indices, fixed at construction.
KEPT, PRUNED, GHOST, HIST, CUT, STEP_LOSS, VAL_LOSS, VAL_ACC, MARKS = range(9)


def layout_for(theme: Theme, title: str, height: int = 300) -> dict:
    return {"template": theme.template, "title": {"text": title, "x": 0.02},
            "height": height, "margin": {"l": 55, "r": 55, "t": 50, "b": 40},
            "paper_bgcolor": theme.background, "plot_bgcolor": theme.background,
            "font": {"color": theme.text, "size": theme.font_size},
            "legend": {"orientation": "h", "y": -0.08}}


def main_figure(theme: Theme) -> go.FigureWidget:
    """Bars (top left), histogram (top right), curves (bottom, accuracy on the right)."""
    grid = make_subplots(rows=2, cols=2, vertical_spacing=0.16, horizontal_spacing=0.1,
                         specs=[[{}, {}], [{"colspan": 2, "secondary_y": True}, None]],
                         subplot_titles=("Per-layer sparsity", "Weights of the selected layer",
                                         "Training curves"))
    fig = go.FigureWidget(grid)
    fig.update_layout(**layout_for(theme, "", 720), barmode="overlay", bargap=0.15,
                      clickmode="event")
    fig.add_bar(name="kept", x=[], y=[], marker_color=theme.kept, row=1, col=1)
    fig.add_bar(name="pruned", x=[], y=[], base=[], marker_color=theme.pruned, row=1, col=1)
    fig.add_bar(name="dense original", x=[], y=[], marker_color=theme.ghost, width=None,
                row=1, col=2)
    fig.add_bar(name="kept weights", x=[], y=[], marker_color=theme.kept, opacity=0.85,
                row=1, col=2)
    fig.add_scatter(name="threshold", x=[], y=[], mode="lines", row=1, col=2,
                    line={"color": theme.line, "dash": "dash", "width": 2})
    fig.add_scatter(name="train loss (step)", x=[], y=[], mode="lines", row=2, col=1,
                    line={"color": theme.pruned, "width": 1})
    fig.add_scatter(name="val loss", x=[], y=[], mode="lines+markers", row=2, col=1,
                    line={"color": theme.line})
    fig.add_scatter(name="val accuracy", x=[], y=[], mode="lines+markers", row=2, col=1,
                    secondary_y=True, line={"color": theme.accent})
    fig.add_scatter(name="pruning", x=[], y=[], mode="markers", row=2, col=1,
                    marker={"symbol": "triangle-down", "size": 12, "color": theme.pruned})
    fig.update_yaxes(title_text="weights", row=1, col=1)
    fig.update_xaxes(title_text="weight value", row=1, col=2)
    fig.update_yaxes(title_text="count", row=1, col=2)
    fig.update_xaxes(title_text="optimizer step", row=2, col=1)
    fig.update_yaxes(title_text="loss", row=2, col=1, secondary_y=False)
    fig.update_yaxes(title_text="accuracy", range=[0, 1.02], row=2, col=1, secondary_y=True)
    return fig


def _sparsity_data(snap: Snapshot, selected: str) -> dict:
    kept = np.array([layer.nonzero for layer in snap.layers], dtype=np.int32)
    pruned = np.array([layer.numel - layer.nonzero for layer in snap.layers], dtype=np.int32)
    names = [layer.name for layer in snap.layers]
    return {"names": names, "kept": kept, "pruned": pruned,
            "widths": [3 if n == selected else 0 for n in names],
            "text": [f"{layer.sparsity:.1%} pruned" for layer in snap.layers]}


def _histogram_data(snap: Snapshot, selected: str) -> dict:
    layer = snap.layer(selected)
    edges = layer.hist_edges
    top = float(max(layer.hist_base_counts.max(initial=1), 1))
    cut = np.float32(layer.cut)
    show_cut = 0 < layer.cut < np.inf
    return {"centers": ((edges[:-1] + edges[1:]) / 2).astype(np.float32),
            "width": float(edges[1] - edges[0]), "layer": layer,
            "line_x": np.array([-cut, -cut, np.nan, cut, cut] if show_cut else [],
                               dtype=np.float32),
            "line_y": np.array([0, top, np.nan, 0, top] if show_cut else [], dtype=np.float32)}


class ModelPanelsView:
    """Sends only what changed: a slider move touches heights, text, the cut and a title.

    Plotly validates every property set in Python (most of a move's cost), so layer names,
    bin positions, the dense ghost and the axis type are sent only when they change.
    """

    def __init__(self, fig: go.FigureWidget) -> None:
        self.fig = fig
        # (selected, layer names, log_y) and the ghost's counts, held so `is` is reliable
        self._static: tuple | None = None
        self._ghost: np.ndarray | None = None
        self._last: dict[str, tuple[np.ndarray, ...]] = {}  # what the browser already has

    def _changed(self, key: str, *arrays: np.ndarray) -> bool:
        """True (and remembered) unless these arrays equal what was sent last time.

        During training the masks are fixed, so the bars would be resent unchanged a few
        times a second; the browser redraws on every message, which a busy page feels.
        """
        last = self._last.get(key)
        if last is not None and all(np.array_equal(a, b) for a, b in zip(arrays, last)):
            return False
        self._last[key] = tuple(np.array(a, copy=True) for a in arrays)
        return True

    def update(self, snap: Snapshot, selected: str, log_y: bool) -> None:
        bars, hist = _sparsity_data(snap, selected), _histogram_data(snap, selected)
        layer, fig = hist["layer"], self.fig
        static = (selected, tuple(bars["names"]), log_y)
        with fig.batch_update():
            if static != self._static or layer.hist_base_counts is not self._ghost:
                fig.data[KEPT].update(x=bars["names"], marker_line_width=bars["widths"])
                fig.data[PRUNED].update(x=bars["names"], marker_line_width=bars["widths"])
                fig.data[GHOST].update(x=hist["centers"], y=layer.hist_base_counts,
                                       width=hist["width"])
                fig.data[HIST].update(x=hist["centers"], width=hist["width"])
                fig.layout.yaxis2.type = "log" if log_y else "linear"
                self._static, self._ghost = static, layer.hist_base_counts
                self._last.clear()  # a new layer or base: resend everything
            if self._changed("bars", bars["kept"], bars["pruned"]):
                fig.data[KEPT].y = bars["kept"]
                fig.data[PRUNED].y, fig.data[PRUNED].base = bars["pruned"], bars["kept"]
                fig.data[PRUNED].text = bars["text"]
            if self._changed("hist", layer.hist_counts):
                fig.data[HIST].y = layer.hist_counts
            fig.data[CUT].x, fig.data[CUT].y = hist["line_x"], hist["line_y"]
            fig.layout.annotations[1].text = (f"Weights of {selected} "
                                              f"({layer.sparsity:.1%} pruned)")


def update_model_panels(fig: go.FigureWidget, snap: Snapshot, selected: str,
                        log_y: bool) -> None:
    """Bars and histogram for one Snapshot, everything resent (one message)."""
    ModelPanelsView(fig).update(snap, selected, log_y)


def downsample(xs: np.ndarray, ys: np.ndarray, limit: int = MAX_POINTS
               ) -> tuple[np.ndarray, np.ndarray]:
    """At most `limit` points, evenly strided, always keeping the first and newest."""
    if len(xs) <= limit:
        return xs, ys
    idx = np.unique(np.linspace(0, len(xs) - 1, limit).astype(np.int64))
    return xs[idx], ys[idx]


def update_curves(fig: go.FigureWidget, steps: np.ndarray, step_losses: np.ndarray,
                  history: list[dict], task: str) -> None:
    """Step losses, per-epoch validation figures and pruning events (one message)."""
    epochs = [h for h in history if h.get("kind") == "epoch" and "step" in h]
    marks = [h for h in history if h.get("kind") == "prune_step"]
    ex = np.array([e["step"] for e in epochs], dtype=np.float32)
    vloss = np.array([e["val_loss"] for e in epochs], dtype=np.float32)
    vacc = np.array([np.nan if e["val_accuracy"] is None else e["val_accuracy"]
                     for e in epochs], dtype=np.float32)
    sx, sy = downsample(steps.astype(np.float32), step_losses.astype(np.float32))
    ax, vacc = downsample(ex, vacc)
    ex, vloss = downsample(ex, vloss)
    mx = np.array([m["step"] for m in marks], dtype=np.float32)
    my = np.array([m["loss"] for m in marks], dtype=np.float32)
    with fig.batch_update():
        fig.data[STEP_LOSS].update(x=sx, y=sy)
        fig.data[VAL_LOSS].update(x=ex, y=vloss, name="val loss" if task == "classification"
                                  else "val MSE")
        fig.data[VAL_ACC].update(x=ax if task == "classification" else [],
                                 y=vacc if task == "classification" else [])
        fig.data[MARKS].update(x=mx, y=my,
                               text=[f"prune step {m['k']}: {m['sparsity']:.0%}" for m in marks])
