"""hf: folders run no code of their own and are sized before any weight is read (issue 26,
items 3 and 5)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("transformers")

from hf_util import saved  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}


def custom_code_folder(folder: Path, marker: Path) -> Path:
    """A folder whose config asks for its own configuration module, which writes `marker`
    when imported (an unknown model_type, so transformers would prompt on stdin)."""
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({
        "model_type": "marker-model", "architectures": ["MarkerForImageClassification"],
        "auto_map": {"AutoConfig": "configuration_marker.MarkerConfig",
                     "AutoModelForImageClassification": "modeling_marker.MarkerModel"}}))
    code = f"open({str(marker)!r}, 'w').write('ran')\n"
    for name in ("configuration_marker.py", "modeling_marker.py"):
        (folder / name).write_text(code)
    return folder


def test_auto_map_folder_never_runs_even_when_y_is_typed(tmp_path):
    """`printf 'y\\n' | explorer run --model hf:FOLDER` once ran the folder's module: now
    refused up front, naming auto_map, standard input unread, the marker never written."""
    marker = tmp_path / "ran.txt"
    folder = custom_code_folder(tmp_path / "custom", marker)
    result = subprocess.run([sys.executable, "-m", "explorer", "run", "--model",
                             f"hf:{folder}", "--epochs", "1"], input="y\n",
                            capture_output=True, text=True, timeout=600, env=ENV, cwd=REPO)
    assert not marker.exists()
    assert result.returncode != 0 and "auto_map" in result.stderr, result.stderr
    assert "[y/N]" not in result.stdout + result.stderr  # transformers never asked


def test_every_transformers_loader_call_passes_trust_remote_code_false():
    """Every from_pretrained / from_config call in explorer/ says trust_remote_code=False."""
    calls = []
    for path in (REPO / "explorer").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                    node.func.attr in ("from_pretrained", "from_config"):
                flag = {k.arg: k.value for k in node.keywords}.get("trust_remote_code")
                calls.append((path.name, node.lineno,
                              isinstance(flag, ast.Constant) and flag.value is False))
    assert calls and all(ok for *_, ok in calls), calls


# The child's peak RSS from VmHWM, its own address space's high-water mark: ru_maxrss
# carries the parent's peak across fork and exec (Linux), so under pytest it read 634 MiB
# before the child had done anything.
REFUSE = textwrap.dedent("""
    import sys
    import torch, transformers
    from transformers import GPT2LMHeadModel  # the class's import is not the model's cost
    from explorer.models.hf import load_hf
    def peak():
        line = next(l for l in open("/proc/self/status") if l.startswith("VmHWM"))
        return int(line.split()[1]) * 1024
    before = peak()
    try:
        load_hf("hf:" + sys.argv[1])
    except ValueError as err:
        print(err)
    print(before, peak())
""")


def test_a_10b_config_is_refused_before_any_memory_is_spent(tmp_path):
    """A 10.5B-parameter GPT-2 config beside a one-tensor weights file: refused on `meta`
    naming the count, the cap and the option; peak RSS stays under 500 MiB."""
    import torch
    import transformers as T
    from safetensors.torch import save_file

    folder = tmp_path / "huge"
    cfg = T.GPT2Config(vocab_size=50257, n_embd=8192, n_layer=12, n_head=64)
    cfg.architectures = ["GPT2LMHeadModel"]
    cfg.save_pretrained(folder)
    save_file({"transformer.wte.weight": torch.zeros(4, 4)}, str(folder / "model.safetensors"))
    result = subprocess.run([sys.executable, "-c", REFUSE, str(folder)], capture_output=True,
                            text=True, timeout=600, env=ENV, cwd=REPO)
    assert result.returncode == 0, result.stderr
    message, numbers = result.stdout.strip().splitlines()[-2:]
    assert "10,496,770,048 parameters, past the limit of 1,000,000,000" in message
    assert "--max-params" in message
    before, after = (int(n) for n in numbers.split())
    assert after < 500 * 2**20 and after - before < 64 * 2**20, (before, after)


@pytest.mark.parametrize("kind", ["resnet", "vit", "bert", "gpt2"])
def test_the_meta_count_is_what_the_loaded_model_holds(kind, tmp_path):
    """Oracle: the count checked before loading equals the loaded model's parameters
    (GPT-2's tied output embedding untied included); a cap one below refuses it."""
    from explorer.models.hf import load_hf
    from explorer.session.loadshape import param_count

    folder = saved(kind, tmp_path)
    count = param_count(load_hf(f"hf:{folder}"))
    assert param_count(load_hf(f"hf:{folder}", max_params=count)) == count
    with pytest.raises(ValueError, match=f"{count:,} parameters, past the limit of "
                                         f"{count - 1:,}"):
        load_hf(f"hf:{folder}", max_params=count - 1)


def test_session_and_the_run_command_take_the_cap(tmp_path):
    """Session(max_params=) reaches the hf: loader; `explorer run --max-params N` parses
    into the session it makes."""
    from explorer import Session
    from explorer.cli.run import configure

    folder = saved("resnet", tmp_path, 10)
    with pytest.raises(ValueError, match="past the limit of 100 "):
        Session("digits", f"hf:{folder}", max_params=100)
    import argparse

    parser = configure(argparse.ArgumentParser())
    args = parser.parse_args(["--model", f"hf:{folder}", "--max-params", "100"])
    assert args.max_params == 100
