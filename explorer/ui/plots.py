"""The main live figure: per-layer sparsity, the selected layer's weights, the network,
accuracy vs sparsity, and the training curves.

One FigureWidget holds all five panels (each FigureWidget ships its own copy of the
widget's JavaScript, so fewer is faster). Trace counts never change; updates replace
data in place inside one batch_update. Values go out as plain lists and numbers, never
NumPy arrays: the front end answers every update with the figure's full data, and
plotly's handler of that answer (`_remove_overlapping_props`) tests `if not value`,
which raises on an array and then leaves the figure waiting forever for its edit to
finish (issue 15, item 2). Panel legends are coloured words in the panel titles, so no
legend box can cover an axis title.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from functools import lru_cache

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..compat.plotly import restyle_unchecked
from .served import figure_widget
from .theme import Theme

MAX_POINTS = 1500  # per trace on the curves panel
MAX_BARS = 10  # layers per page of the sparsity bars (a model with more pages through them)
LABEL_CHARS = 16  # layer names are shortened to about this many characters
# Trace indices, fixed at construction.
(KEPT, PRUNED, GHOST, HIST, CUT, GRID, CURVE, CURRENT, STEP_LOSS, VAL_LOSS, VAL_ACC,
 MARKS, CODEBOOK) = range(13)
# Subplot title annotations, in make_subplots order.
T_BARS, T_HIST, T_CURVE, T_GRID, T_CURVES = range(5)
# The network panel's links, one trace per opacity level (LINK_LEVELS kept levels, then
# the pruned links, faded): a slider move only moves links between these traces.
LINK_LEVELS = 5
LINKS = tuple(range(CODEBOOK + 1, CODEBOOK + 2 + LINK_LEVELS))
COLUMNS = LINKS[-1] + 1  # the network's column labels (a layer's short name, full on hover)
PRUNED_LINK_OPACITY = 0.07
MAIN_HEIGHT = 640
# Talk mode: the whole figure, curves included, on a 1280x720 projector under the headline
# and the story line (about 195 px): it was 700 px and cut the curves in half (issue 28)
TALK_HEIGHT = 520
LARGE_TYPE = 16  # a theme font at least this large (talk mode) gets fewer, larger ticks


def plain(values, digits: int = 6) -> list:
    """Plain Python numbers (None for NaN/inf) from an array or list, for plotly."""
    arr = np.asarray(values, dtype=np.float64).ravel()
    return [None if not math.isfinite(v) else v for v in np.round(arr, digits).tolist()]


def plain_ints(values) -> list[int]:
    return [int(v) for v in np.asarray(values).ravel().tolist()]


def set_unchecked(fig: go.FigureWidget, index: int, prop: str, value: list) -> None:
    """Set trace ``index``'s ``prop`` to ``value`` without plotly's per-element validation.

    Inside ``fig.batch_update()`` the edit joins the batch's one update message as a validated
    one would; plotly would otherwise walk every element (hundreds of link
    coordinates for the network view). Only for values built here
    as plain lists of numbers (see test_front_end_deltas); outside a batch, it validates.
    """
    restyle_unchecked(fig, index, prop, value)  # plotly's internals: explorer.compat


def label_size(theme: Theme) -> int:
    """Font size of the network's column labels (px)."""
    return max(theme.font_size - 3, 9)


def swatch(color: str, text: str, mark: str = "&#9632;") -> str:
    """A coloured legend word for a panel title (plotly titles accept this HTML)."""
    return f"<span style='color:{color}'>{mark}</span> {text}"


def _strip(name: str) -> str:
    # "inner." is the attribute by which an hf: model's wrapper holds the transformers model
    # (explorer.models.hf): on every one of its layers, so it tells a reader nothing
    return re.sub(r"\.weight$", "", re.sub(r"^inner\.", "", name))


def short_name(name: str, limit: int = LABEL_CHARS, force: bool = False) -> str:
    """A layer's name for an axis: no `.weight`; when too long (or `force`), containers
    shortened ("blocks.0.attn.q" -> "b0.attn.q"), else the tail kept."""
    name = _strip(name)
    if len(name) <= limit and not force:
        return name
    merged: list[str] = []
    for part in name.split("."):  # "blocks", "0" -> "blocks0"
        if part.isdigit() and merged:
            merged[-1] += part
        else:
            merged.append(part)
    head = [re.sub(r"^([A-Za-z])[A-Za-z_]*", r"\1", p) for p in merged[:-2]]
    short = ".".join([*head, *merged[-2:]])
    return short if len(short) <= limit else "\u2026" + short[-(limit - 1):]


def _unique_tails(parts: list[list[str]]) -> list[list[str]]:
    """Each name's fewest trailing parts that no other name ends with, and a bare index
    with its container ("classifier.1", not "1"). Tails of different lengths differ in
    their number of dots, and a tail unique at k parts stays unique at more, so the tails
    are distinct whenever the names are (a name that ends another keeps all its parts)."""
    depth = max((len(p) for p in parts), default=0)
    counts = [Counter(tuple(p[-k:]) for p in parts if len(p) >= k) for k in range(depth + 1)]
    tails = []
    for mine in parts:
        k = 1
        while k < len(mine) and counts[k][tuple(mine[-k:])] > 1:
            k += 1
        if k < len(mine) and mine[-k].isdigit():
            k += 1
        tails.append(mine[-k:])
    return tails


