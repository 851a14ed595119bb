"""Several seeds and their intervals (issue 16): the statistics against scipy, and
`--seeds 3` on reproduce, run and sweep carrying per-seed values, means and intervals."""

from __future__ import annotations

import json
import math

import pytest
import torch
from scipy import stats as scipy_stats
from tiny_studies import shrink_studies

from explorer.cli.main import main

INTERVAL_KEYS = {"values", "n", "mean", "ci95_low", "ci95_high"}
PAIRED_KEYS = {"values", "n", "mean_diff", "ci95_low", "ci95_high", "p_value", "verdict"}
CLAIM_KEYS = {"claim", "want", "margin", "verdict", "verdict_unadjusted", "holds", "p_value",
              "p_holm", "family", "mean_diff", "ci95_low", "ci95_high"}


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_t_interval_equals_scipy():
    """mean +- t(0.975, n-1) sd / sqrt(n), as scipy.stats.t.interval gives it."""
    from explorer.studies.stats import paired, summarize

    values = [0.912, 0.931, 0.925, 0.919, 0.940]
    s = summarize(values)
    low, high = scipy_stats.t.interval(0.95, len(values) - 1, loc=s["mean"],
                                       scale=scipy_stats.sem(values))
    assert s["ci95_low"] == pytest.approx(low, abs=1e-12)
    assert s["ci95_high"] == pytest.approx(high, abs=1e-12)
    assert s["sd"] == pytest.approx(float(torch.tensor(values).std()), rel=1e-6)
    one = summarize([0.5])
    assert one["ci95_low"] is None and one["mean"] == 0.5
    d = paired([3.0, 4.0, 5.0], [1.0, 1.0, 1.0])
    assert d["values"] == [2.0, 3.0, 4.0] and d["mean_diff"] == 3.0
    assert d["ci95_low"] == pytest.approx(3.0 - 4.302652729749464 / math.sqrt(3))
    assert d["verdict"] == "higher"
    assert d["p_value"] == pytest.approx(scipy_stats.ttest_rel([3.0, 4.0, 5.0],
                                                               [1.0, 1.0, 1.0]).pvalue)
    assert paired([1.0, 2.0], [2.0, 1.0])["verdict"] == "not shown"
    with pytest.raises(ValueError, match="one of each"):
        paired([1.0], [1.0, 2.0])


def _tiny(monkeypatch):
    """Point the reproductions at digits with tiny budgets (in this process)."""
    shrink_studies(monkeypatch.setattr, monkeypatch.setitem)


def _paired(entry: dict) -> None:
    assert PAIRED_KEYS <= set(entry), entry
    assert len(entry["values"]) == entry["n"] == 3
    assert entry["ci95_low"] <= entry["mean_diff"] <= entry["ci95_high"]


def _interval(entry: dict) -> None:
    assert INTERVAL_KEYS <= set(entry), entry
    assert len(entry["values"]) == 3
    assert entry["ci95_low"] <= entry["mean"] <= entry["ci95_high"]


