"""`explorer run` and distillation regimes (issue 25): --labelled, --leave-out,
--temperatures, the third student, the regime in words, the best T over seeds."""

from __future__ import annotations

import json

import pytest

from explorer.cli.run import check_combination, configure
from explorer.studies.repeat import combine_curve, curve_text
from explorer.studies.stats import paired
from tests.test_run_cli import run


def _args(*argv: str):
    import argparse

    parser = argparse.ArgumentParser()
    configure(parser)
    return parser.parse_args(list(argv))


@pytest.mark.parametrize("argv, flag", [
    (["--labelled", "0.1"], "--labelled"),
    (["--leave-out", "3"], "--leave-out"),
    (["--temperatures", "1,4"], "--temperatures"),
    (["--dataset", "toy-regression", "--student", "0.5", "--labelled", "0.5"], "--labelled"),
    (["--dataset", "toy-regression", "--student", "0.5", "--leave-out", "3"], "--leave-out"),
])
def test_regime_options_need_a_classifier_student(argv, flag):
    """Regime options without --student, or on regression, are refused naming the flag."""
    message = check_combination(_args(*argv))
    assert message is not None and message.startswith(f"argument {flag}")


def test_bad_regime_values_exit_2():
    for argv, shown in ((["--labelled", "0"], "0"), (["--labelled", "1.5"], "1.5"),
                        (["--leave-out", "-1"], "-1"), (["--temperatures", "0.5,4"], "0.5")):
        result = run("--student", "0.25", *argv)
        assert result.returncode == 2 and shown in result.stderr, result.stderr
    assert _args("--temperatures", "4,1,4").temperatures == (1.0, 4.0)


def test_combine_curve_by_hand():
    """Best T by mean validation accuracy; its lead over T=1 is the paired test difference."""
    curves = [{"1": {"val_accuracy": 0.90, "test_accuracy": 0.89 + d},
               "4": {"val_accuracy": 0.93, "test_accuracy": 0.92 + 2 * d}}
              for d in (0.0, 0.01, -0.01)]
    out = combine_curve(curves)
    assert out["best_t"] == "4"
    want = paired([c["4"]["test_accuracy"] for c in curves],
                  [c["1"]["test_accuracy"] for c in curves])
    assert out["best_vs_t1"]["mean_diff"] == pytest.approx(want["mean_diff"])
    assert out["best_vs_t1"]["lower_bound_above_zero"] == (want["ci95_low"] > 0)
    assert "best T (on validation): 4" in curve_text(out)[-1]
    assert combine_curve([{}]) is None


def test_run_names_the_regime_and_trains_three_students(tmp_path):
    """A short run: three students, the regime in words from the session's settings."""
    report = tmp_path / "r.json"
    result = run("--dataset", "digits", "--epochs", "1", "--student", "0.25",
                 "--labelled", "0.2", "--leave-out", "3", "--temperatures", "1,4",
                 "--device", "cpu", "--json", str(report))
    assert result.returncode == 0, result.stderr
    assert ("distillation regime: student sees labels for 20% of the images; the "
            "teacher's soft answers for all; class 3 left out") in result.stdout
    assert "best T on validation:" in result.stdout
    doc = json.loads(report.read_text())
    assert {"student_alone", "student_hard", "distilled"} <= set(doc["stages"])
    assert set(doc["temperature_curve"]) == {"1", "4"}
    assert "20%" in doc["regime"]


@pytest.mark.slow
def test_default_regime_gains_over_the_student_alone(tmp_path):
    """The default regime (issue 25, chosen by measurement): over 3 seeds of `explorer run
    --student W`, the distilled student's mean test accuracy is above the student alone's."""
    report = tmp_path / "r.json"
    result = run("--dataset", "digits", "--student", "0.25", "--seeds", "3", "--workers", "0",
                 "--device", "cpu", "--json", str(report), timeout=3600)
    assert result.returncode == 0, result.stderr
    summary = json.loads(report.read_text())["summary"]
    assert summary["distilled"]["accuracy"]["mean"] > summary["student_alone"]["accuracy"]["mean"]