def _common_head(parts: list[list[str]]) -> int:
    """How many leading parts every name shares (never a whole name)."""
    if not parts:
        return 0
    most = min(len(p) for p in parts) - 1
    n = 0
    while n < most and all(p[n] == parts[0][n] for p in parts):
        n += 1
    return n


def _abbreviate(tail: list[str], limit: int) -> str:
    """Container words to their first letter with their index, leftmost first, until the
    name fits ("stages.0.layers.0.convolution" -> "s0.l0.convolution"); the last part
    stays whole."""
    parts, i = list(tail), 0
    while len(".".join(parts)) > limit and i < len(parts) - 1:
        if parts[i][:1].isalpha():
            parts[i] = parts[i][0]
            if i + 1 < len(parts) - 1 and parts[i + 1].isdigit():
                parts[i] += parts.pop(i + 1)
        i += 1
    return ".".join(parts)


def short_names(names: list[str], limit: int = LABEL_CHARS) -> list[str]:
    """Short, unique names for an axis (issue 28, item 2): the parts all names share
    dropped, each keeps the fewest trailing parts that tell it from the others
    ("stage.block.conv" style), shortened to about `limit` characters where that keeps
    them unique. The full name goes on the hover."""
    return list(_short_names(tuple(names), limit))


@lru_cache(maxsize=64)  # a slider move asks again for the same model's names
def _short_names(names: tuple[str, ...], limit: int) -> tuple[str, ...]:
    stripped = [_strip(n) for n in names]
    if len(set(stripped)) < len(set(names)):  # "x" and "x.weight": keep what tells them apart
        stripped = list(names)
    parts = [n.split(".") for n in stripped]
    head = _common_head(parts)
    tails = _unique_tails([p[head:] for p in parts])
    # an index that starts a whole remainder gets back its container from the shared
    # head ("stages.0.layers.0.conv" -> "s0.l0.conv", not "0.l0.conv")
    named = [p[head - 1:] if head and len(t) == len(p) - head and t[0].isdigit() else t
             for p, t in zip(parts, tails)]
    for choice in (named, tails):  # the first whose labels stay unique; `tails` always do
        for label in ([_abbreviate(t, limit) for t in choice], [".".join(t) for t in choice]):
            if len(set(label)) == len(set(names)):
                return tuple(label)
    raise AssertionError("distinct names have distinct tails")  # see _unique_tails


def layout_for(theme: Theme, title: str, height: int = 300) -> dict:
    return {"template": theme.template, "title": {"text": title, "x": 0.02},
            "height": height, "margin": {"l": 60, "r": 60, "t": 60, "b": 50},
            "paper_bgcolor": theme.background, "plot_bgcolor": theme.background,
            "font": {"color": theme.text, "size": theme.font_size},
            "showlegend": False}


