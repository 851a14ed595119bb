"""The main figure's per-layer bars and weight histogram tell the truth (issue 28, items
2 and 3): one bar per layer however its name ends, no bar past 100%, and kept weights
drawn over the dense ghost, never stacked on it."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from explorer.engine.metrics import LayerStats, Snapshot
from explorer.ui import plots as P
from explorer.ui.headline import Metric
from explorer.ui.model_view import MainView
from explorer.ui.theme import get_theme

PARTS = st.sampled_from(["resnet", "encoder", "stages", "layers", "0", "1", "12",
                         "convolution", "inner", "weight", "a", ""])
NAMES = st.lists(st.lists(PARTS, min_size=1, max_size=6).map(".".join),
                 min_size=1, max_size=12, unique=True)


def _stripped(name: str) -> list[str]:
    """The name as the labels may read it: whole, or without inner./.weight."""
    return [name, P._strip(name)]


@settings(max_examples=300, deadline=None)
@given(NAMES)
def test_short_names_are_distinct_trailing_parts(names):
    short = P.short_names(names)
    assert len(set(short)) == len(names)
    # the last part is the name's own (shortening touches only the containers)
    assert all(any(label.split(".")[-1] == n.split(".")[-1] for n in _stripped(name))
               for name, label in zip(names, short))
    # with room to spare nothing is abbreviated: each label is the end of its name
    whole = P.short_names(names, limit=10**6)
    assert len(set(whole)) == len(names)
    assert all(any(n == label or n.endswith("." + label) for n in _stripped(name))
               for name, label in zip(names, whole))


def _layer(name: str, rng: np.random.Generator, sparsity: float = 0.5) -> LayerStats:
    """A layer of normal weights, its smallest magnitudes pruned (the engine's histogram:
    dense counts and kept counts over the dense weights' bins)."""
    w = rng.normal(size=1000).astype(np.float32)
    cut = float(np.quantile(np.abs(w), sparsity))
    kept = w[np.abs(w) >= cut]
    edges = np.linspace(w.min(), w.max(), 41).astype(np.float32)
    return LayerStats(name=name, numel=w.size, nonzero=kept.size,
                      sparsity=1 - kept.size / w.size, cut=cut,
                      hist_counts=np.histogram(kept, edges)[0].astype(np.int32),
                      hist_base_counts=np.histogram(w, edges)[0].astype(np.int32),
                      hist_edges=edges)


def _snapshot(names: list[str]) -> Snapshot:
    rng = np.random.default_rng(0)
    layers = tuple(_layer(n, rng) for n in names)
    numel = sum(s.numel for s in layers)
    nonzero = sum(s.nonzero for s in layers)
    return Snapshot(accuracy=0.5, loss=1.0, sparsity=1 - nonzero / numel, params=numel,
                    nonzero=nonzero, layers=layers)


def _tops(fig, indices: list[int], along: str) -> dict:
    """Where each category's bars end as plotly draws them: summed in stack mode,
    from each bar's own base otherwise."""
    other = "y" if along == "x" else "x"
    tops: dict = defaultdict(float)
    for i in indices:
        trace = fig.data[i]
        values, cats = getattr(trace, along), getattr(trace, other)
        bases = trace.base if trace.base is not None else [0] * len(values)
        bases = bases if isinstance(bases, (list, tuple)) else [bases] * len(values)
        for cat, value, base in zip(cats, values, bases):
            if fig.layout.barmode == "stack":
                tops[cat] += value
            else:
                tops[cat] = max(tops[cat], base + value)
    return dict(tops)


@pytest.fixture
def resnet_view():
    names = [f"resnet.encoder.stages.{s}.layers.{b}.convolution.weight"
             for s in range(5) for b in range(2)]
    fig = P.main_figure(get_theme("light"))
    view = MainView(fig, get_theme("light"))
    snap = _snapshot(names)
    view.show(snap, names[3], log_y=False, page=0, metric=Metric("accuracy", True))
    return fig, names, snap


def test_one_bar_per_layer_each_within_100_percent(resnet_view):
    fig, names, _ = resnet_view
    labels = list(fig.data[P.KEPT].y)
    assert len(labels) == len(set(labels)) == len(names) == 10
    assert list(fig.data[P.PRUNED].y) == labels
    assert [row[2] for row in fig.data[P.KEPT].customdata] == names  # full name on hover
    ends = _tops(fig, [P.KEPT, P.PRUNED], "x")
    assert len(ends) == 10 and all(end == pytest.approx(1.0) for end in ends.values())
    assert labels[:2] == ["s0.l0.convolution", "s0.l1.convolution"]


def test_kept_bins_drawn_over_the_dense_ghost_not_on_it(resnet_view):
    fig, names, snap = resnet_view
    dense = np.asarray(fig.data[P.GHOST].y)
    kept = np.asarray(fig.data[P.HIST].y)
    assert list(dense) == snap.layer(names[3]).hist_base_counts.tolist()
    assert kept.sum() == snap.layer(names[3]).nonzero and (kept > 0).any()
    ghost_tops = _tops(fig, [P.GHOST], "y")
    both = _tops(fig, [P.GHOST, P.HIST], "y")
    # kept bins never reach above the dense bins, and the tallest bar is the tallest
    # dense bin (not dense + kept, which read as twice the layer's weights)
    assert all(both[x] <= ghost_tops[x] for x in ghost_tops)
    assert max(both.values()) == dense.max()
