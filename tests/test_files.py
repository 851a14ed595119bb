"""Atomic writes (explorer.files): a write that fails half-way leaves the previous file as
it was, bit for bit, and says why in a ValueError naming the path.

The failure is real: a child process runs with RLIMIT_FSIZE below the new file's size and
SIGXFSZ ignored, so the kernel refuses the write past the limit with EFBIG, half-way
through, as a full disk would with ENOSPC.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, checkout_env

from explorer.files import WriteError, atomic_file, write_bytes, write_error, write_text


def leftovers(folder) -> list[str]:
    """Temporary files a write left behind (hidden .NAME.xxxx.tmp)."""
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_write_replaces_whole_and_keeps_permissions(tmp_path):
    """The new content replaces the old; the old file's mode stays; nothing left over."""
    target = tmp_path / "r.json"
    target.write_text("old")
    os.chmod(target, 0o640)
    write_text(target, '{"new": 1}')
    assert target.read_text() == '{"new": 1}'
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert leftovers(tmp_path) == []


def test_new_file_gets_the_umask_mode(tmp_path):
    """A new file is made as open() would make it (0o666 less the umask), not 0o600."""
    old = os.umask(0o022)
    try:
        write_bytes(tmp_path / "m.bin", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "m.bin").stat().st_mode) == 0o644


def test_a_link_stays_a_link(tmp_path):
    """Writing through a symbolic link replaces the file it points to, not the link."""
    real = tmp_path / "real.txt"
    real.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    write_text(link, "new")
    assert link.is_symlink() and real.read_text() == "new"


def test_a_device_or_folder_is_never_replaced(tmp_path):
    """/dev/null and a folder stay what they are: ValueError naming them."""
    for target in (Path(os.devnull), tmp_path):
        with pytest.raises(ValueError, match="not a regular file"):
            write_text(target, "x")
    assert Path(os.devnull).is_char_device()


def test_an_exception_in_the_body_leaves_the_old_file(tmp_path):
    """A failure that is no I/O error passes through unchanged; the old file stays."""
    target = tmp_path / "f.txt"
    target.write_text("old")
    with pytest.raises(KeyError), atomic_file(target, "w") as handle:
        handle.write("half")
        raise KeyError("boom")
    assert target.read_text() == "old" and leftovers(tmp_path) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only folders anyway")
def test_read_only_folder_is_a_value_error(tmp_path):
    """No temporary file can be made: ValueError naming the path and EACCES."""
    folder = tmp_path / "ro"
    folder.mkdir()
    (folder / "f").write_text("old")
    folder.chmod(0o500)
    try:
        with pytest.raises(ValueError, match="EACCES") as caught:
            write_text(folder / "f", "new")
    finally:
        folder.chmod(0o700)
    assert str(folder / "f") in str(caught.value)


@pytest.mark.parametrize(("code", "word"), [(errno.ENOSPC, "full"), (errno.EROFS, "read-only"),
                                            (errno.EFBIG, "too large")])
def test_reasons_are_named(tmp_path, code, word):
    """torch's RuntimeError around an OSError reads as the OSError's reason."""
    try:
        try:
            raise OSError(code, os.strerror(code))
        except OSError:
            raise RuntimeError("[enforce fail at inline_container.cc] unexpected pos") from None
    except RuntimeError as exc:
        error = write_error(tmp_path / "x", exc)
    assert isinstance(error, WriteError) and isinstance(error, ValueError)
    assert word in str(error) and errno.errorcode[code] in str(error)
    assert str(tmp_path / "x") in str(error)


