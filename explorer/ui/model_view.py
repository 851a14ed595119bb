"""Updates of the main figure: one batch_update per call, only what changed is sent.

Plotly validates every property set in Python (most of a move's cost) and the browser
redraws on every message, so layer names, bin positions and the dense ghost go out only
when they change, and the bars only when the masks did.
"""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from ..engine.metrics import Snapshot
from ..session.views import NetworkPicture, NetworkState  # value types, through session
from . import plots as P
from .curves import Curves
from .headline import Metric
from .quant_panel import codebook_lines
from .theme import Theme


def bar_page(names: list[str], page: int) -> tuple[int, int]:
    """[start, stop) of the layers on bar page `page` (clamped)."""
    pages = max(1, math.ceil(len(names) / P.MAX_BARS))
    page = min(max(page, 0), pages - 1)
    return page * P.MAX_BARS, min(len(names), (page + 1) * P.MAX_BARS)


def link_levels(picture: NetworkPicture, state: NetworkState) -> list[tuple[list, list]]:
    """x and y of each link trace (P.LINKS order): kept links by opacity level, the
    pruned ones (nothing kept) last; segments separated by None."""
    opacity = state.opacity(picture)
    level = np.where(state.kept > 0,
                     np.clip(np.ceil(opacity * P.LINK_LEVELS) - 1, 0, P.LINK_LEVELS - 1),
                     P.LINK_LEVELS).astype(np.int64)
    x0, x1 = picture.node_x[picture.link_src], picture.node_x[picture.link_dst]
    y0, y1 = picture.node_y[picture.link_src], picture.node_y[picture.link_dst]
    out = []
    for value in range(P.LINK_LEVELS + 1):
        sel = level == value
        xs = np.stack([x0[sel], x1[sel], np.zeros(int(sel.sum()), dtype=np.int64)], 1)
        ys = np.stack([y0[sel], y1[sel], np.zeros(int(sel.sum()), dtype=np.int64)], 1)
        xs_l, ys_l = xs.tolist(), ys.tolist()
        out.append(([v if j % 3 != 2 else None for row in xs_l for j, v in enumerate(row)],
                    [v if j % 3 != 2 else None for row in ys_l for j, v in enumerate(row)]))
    return out


PANEL_PX = 120  # first to last network column in a 1280 px page, about (labels fit it)
CHAR_PX = 5.6  # a label character at the labels' 9-10 px font, about (scaled with it)
LABEL_CHARS = 9  # column labels are the bars' short names, shortened to about this
LABEL_ROWS = 3  # neighbouring labels alternate between up to this many heights


def label_spacing(columns: int, widest_px: float) -> tuple[int, int]:
    """(heights, stride): labels alternate between `heights` lines and every `stride`-th
    column is named, so that two labels on one line are at least `widest_px` apart even
    when a group names its selected column instead of its first."""
    column_px = PANEL_PX / max(columns - 1, 1)
    rows = min(LABEL_ROWS, max(1, math.ceil(widest_px / column_px)))
    stride = 1
    while (rows * stride - (stride - 1)) * column_px < widest_px and stride < columns:
        stride += 1
    return rows, stride