def main_figure(theme: Theme) -> go.FigureWidget:
    """Row 1: bars, histogram, accuracy vs sparsity. Row 2: the network, curves."""
    large = theme.font_size >= LARGE_TYPE
    grid = make_subplots(  # talk type: more room between panels for the axis titles
        rows=2, cols=3, vertical_spacing=0.2, horizontal_spacing=0.13 if large else 0.1,
        specs=[[{}, {}, {}], [{}, {"colspan": 2, "secondary_y": True}, None]],
        subplot_titles=("Sparsity per layer", "Weights", "Accuracy vs sparsity",
                        "Network", "Training curves"))
    fig = figure_widget(grid)
    fractions = [0, 0.5, 1] if large else [0, 0.25, 0.5, 0.75, 1]
    fig.update_layout(**layout_for(theme, "", TALK_HEIGHT if large else MAIN_HEIGHT),
                      barmode="overlay", bargap=0.25, clickmode="event", hovermode="closest")
    fig.update_layout(margin={"l": 70, "r": 55, "t": 40, "b": 45})
    bar = {"orientation": "h", "row": 1, "col": 1,
           "hovertemplate": "%{customdata[2]}<br>%{customdata[0]:,} of %{customdata[1]:,} "
                            "kept<extra></extra>"}
    label = {"text": [], "textposition": "inside", "insidetextanchor": "middle",
             "textangle": 0, "constraintext": "none"}
    fig.add_bar(name="kept", x=[], y=[], customdata=[], marker_color=theme.kept,
                insidetextfont={"color": theme.on_kept}, **label, **bar)
    fig.add_bar(name="pruned", x=[], y=[], customdata=[], marker_color=theme.pruned,
                insidetextfont={"color": "#000000"}, **label, **bar)
    # Overlay, never stack (issue 28, item 3): the kept weights are drawn over the dense
    # ghost, so no bin looks taller than the layer ever had; the pruned part of a layer's
    # bar starts where its kept part ends (`base`), the one bar reaching 100%.
    fig.add_bar(name="dense original", x=[], y=[], marker_color=theme.ghost, row=1, col=2)
    fig.add_bar(name="kept weights", x=[], y=[], marker_color=theme.kept, opacity=0.9,
                row=1, col=2)
    fig.add_scatter(name="threshold", x=[], y=[], mode="lines", row=1, col=2,
                    line={"color": theme.line, "dash": "dash", "width": 2})
    fig.add_scatter(name="neurons", x=[], y=[], mode="markers", text=[], row=2, col=1,
                    hovertemplate="%{text}<extra></extra>", cliponaxis=False,
                    marker={"size": 7, "color": theme.kept, "line": {"width": 0}})
    fig.add_scatter(name="one-shot curve", x=[], y=[], mode="lines+markers", row=1, col=3,
                    line={"color": theme.accent, "width": 2}, marker={"size": 5})
    fig.add_scatter(name="current", x=[], y=[], mode="markers", row=1, col=3,
                    cliponaxis=False,
                    marker={"size": 14, "color": theme.pruned, "symbol": "star",
                            "line": {"color": theme.line, "width": 1}})
    curves = {"row": 2, "col": 2}
    fig.add_scatter(name="train loss (step)", x=[], y=[], mode="lines", **curves,
                    line={"color": theme.step, "width": 1})
    fig.add_scatter(name="val loss", x=[], y=[], mode="lines+markers", **curves,
                    line={"color": theme.line})
    fig.add_scatter(name="val accuracy", x=[], y=[], mode="lines+markers", **curves,
                    secondary_y=True, line={"color": theme.accent})
    fig.add_scatter(name="pruning", x=[], y=[], mode="markers", text=[], **curves,
                    marker={"symbol": "triangle-down", "size": 12, "color": theme.pruned})
    fig.add_scatter(name="codebook", x=[], y=[], mode="lines", row=1, col=2,  # quantized
                    line={"color": theme.accent, "dash": "dot", "width": 1})
    for level in range(LINK_LEVELS + 1):  # trace order fixed: indices P.LINKS
        pruned = level == LINK_LEVELS
        fig.add_scatter(name="pruned links" if pruned else f"links {level + 1}", x=[], y=[],
                        mode="lines", hoverinfo="skip", row=2, col=1,
                        opacity=PRUNED_LINK_OPACITY if pruned else (level + 1) / LINK_LEVELS,
                        line={"color": theme.pruned if pruned else theme.kept, "width": 1})
    fig.add_scatter(name="layers", x=[], y=[], mode="text", text=[], hovertext=[], row=2,
                    col=1, hovertemplate="%{hovertext}<extra></extra>", cliponaxis=False,
                    textposition="top center",
                    textfont={"size": label_size(theme), "color": theme.text})
    fig.update_xaxes(range=[0, 1], tickformat=".0%", tickvals=fractions, row=1, col=1)
    fig.update_yaxes(autorange="reversed", automargin=True, tickmode="array",
                     tickfont={"size": max(theme.font_size - 2, 10)}, row=1, col=1)
    fig.update_xaxes(title_text="weight value", nticks=4 if large else 6, row=1, col=2)
    fig.update_xaxes(title_text="sparsity", range=[-0.03, 1.03], tickformat=".0%",
                     tickvals=fractions, row=1, col=3)
    bare = {"showticklabels": False, "showgrid": False, "zeroline": False}
    fig.update_xaxes(title_text="inputs \u2192 outputs", row=2, col=1, **bare)
    fig.update_yaxes(row=2, col=1, **bare)
    fig.update_xaxes(title_text="optimizer step (this model)", rangemode="tozero",
                     row=2, col=2)
    fig.update_yaxes(title_text="loss", rangemode="tozero", row=2, col=2, secondary_y=False)
    fig.update_yaxes(title_text="accuracy", range=[0, 1.02], tickformat=".0%", dtick=0.25,
                     row=2, col=2, secondary_y=True, showgrid=False)
    for ann in fig.layout.annotations:
        ann.font = {"size": theme.font_size + 1}
    return fig


def titles(theme: Theme) -> dict[int, str]:
    """Panel titles with their coloured legend words."""
    return {
        T_BARS: f"{swatch(theme.kept, 'kept')} {swatch(theme.pruned, 'pruned')}",
        T_CURVE: f"{swatch(theme.accent, 'one-shot', '&#9472;')} "
                 f"{swatch(theme.pruned, 'now', '&#9733;')}",
    }


def downsample(xs: np.ndarray, ys: np.ndarray, limit: int = MAX_POINTS
               ) -> tuple[np.ndarray, np.ndarray]:
    """At most `limit` points, evenly strided, always keeping the first and newest."""
    if len(xs) <= limit:
        return xs, ys
    idx = np.unique(np.linspace(0, len(xs) - 1, limit).astype(np.int64))
    return xs[idx], ys[idx]
