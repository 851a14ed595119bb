"""`explorer run --dataset imagefolder:PATH --model hf:PATH`: a real run, and its refusals."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("transformers")
pytest.importorskip("torch_pruning")

from hf_util import digits_folder, saved  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "explorer", "run", *args],
                          capture_output=True, text=True, timeout=600, env=env, cwd=REPO)


@pytest.mark.slow
def test_run_trains_prunes_and_exports_shrunk(tmp_path):
    """Baseline, structured 50% through the graph, fine-tune; the export is smaller."""
    data = digits_folder(tmp_path / "digits", per_class=20)
    model = saved("resnet", tmp_path, 10)
    report, out = tmp_path / "r.json", tmp_path / "m.pt"
    result = run("--dataset", f"imagefolder:{data}", "--model", f"hf:{model}",
                 "--epochs", "2", "--prune-sparsity", "0.5", "--structured",
                 "--finetune-epochs", "1", "--json", str(report), "--export", str(out))
    assert result.returncode == 0, result.stderr
    stages = json.loads(report.read_text())["stages"]
    assert list(stages) == ["baseline", "pruned", "finetuned"]
    assert stages["pruned"]["flops_effective"] < stages["baseline"]["flops_dense"]
    import torch

    state = torch.load(out, weights_only=True)["state_dict"]
    assert sum(v.numel() for k, v in state.items() if k.endswith("weight")) < \
        stages["baseline"]["params"]


@pytest.mark.parametrize("args, named", [
    (["--dataset", "imagefolder:/no/such/folder"], "/no/such/folder"),
    (["--model", "hf:/no/such/model"], "/no/such/model"),
    (["--model", "hf:/tmp", "--student", "0.5"], "--student"),
])
def test_bad_own_paths_exit_2_naming_them(args, named):
    """A missing folder or a zoo-only option exits 2 with one line naming it."""
    result = run(*args)
    assert result.returncode == 2
    assert named in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_dashboard_own_data_and_model_reach_the_kernels_absolute(tmp_path, monkeypatch):
    """`explorer dashboard --dataset imagefolder:REL --model hf:REL`: the kernels' environment
    names absolute paths (they run in the notebook's folder), and only what was asked."""
    from explorer.cli.main import build_parser, dashboard_env

    (tmp_path / "d").mkdir()
    (tmp_path / "m").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EXPLORER_MODEL", "stale")
    parser, _ = build_parser()
    args = parser.parse_args(["dashboard", "--dataset", "imagefolder:d", "--model", "hf:m"])
    env = dashboard_env(theme="light", talk=False, dataset=args.dataset, model=args.model)
    assert env["EXPLORER_DATASET"] == f"imagefolder:{tmp_path / 'd'}"
    assert env["EXPLORER_MODEL"] == f"hf:{tmp_path / 'm'}"
    plain = dashboard_env(theme="light", talk=False)
    assert "EXPLORER_DATASET" not in plain and "EXPLORER_MODEL" not in plain


def test_dashboard_missing_folder_exits_2_naming_it():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-m", "explorer", "dashboard", "--no-browser",
                             "--model", "hf:/no/such/model"], capture_output=True, text=True,
                            timeout=120, env=env, cwd=REPO)
    assert result.returncode == 2 and "/no/such/model" in result.stderr


@pytest.mark.parametrize("config, named", [
    (None, "has no config.json"),
    ("{not json", "cannot read the config"),
    (json.dumps({"model_type": "mine", "auto_map": {"AutoConfig": "c.MyConfig"}}),
     "auto_map"),
])
def test_dashboard_refuses_a_bad_hf_folder_before_serving(tmp_path, config, named):
    """A folder without a readable config.json (or one naming its own code) is one line and
    exit 2 before any server starts (it used to start, then show Voila's generic error)."""
    if config is not None:
        (tmp_path / "config.json").write_text(config)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-m", "explorer", "dashboard", "--no-browser",
                             "--port", "1", "--model", f"hf:{tmp_path}"], capture_output=True,
                            text=True, timeout=120, env=env, cwd=REPO)
    assert result.returncode == 2, result.stderr
    assert named in result.stderr and "Voila" not in result.stdout + result.stderr


@pytest.mark.slow
def test_sensitivity_and_sweep_take_your_own_data_and_model(tmp_path):
    """The studies accept imagefolder:PATH and hf:PATH as `explorer run` does."""
    data = digits_folder(tmp_path / "digits", per_class=12)
    model = saved("resnet", tmp_path, 10)
    own = ["--dataset", f"imagefolder:{data}", "--model", f"hf:{model}", "--epochs", "1"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}

    def study(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "explorer", *args], capture_output=True,
                              text=True, timeout=600, env=env, cwd=REPO)

    report = tmp_path / "s.json"
    result = study("sensitivity", *own, "--sparsities", "0.5", "--layers",
                   "inner.classifier.1.weight", "--json", str(report))
    assert result.returncode == 0, result.stderr
    assert "inner.classifier.1.weight" in report.read_text()
    report = tmp_path / "w.json"
    result = study("sweep", *own, "--grid", "sparsity=0.3,0.6", "--workers", "0",
                   "--json", str(report))
    assert result.returncode == 0, result.stderr
    rows = json.loads(report.read_text())["rows"]
    assert [row["sparsity"] for row in rows] == [0.3, 0.6], rows
    result = study("sweep", "--model", "hf:/no/such/model", "--grid", "sparsity=0.5")
    assert result.returncode == 2 and "/no/such/model" in result.stderr
