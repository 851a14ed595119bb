"""The Distill tab headless (issue 25): Sweep T over seeds, the table's selected row and the
slider, the students' table, a failing or stopped sweep, the figure's fixed traces."""

from __future__ import annotations

import re
import threading
from unittest import mock

import pytest
from ui_util import settle, status

from explorer.ui import ExplorerApp
from explorer.ui.distill_figures import CURVE, SELECTED
from explorer.ui.distill_sweep import SWEEP_TEMPERATURES

pytestmark = pytest.mark.slow


@pytest.fixture
def app(digits_app) -> ExplorerApp:
    digits_app.tabs.selected_index = 1  # the Distill tab: its figure is built
    digits_app.distill.epochs.value = 1
    return digits_app


def statuses(app) -> list[str]:
    """Every status line the app shows from now on."""
    seen: list[str] = []
    app.c.status.observe(lambda ch: seen.append(status(app)), names="value")
    return seen


def sweep(app, seeds: int = 2) -> None:
    app.distill.seeds.value = seeds
    assert app.distill.start("sweep")
    settle(app, 300)


def selected_rows(app) -> list[str]:
    return re.findall(r"<tr class='cx-sweep-row cx-selected' data-t='([^']+)'",
                      app.distill.sweep_box.value)


def distilled_row(app) -> str:
    (found,) = re.findall(r"<td style='text-align:left'>distilled student \(T = ([^)]+)\)",
                          app.distill.table.value)
    return found


def test_sweep_rows_follow_the_slider_and_name_the_student_shown(app):
    """After Sweep T (2 seeds): one row per swept T with its interval and its paired
    difference from the student alone; the selected row, the slider, the star, the
    students' table and the student in the slot all name the same T; moving the slider
    selects another row and shows that T's student, without training."""
    seen = statuses(app)
    sweep(app)
    result = app.distill.sweep_result
    assert "temperature sweep done (5 temperatures, 2 seeds)" in status(app)
    # every run reported its stage; the status line shows the ones the pump came round to
    # (a fast sweep may coalesce them all), each in this form
    assert re.fullmatch(r"T = 16, 5 of 5, seed 2 of 2", app.jobs.stage), app.jobs.stage
    progress = [s for s in seen if "starting" not in s and "done" not in s]
    assert all(re.search(r"(T = \d+, \d of 5|student alone, seed \d of 2)", s)
               for s in progress if "of" in s), seen
    assert result.temperatures == list(SWEEP_TEMPERATURES)
    for row in result.rows:
        assert len(row["values"]) == 2 and row["summary"]["ci95_low"] is not None
        assert row["vs_alone"]["n"] == 2
        assert row["vs_alone"]["mean_diff"] == pytest.approx(
            row["summary"]["mean"] - result.alone["mean"], abs=1e-9)
    best = result.best()["temperature"]
    assert app.distill.temperature.value == best
    for moved, expect in ((3.0, 4.0), (14.0, 16.0), (1.2, 1.0)):
        with mock.patch.object(app.session.students, "distill") as distill, \
                mock.patch.object(app.session, "train") as train:
            app.distill.temperature.value = moved
        distill.assert_not_called()
        train.assert_not_called()
        assert app.distill.temperature.value == expect  # snapped to a swept T
        assert selected_rows(app) == [f"{expect:g}"]
        assert distilled_row(app) == f"{expect:g}"
        assert list(app.distill.fig.data[SELECTED].x) == [expect]
        shown = app.session.measure(slot="student", full=False).accuracy
        assert shown == pytest.approx(result.row(expect)["values"][0], abs=1e-9)
    assert "error" not in status(app)


def test_a_failing_sweep_leaves_the_students_as_they_were(app):
    """An exception in the third run: the status says so, the student slots hold what
    they held before (no student at all here), no sweep table appears."""
    before = set(app.session.slots.names)
    real = app.session.students.distill
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("boom at the second temperature")
        return real(*args, **kwargs)

    with mock.patch.object(app.session.students, "distill", side_effect=flaky):
        sweep(app, seeds=1)
    assert "error: temperature sweep" in status(app) and "boom" in status(app)
    assert set(app.session.slots.names) == before
    assert app.distill.sweep_result is None and app.distill.sweep_box.value == ""
    assert not app.jobs.busy and not app.distill.sweep.disabled


def test_stop_ends_the_sweep_and_keeps_only_whole_temperatures(app):
    app.distill.epochs.value = 200
    app.distill.seeds.value = 1
    reached = threading.Event()
    real = app.session.students.distill

    def second(*args, **kwargs):  # stop once the second temperature's run is under way
        if kwargs.get("temperature") == SWEEP_TEMPERATURES[1]:
            reached.set()
        return real(*args, **kwargs)

    with mock.patch.object(app.session.students, "distill", side_effect=second):
        assert app.distill.start("sweep")
        assert reached.wait(300)
        app.c.stop.click()
        settle(app, 300)
    assert "stopped" in status(app), status(app)
    result = app.distill.sweep_result
    assert result.temperatures == [SWEEP_TEMPERATURES[0]]
    assert selected_rows(app) == [f"{SWEEP_TEMPERATURES[0]:g}"]
    assert app.distill.temperature.value == SWEEP_TEMPERATURES[0]


