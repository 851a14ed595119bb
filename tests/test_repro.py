"""Reproductions, sensitivity analysis and sweeps (issue 9): invariants, oracles, real runs."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest
import torch
from torch.nn.utils import prune as torch_prune

from explorer import Session
from explorer.cli.studies import parse_grid
from explorer.engine.train import evaluate
from explorer.studies import reproduce
from explorer.studies.sensitivity import derive_budget, sensitivity
from explorer.studies.sweep import expand, sweep

GRID = {"sparsity": [0.5, 0.9], "finetune_epochs": [0, 1]}


@pytest.fixture
def session() -> Session:
    torch.set_num_threads(1)
    return Session("digits", "mlp")  # the shipped checkpoint: no training here


def _state(s: Session) -> dict:
    return {"model": copy.deepcopy(s.model.state_dict()), "base": copy.deepcopy(s.slot.base),
            "masks": copy.deepcopy(s.slot.masks), "depth": len(s.slot.undo_stack),
            "history": len(s.history), "steps": s.jobs.total_steps, "config": s.slot.prune_config}


def _same(a: dict, b: dict) -> bool:
    tensors = all(torch.equal(a[k][n], b[k][n]) for k in ("model", "base") for n in a[k])
    masks = (a["masks"] is None and b["masks"] is None) or all(
        torch.equal(a["masks"][n], b["masks"][n]) for n in a["masks"])
    return tensors and masks and all(a[k] == b[k] for k in ("depth", "history", "steps",
                                                              "config"))


def test_sensitivity_restores_session_bit_for_bit(session):
    """With masks in force and fine-tuning on, the session ends exactly as it started."""
    session.prune(sparsity=0.3, scope="global")
    before = _state(session)
    result = sensitivity(session, [0.0, 0.8], finetune_epochs=1, layers=["layers.1.weight"])
    assert len(result["layers"]["layers.1.weight"]) == 2
    assert _same(before, _state(session))


def test_sensitivity_matches_torch_pruning_oracle(session):
    """Each point equals pruning that layer alone with torch's l1_unstructured."""
    levels = [0.0, 0.5, 0.95]
    result = sensitivity(session, levels)
    assert result["dense_accuracy"] == session.snapshot().accuracy
    for name in session.slot.prunable:
        module_name = name.rsplit(".", 1)[0]
        for level, acc in zip(levels, result["layers"][name]):
            model = copy.deepcopy(session.model)
            torch_prune.l1_unstructured(model.get_submodule(module_name), "weight", level)
            with torch.no_grad():
                expected = evaluate(model, session.data.val, "classification")[1]
            assert acc == pytest.approx(expected, abs=0), (name, level)


def test_derive_budget_takes_highest_level_within_budget():
    """A layer's target stops at the first level below dense - max_drop (monotone rule)."""
    result = {"sparsities": [0.0, 0.5, 0.8, 0.9], "dense_accuracy": 0.9,
              "layers": {"a": [0.9, 0.895, 0.85, 0.89], "b": [0.9, 0.9, 0.9, 0.7]}}
    assert derive_budget(result, 0.01) == {"a": 0.5, "b": 0.8}
    assert derive_budget(result, 0.2) == {"a": 0.9, "b": 0.9}
    with pytest.raises(ValueError, match="max_drop"):
        derive_budget(result, 1.5)


def test_prune_per_layer_exact_counts_and_bad_input(session):
    """Each layer loses exactly round(s*n) weights; bad targets change nothing."""
    snap = session.pruning.per_layer({"layers.0.weight": 0.7, "layers.2.weight": 0.25})
    params = dict(session.model.named_parameters())
    for name, s in (("layers.0.weight", 0.7), ("layers.1.weight", 0.0),
                    ("layers.2.weight", 0.25)):
        w = params[name]
        assert int((w == 0).sum()) == round(s * w.numel())
    assert 0 < snap.sparsity < 0.7
    before = _state(session)
    for bad, word in (({"nope": 0.5}, "nope"), ({"layers.0.weight": 1.5}, "1.5")):
        with pytest.raises(ValueError, match=word):
            session.pruning.per_layer(bad)
    assert _same(before, _state(session))


def test_grid_expansion_and_validation():
    """A dict of lists is its product; bad keys, values and combinations are named."""
    assert len(expand({"sparsity": [0.1, 0.2], "schedule": ["agp", "linear"],
                       "steps": [2, 3]})) == 8
    assert parse_grid(["sparsity=0.5,0.9", "structured=true"]) == \
        {"sparsity": [0.5, 0.9], "structured": [True]}
    for grid, word in (({"bogus": [1]}, "bogus"), ({"sparsity": [1.5]}, "1.5"),
                       ({"schedule": ["agp"]}, "needs sparsity"),
                       ({"temperature": [4.0]}, "needs student"), ({"sparsity": []}, "empty")):
        with pytest.raises(ValueError, match=word):
            expand(grid)


