"""Saving a whole Session to one file and loading it back, without running code.

The file holds plain tensors, dicts, lists, strings and numbers only, written with
torch.save and read with torch.load(..., weights_only=True): a crafted pickle that
would import and call something is refused by torch's restricted unpickler.

A load is bounded and atomic. Before any tensor is read, explorer.session.loadcheck
checks the zip's directory (compression bombs, sizes) and the object tree on `meta`
tensors (every field, every shape and dtype against the models rebuilt from the file's
own configuration, the caps on undo entries, rewind points and history from config.py).
Only then are the tensors read, their values checked, and a complete new Session built
off to the side; the caller gets it only when everything passed, so a refused file
leaves nothing half-loaded. Every refusal is a ValueError naming the file and the field.

What is kept, per model slot (teacher, student, student_alone): the live weights, the
dense base, the original, the undo stack, the masks and pruning setting, and the
lottery-ticket rewind points (each distinct tensor written once: equal states share one
storage in the file, explorer.session.memory.SharedTensors); per session: the history
(Snapshots as plain dicts, rebuilt on load), the step counter, which slot is selected,
and the configuration. The data set is rebuilt from its name and seed; data given as
tensors cannot be, so such sessions are refused at save time (export the model instead).
An hf: model and imagefolder: data: see explorer.session.persist_own.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from dataclasses import asdict
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np
import torch

from ..config import HISTORY_MAX, check_params
from ..engine.metrics import Snapshot
from ..files import atomic_file
from ..validate import check_weights
from .bounded import BoundedList
from .loadcheck import FORMAT, VERSION, check_file, check_header
from .loadshape import check_prune_config, param_count
from .memory import SharedTensors, entry_tensors, live_state, storage_bytes
from .persist_lm import LM_KEY, arch_of, build_arch, lm_extra, reopen_lm
from .persist_own import HF_KEY, KEEP, reopen, save_extra, without_extra
from .plaindata import snapshot_from_dict, unplain
from .quant import setting_from, setting_payload
from .quant_setting import QUANT_UNKNOWN
from .roots import Roots
from .slots import ModelSlot, State, UndoEntry

if TYPE_CHECKING:
    from .host import Host

__all__ = ["FORMAT", "VERSION", "left_out_bytes", "load_session", "plain", "read_payload",
           "save_session",
           "session_bytes", "session_payload", "snapshot_from_dict", "unplain"]


# ----- plain values ----------------------------------------------------------------
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


# ----- saving ------------------------------------------------------------------------
def _slot_payload(slot: ModelSlot, share: SharedTensors, undo: bool = True) -> dict:
    """One slot as plain data; equal tensors shared (`share`), undo and rewind points
    left out when not `undo`."""
    model, config = slot.model, slot.prune_config
    return {"config": plain(slot.config), "model_name": slot.model_name,
            "arch": _arch(model),
            "model_state": live_state(slot, share), "base": share.state(slot.base),
            "original": share.state(slot.original), "initial": share.state(slot.initial),
            "rewind_states": {int(k): share.state(v) for k, v in slot.rewind_states.items()
                              if undo},
            "epochs_trained": int(slot.epochs_trained),
            "undo_stack": [_undo_payload(e, share) for e in slot.undo_stack if undo],
            "masks": None if slot.masks is None else share.state(slot.masks),
            "prune_config": None if config is None else asdict(config),
            "cuts": {k: float(v) for k, v in slot.cuts.items()},
            "warnings": list(slot.warnings),
            "quant": setting_payload(slot)}


def _undo_payload(entry: UndoEntry, share: SharedTensors) -> dict:
    return {"base": share.state(entry.base),
            "masks": None if entry.masks is None else share.state(entry.masks),
            "prune_config": None if entry.prune_config is None else asdict(entry.prune_config),
            "cuts": dict(entry.cuts or {}), "warnings": list(entry.warnings),
            "job": entry.job,
            **({} if isinstance(entry.quant, str) else
               {"quant": None if entry.quant is None else asdict(entry.quant)})}


def left_out_bytes(session: Host) -> int:
    """Bytes of the undo steps and rewind points of every slot (what undo=False omits)."""
    with session.lock:
        seen: set[int] = set()
        return sum(storage_bytes([t for e in slot.undo_stack for t in entry_tensors(e)] +
                                 [t for s in slot.rewind_states.values() for t in s.values()],
                                 seen) for slot in session.slots.values())


def _arch(model: torch.nn.Module) -> Any:
    """The zoo model's architecture description (None for a user's module)."""
    arch = getattr(model, "arch", None)
    return plain(arch()) if callable(arch) else arch_of(model)  # a GPT student: its sizes


def check_saveable(session: Host, max_params: int | None = None) -> None:
    """Refuse, before anything is written, a session whose models Session.load would
    refuse: the same parameter cap (config.check_params), counted the same way."""
    for name, slot in session.slots.items():
        count = param_count(slot.model)
        try:
            check_params(f"the {name} model", count, max_params)
        except ValueError as err:
            raise ValueError(f"Session.save: {err}; Session.load refuses such files, so "
                             "none of it is written") from None


def session_payload(session: Host, undo: bool = True,
                    max_params: int | None = None) -> dict:
    """Everything save() writes, as plain data (under the session's lock); without the
    undo steps and rewind points when not `undo` (the app's download when they are big).
    ValueError, nothing written, for a model past the parameter cap `max_params`."""
    with session.lock:
        check_saveable(session, max_params)
        # your own data or model: what is saved and what is refused (persist_own)
        extra = (lm_extra(session, KEEP) if session.objective.headline == "perplexity"
                 else save_extra(session))  # gpt-tiny or hf: on text: persist_lm
        teacher_config = {**session.slots["teacher"].config, **extra}
        share = SharedTensors()
        slots = {name: _slot_payload(slot, share, undo) for name, slot in session.slots.items()}
        slots["teacher"]["config"] = plain(teacher_config)  # loadshape checks they agree
        return {"format": FORMAT, "version": VERSION, "config": plain(teacher_config),
                "selected": session.selected, "slots": slots,
                "history": plain(list(session.history)),
                "total_steps": int(session.jobs.total_steps),
                "pretrained": bool(session.pretrained)}


def save_session(session: Host, target: str | Path | IO[bytes],
                 undo: bool = True, max_params: int | None = None) -> None:
    """Write `session` to a path or a binary file object (see session_payload)."""
    if not isinstance(target, (str, Path)):
        torch.save(session_payload(session, undo, max_params), target)  # the caller's own handle
        return
    from ..validate import check_output_path

    path = check_output_path("path", target)  # before anything is built
    payload = session_payload(session, undo, max_params)
    with atomic_file(path) as handle:  # the old file stays until this one is whole
        torch.save(payload, handle)


def session_bytes(session: Host, undo: bool = True,
                  max_params: int | None = None) -> bytes:
    buffer = io.BytesIO()
    save_session(session, buffer, undo, max_params)
    return buffer.getvalue()


# ----- loading -----------------------------------------------------------------------
def read_payload(source: str | Path | IO[bytes] | bytes, max_params: int | None = None,
                 data_roots: Roots | None = None) -> dict:
    """The checked payload of a session file (loadcheck first, then torch.load with
    weights_only=True); every failure becomes a ValueError naming the file. `max_params`:
    the parameter cap; `data_roots`: the only folders its paths may name (None: any)."""
    name = "the upload" if isinstance(source, (bytes, bytearray, io.IOBase)) else str(source)
    if isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(bytes(source))
    if isinstance(source, Path):
        source = str(source)
    if not isinstance(source, str) and not all(hasattr(source, a) for a in ("read", "seek")):
        raise ValueError(f"a session file must be a path, bytes or a binary file object; got "
                         f"{type(source).__name__}")
    if isinstance(source, str) and not Path(source).exists():
        raise ValueError(f"{name}: no such file")
    if not _is_zip(source):  # torch.save writes a zip; anything else is not ours
        raise ValueError(f"{name} is not a readable session file (not a torch.save zip "
                         "archive: truncated, or not made by Session.save)")
    check_file(source, name, max_params, data_roots)  # bounded, before any tensor is read
    try:
        payload = torch.load(source, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:  # a global torch's safe unpickler will not load
        lines = [line for line in str(err).splitlines() if "unsupported" in line.lower()]
        first = lines[0].strip() if lines else type(err).__name__
        raise ValueError(f"{name} is refused: it holds objects other than tensors and plain "
                         f"data, which could run code ({first[:160]})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError,
            AssertionError) as err:
        raise ValueError(f"{name} is not a readable session file (truncated or not made by "
                         f"Session.save): {str(err).splitlines()[0][:160]}") from None
    check_header(payload, name)
    _check_values(payload, name)
    return payload


def _is_zip(source: str | IO[bytes]) -> bool:
    """True when `source` starts like a zip archive."""
    if isinstance(source, str):
        try:
            with open(source, "rb") as handle:
                return handle.read(4) == b"PK\x03\x04"
        except OSError as err:
            raise ValueError(f"{source}: cannot be read ({err.strerror})") from None
    start = source.tell()
    head = source.read(4)
    source.seek(start)
    return head == b"PK\x03\x04"


def _states(data: dict) -> list[tuple[str, State]]:
    """Every weight state a saved slot holds, with where it sits."""
    found = [(key, data[key]) for key in ("model_state", "base", "original", "initial")
             if isinstance(data[key], dict)]  # model_state may be MASKED_BASE
    found += [(f"rewind point {k}", v) for k, v in data["rewind_states"].items()]
    found += [(f"undo step {i}", e["base"] if isinstance(e.get("base"), dict) else e)
              for i, e in enumerate(data["undo_stack"])]
    return found


def _check_values(payload: dict, name: str) -> None:
    """The weights are finite and not huge, BatchNorm variances not negative
    (validate.check_weights; the shapes and dtypes were checked before reading)."""
    for slot, data in payload["slots"].items():
        for where, state in _states(data):
            check_weights(f"{name} is refused: slot {slot} {where}", state)
            for key, tensor in state.items():
                if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                    raise ValueError(f"{name} is refused: slot {slot} {where}: {key} holds "
                                     "NaN or infinite values")


def _copy(state: dict | None, device: torch.device) -> dict | None:
    """Own copies on the session's device: no two loaded states share storage."""
    return None if state is None else {k: v.to(device, copy=True) for k, v in state.items()}


def _undo_entry(saved: dict, device: torch.device) -> UndoEntry:
    """An undo entry as saved: a dict, or a plain state (files from before undo kept masks)."""
    if not isinstance(saved.get("base"), dict):
        return UndoEntry(_copy(saved, device) or {})
    config = saved.get("prune_config")
    return UndoEntry(_copy(saved["base"], device) or {}, _copy(saved.get("masks"), device),
                     None if config is None else check_prune_config("undo", config),
                     dict(saved.get("cuts") or {}), tuple(saved.get("warnings") or ()),
                     saved.get("job"),
                     setting_from(saved["quant"]) if "quant" in saved else QUANT_UNKNOWN)


def _restore_slot(data: dict, model: torch.nn.Module, device: torch.device) -> ModelSlot:
    """The ModelSlot saved in `data`, around `model` (data checked by loadcheck)."""
    model.to(device)
    slot = ModelSlot(model, str(data["model_name"]), without_extra(dict(data["config"])),
                     _copy(data["initial"], device))
    slot.original = _copy(data["original"], device) or {}
    slot.rewind_states = {int(k): _copy(v, device) or {}
                          for k, v in data["rewind_states"].items()}
    slot.epochs_trained = int(data["epochs_trained"])
    slot.undo_stack.extend(_undo_entry(e, device) for e in data["undo_stack"])
    slot.quant = setting_from(data.get("quant"))  # set_base and reapply quantize again
    slot.set_base(_copy(data["base"], device) or {})
    if data["masks"] is not None:  # head / neuron removal has masks without a setting
        config = data["prune_config"]
        slot.reapply(_copy(data["masks"], device),
                     None if config is None else check_prune_config("masks", config))
        slot.cuts = {k: float(v) for k, v in data["cuts"].items()}
        slot.warnings = tuple(data["warnings"])
    if isinstance(data["model_state"], dict):  # else MASKED_BASE: shown already
        model.load_state_dict(data["model_state"])
    return slot


def load_session(source: str | Path | IO[bytes] | bytes, *, cls: type,
                 device: str | None = None, max_params: int | None = None,
                 data_roots: Roots | None = None) -> Any:
    """Rebuild the Session (of class `cls`) saved in `source`; ValueError when refused.

    The new session is built completely before it is returned: nothing is swapped in
    anywhere until every check has passed. `max_params` and `data_roots`: read_payload.
    """
    payload = read_payload(source, max_params, data_roots)
    try:
        config = payload["config"]
        hidden = config.get("hidden")
        if LM_KEY in config:  # gpt-tiny or an hf: causal LM on text (persist_lm)
            session = reopen_lm(cls, config, device)
        elif HF_KEY in config:  # an hf: model, rebuilt from its saved config (persist_own)
            session = reopen(cls, config, device)
        else:
            session = cls(config["dataset"], config["model"], width=config["width"],
                          init=config["init"], seed=config["seed"], device=device,
                          pretrained=False, hidden=None if hidden is None else tuple(hidden))
        slots = payload["slots"]
        session.slots["teacher"] = _restore_slot(slots["teacher"], session.model,
                                                 session.device)
        for name, data in slots.items():
            if name != "teacher":
                session.slots[name] = _restore_slot(data, build_arch(data["arch"]),
                                                    session.device)
        session.history = BoundedList(unplain(payload["history"]), HISTORY_MAX)
        jobs = [h.get("job") for h in session.history] + \
            [e.job for slot in session.slots.values() for e in slot.undo_stack]
        session.jobs.started = max((j for j in jobs if j is not None), default=0)
        session.jobs.total_steps = int(payload["total_steps"])
        session.pretrained = bool(payload["pretrained"])
        session.select(payload["selected"])
    except (KeyError, TypeError, AttributeError, RuntimeError, IndexError) as err:
        raise ValueError(f"malformed session file: {type(err).__name__}: {err}") from None
    return session