@pytest.fixture
def small_disk(tmp_path):
    """A 700 KiB tmpfs (needs root and mount rights; skipped elsewhere)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=700k", "tmpfs", str(disk)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


@pytest.mark.slow
def test_a_full_disk_keeps_the_previous_session(small_disk):
    """Session.save of a session too big for the disk: ValueError naming ENOSPC (not
    torch's RuntimeError); the previous session file is the same bytes and still loads
    (written in place, it was truncated and no longer loaded)."""
    from explorer import Session

    target = small_disk / "s.pt"
    session = Session("digits", "mlp", device="cpu")
    session.save(target)
    good = target.read_bytes()
    session.prune(sparsity=0.5)
    session.train(epochs=1)  # an undo step more: the new file alone outgrows the disk
    assert len(session.to_bytes()) > 700 * 1024, "it fits: the test proves nothing"
    with pytest.raises(ValueError, match="ENOSPC") as caught:
        session.save(target)
    assert str(target) in str(caught.value)
    assert target.read_bytes() == good and leftovers(small_disk) == []
    assert Session.load(target).snapshot().sparsity == 0.0


def test_a_read_only_disk_is_named(small_disk):
    """A file system mounted read-only: ValueError naming EROFS, the file unchanged."""
    target = small_disk / "r.json"
    write_text(target, "old")
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    with pytest.raises(ValueError, match="EROFS"):
        write_text(target, "new")
    with pytest.raises(ValueError, match="EROFS"):
        write_text(small_disk / "fresh.json", "new")
    assert target.read_text() == "old"


# Each case writes a good file, then rewrites it with the file-size limit below the new
# size; it prints what the parent asserts on. SIGXFSZ is ignored, so the write gets EFBIG.
CHILD = r"""
import hashlib, json, os, resource, signal, sys
from pathlib import Path
import torch
from explorer import Session
from explorer.files import write_bytes

case, folder = sys.argv[1], Path(sys.argv[2])
target = folder / "target"
session = Session("digits", "mlp", device="cpu")
if case == "session":
    session.save(target)
    good = target.read_bytes()
    session.prune(sparsity=0.5)
    write = lambda: session.save(target)
elif case == "export":
    session.export(target, kind="zeros")
    good = target.read_bytes()
    session.prune(sparsity=0.5)
    write = lambda: session.export(target, kind="masked")  # masked: about twice the size
elif case == "checkpoint":
    session.export(target, kind='checkpoint')
    good = target.read_bytes()
    session.train(epochs=1)  # one more history record and new weights
    write = lambda: session.export(target, kind='checkpoint')
else:
    write_bytes(target, b"g" * 1000)
    good = target.read_bytes()
    write = lambda: write_bytes(target, b"n" * 5000)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
limit = len(good) // 2 if case != "bytes" else 2000
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
try:
    write()
    error = None
except Exception as exc:
    error = {"type": type(exc).__name__, "value_error": isinstance(exc, ValueError),
             "message": str(exc)}
resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
loads = None
if case == "session":
    loads = Session.load(target).slot.config == session.slot.config
print(json.dumps({"error": error, "same": target.read_bytes() == good, "loads": loads,
                  "files": sorted(p.name for p in folder.iterdir())}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("case", ["session", "export", "checkpoint", "bytes"])
def test_a_write_that_fails_half_way_keeps_the_previous_file(tmp_path, case):
    """Session.save, export, save_checkpoint, write_bytes over a good file, failing with
    EFBIG half-way: ValueError naming the path and EFBIG, the old file bit for bit (a
    session still loads), no temporary file left."""
    done = subprocess.run([sys.executable, "-c", CHILD, case, str(tmp_path)], cwd=REPO,
                          env=checkout_env(PYTHONDONTWRITEBYTECODE="1"), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    error = out["error"]
    assert error is not None, "the write did not fail: the test proves nothing"
    assert error["value_error"], error
    assert "EFBIG" in error["message"] and str(tmp_path / "target") in error["message"]
    assert out["same"], "the previous file changed"
    assert out["files"] == ["target"], out["files"]
    if case == "session":
        assert out["loads"] is not None


def limited(limit: int):
    """preexec_fn: the child's files may not grow past `limit` bytes (EFBIG, no signal)."""
    def apply() -> None:
        import resource
        import signal

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # inherited through exec
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    return apply


@pytest.mark.slow
def test_run_json_over_an_existing_report_fails_whole(tmp_path):
    """`explorer run --json R` that cannot write R: exit 2, one line naming R and EFBIG,
    R still the old valid JSON, no temporary file beside it."""
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"old": "report"}))
    good = report.read_bytes()
    done = subprocess.run(
        [sys.executable, "-m", "explorer", "run", "--epochs", "1", "--device", "cpu",
         "--json", str(report)], cwd=REPO, env=checkout_env(PYTHONDONTWRITEBYTECODE="1"),
        capture_output=True, text=True, timeout=300, preexec_fn=limited(1024))
    assert done.returncode == 2, done.stderr[-3000:]
    lines = done.stderr.strip().splitlines()
    assert "Traceback" not in done.stderr
    assert str(report) in lines[-1] and "EFBIG" in lines[-1], lines[-1]
    assert report.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_a_folder_export_that_fails_half_way_keeps_the_previous_folder(tmp_path):
    """atomic_folder (Session.export(kind="hf")): the old folder stays whole when the
    writer fails, no temporary folder is left, and a finished write replaces it."""
    import errno

    from explorer.files import atomic_folder

    target = tmp_path / "export"
    target.mkdir()
    (target / "model.safetensors").write_text("old")
    with pytest.raises(ValueError, match="disk is full"):
        with atomic_folder(target) as folder:
            (folder / "model.safetensors").write_text("half")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert [p.name for p in tmp_path.iterdir()] == ["export"]
    assert (target / "model.safetensors").read_text() == "old"
    with atomic_folder(target) as folder:
        (folder / "config.json").write_text("{}")
    assert sorted(p.name for p in target.iterdir()) == ["config.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["export"]
