"""Saving a whole Session to one file and loading it back, without running code.

The file holds plain tensors, dicts, lists, strings and numbers only, written with
torch.save and read with torch.load(..., weights_only=True): a crafted pickle that
would import and call something is refused by torch's restricted unpickler. On top of
that every field is checked, and the weights must fit the model rebuilt from the
file's own configuration, so a truncated file, a checkpoint or export of something
else, or a session file whose weights belong to another model, are each refused with
a ValueError before any session is returned.

What is kept, per model slot (teacher, student, student_alone): the live weights, the
dense base, the original, the undo stack, the masks and pruning setting, and the
lottery-ticket rewind points; per session: the history (Snapshots as plain dicts,
rebuilt on load), the step counter, which slot is selected, and the configuration.
The data set is rebuilt from its name and seed; data given as tensors cannot be, so
such sessions are refused at save time (export the model instead).
"""

from __future__ import annotations

import io
import pickle
import zipfile
from dataclasses import asdict, fields
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

from ..config import DATASETS, MODELS, PerLayerConfig, PruneConfig
from ..engine.metrics import LayerStats, Snapshot
from ..models.zoo import build_from_arch
from .bounded import BoundedList
from .core import SessionCore
from .slots import ModelSlot, UndoEntry

FORMAT = "explorer-session"
VERSION = 1
SNAPSHOT_FIELDS = {f.name for f in fields(Snapshot)}
LAYER_ARRAYS = {"hist_counts": np.int32, "hist_base_counts": np.int32,
                "hist_edges": np.float32}


# ----- plain values ----------------------------------------------------------------
def _cpu(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in state.items()}


def plain(value: Any) -> Any:
    """Snapshots become tagged dicts, NumPy values lists or numbers: weights_only-safe."""
    if isinstance(value, Snapshot):
        return {"__snapshot__": True, **value.to_dict()}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone()
    return value


def _layer_fields(layer: dict) -> dict[str, Any]:
    return {k: np.asarray(v, dtype=LAYER_ARRAYS[k]) if k in LAYER_ARRAYS else v
            for k, v in layer.items()}


def snapshot_from_dict(d: dict) -> Snapshot:
    """The inverse of Snapshot.to_dict (extra metrics are the keys it merged in)."""
    layers = tuple(LayerStats(**_layer_fields(layer)) for layer in d["layers"])
    core = {k: d[k] for k in SNAPSHOT_FIELDS - {"layers", "extra"} if k in d}
    core["warnings"] = tuple(core.get("warnings", ()))
    extra = {k: v for k, v in d.items()
             if k not in SNAPSHOT_FIELDS and k not in ("prunable", "__snapshot__")}
    return Snapshot(**core, layers=layers, extra=extra)


def unplain(value: Any) -> Any:
    if isinstance(value, dict):
        if value.get("__snapshot__"):
            return snapshot_from_dict(value)
        return {k: unplain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unplain(v) for v in value]
    return value


# ----- saving ------------------------------------------------------------------------
def _slot_payload(slot: ModelSlot) -> dict:
    model, config = slot.model, slot.prune_config
    return {"config": plain(slot.config), "model_name": slot.model_name,
            "arch": _arch(model),
            "model_state": _cpu(model.state_dict()), "base": _cpu(slot.base),
            "original": _cpu(slot.original), "initial": _cpu(slot.initial),
            "rewind_states": {int(k): _cpu(v) for k, v in slot.rewind_states.items()},
            "epochs_trained": int(slot.epochs_trained),
            "undo_stack": [_undo_payload(e) for e in slot.undo_stack],
            "masks": None if slot.masks is None else _cpu(slot.masks),
            "prune_config": None if config is None else asdict(config),
            "cuts": {k: float(v) for k, v in slot.cuts.items()},
            "warnings": list(slot.warnings)}


def _undo_payload(entry: UndoEntry) -> dict:
    return {"base": _cpu(entry.base),
            "masks": None if entry.masks is None else _cpu(entry.masks),
            "prune_config": None if entry.prune_config is None else asdict(entry.prune_config),
            "cuts": dict(entry.cuts or {}), "warnings": list(entry.warnings),
            "job": entry.job}


