"""What escapes a command ends as one line: your own data or model refused (exit 2), a
weights file holding pickled code (exit 2, naming the file), seed ranges and clashing
outputs refused before any work (exit 2), Ctrl-C (exit 130, "interrupted"). Never a
traceback (explorer.cli.main.main is the one funnel)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import REPO, checkout_env

SEED_MAX = 2**31 - 1


def explorer(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "explorer", *args], cwd=REPO,
                          env=checkout_env(), capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def assert_one_line(result: subprocess.CompletedProcess, code: int, *words: str) -> str:
    """Exit `code`, no traceback, the last stderr line names every word; returns it."""
    assert result.returncode == code, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    for word in words:
        assert word in last, (word, last)
    return last


@pytest.fixture(scope="module")
def empty_classes(tmp_path_factory) -> Path:
    """An image folder whose class folders hold no images (refused as own data)."""
    root = tmp_path_factory.mktemp("imgs")
    (root / "a").mkdir()
    (root / "b").mkdir()
    return root


@pytest.fixture(scope="module")
def evil_model(tmp_path_factory) -> Path:
    """A Hugging Face folder whose pytorch_model.bin unpickles os.system."""
    from hf_util import saved

    folder = saved("bert", tmp_path_factory.mktemp("hf"))
    for weights in folder.glob("*.safetensors"):
        weights.unlink()
    import torch

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo PWNED",))

    torch.save({"bert.embeddings.word_embeddings.weight": Evil()},
               folder / "pytorch_model.bin")
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("command", [["run", "--epochs", "1"],
                                     ["sensitivity", "--epochs", "1"],
                                     ["sweep", "--grid", "sparsity=0.5", "--epochs", "1"]])
def test_own_data_refused_is_one_line_and_exit_2(command, empty_classes):
    """An image folder the loader refuses: status 2, one line naming the folder."""
    result = explorer(*command, "--dataset", f"imagefolder:{empty_classes}")
    assert_one_line(result, 2, f"explorer {command[0]}: error", str(empty_classes / "a"))


@pytest.mark.slow
@pytest.mark.parametrize("command", [["run", "--epochs", "1"],
                                     ["sweep", "--grid", "sparsity=0.5", "--epochs", "1"]])
def test_pickled_code_in_weights_is_refused_naming_the_file(command, evil_model):
    """pytorch_model.bin that would call os.system: a ValueError naming the file and the
    refused global, exit 2; nothing runs."""
    result = explorer(*command, "--model", f"hf:{evil_model}")
    assert_one_line(result, 2, "pytorch_model.bin", str(evil_model), "posix.system")
    assert "PWNED" not in result.stdout


def test_pickled_code_in_weights_is_a_value_error(evil_model):
    """The API says the same: ValueError (not UnpicklingError) naming the file."""
    from explorer.models.hf import load_hf

    with pytest.raises(ValueError, match="pytorch_model.bin.*refused"):
        load_hf(f"hf:{evil_model}")


def test_a_bad_exported_file_is_a_value_error(tmp_path):
    """load_exported and checkpoint.load name the file they cannot read."""
    from explorer.engine import checkpoint
    from explorer.engine.export import load_exported

    bad = tmp_path / "model.pt"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ValueError, match=str(bad)):
        load_exported(bad)
    with pytest.raises(ValueError, match=str(bad)):
        checkpoint.load(bad)


# Checked before torch is imported: no seed trains only for the last one to fail.
BEFORE_ANY_WORK = [
    (["run", "--seeds", "2", "--seed", str(SEED_MAX)], "--seeds", str(SEED_MAX)),
    (["reproduce", "han", "--seeds", "2", "--seed", str(SEED_MAX)], "--seeds", str(SEED_MAX)),
    (["sweep", "--grid", "sparsity=0.5", "--seeds", "3", "--seed", str(SEED_MAX - 1)],
     "--seeds", str(SEED_MAX - 1)),
    (["run", "--prune-sparsity", "0.5", "--json", "{d}/x.out", "--export", "{d}/./x.out"],
     "--export", "--json"),
    (["sweep", "--grid", "sparsity=0.5", "--csv", "{d}/t", "--json", "{d}/t"], "--csv",
     "--json"),
]


@pytest.mark.parametrize(("argv", "first", "second"), BEFORE_ANY_WORK,
                         ids=[" ".join(a[:3]) for a, _, _ in BEFORE_ANY_WORK])
def test_refused_before_any_work(argv, first, second, tmp_path):
    """Exit 2 with one line naming both values, torch never imported, nothing written."""
    argv = [a.format(d=tmp_path) for a in argv]
    code = ("import sys\nfrom explorer.cli.main import main\n"
            f"code = main({argv!r})\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n"
            "raise SystemExit(code)\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=checkout_env(),
                            capture_output=True, text=True, timeout=120)
    assert_one_line(result, 2, first, second)
    assert len(result.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_seed_list_refuses_a_range_past_the_bound():
    """The API too: seeds past 2**31 - 1 are refused naming the first seed."""
    from explorer.studies.stats import seed_list

    with pytest.raises(ValueError, match=str(SEED_MAX)):
        seed_list(SEED_MAX, 2)
    assert seed_list(SEED_MAX - 1, 2) == [SEED_MAX - 1, SEED_MAX]


def children(pid: int) -> list[int]:
    """Direct child processes of `pid` (Linux /proc)."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def is_worker(pid: int) -> bool:
    """A spawned pool worker (not multiprocessing's resource tracker)."""
    try:
        return b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def alive(pid: int) -> bool:
    """Running (a zombie waiting to be reaped is not)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def ignores_ctrl_c(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    mask = next(int(line.split()[1], 16) for line in status.splitlines()
                if line.startswith("SigIgn:"))
    return bool(mask & (1 << (signal.SIGINT - 1)))


def _default_ctrl_c() -> None:
    """Ctrl-C as a terminal's command gets it: a shell runs background jobs (a CI script's
    `cmd &`) with SIGINT ignored, a disposition children inherit, and Python then installs
    no KeyboardInterrupt handler at all."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def ctrl_c_when(args: list[str], ready, timeout: float = 240) -> subprocess.CompletedProcess:
    """Start `explorer ARGS` in its own process group, wait until ready(proc, stderr so
    far), press Ctrl-C (SIGINT to the whole group, as a terminal does); return the result."""
    proc = subprocess.Popen([sys.executable, "-m", "explorer", *args], cwd=REPO,
                            env=checkout_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True, stdin=subprocess.DEVNULL,
                            preexec_fn=_default_ctrl_c)
    err: list[str] = []
    reader = threading.Thread(target=lambda: err.extend(iter(proc.stderr.readline, "")),
                              daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + timeout
        while not ready(proc, "".join(err)):
            assert proc.poll() is None, "".join(err)[-3000:]
            assert time.monotonic() < deadline, "never became ready: " + "".join(err)[-3000:]
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGINT)
        out = proc.stdout.read()
        code = proc.wait(timeout=120)
        reader.join(30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return subprocess.CompletedProcess(args, code, out, "".join(err))


@pytest.mark.slow
def test_ctrl_c_during_training_exits_130_with_one_line():
    """Ctrl-C while the baseline trains: status 130, 'interrupted', no traceback."""
    result = ctrl_c_when(["run", "--epochs", "200", "--device", "cpu"],
                         lambda _p, err: "epoch 1/" in err)
    last = assert_one_line(result, 130, "interrupted")
    assert last == "explorer run: interrupted"


@pytest.mark.slow
def test_ctrl_c_with_seed_workers_exits_130_and_leaves_no_worker():
    """Ctrl-C while seeds train in worker processes: 130, one line, workers gone (they
    ignore Ctrl-C and the parent ends them, so none prints a traceback)."""
    seen: list[int] = []

    def workers_ready(proc, _err) -> bool:
        kids = [c for c in children(proc.pid) if is_worker(c) and ignores_ctrl_c(c)]
        seen[:] = kids
        return len(kids) >= 2

    result = ctrl_c_when(["run", "--epochs", "200", "--seeds", "2", "--workers", "2"],
                         workers_ready)
    assert_one_line(result, 130, "explorer run: interrupted")
    # the workers (and multiprocessing's resource tracker, which follows its parent)
    deadline = time.monotonic() + 30
    while any(alive(pid) for pid in seen) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert seen and not any(alive(pid) for pid in seen), seen


@pytest.mark.slow
def test_sensitivity_layer_names_are_checked_before_the_baseline_trains():
    """--layers naming no layer of the model: exit 2 naming it, before 1,000 epochs of
    baseline training (which would run past the test's ceiling)."""
    result = explorer("sensitivity", "--epochs", "1000", "--layers", "nope", timeout=120)
    assert_one_line(result, 2, "nope")
