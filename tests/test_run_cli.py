"""`explorer run`: every invalid option exits 2 naming itself (before torch is imported),
and a full run writes the JSON report with every key the issue lists."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
STAGE_KEYS = ("accuracy", "loss", "params", "nonzero", "sparsity", "bytes_dense",
              "bytes_sparse", "flops_dense", "flops_effective", "layers")
LAYER_KEYS = ("name", "numel", "nonzero", "sparsity")


def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "explorer", "run", *args],
                          capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=REPO)


BAD = [
    (["--dataset", "cifar"], "--dataset", "cifar"),
    (["--model", "vgg"], "--model", "vgg"),
    (["--width", "0"], "--width", "0"),
    (["--init", "zeros"], "--init", "zeros"),
    (["--optimizer", "rmsprop"], "--optimizer", "rmsprop"),
    (["--lr", "-1"], "--lr", "-1"),
    (["--lr", "fast"], "--lr", "fast"),
    (["--epochs", "0"], "--epochs", "0"),
    (["--epochs", "2.5"], "--epochs", "2.5"),
    (["--batch-size", "0"], "--batch-size", "0"),
    (["--prune-threshold", "-0.1"], "--prune-threshold", "-0.1"),
    (["--prune-sparsity", "1.5"], "--prune-sparsity", "1.5"),
    (["--prune-std", "nan"], "--prune-std", "nan"),
    (["--prune-sparsity", "0.5", "--prune-std", "1"], "--prune-std", "--prune-sparsity"),
    (["--scope", "model"], "--scope", "model"),
    (["--prune-std", "1", "--scope", "global"], "--scope", "global"),
    (["--structured"], "--structured", "--prune-sparsity"),
    (["--prune-threshold", "0.1", "--structured"], "--structured", "--prune-threshold 0.1"),
    (["--norm", "l3"], "--norm", "l3"),
    (["--prune-sparsity", "0.5", "--norm", "l2"], "--norm", "l2"),
    (["--schedule", "cubic"], "--schedule", "cubic"),
    (["--steps", "0"], "--steps", "0"),
    (["--steps", "3"], "--steps", "pruning"),
    (["--finetune-epochs", "-2"], "--finetune-epochs", "-2"),
    (["--finetune-epochs", "2"], "--finetune-epochs", "pruning"),
    (["--rewind", "start"], "--rewind", "start"),
    (["--student", "0"], "--student", "0"),
    (["--student", "9"], "--student", "9"),
    (["--temperature", "0.5", "--student", "0.5"], "--temperature", "0.5"),
    (["--temperature", "4"], "--temperature", "--student"),
    (["--dataset", "toy-regression", "--student", "0.5", "--temperature", "4"],
     "--temperature", "4"),
    (["--alpha", "1.5"], "--alpha", "1.5"),
    (["--no-t-squared"], "--no-t-squared", "--student"),
    (["--device", "tpu"], "--device", "tpu"),
    (["--seed", "-1"], "--seed", "-1"),
    (["--json", "/no/such/folder/report.json"], "--json", "/no/such/folder/report.json"),
    (["--export", "/no/such/folder/model.pt"], "--export", "/no/such/folder/model.pt"),
    (["--bogus"], "--bogus", "--bogus"),
    (["--seeds", "0"], "--seeds", "0"),
    (["--workers", "2"], "--workers", "--seeds"),
    (["--no-bn-recalibration", "--prune-sparsity", "0.5"], "--no-bn-recalibration",
     "--structured"),
    (["--seeds", "2", "--prune-sparsity", "0.5", "--export", "/tmp/m.pt"], "--export",
     "--seeds 2"),
    (["--prune-std", "1", "--steps", "2", "--structured"], "--structured", "--prune-std 1"),
]


@pytest.mark.parametrize(("args", "option", "value"), BAD, ids=[" ".join(b[0]) for b in BAD])
def test_invalid_option_exits_2_with_one_line_naming_it(args, option, value):
    """Status 2, a single stderr line naming the option and the value, nothing on stdout."""
    result = run(*args, timeout=60)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert option in lines[0] and value in lines[0], lines[0]
    assert result.stdout == ""


def test_validation_happens_before_torch_is_imported():
    """Parsing and the combination rules run with torch still unimported."""
    code = (
        "import sys, argparse\n"
        "from explorer.cli import run as run_cli\n"
        "p = run_cli.configure(argparse.ArgumentParser(prog='explorer run'))\n"
        "a = p.parse_args(['--prune-sparsity', '0.5', '--student', '0.25'])\n"
        "assert run_cli.check_combination(a) is None\n"
        "print('torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=REPO, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.slow
def test_full_run_writes_every_key(tmp_path):
    """baseline -> pruned -> fine-tuned, student alone and distilled: a complete report."""
    report = tmp_path / "report.json"
    result = run("--dataset", "digits", "--epochs", "3", "--prune-sparsity", "0.8",
                 "--finetune-epochs", "1", "--student", "0.25", "--temperature", "4",
                 "--alpha", "0.7", "--seed", "1", "--device", "cpu", "--json", str(report))
    assert result.returncode == 0, result.stderr
    for stage in ("baseline", "pruned", "finetuned", "student_alone", "distilled"):
        assert stage in result.stdout  # the table
    assert "%]" not in result.stdout and "[" in result.stderr  # the bar goes to stderr
    doc = json.loads(report.read_text())
    assert {"config", "device", "versions", "stages"} <= set(doc)
    assert doc["config"]["prune_sparsity"] == 0.8 and doc["config"]["student"] == 0.25
    assert doc["versions"]["torch"] and doc["device"]["name"] == "cpu"
    stages = doc["stages"]
    assert list(stages) == ["baseline", "pruned", "finetuned", "student_alone", "student_hard",
                            "distilled"]
    for name, stage in stages.items():
        for key in STAGE_KEYS:
            assert key in stage, (name, key)
        assert stage["split"] == "test"
        for layer in stage["layers"]:
            assert set(LAYER_KEYS) <= set(layer)
    assert stages["pruned"]["sparsity"] == pytest.approx(0.8, abs=1e-3)
    assert stages["pruned"]["bytes_sparse"] < stages["baseline"]["bytes_sparse"]
    assert stages["pruned"]["flops_effective"] < stages["pruned"]["flops_dense"]
    assert stages["student_alone"]["params"] == stages["distilled"]["params"]
    assert stages["distilled"]["params"] < stages["baseline"]["params"]
    assert 0.0 <= stages["distilled"]["teacher_agreement"] <= 1.0
    assert stages["baseline"]["teacher_agreement"] == 1.0


@pytest.mark.slow
def test_regression_run_reports_mse(tmp_path):
    """toy-regression: mse instead of accuracy, students distilled without a temperature."""
    report = tmp_path / "r.json"
    result = run("--dataset", "toy-regression", "--epochs", "2", "--prune-threshold", "0.05",
                 "--student", "0.5", "--json", str(report))
    assert result.returncode == 0, result.stderr
    stages = json.loads(report.read_text())["stages"]
    assert set(stages) == {"baseline", "pruned", "student_alone", "distilled"}
    assert all(s["mse"] is not None and s["accuracy"] is None for s in stages.values())


def test_run_progress_writes_to_the_stderr_of_its_call(monkeypatch):
    """The progress bar takes sys.stderr when made, not when its module was imported: a
    stream replaced since (a test's capture, a notebook cell's) may be closed by then
    (CI: "explorer run: error: I/O operation on closed file")."""
    import io
    import sys

    from explorer.studies.pipeline import Progress

    now = io.StringIO()
    monkeypatch.setattr(sys, "stderr", now)
    assert Progress().stream is now
