"""Every file the explorer writes is written whole or not at all; every weights file it
reads fails as one ValueError naming the file.

A save that fails half-way (a full disk, a read-only folder, a file-size limit) must never
destroy the last good file. `atomic_file` writes to a temporary file in the target's own
folder, flushes and fsyncs it, gives it the old file's permissions, and only then renames
it over the target (os.replace is atomic within one file system), then fsyncs the folder
so the rename survives a crash. On any failure the temporary file is removed, the old file
stays as it was, and a WriteError (a ValueError) names the path and the reason: the disk
is full (ENOSPC), the file system is read-only (EROFS), permission denied (EACCES), the
file is too large (EFBIG). torch reports a failed write as a RuntimeError; the OSError
behind it is found and named instead.

Importing this module imports no torch: every floor (data, models, engine, session) and
the command line use it. tests/test_files.py scans the package for writes that bypass it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pickle
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

REASONS = {
    errno.ENOSPC: "the disk is full (ENOSPC)",
    errno.EDQUOT: "the disk quota is exceeded (EDQUOT)",
    errno.EROFS: "the file system is read-only (EROFS)",
    errno.EACCES: "permission denied (EACCES)",
    errno.EPERM: "operation not permitted (EPERM)",
    errno.EFBIG: "the file is too large for this file system or process limit (EFBIG)",
    errno.ENOENT: "its folder does not exist (ENOENT)",
    errno.ENOTDIR: "a part of its folder path is not a folder (ENOTDIR)",
    errno.EISDIR: "it is a folder (EISDIR)",
    errno.ENAMETOOLONG: "the name is too long (ENAMETOOLONG)",
    errno.EIO: "an input/output error (EIO)",
}
TEMP_SUFFIX = ".tmp"


class WriteError(ValueError):
    """A file could not be written; the previous file (if any) is unchanged."""

    def __init__(self, path: str | os.PathLike, reason: str, code: int | None = None) -> None:
        self.path, self.reason, self.errno = str(path), reason, code
        super().__init__(f"cannot write {self.path}: {reason}; nothing was changed")


def _os_error(exc: BaseException) -> OSError | None:
    """The OSError behind `exc` (itself, its cause or context): torch wraps a failed write
    of its zip writer in a RuntimeError whose context is the OSError."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, OSError) and current.errno is not None:
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _os_reason(exc: OSError) -> str:
    code = exc.errno
    if code is None:
        return str(exc) or type(exc).__name__
    return REASONS.get(code, exc.strerror or errno.errorcode.get(code, str(code)))


def write_error(path: str | os.PathLike, exc: BaseException) -> WriteError | None:
    """`exc` as a WriteError naming `path` and the reason; None when `exc` is no I/O
    failure (a bug in the caller's payload stays what it is)."""
    if isinstance(exc, WriteError):
        return exc
    os_error = _os_error(exc)
    if os_error is not None:
        return WriteError(path, _os_reason(os_error), os_error.errno)
    if isinstance(exc, RuntimeError):  # torch's writer without the OSError attached
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return WriteError(path, f"the write failed ({first[:160]})")
    return None


def _target(path: str | os.PathLike) -> Path:
    """Where the bytes go: a symbolic link's destination (the link itself stays a link)."""
    target = Path(path).expanduser()
    return Path(os.path.realpath(target)) if target.is_symlink() else target


