"""Checking a session file before anything is built from it (Session.load).

Refusals are ValueErrors naming the file and the reason, in three stages:

1. The zip's central directory, before any member is read: a member that would expand
   more than LOAD_RATIO_MAX:1 (a compression bomb; Session.save stores members
   uncompressed), an object tree (data.pkl) over LOAD_PICKLE_MAX, too many members.
2. The object tree alone, unpickled by torch's weights-only unpickler with every tensor on
   the `meta` device (shapes and dtypes, no bytes; see explorer.session.loadshape): the
   configuration within config.py's bounds (hidden sizes included), each model rebuilt on
   `meta` within the parameter cap (config.check_params), every state with exactly that model's
   names, shapes and dtypes, masks boolean, undo entries, rewind points and history records
   within their caps and with their fields. Then the directory's uncompressed total must
   fit what those models can need, each storage counted once however many tensors alias
   it, and every storage member must be exactly as large as its tensors say.
3. After the real torch.load (explorer.session.persist): the values (finite weights).
"""

from __future__ import annotations

import io
import pickle
import zipfile
from dataclasses import dataclass
from typing import IO, Any

from ..config import LOAD_MEMBERS_MAX, LOAD_PICKLE_MAX, LOAD_RATIO_MAX
from .loadshape import check_structure
from .roots import Roots, check_roots

FORMAT = "explorer-session"
VERSION = 1
RATIO_MIN_BYTES = 64 * 2**10  # below this, a high ratio (a short run of text) is harmless
SMALL_RECORDS_BYTES = 2**20  # torch's version, byteorder and id records, with room to spare


def mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**17 else f"{n / 2**10:.1f} KiB"


@dataclass(frozen=True)
class Archive:
    """What the central directory says: member sizes (uncompressed) under the prefix."""

    pickle_name: str
    prefix: str
    sizes: dict[str, int]
    total: int


def check_archive(source: str | IO[bytes], name: str) -> tuple[Archive, bytes]:
    """Stage 1, then the object tree's bytes (bounded by LOAD_PICKLE_MAX)."""
    start = None if isinstance(source, str) else source.tell()
    try:
        with zipfile.ZipFile(source) as archive:
            infos = archive.infolist()
            if len(infos) > LOAD_MEMBERS_MAX:
                raise ValueError(f"{name} is refused: {len(infos):,} zip members (at most "
                                 f"{LOAD_MEMBERS_MAX:,})")
            for info in infos:
                if info.file_size > RATIO_MIN_BYTES and \
                        info.file_size > LOAD_RATIO_MAX * max(info.compress_size, 1):
                    ratio = info.file_size / max(info.compress_size, 1)
                    raise ValueError(
                        f"{name} is refused: member {info.filename} would expand "
                        f"{ratio:,.0f}:1 ({mib(info.compress_size)} -> {mib(info.file_size)}),"
                        f" past {LOAD_RATIO_MAX}:1 (a compression bomb; Session.save stores "
                        "members uncompressed)")
            pickles = [i for i in infos if i.filename.rsplit("/", 1)[-1] == "data.pkl"]
            if len(pickles) != 1:
                raise ValueError(f"{name} is not a readable session file (not a torch.save "
                                 "archive: no single data.pkl)")
            tree = pickles[0]
            if tree.file_size > LOAD_PICKLE_MAX:
                raise ValueError(f"{name} is refused: its object tree (data.pkl) is "
                                 f"{mib(tree.file_size)}, past {mib(LOAD_PICKLE_MAX)}")
            data = archive.read(tree)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, RuntimeError,
            NotImplementedError) as err:
        raise ValueError(f"{name} is not a readable session file (truncated or not made by "
                         f"Session.save): {str(err).splitlines()[0][:160]}") from None
    finally:
        if start is not None:
            source.seek(start)  # type: ignore[union-attr]
    prefix = tree.filename[: -len("data.pkl")]
    sizes = {i.filename[len(prefix):]: i.file_size for i in infos
             if i.filename.startswith(prefix)}
    return Archive(tree.filename, prefix, sizes, sum(i.file_size for i in infos)), data