def column_labels(picture: NetworkPicture, selected: int = -1, char_px: float = CHAR_PX
                  ) -> tuple[list[int], list[float], list[str], list[str], list[str]]:
    """x, y, text, hover and text position of one label per network column: "inputs",
    then each layer's unique short name (P.short_names, as the bars name layers, fitted
    to a column), its full name on hover. Above the tallest column; neighbours alternate
    between heights so they never meet; where even that is too tight, every n-th column
    is named, the `selected` one in place of its group's first (the others keep their
    hover). The end labels grow inwards, so none runs into the next panel."""
    names = ["inputs", *P.short_names(list(picture.layers), LABEL_CHARS)]
    columns = len(names)
    rows, stride = label_spacing(columns, char_px * max(len(n) for n in names) + 6)
    top = float(picture.node_y.max(initial=0)) + 1.5
    y = [top + 2.2 * (rows - 1 - (c // stride) % rows) for c in range(columns)]
    group = selected // stride if 0 <= selected < columns else -1
    text = [n if (c // stride == group and c == selected)
            or (c // stride != group and c % stride == 0) else ""
            for c, n in enumerate(names)]
    where = ["top center"] * columns
    named = [c for c, t in enumerate(text) if t]
    if len(named) > 1:
        where[named[0]], where[named[-1]] = "top right", "top left"
    return list(range(columns)), y, text, ["inputs", *picture.layers], where


class MainView:
    """Writes Snapshots, weight grids, the one-shot curve and training curves to the figure."""

    def __init__(self, fig: go.FigureWidget, theme: Theme) -> None:
        self.fig, self.theme = fig, theme
        self._static: tuple | None = None
        self._ghost: np.ndarray | None = None
        self._last: dict[str, tuple] = {}  # what the browser already has
        self._picture: NetworkPicture | None = None
        titles = P.titles(theme)
        with fig.batch_update():
            for index, text in titles.items():
                fig.layout.annotations[index].text = text

    def forget(self) -> None:
        """A new model or base: resend everything next time."""
        self._static, self._ghost, self._last = None, None, {}
        self._picture = None

    def _changed(self, key: str, *values) -> bool:
        last = self._last.get(key)
        now = tuple(np.array(v, copy=True) for v in values)
        if last is not None and all(np.array_equal(a, b) for a, b in zip(now, last)):
            return False
        self._last[key] = now
        return True

    # ----- bars, histogram, connections, the current point ------------------------------
    def show(self, snap: Snapshot, layer: str, log_y: bool, page: int, metric: Metric,
             network: tuple[NetworkPicture, NetworkState] | None = None) -> None:
        """Everything a slider move changes, as one message."""
        fig = self.fig
        names = [entry.name for entry in snap.layers]
        start, stop = bar_page(names, page)
        shown = snap.layers[start:stop]
        stats = snap.layer(layer)
        edges = stats.hist_edges
        static = (layer, tuple(names), log_y, start)
        with fig.batch_update():
            if static != self._static or stats.hist_base_counts is not self._ghost:
                labels = P.short_names(names)[start:stop]  # as every page names them
                widths = [2 if s.name == layer else 0 for s in shown]
                fig.data[P.KEPT].update(y=labels, marker_line_width=widths,
                                        marker_line_color=self.theme.line)
                fig.layout.yaxis.update(tickvals=labels, ticktext=labels)  # every name shown
                fig.data[P.PRUNED].update(y=labels, marker_line_width=widths,
                                          marker_line_color=self.theme.line)
                centers = P.plain((edges[:-1] + edges[1:]) / 2)
                width = float(edges[1] - edges[0])
                fig.data[P.GHOST].update(x=centers, y=P.plain_ints(stats.hist_base_counts),
                                         width=width)
                fig.data[P.HIST].update(x=centers, width=width)
                fig.layout.yaxis2.type = "log" if log_y else "linear"
                self._static, self._ghost = static, stats.hist_base_counts
                self._last.clear()
            kept = [s.nonzero / max(s.numel, 1) for s in shown]
            if self._changed("bars", kept):
                fig.data[P.KEPT].x = P.plain(kept, 4)
                fig.data[P.PRUNED].update(x=P.plain([1 - k for k in kept], 4),
                                          base=P.plain(kept, 4))
                # "37% pruned" on whichever part of the bar has room for it, never rotated
                words = [f"{s.sparsity:.0%} pruned" if s.sparsity >= 0.005 else ""
                         for s in shown]
                fig.data[P.KEPT].text = [w if k >= 0.5 else "" for w, k in zip(words, kept)]
                fig.data[P.PRUNED].text = [w if k < 0.5 else "" for w, k in zip(words, kept)]
                info = [[s.nonzero, s.numel, s.name] for s in shown]  # exact counts, hover
                fig.data[P.KEPT].customdata = info
                fig.data[P.PRUNED].customdata = info
            if self._changed("hist", stats.hist_counts):
                fig.data[P.HIST].y = P.plain_ints(stats.hist_counts)
            top = float(max(stats.hist_base_counts.max(initial=1), 1))
            cut = float(stats.cut)
            show_cut = 0 < cut < math.inf
            fig.data[P.CUT].x = [-cut, -cut, None, cut, cut] if show_cut else []
            fig.data[P.CUT].y = [0, top, None, 0, top] if show_cut else []
            book_x, book_y = codebook_lines(  # as tall as the snapped spikes
                snap.extra, layer, max(top, float(stats.hist_counts.max(initial=1))))
            if self._changed("codebook", book_x, book_y):
                fig.data[P.CODEBOOK].update(x=book_x, y=book_y)
            fig.layout.annotations[P.T_HIST].text = (
                f"{P.short_names(names)[names.index(layer)]}: {stats.sparsity:.0%} pruned")
            value = metric.value(snap)
            if value is not None:
                fig.data[P.CURRENT].x, fig.data[P.CURRENT].y = [snap.sparsity], [value]
            if network is not None:
                self.show_network(*network, layer)

    def show_network(self, picture: NetworkPicture, state: NetworkState, layer: str) -> None:
        """Neurons and links: positions when the picture (the base) changes, otherwise only
        which opacity level each link is in and which neurons are gone."""
        fig = self.fig
        if picture is not self._picture:
            self._picture = picture
            self._last = {k: v for k, v in self._last.items() if not k.startswith("net")}
            fig.data[P.GRID].update(x=P.plain_ints(picture.node_x),
                                    y=P.plain_ints(picture.node_y),
                                    text=list(picture.node_text))
            fig.layout.annotations[P.T_GRID].text = (
                f"Network: {len(picture.layers)} layers, strongest links")
        column = picture.layers.index(layer) + 1 if layer in picture.layers else -1
        selected = (picture.node_x == column) | (picture.node_x == column - 1)
        if self._changed("net_sel", selected):
            fig.data[P.GRID].marker.color = [self.theme.accent if s else self.theme.kept
                                             for s in selected.tolist()]
            x, y, text, hover, where = column_labels(  # talk mode's type is larger
                picture, column, CHAR_PX * P.label_size(self.theme) / 9.5)
            fig.data[P.COLUMNS].update(x=x, y=y, text=text, hovertext=hover,
                                       textposition=where)
            fig.data[P.COLUMNS].textfont.color = [
                self.theme.accent if c == column else self.theme.text
                for c in range(len(picture.layers) + 1)]
        if self._changed("net_alive", state.alive):
            fig.data[P.GRID].marker.opacity = [1.0 if a else 0.0 for a in state.alive.tolist()]
        for index, (xs, ys) in zip(P.LINKS, link_levels(picture, state)):
            if self._changed(f"net{index}", xs):
                P.set_unchecked(fig, index, "x", xs)
                P.set_unchecked(fig, index, "y", ys)

    # ----- accuracy vs sparsity ----------------------------------------------------------
    def show_curve(self, points: list | None, metric: Metric, note: str = "") -> None:
        """The one-shot curve (None: not computed yet) and the y axis for `metric`."""
        xs = [p.sparsity for p in points or ()]
        ys = [metric.point_value(p) for p in points or ()]
        with self.fig.batch_update():
            self.fig.data[P.CURVE].update(x=P.plain(xs, 4), y=P.plain(ys, 5))
            axis = self.fig.layout.yaxis3
            axis.title.text = metric.name
            if metric.name == "accuracy":
                axis.update(range=[0, 1.02], tickformat=".0%", dtick=0.25, type="linear")
            else:
                axis.update(range=None, autorange=True, tickformat="", dtick=None,
                            type="linear")
            self.fig.layout.annotations[P.T_CURVE].text = (
                P.titles(self.theme)[P.T_CURVE] + (f" <i>{note}</i>" if note else ""))

    # ----- training curves ---------------------------------------------------------------
    def show_curves(self, curves: Curves, metric: Metric, who: str) -> None:
        """One model's step losses, per-epoch figures and pruning events (one message)."""
        sx, sy = P.downsample(np.asarray(curves.steps, dtype=np.float64),
                              np.asarray(curves.losses, dtype=np.float64))
        ex = np.asarray([e[0] for e in curves.epochs], dtype=np.float64)
        vloss = np.asarray([e[1] for e in curves.epochs], dtype=np.float64)
        vacc = np.asarray([np.nan if e[2] is None else e[2] for e in curves.epochs],
                          dtype=np.float64)
        ax, vacc = P.downsample(ex, vacc)
        ex, vloss = P.downsample(ex, vloss)
        accuracy = metric.name == "accuracy" or metric.name == "perplexity"
        t = self.theme
        # the legend names only the lines drawn (the shipped checkpoint has no step losses)
        words = ([P.swatch(t.step, "train loss", "&#9472;")] if len(sx) else []) + [
            P.swatch(t.line, "val MSE" if metric.name == "MSE" else "val loss", "&#9472;")]
        if accuracy:
            # a language model's accuracy line is next-character accuracy, not its headline
            label = "val next-char accuracy" if metric.name == "perplexity" else "val accuracy"
            words.append(P.swatch(t.accent, label, "&#9472;"))
        empty = not len(sx) and not len(ex)
        with self.fig.batch_update():
            self.fig.data[P.STEP_LOSS].update(x=P.plain(sx), y=P.plain(sy))
            self.fig.data[P.VAL_LOSS].update(x=P.plain(ex), y=P.plain(vloss))
            self.fig.data[P.VAL_ACC].update(x=P.plain(ax) if accuracy else [],
                                            y=P.plain(vacc) if accuracy else [])
            self.fig.data[P.MARKS].update(x=[m[0] for m in curves.marks],
                                          y=[m[1] for m in curves.marks],
                                          text=[m[2] for m in curves.marks])
            self.fig.layout.annotations[P.T_CURVES].text = (
                f"{who}: " + " ".join(words) + (" <i>(press Train)</i>" if empty else ""))
            self.fig.layout.yaxis6.showticklabels = accuracy  # the accuracy axis (right)
            self.fig.layout.yaxis6.title.text = "accuracy" if accuracy else ""  # not for MSE
            self.fig.layout.yaxis5.showticklabels = not empty
            self.fig.layout.xaxis5.showticklabels = not empty