def _numbers(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


@pytest.mark.slow
def test_sweep_same_numbers_in_process_and_pool(session, tmp_path):
    """The same seeded points give identical rows in-process and in a process pool, and
    the session is left unchanged."""
    before = _state(session)
    inline = sweep(session, GRID, workers=0)
    pooled = sweep(session, GRID, workers=2)
    assert _numbers(inline.rows) == _numbers(pooled.rows)
    assert [r["sparsity"] for r in inline.rows] == [0.5, 0.5, 0.9, 0.9]
    assert inline.rows[1]["actual_sparsity"] == pytest.approx(0.5, abs=1e-3)
    assert _same(before, _state(session))
    inline.to_csv(tmp_path / "t.csv")
    assert (tmp_path / "t.csv").read_text().splitlines()[0].startswith("sparsity,")
    assert json.loads(inline.to_json())["rows"][0]["test_accuracy"] == \
        inline.rows[0]["test_accuracy"]


def test_reproductions_report_the_issue_keys(monkeypatch):
    """Tiny budgets on digits, one seed: every JSON key the issues name is there, with
    sane values (issue 9's keys per seed; issue 16's procedures and intervals)."""
    from explorer.studies import common, han, hinton, lottery

    monkeypatch.setattr(common, "DATASET", "digits")
    monkeypatch.setitem(han.SETTINGS, True, dict(dense_epochs=2, steps=2, quality_step=0.75,
                                                 finetune_epochs=1))
    monkeypatch.setitem(hinton.SETTINGS, True, dict(teacher_epochs=1, student_epochs=1,
                                                    temperatures=(4.0,)))
    monkeypatch.setattr(hinton, "STUDENTS", ((32, 32),))
    monkeypatch.setitem(lottery.SETTINGS, True, dict(epochs=1, rounds=3,
                                                     control_rounds=(0, 3)))
    result = reproduce.reproduce("han", quick=True, workers=0)
    one = result["per_seed"][0]
    assert {"compression", "test_accuracy_drop", "kept_per_layer", "chosen_quality"} <= set(one)
    assert one["compression"] >= 1.0 and len(one["kept_per_layer"]) == 3
    assert result["compression"]["ci95_low"] is None  # one seed: no interval
    result = reproduce.reproduce("hinton", quick=True, workers=0)
    student = result["per_seed"][0]["students"]["2x32"]
    assert {"student_error", "distilled_error", "temperature_sweep"} <= set(student)
    assert [r["temperature"] for r in student["temperature_sweep"]] == [4.0, 20.0]
    result = reproduce.reproduce("lottery", quick=True, workers=0)
    rows = result["per_seed"][0]["rounds"]
    assert [r["round"] for r in rows] == [0, 1, 2, 3]
    assert rows[3]["remaining"] == pytest.approx(0.8 ** 3, abs=0.01)
    assert rows[3]["random_test_accuracy"] is not None and rows[1]["random_test_accuracy"] is None
    text = reproduce.format_result("lottery", result)
    assert "5,000-image subset" in text and "random re-init" in text


@pytest.mark.parametrize("argv, word", [
    (["reproduce", "nope"], "nope"), (["sweep", "--grid", "sparsity=2"], "2"),
    (["sweep", "--grid", "sparsity=0.5", "--address", "x:1"], "x:1"),
    (["sensitivity", "--sparsities", "0,7"], "0,7"), (["sweep", "--grid", "steps=0"], "0"),
    (["reproduce", "han", "--rewind", "2"], "--rewind"), (["reproduce", "han", "--seeds", "0"],
                                                          "0"),
    (["sweep", "--grid", "sparsity=0.5", "--grid", "seed=1", "--seeds", "2"], "seed")])
def test_cli_rejects_bad_values_before_torch(argv, word):
    """Exit status 2, one line naming the value, and torch never imported."""
    code = (f"import sys\nfrom explorer.cli.main import main\ntry:\n    rc = main({argv!r})\n"
            "except SystemExit as e:\n    rc = e.code\nprint(rc, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.split() == ["2", "False"], out.stderr
    assert word in out.stderr


def test_app_runs_sensitivity_as_a_job_and_plots_it():
    """Compare tab: the button runs a background job; each layer's curve lands on the
    trade-off plot in its own colour (fixed traces, no new figure); masks are untouched."""
    from explorer.ui import ExplorerApp

    app = ExplorerApp(Session("digits", "mlp", device="cpu"))
    try:
        app.compare.open()
        figures = len(app.figures())
        app.session.prune(sparsity=0.4)
        masks = {n: m.clone() for n, m in app.session.slot.masks.items()}
        app.compare.sens_button.click()
        assert app.jobs.wait(120)
        traces = [t for t in app.compare.fig.data if t.name.startswith("only ")]
        assert len(traces) == len(app.session.slot.prunable)
        assert all(len(t.y) == 7 for t in traces)
        assert len({t.line.color for t in traces}) == len(traces)
        assert all(torch.equal(masks[n], app.session.slot.masks[n]) for n in masks)
        assert len(app.figures()) == figures
    finally:
        app.jobs.stop()
        app.jobs.wait(60)
