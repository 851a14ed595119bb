"""Issue 16 in the app: a pinned run repeated over several seeds carries each seed's value,
and the Compare figure draws its mean with the 95% t-interval of explorer.studies.stats."""

from __future__ import annotations

import re

import pytest
from test_one_writer import spy_on_figure_writes
from ui_util import settle, status

from explorer.studies.stats import summarize
from explorer.ui import ExplorerApp


@pytest.fixture
def app(digits_app) -> ExplorerApp:
    digits_app.tabs.selected_index = 2  # Compare: its figures exist
    digits_app.c.slider.value = 0.8
    digits_app.c.steps.value, digits_app.c.finetune_epochs.value = 1, 1
    return digits_app


def test_a_repeated_pin_draws_its_mean_and_the_stats_interval(app):
    """Three seeds: three values, their summary, and error bars equal to that interval."""
    records = spy_on_figure_writes(app)
    app.compare.seeds.value = 3
    app.compare.label.value = "80% + ft"
    app.compare.pin.click()  # as the page does: through the UI lock
    row = app.compare.pinned[-1]
    settle(app)
    rep = row["repeat"]
    assert rep["seeds"] == [app.session.seed + i for i in range(3)] and rep["n"] == 3
    assert len(rep["values"]) == 3 and len(set(rep["values"])) > 1  # the seed matters
    expected = summarize(rep["values"])
    for key in ("mean", "sd", "ci95_low", "ci95_high"):
        assert rep[key] == pytest.approx(expected[key])
    pinned = app.compare.fig.data[3]
    assert pinned.y[-1] == pytest.approx(expected["mean"], abs=1e-5)  # drawn at the mean
    bars = pinned.error_y
    assert bars.visible and bars.symmetric is False
    assert bars.array[-1] == pytest.approx(expected["ci95_high"] - expected["mean"], abs=1e-9)
    assert bars.arrayminus[-1] == pytest.approx(expected["mean"] - expected["ci95_low"],
                                                abs=1e-9)
    table = re.sub(r"<[^>]+>", " ", app.compare.table.value)
    low, high = 100 * expected["ci95_low"], 100 * expected["ci95_high"]
    assert f"{100 * expected['mean']:.1f} [{low:.1f}, {high:.1f}]% (3 seeds)" in table
    # The table's accuracy column shows the value the figure plots (it showed the pinned
    # state's one-shot accuracy beside a point drawn at the seeds' mean), and the axis is
    # zoomed so that the interval is a visible share of it, not hidden under the marker.
    cells = re.findall(r"<td>([^<]*)</td>", app.compare.table.value)
    assert cells[1] == f"{100 * expected['mean']:.1f} [{low:.1f}, {high:.1f}]%*", cells
    y_range = app.compare.fig.layout.yaxis2.range
    assert y_range[0] <= expected["ci95_low"] and expected["ci95_high"] <= y_range[1]
    assert (expected["ci95_high"] - expected["ci95_low"]) / (y_range[1] - y_range[0]) > 0.05
    assert "repeated 80% + ft over 3 seeds (teacher)" in status(app)
    assert all(held for _, held in records), records  # one writer: under the UI lock


def test_a_single_seed_pin_has_no_interval_and_the_session_is_untouched(app):
    before = (app.snap.sparsity, app.snap.accuracy, len(app.session.history))
    app.compare.seeds.value = 1
    row = app.compare.pin_now()
    assert row["repeat"] is None and not app.jobs.busy
    assert app.compare.fig.data[3].error_y.visible is False
    # Two pins of one state: their labels go to opposite sides, never one over the other.
    app.compare.pin_now()
    assert set(app.compare.fig.data[3].textposition) == {"top center", "bottom center"}
    assert app.compare.table.value.index("<th>accuracy") < app.compare.table.value.index(
        "<th>bytes dense")  # the columns that decide first, in the 360 px column
    app.compare.seeds.value = 2
    app.compare.pin_now()
    settle(app)
    after = app.session.snapshot()
    assert (after.sparsity, after.accuracy, len(app.session.history)) == before
