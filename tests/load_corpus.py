"""A generator of crafted session files for Session.load (issue 19's 36-file corpus, kept).

Each case starts from a real saved session (its payload as plain data, see
explorer.session.persist.session_payload), changes one thing, and writes the file the way
an attacker or a broken tool would: through torch.save, or by rewriting the zip itself
(compression bombs, padded members). `build(case, base, folder)` writes one case and
returns its path; `CASES` lists them with the words the refusal must contain (None: the
file must load). Nothing here allocates what the crafted file claims: the bomb's 512 MiB
of zeros are streamed into the deflater a MiB at a time.
"""

from __future__ import annotations

import copy
import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

BOMB_BYTES = 512 * 2**20  # what the 0.5 MB bomb expands to


@dataclass(frozen=True)
class Case:
    id: str
    make: Callable[[dict, Path], bytes]  # (base payload, scratch folder) -> file bytes
    refusal: str | None  # regex the ValueError must match; None: the file loads


def saved(payload: dict) -> bytes:
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def edited(change: Callable[[dict], object]) -> Callable[[dict, Path], bytes]:
    """A case that edits a deep copy of the payload (`change` may return a new one)."""
    def make(base: dict, _folder: Path) -> bytes:
        payload = copy.deepcopy(base)
        result = change(payload)
        return saved(payload if result is None else result)
    return make


def rezipped(data: bytes, *, compression: int = zipfile.ZIP_STORED,
             replace: dict[str, Callable[[zipfile.ZipFile, str], None]] | None = None,
             extra: dict[str, bytes] | None = None) -> bytes:
    """The same archive written again: other compression, members replaced or added."""
    replace = replace or {}
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, \
            zipfile.ZipFile(out, "w", compression=compression, compresslevel=9) as dst:
        for info in src.infolist():
            tail = info.filename.split("/", 1)[-1]
            if tail in replace:
                replace[tail](dst, info.filename)
            else:
                dst.writestr(info.filename, src.read(info), compress_type=compression)
        for name, content in (extra or {}).items():
            dst.writestr(f"archive/{name}", content, compress_type=zipfile.ZIP_STORED)
    return out.getvalue()


def zeros_member(size: int) -> Callable[[zipfile.ZipFile, str], None]:
    """Write `size` zero bytes deflated, a MiB at a time (never `size` bytes in memory)."""
    def write(dst: zipfile.ZipFile, name: str) -> None:
        info = zipfile.ZipInfo(name)
        info.compress_type = zipfile.ZIP_DEFLATED
        chunk = bytes(2**20)
        with dst.open(info, "w", force_zip64=True) as handle:
            for start in range(0, size, len(chunk)):
                handle.write(chunk[: min(len(chunk), size - start)])
    return write


def bomb(base: dict, _folder: Path) -> bytes:
    """The first storage member replaced by 512 MiB of zeros, deflated (about 0.5 MB)."""
    return rezipped(saved(base), replace={"data/0": zeros_member(BOMB_BYTES)})


def padded(base: dict, _folder: Path) -> bytes:
    """A storage member 1 MiB larger than its tensor, stored (no compression trick)."""
    data = saved(base)
    with zipfile.ZipFile(io.BytesIO(data)) as src:
        name = next(i.filename for i in src.infolist() if i.filename.endswith("data/0"))
        content = src.read(name) + bytes(2**20)
    return rezipped(data, replace={"data/0": lambda dst, n: dst.writestr(n, content)})


def teacher(payload: dict) -> dict:
    return payload["slots"]["teacher"]


def first_weight(payload: dict) -> str:
    return next(k for k in teacher(payload)["base"] if k.endswith("weight"))


def set_in(path: tuple, value: object) -> Callable[[dict], None]:
    def change(payload: dict) -> None:
        target = payload
        for key in path[:-1]:
            target = target[key] if not callable(key) else key(target)
        target[path[-1]] = value
    return change


def retyped(key: str, dtype: torch.dtype) -> Callable[[dict], None]:
    def change(payload: dict) -> None:
        state = teacher(payload)[key]
        name = first_weight(payload)
        state[name] = state[name].to(dtype)
    return change


def masks_as(make: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[dict], None]:
    def change(payload: dict) -> None:
        masks = teacher(payload)["masks"]
        name = next(iter(masks))
        masks[name] = make(masks[name])
    return change


def aliased_undo(count: int) -> Callable[[dict], None]:
    """`count` undo entries that all share one base tensor (one storage in the file)."""
    def change(payload: dict) -> None:
        slot = teacher(payload)
        entry = {"base": slot["base"], "masks": None, "prune_config": None, "cuts": {},
                 "warnings": [], "job": None}
        slot["undo_stack"] = [entry] * count
    return change


def history_with(record: object, count: int = 1) -> Callable[[dict], None]:
    def change(payload: dict) -> None:
        payload["history"] = [copy.deepcopy(record) for _ in range(count)]
    return change


def without(key: str) -> Callable[[dict], None]:
    def change(payload: dict) -> None:
        record = next(h for h in payload["history"] if h["kind"] == "epoch")
        del record[key]
        payload["history"] = [record]
    return change


def nan_weight(payload: dict) -> None:
    name = first_weight(payload)
    teacher(payload)["base"][name] = teacher(payload)["base"][name].clone()
    teacher(payload)["base"][name][0, 0] = float("nan")


def hidden(value: object) -> Callable[[dict], None]:
    def change(payload: dict) -> None:
        payload["config"]["hidden"] = value
        teacher(payload)["config"]["hidden"] = value
    return change


