"""Hinton's missing digit in `explorer reproduce hinton` (issue 25): key left_out_class."""

from __future__ import annotations

import pytest

from explorer.studies import reproduce


def test_missing_digit_reported_with_intervals(monkeypatch):
    """Two seeds, tiny budgets on digits: per student, error rates before and after the bias
    (chosen on validation) with intervals, beside the paper's rates."""
    from explorer.studies import common, hinton, hinton_missing

    monkeypatch.setattr(common, "DATASET", "digits")
    monkeypatch.setitem(hinton.SETTINGS, True, dict(teacher_epochs=3, student_epochs=3,
                                                    temperatures=(4.0,)))
    monkeypatch.setattr(hinton, "STUDENTS", ((32, 32),))
    result = reproduce.reproduce("hinton", quick=True, seeds=2, workers=0)
    one = result["per_seed"][0]["left_out_class"]
    assert one["class"] == 3 and one["temperature"] == hinton.PAPER_T
    # The student alone never saw a 3 and got no soft answer about it: it never says 3.
    assert one["alone"]["class_error_before"] >= 0.7
    for name in ("alone", "distilled"):
        row = one[name]
        assert len(row["per_class_before"]) == 10
        assert row["class_error_before"] == pytest.approx(1 - row["per_class_before"][3])
        assert row["bias"] in [float(b) for b in __import__(
            "explorer.engine.dark", fromlist=["BIAS_GRID"]).BIAS_GRID]
    combined = result["left_out_class"]
    for name in ("alone", "distilled"):
        for key in ("test_error_before", "test_error_after", "class_error_before",
                    "class_error_after", "bias"):
            assert combined[name][key]["n"] == 2
            summary = combined[name][key]
            if len(set(summary["values"])) > 1:
                assert summary["ci95_low"] is not None
            else:  # every seed the same (e.g. every 3 missed): no point interval
                assert summary["ci95_low"] is None and summary["note"]
    assert combined["paper"]["class_error_before"] == pytest.approx(133 / 1010)
    text = reproduce.format_result("hinton", result)
    assert "missing digit 3" in text and "13.2%" in text and "chosen on validation" in text
    assert hinton_missing.combine([{"left_out_class": None}]) is None