def read_skeleton(data: bytes, name: str) -> tuple[Any, dict[str, int]]:
    """The object tree with meta tensors, and the bytes each storage key declares.

    Aliased tensors (one storage, many tensors) share one meta storage and count once.
    Anything besides tensors and plain data is refused by torch's weights-only unpickler.
    """
    import torch
    from torch import _weights_only_unpickler as restricted

    declared: dict[str, int] = {}
    made: dict[str, Any] = {}

    class Skeleton(restricted.Unpickler):  # type: ignore[name-defined,misc]
        def persistent_load(self, pid: Any) -> Any:
            if not isinstance(pid, tuple) or len(pid) != 5 or \
                    pid[0] not in ("storage", b"storage"):
                raise pickle.UnpicklingError(f"unexpected persistent id {str(pid)[:60]}")
            _, storage_type, key, _location, numel = pid
            key = key.decode("ascii") if isinstance(key, bytes) else str(key)
            dtype = torch.uint8 if storage_type is torch.UntypedStorage else storage_type.dtype
            if key not in made:
                if isinstance(numel, bool) or not isinstance(numel, int) or numel < 0:
                    raise pickle.UnpicklingError(f"storage {key} has size {numel!r}")
                nbytes = numel * dtype.itemsize  # public since torch 2.1
                declared[key] = nbytes
                made[key] = torch.storage.TypedStorage(
                    wrap_storage=torch.UntypedStorage(nbytes, device="meta"), dtype=dtype,
                    _internal=True)
            return made[key]

    try:
        payload = Skeleton(io.BytesIO(data), encoding="utf-8").load()
    except pickle.UnpicklingError as err:
        lines = [line for line in str(err).splitlines()
                 if "unsupported" in line.lower() or "global" in line.lower()]
        if lines:  # an import the restricted unpickler refuses
            raise ValueError(f"{name} is refused: it holds objects other than tensors and "
                             "plain data, which could run code "
                             f"({lines[0].strip()[:160]})") from None
        raise ValueError(f"{name} is not a readable session file: {str(err)[:160]}") from None
    except Exception as err:  # any other failure of the tree: not a file we wrote
        raise ValueError(f"{name} is not a readable session file (its object tree does not "
                         f"unpickle: {type(err).__name__}: {str(err)[:160]})") from None
    return payload, declared


def check_header(payload: Any, name: str) -> None:
    """The format and version (a checkpoint or an export is not a session file)."""
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        kind = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise ValueError(f"{name} is not a session file (format {kind!r}; expected "
                         f"{FORMAT!r}): a checkpoint or export loads elsewhere")
    if payload.get("version") != VERSION:
        raise ValueError(f"{name}: session file version {payload.get('version')!r}; "
                         f"this explorer reads version {VERSION}")


def check_storages(archive: Archive, declared: dict[str, int], budget: int,
                   name: str) -> None:
    """Every storage member as large as its tensors say; the total within `budget`."""
    for key, nbytes in declared.items():
        size = archive.sizes.get(f"data/{key}")
        if size is None:
            raise ValueError(f"{name} is not a readable session file: tensor storage {key} "
                             "is missing (truncated?)")
        if size != nbytes:
            raise ValueError(f"{name} is refused: member data/{key} holds {mib(size)} but its "
                             f"tensors need {mib(nbytes)}")
    if archive.total > budget:
        raise ValueError(f"{name} is refused: its members expand to {mib(archive.total)}, "
                         f"past the {mib(budget)} a session of the models it claims can "
                         "need")


def check_file(source: str | IO[bytes], name: str, max_params: int | None = None,
               data_roots: Roots | None = None) -> None:
    """Stages 1 and 2 for `source` (a path, or a seekable binary file positioned at 0).
    `data_roots`: the only folders its paths may name (explorer.session.roots; None: any)."""
    archive, data = check_archive(source, name)
    payload, declared = read_skeleton(data, name)
    check_header(payload, name)
    if data_roots is not None:  # before anything else looks at what the file names
        check_roots(payload, data_roots, name)
    # the tensors' storages, the object tree itself and torch's few small records
    budget = check_structure(payload, name, max_params) + len(data) + SMALL_RECORDS_BYTES
    check_storages(archive, declared, budget, name)