def test_reproduce_lottery_seeds_3_json(monkeypatch, tmp_path, capsys):
    """`explorer reproduce lottery --seeds 3 --json`: per-seed rounds, means, intervals,
    per_round_fraction per round and layer, paired comparisons and claims."""
    _tiny(monkeypatch)
    path = tmp_path / "lottery.json"
    assert main(["reproduce", "lottery", "--quick", "--seeds", "3", "--workers", "0",
                 "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "3 seeds (0, 1, 2)" in out and "claims on this data" in out
    doc = json.loads(path.read_text())
    assert doc["seeds"] == [0, 1, 2] and len(doc["per_seed"]) == 3
    assert [p["seed"] for p in doc["per_seed"]] == [0, 1, 2]
    assert len(doc["per_round_fraction"]) == 3
    for fractions in doc["per_round_fraction"]:
        *hidden, output = fractions.values()
        assert all(f == pytest.approx(0.2, abs=0.01) for f in hidden)
        assert output == pytest.approx(0.1, abs=0.01)
    controls = [r for r in doc["rounds"] if "random_test_accuracy" in r]
    assert [r["round"] for r in controls] == [0, 3]
    for row in controls:
        _interval(row["ticket_test_accuracy"])
        _interval(row["random_test_accuracy"])
        _paired(row["ticket_vs_random"])
    _paired(doc["rounds"][3]["ticket_vs_dense"])
    assert all(CLAIM_KEYS <= set(c) for c in doc["claims"])
    tested = [c for c in doc["claims"] if c["p_value"] is not None]
    assert all(c["family"] == len(tested) and c["p_holm"] >= c["p_value"] for c in tested)
    assert "Holm p = " in out or "untested" in out


def test_reproduce_han_and_hinton_seeds_3(monkeypatch):
    """The Han and Hinton reports carry the same per-seed values, means and intervals."""
    from explorer.studies.reproduce import format_result, reproduce

    _tiny(monkeypatch)
    han = reproduce("han", quick=True, seeds=3, workers=0)
    for key in ("compression", "dense_test_error", "pruned_test_error"):
        _interval(han[key])
    _paired(han["pruned_vs_dense"])
    assert len(han["per_seed"]) == 3 and all(len(p["steps"]) == 3 for p in han["per_seed"])
    assert "Han et al." in format_result("han", han)
    hinton = reproduce("hinton", quick=True, seeds=3, workers=0)
    _interval(hinton["teacher_error"])
    for student in hinton["students"].values():
        _interval(student["student_error"])
        _paired(student["teacher_gap"])
        for row in student["temperatures"]:
            _interval(row["test_error"])
            _paired(row["alone_minus_distilled"])
    assert [r["temperature"] for r in hinton["students"]["2x8"]["temperatures"]] == [4.0, 20.0]
    assert "gap closed" in format_result("hinton", hinton)


def test_run_seeds_3_json(tmp_path, capsys):
    """`explorer run --seeds 3`: every seed's report, per-stage means and intervals, and
    the paired differences (pruned/fine-tuned vs baseline, distilled vs alone)."""
    path = tmp_path / "run.json"
    assert main(["run", "--dataset", "digits", "--epochs", "1", "--prune-sparsity", "0.5",
                 "--finetune-epochs", "1", "--student", "0.25", "--seeds", "3",
                 "--workers", "0", "--device", "cpu", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "finetuned_vs_baseline" in out and "Holm p = " in out
    doc = json.loads(path.read_text())
    assert doc["seeds"] == [0, 1, 2]
    assert [r["config"]["seed"] for r in doc["per_seed"]] == [0, 1, 2]
    for stage in ("baseline", "pruned", "finetuned", "student_alone", "distilled"):
        _interval(doc["summary"][stage]["accuracy"])
    for name in ("pruned_vs_baseline", "finetuned_vs_baseline", "distilled_vs_student_alone"):
        comp = doc["comparisons"][name]
        _paired(comp)
        # Holm over the run's four comparisons (distilled vs the hard-label student too);
        # the verdict in "better" words, the raw interval's in `difference`.
        assert comp["family"] == 4 and comp["p_holm"] >= comp["p_value"]
        assert comp["verdict"] in ("better", "worse", "not shown")
        assert comp["difference"] in ("higher", "lower", "not shown")
        if comp["verdict"] == "better":
            assert comp["ci95_low"] > 0 and comp["p_holm"] < 0.05


def test_sweep_seeds_3_json(tmp_path, capsys):
    """`explorer sweep --seeds 3`: one row per point and seed, and per point the mean and
    interval over the seeds."""
    path = tmp_path / "sweep.json"
    assert main(["sweep", "--dataset", "digits", "--grid", "sparsity=0.5,0.8", "--grid",
                 "finetune_epochs=1", "--seeds", "3", "--workers", "0", "--json",
                 str(path)]) == 0
    assert "over seeds" in capsys.readouterr().out
    doc = json.loads(path.read_text())
    assert [(r["sparsity"], r["seed"]) for r in doc["rows"]] == [
        (0.5, 0), (0.5, 1), (0.5, 2), (0.8, 0), (0.8, 1), (0.8, 2)]
    groups = doc["meta"]["summary"]
    assert [g["point"]["sparsity"] for g in groups] == [0.5, 0.8]
    for g in groups:
        assert g["seeds"] == [0, 1, 2]
        _interval(g["test_accuracy"])