def _arch(model: torch.nn.Module) -> Any:
    """The zoo model's architecture description (None for a user's module)."""
    arch = getattr(model, "arch", None)
    return plain(arch()) if callable(arch) else None


def session_payload(session: SessionCore) -> dict:
    """Everything save() writes, as plain data (under the session's lock)."""
    with session.lock:
        if session.is_lm:
            raise ValueError("saving a language-model session is not supported yet (the file "
                             "format holds the image and regression zoo); use "
                             "export('masked') or export('shrunk') for the model")
        teacher_config = session.slots["teacher"].config
        if teacher_config.get("dataset") not in DATASETS:
            raise ValueError(f"cannot save a session on data given as tensors "
                             f"({teacher_config.get('dataset')!r}): it cannot be rebuilt "
                             "from a file; use export() for the model")
        if teacher_config.get("model") not in MODELS:
            raise ValueError(f"cannot save a session around a user model "
                             f"({teacher_config.get('model')!r}); use export() for it")
        slots = {name: _slot_payload(slot) for name, slot in session.slots.items()}
        return {"format": FORMAT, "version": VERSION, "config": plain(teacher_config),
                "selected": session.selected, "slots": slots,
                "history": plain(list(session.history)),
                "total_steps": int(session.total_steps),
                "pretrained": bool(session.pretrained)}


def save_session(session: SessionCore, target: str | Path | IO[bytes]) -> None:
    """Write `session` to a path or a binary file object."""
    if isinstance(target, (str, Path)):
        from ..validate import check_output_path

        target = check_output_path("path", target)
    torch.save(session_payload(session), target)


def session_bytes(session: SessionCore) -> bytes:
    buffer = io.BytesIO()
    save_session(session, buffer)
    return buffer.getvalue()