def test_the_figure_keeps_its_traces_and_has_no_legend_box(app):
    fig = app.distill.fig
    names = [t.name for t in fig.data]
    assert fig.layout.showlegend is False  # coloured words in the titles instead
    app.distill.temperature.value = 9.0
    sweep(app, seeds=1)
    app.distill.temperature.value = 2.0
    assert [t.name for t in fig.data] == names
    assert list(fig.data[CURVE].x) == list(SWEEP_TEMPERATURES)
    assert fig.data[CURVE].error_y.visible is False  # one seed: no interval drawn
    titles = [a.text for a in fig.layout.annotations]
    assert "T = 2" in titles[0] and "teacher" in titles[0] and "student" in titles[0]


def test_regime_controls_name_the_regime_and_reach_every_student(app):
    """The regime in words (Regime.describe) above the controls and under the table; a
    class left out reaches all three students; per-class bars and the bias correction
    show; "All labels" is one click back to the full-label case."""
    from explorer import config as C
    from explorer.engine.regime import Regime
    from explorer.ui.distill_figures import PC_CORRECTED, T_PER_CLASS

    p = app.distill
    assert Regime(labelled=C.DEFAULT_LABELLED).describe() in html_text(p.regime.value)
    assert [v for _, v in p.leave_out.options][:2] == [-1, C.DEFAULT_LEAVE_OUT_CLASS]
    p.leave_out.value = 3
    words = Regime(labelled=C.DEFAULT_LABELLED, leave_out=3).describe()
    assert words in html_text(p.regime.value)
    for kind in ("alone", "hard", "distill"):
        assert p.start(kind)
        settle(app)
        assert "error" not in status(app), status(app)
    for slot in ("student", "student_alone", "student_hard"):
        regime = app.session.students.regime(slot)
        assert (regime.labelled, regime.leave_out) == (C.DEFAULT_LABELLED, 3)
    assert words in html_text(p.table.value)
    assert "student on teacher's labels" in html_text(p.table.value)
    bias = app.session.students.bias_correction("student", 3)
    assert list(p.fig.data[PC_CORRECTED].y) == pytest.approx(
        [None if v != v else round(v, 4) for v in bias["per_class_after"]])
    assert "class 3 left out" in p.fig.layout.annotations[T_PER_CLASS].text
    p.all_labels.click()
    assert (p.labelled.value, p.leave_out.value) == (1.0, -1)
    assert "all labels" in html_text(p.regime.value)
    assert p.regime_kwargs() == {"labelled": 1.0}


def test_dark_knowledge_follows_the_temperature_without_training(app):
    from explorer.ui.distill_figures import DARK

    fig = app.distill.fig
    n_traces = len(fig.data)
    diagonals = []
    for t in (1.0, 4.0, 16.0):
        with mock.patch.object(app.session.students, "distill") as distill, \
                mock.patch.object(app.session, "train") as train:
            app.distill.temperature.value = t
        distill.assert_not_called()
        train.assert_not_called()
        z = [list(r) for r in fig.data[DARK].z]
        oracle = app.session.students.dark_knowledge(t)["matrix"]
        assert [v for r in z for v in r] == pytest.approx(
            [float(v) for r in oracle for v in r], abs=1e-4)
        assert all(sum(r) == pytest.approx(1.0, abs=1e-3) for r in z)
        diagonals.append(sum(z[i][i] for i in range(len(z))))
        assert f"T = {t:g}" in fig.layout.annotations[2].text
    assert diagonals[0] > diagonals[1] > diagonals[2]  # a higher T shares more mass
    assert len(fig.data) == n_traces


def messages(fig) -> list[str]:
    """Names of the update messages the figure sends from now on."""
    sent: list[str] = []
    for name in ("_send_update_msg", "_send_restyle_msg", "_send_relayout_msg"):
        real = getattr(fig, name)
        setattr(fig, name, lambda *a, _n=name, _r=real, **k: sent.append(_n) or _r(*a, **k))
    return sent


def test_a_temperature_move_is_one_message_to_the_figure(app):
    """DESIGN section 3: one batch_update per figure per move, with or without a sweep
    (after one a move also swaps in that T's student and redraws its per-class bars)."""
    sent = messages(app.distill.fig)
    app.distill.temperature.value = 7.0
    assert sent == ["_send_update_msg"]
    sweep(app, seeds=1)
    sent.clear()
    app.distill.temperature.value = 2.0
    assert app.distill.student_t == 2.0
    assert sent == ["_send_update_msg"]


def test_regression_says_why_there_is_no_temperature_or_regime():
    from explorer import Session

    app = ExplorerApp(Session("toy-regression", "mlp", device="cpu"))
    try:
        app.tabs.selected_index = 1
        p = app.distill
        assert p.temperature.layout.display == "none" and p.sweep.layout.display == "none"
        assert p.labelled.layout.display == "none" and p.leave_out.layout.display == "none"
        assert "no temperature" in p.note.value and "image classification" in p.note.value
        assert p.regime_kwargs() == {}
        p.epochs.value = 1
        assert p.start("distill")
        settle(app)
        assert "distilling done (distilled student): val MSE" in status(app), status(app)
    finally:
        app.close()


def html_text(value: str) -> str:
    import html

    return html.unescape(re.sub(r"<[^>]+>", " ", value))