def _create_temp(target: Path) -> tuple[Path, int]:
    """A new, exclusive temporary file beside `target` (mode 0o666 less the umask, as a
    plain open would make it)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        temp = target.with_name(f".{target.name[:180]}.{secrets.token_hex(4)}{TEMP_SUFFIX}")
        try:
            return temp, os.open(temp, flags, 0o666)
        except FileExistsError:
            continue


def _keep_permissions(target: Path, temp: Path) -> None:
    """The replacement gets the old file's mode (and owner, where we may set it)."""
    try:
        old = os.stat(target)
    except FileNotFoundError:
        return
    os.chmod(temp, stat.S_IMODE(old.st_mode))
    if hasattr(os, "chown"):
        with contextlib.suppress(OSError):  # only root may give a file away
            new = os.stat(temp)
            if (new.st_uid, new.st_gid) != (old.st_uid, old.st_gid):
                os.chown(temp, old.st_uid, old.st_gid)


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable; some file systems cannot fsync a folder: the file is in
    place already, so that is no failure."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "wb", encoding: str = "utf-8",
                newline: str | None = None) -> Iterator[IO[Any]]:
    """A handle to write `path` through (mode "wb" or "w"); the target is replaced only
    when the body finishes and every byte is on disk. Any I/O failure: WriteError naming
    `path` and the reason, the old file untouched, no temporary file left behind."""
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_file writes whole files: mode 'wb' or 'w', got {mode!r}")
    target = _target(path)
    if target.exists():
        if not target.is_file():  # a folder, /dev/null, a pipe: never replaced by a file
            raise WriteError(path, "it exists and is not a regular file")
        if not os.access(target, os.W_OK):  # a replacement would sidestep its mode
            if os.statvfs(target.parent).f_flag & os.ST_RDONLY:
                raise WriteError(path, REASONS[errno.EROFS], errno.EROFS)
            raise WriteError(path, REASONS[errno.EACCES] + ": the file is read-only",
                             errno.EACCES)
    try:
        temp, fd = _create_temp(target)
    except OSError as exc:
        raise WriteError(path, _os_reason(exc), exc.errno) from None
    try:
        handle: IO[Any] = (os.fdopen(fd, "wb") if mode == "wb" else
                           os.fdopen(fd, "w", encoding=encoding, newline=newline))
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        _keep_permissions(target, temp)
        os.replace(temp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        error = write_error(path, exc) if isinstance(exc, Exception) else None
        if error is None:
            raise  # Ctrl-C, or a failure that is no I/O: as it was
        raise error from None
    _fsync_folder(target.parent)


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """A fresh temporary folder beside `path` to write a whole folder into (a
    ``save_pretrained`` export); when the body finishes it takes `path`'s place, and an
    older folder there is removed only after that. Any I/O failure: WriteError naming
    `path`, the old folder untouched, no temporary folder left behind. (Two renames, not
    one: a crash between them leaves the old folder under a ``.old`` name beside it.)"""
    import shutil
    import tempfile

    target = _target(path)
    if target.exists() and not target.is_dir():
        raise WriteError(path, "it exists and is not a folder")
    try:
        temp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=TEMP_SUFFIX,
                                     dir=target.parent))
    except OSError as exc:
        raise WriteError(path, _os_reason(exc), exc.errno) from None
    old = target.with_name(f".{target.name}.{secrets.token_hex(4)}.old")
    try:
        yield temp
        if target.exists():
            os.replace(target, old)
        os.replace(temp, target)
    except BaseException as exc:
        shutil.rmtree(temp, ignore_errors=True)
        if old.exists() and not target.exists():  # put the old folder back
            os.replace(old, target)
        error = write_error(path, exc) if isinstance(exc, Exception) else None
        if error is None:
            raise
        raise error from None
    shutil.rmtree(old, ignore_errors=True)
    _fsync_folder(target.parent)


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Replace `path` with `data`, atomically (see atomic_file); returns the path."""
    with atomic_file(path, "wb") as handle:
        handle.write(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8",
               newline: str | None = None) -> Path:
    """Replace `path` with `text`, atomically (see atomic_file); returns the path."""
    with atomic_file(path, "w", encoding=encoding, newline=newline) as handle:
        handle.write(text)
    return Path(path)


def read_error(what: str, exc: BaseException) -> ValueError:
    """A failed read of a weights file (pickled code refused by torch's safe unpickler,
    truncated, not a torch file) as one ValueError line: "`what`: the reason"."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if isinstance(exc, pickle.UnpicklingError):
        detail = next((line for line in lines if "unsupported" in line.lower()),
                      lines[0] if lines else type(exc).__name__)
        return ValueError(f"{what}: refused: it holds objects other than tensors and plain "
                          f"data, which could run code ({detail[:160]})")
    detail = lines[0] if lines else type(exc).__name__
    return ValueError(f"{what}: {detail[:200]}")