# ----- loading -----------------------------------------------------------------------
def read_payload(source: str | Path | IO[bytes] | bytes) -> dict:
    """torch.load with weights_only=True; every failure becomes a ValueError."""
    name = "the upload" if isinstance(source, (bytes, bytearray, io.IOBase)) else str(source)
    if isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(bytes(source))
    if not _is_zip(source):  # torch.save writes a zip; anything else is not ours
        raise ValueError(f"{name} is not a readable session file (not a torch.save zip "
                         "archive: truncated, or not made by Session.save)")
    try:
        payload = torch.load(source, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ValueError(f"{name}: no such file") from None
    except pickle.UnpicklingError as err:  # a global torch's safe unpickler will not load
        lines = [line for line in str(err).splitlines() if "Unsupported" in line]
        first = lines[0].strip() if lines else type(err).__name__
        raise ValueError(f"{name} is refused: it holds objects other than tensors and plain "
                         f"data, which could run code ({first[:160]})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as err:
        raise ValueError(f"{name} is not a readable session file (truncated or not made by "
                         f"Session.save): {str(err).splitlines()[0][:160]}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        kind = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise ValueError(f"{name} is not a session file (format {kind!r}; expected "
                         f"{FORMAT!r}): a checkpoint or export loads elsewhere")
    if payload.get("version") != VERSION:
        raise ValueError(f"{name}: session file version {payload.get('version')!r}; "
                         f"this explorer reads version {VERSION}")
    return payload


def _is_zip(source: str | Path | IO[bytes]) -> bool:
    """True when `source` starts like a zip archive (missing files pass: reported later)."""
    if isinstance(source, (str, Path)):
        try:
            with open(source, "rb") as handle:
                return handle.read(4) == b"PK\x03\x04"
        except FileNotFoundError:
            return True
        except OSError as err:
            raise ValueError(f"{source}: cannot be read ({err.strerror})") from None
    start = source.tell()
    head = source.read(4)
    source.seek(start)
    return head == b"PK\x03\x04"


def _check_state(what: str, state: object, model: torch.nn.Module) -> dict:
    """The state must name exactly the model's tensors, with the same shapes."""
    want = model.state_dict()
    if not isinstance(state, dict) or set(state) != set(want):
        extra = sorted(set(state) - set(want)) if isinstance(state, dict) else []
        missing = sorted(set(want) - set(state)) if isinstance(state, dict) else []
        raise ValueError(f"{what} belongs to another model: missing {missing[:3]}, "
                         f"unexpected {extra[:3]}")
    for key, tensor in state.items():
        if not isinstance(tensor, torch.Tensor) or tensor.shape != want[key].shape:
            shape = tuple(tensor.shape) if isinstance(tensor, torch.Tensor) else tensor
            raise ValueError(f"{what} belongs to another model: {key} has shape {shape}, "
                             f"the model needs {tuple(want[key].shape)}")
    return state


def _prune_config(d: dict) -> PruneConfig:
    """A PruneConfig, or the per-layer kind prune_per_layer installs (has targets)."""
    if d.get("targets"):
        return PerLayerConfig(**{**d, "targets": tuple((str(n), float(v))
                                                       for n, v in d["targets"])})
    return PruneConfig(**{k: v for k, v in d.items() if k != "targets"})


def _undo_entry(saved: Any) -> UndoEntry:
    """An undo entry as saved: a plain state (files from before undo kept masks) or a dict."""
    if isinstance(saved, dict) and "base" in saved and isinstance(saved["base"], dict):
        config = saved.get("prune_config")
        return UndoEntry(saved["base"], saved.get("masks"),
                         None if config is None else _prune_config(config),
                         dict(saved.get("cuts") or {}), tuple(saved.get("warnings") or ()),
                         saved.get("job"))
    return UndoEntry(saved)


def _restore_slot(name: str, data: dict, model: torch.nn.Module,
                  device: torch.device) -> ModelSlot:
    """The ModelSlot saved as `name`, around `model` (checked against every state)."""
    moved = lambda s: {k: v.to(device) for k, v in s.items()}  # noqa: E731
    for key in ("model_state", "base", "original", "initial"):
        _check_state(f"slot {name}: {key}", data[key], model)
    for k, state in data["rewind_states"].items():
        _check_state(f"slot {name}: rewind point {k}", state, model)
    undo = [_undo_entry(e) for e in data["undo_stack"]]
    for i, entry in enumerate(undo):
        _check_state(f"slot {name}: undo step {i}", entry.base, model)
    model.to(device)
    slot = ModelSlot(model, str(data["model_name"]), dict(data["config"]),
                     moved(data["initial"]))
    slot.original = moved(data["original"])
    slot.rewind_states = {int(k): moved(v) for k, v in data["rewind_states"].items()}
    slot.epochs_trained = int(data["epochs_trained"])
    slot.undo_stack.extend(
        UndoEntry(moved(e.base), None if e.masks is None else moved(e.masks), e.prune_config,
                  e.cuts, e.warnings, e.job) for e in undo)
    slot.set_base(moved(data["base"]))
    if data["masks"] is not None:
        slot.reapply(moved(data["masks"]), _prune_config(data["prune_config"]))
        slot.cuts = {k: float(v) for k, v in data["cuts"].items()}
        slot.warnings = tuple(data["warnings"])
    model.load_state_dict(moved(data["model_state"]))
    return slot


def load_session(source: str | Path | IO[bytes] | bytes, *, cls: type,
                 device: str | None = None) -> Any:
    """Rebuild the Session (of class `cls`) saved in `source`; ValueError when refused."""
    payload = read_payload(source)
    try:
        config = payload["config"]
        hidden = config.get("hidden")
        session = cls(config["dataset"], config["model"], width=config["width"],
                      init=config["init"], seed=config["seed"], device=device,
                      pretrained=False, hidden=None if hidden is None else tuple(hidden))
        slots = payload["slots"]
        session.slots["teacher"] = _restore_slot("teacher", slots["teacher"], session.model,
                                                 session.device)
        for name, data in slots.items():
            if name == "teacher":
                continue
            if name not in session.SLOTS or data.get("arch") is None:
                raise ValueError(f"slot {name!r} cannot be rebuilt from the file")
            session.slots[name] = _restore_slot(name, data, build_from_arch(data["arch"]),
                                                session.device)
        session.history = BoundedList(unplain(payload["history"]))
        session.jobs_started = max((h.get("job") or 0 for h in session.history
                                    if isinstance(h, dict)), default=0)
        session.total_steps = int(payload["total_steps"])
        session.pretrained = bool(payload["pretrained"])
        session.select(payload["selected"])
    except (KeyError, TypeError, AttributeError, RuntimeError) as err:
        raise ValueError(f"malformed session file: {type(err).__name__}: {err}") from None
    return session