def student_arch(change_arch: Callable[[dict], None]) -> Callable[[dict], None]:
    def change(payload: dict) -> None:
        slot = copy.deepcopy(teacher(payload))
        slot["arch"] = {"name": "mlp", "n_in": 64, "hidden": [8], "n_out": 10}
        change_arch(slot["arch"])
        payload["slots"]["student"] = slot
    return change


EPOCH = {"kind": "epoch", "epoch": 1, "step": 3, "train_loss": 0.5, "val_loss": 0.4,
         "val_accuracy": 0.9, "job": 1}

CASES = [
    Case("deflated but honest", lambda b, f: rezipped(saved(b),
                                                       compression=zipfile.ZIP_DEFLATED), None),
    Case("aliased undo within the cap", edited(aliased_undo(20)), None),
    Case("compression bomb 0.5 MB -> 512 MiB", bomb, r"would expand [\d,]+:1"),
    Case("member larger than its tensor", padded, r"data/0 holds .* its tensors need"),
    Case("extra member past the budget", lambda b, f: rezipped(
        saved(b), extra={"data/999": bytes(4 * 2**20)}), "expand to .* past the"),
    Case("aliased undo x2000", edited(aliased_undo(2000)), "2000 undo entries; at most 20"),
    Case("huge hidden 6000x6000", edited(hidden([6000, 6000])), "belongs to another model"),
    Case("hidden 10**6", edited(hidden([10**6])), "hidden .*1000000"),
    Case("hidden as a number", edited(hidden(10)), "hidden must be a list"),
    Case("hidden of 40 layers", edited(hidden([8] * 40)), "1 to 16 layer widths"),
    Case("width 10**400", edited(set_in(("config", "width"), 10**400)), "401 digits"),
    Case("base int64", edited(retyped("base", torch.int64)), "dtype torch.int64"),
    Case("base float16", edited(retyped("base", torch.float16)), "dtype torch.float16"),
    Case("base float64", edited(retyped("base", torch.float64)), "dtype torch.float64"),
    Case("masked base without masks", edited(set_in((teacher, "masks"), None)),
         "model_state is 'base\\*masks' but the slot has no masks"),
    Case("float masks", edited(masks_as(lambda m: m.float())), "masks are boolean"),
    Case("scalar masks", edited(masks_as(lambda m: torch.tensor(True))), r"shape \(\)"),
    Case("masks of unknown layer", edited(lambda p: teacher(p)["masks"].update(
        {"nope.weight": torch.ones(3, dtype=torch.bool)})), "unknown layer 'nope.weight'"),
    Case("masks without a setting", edited(set_in((teacher, "prune_config"), None)),
         "prune_config must be a dict"),
    Case("NaN weight", edited(nan_weight), "NaN or infinite"),
    Case("history [1, 2, 3]", edited(set_in(("history",), [1, 2, 3])),
         "history record 0 must be a dict"),
    Case("epoch record without val_loss", edited(without("val_loss")), "lacks val_loss"),
    Case("epoch record without step", edited(without("step")), "lacks step"),
    Case("history of 5000 records", edited(history_with(EPOCH, 5000)), "at most 2000"),
    Case("history holding a tensor", edited(history_with({**EPOCH, "x": torch.zeros(3)})),
         "holds a tensor"),
    Case("history of unknown kind", edited(history_with({"kind": "mystery"})), "'mystery'"),
    Case("history val_loss text", edited(history_with({**EPOCH, "val_loss": "low"})),
         "val_loss must be a number"),
    Case("prune_step without snapshot", edited(history_with(
        {"kind": "prune_step", "k": 1, "steps": 1, "step": 1, "schedule": "agp",
         "sparsity": 0.5, "actual_sparsity": 0.5, "accuracy": 0.9, "loss": 0.3})),
         "snapshot must be a dict"),
    Case("rewind points x50", edited(lambda p: teacher(p).update(rewind_states={
        k: teacher(p)["base"] for k in range(1, 51)})), "50 rewind points"),
    Case("unknown slot", edited(lambda p: p["slots"].update(ghost=teacher(p))),
         "unknown model slot 'ghost'"),
    Case("selected missing", edited(set_in(("selected",), "student")),
         "selected slot 'student'"),
    Case("student arch 10**6", edited(student_arch(lambda a: a.update(hidden=[10**6]))),
         "arch hidden"),
    Case("student arch other outputs", edited(student_arch(lambda a: a.update(n_out=3))),
         "arch n_out is 3"),
    Case("student of 1.3B parameters", edited(student_arch(  # past config.MODEL_PARAMS_MAX
        lambda a: a.update(hidden=[16384] * 6, n_in=64))), "past the limit"),
    Case("unknown dataset", edited(set_in(("config", "dataset"), "cifar")), "'cifar'"),
    Case("total_steps -1", edited(set_in(("total_steps",), -1)), "total_steps"),
    Case("not a dict", lambda b, f: saved([1, 2, 3]), "not a session file"),
    Case("version 2", edited(set_in(("version",), 2)), "version 2"),
    Case("truncated", lambda b, f: saved(b)[: len(saved(b)) // 2], "not a readable"),
    Case("garbage", lambda b, f: b"PK\x03\x04" + bytes(100), "not a readable"),
]


def build(case: Case, base: dict, folder: Path) -> Path:
    """Write `case` under `folder`; its path."""
    path = folder / (case.id.replace(" ", "_").replace("/", "_") + ".pt")
    if not path.exists():
        path.write_bytes(case.make(base, folder))
    return path
