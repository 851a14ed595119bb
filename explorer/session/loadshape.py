"""The shape of a session file's object tree, checked on `meta` tensors (no bytes read).

check_structure() walks what Session.save writes (see explorer.session.persist) and
refuses, naming the field, anything a saved session cannot hold: configuration outside
config.py's bounds, a model of more than LOAD_PARAMS_MAX parameters, states that do not
fit the model rebuilt from the file's own configuration (names, shapes, dtypes), masks
that are not boolean, more undo entries, rewind points or history records than the caps,
history records without the fields the curves read. It returns the bytes the tensor
storages of such a session can need at most, so the caller can bound the whole file.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import torch
from torch import nn

from ..config import (
    HIDDEN_LAYERS_MAX,
    HIDDEN_MAX,
    HISTORY_MAX,
    INITS,
    LOAD_PARAMS_MAX,
    REWIND_EPOCHS_KEPT,
    UNDO_MAX,
    PerLayerConfig,
    PruneConfig,
    check_choice,
)
from ..models.gpt import GPT
from ..models.zoo import build_model
from ..validate import check_hidden, check_masks, check_seed, check_width
from .memory import MASKED_BASE
from .persist_lm import LM_CONFIG_KEYS, LM_KEY, build_arch, check_lm_config, lm_on_meta
from .persist_own import HF_KEY, check_own_config, hf_on_meta
from .plaindata import snapshot_from_dict
from .slots import SLOT_NAMES

# Per slot: live weights, base, original, initial, the rewind points, each undo entry's
# base and masks (a mask is counted as a whole state: generous), the masks in force.
STATES_PER_SLOT = 4 + REWIND_EPOCHS_KEPT + 2 * UNDO_MAX + 1
# What a built-in data set gives a model: input shape, image shape, outputs.
DATA_SHAPES: dict[str, tuple[tuple[int, ...], tuple[int, int, int] | None, int]] = {
    "digits": ((64,), (1, 8, 8), 10), "mnist-5k": ((784,), (1, 28, 28), 10),
    "toy-regression": ((10,), None, 10)}
CONFIG_KEYS = ("dataset", "model", "width", "init", "seed", "hidden")
SLOT_KEYS = ("config", "model_name", "arch", "model_state", "base", "original", "initial",
             "rewind_states", "epochs_trained", "undo_stack", "masks", "prune_config",
             "cuts", "warnings")
TOP_KEYS = ("format", "version", "config", "selected", "slots", "history", "total_steps",
            "pretrained")
COUNTER_MAX = 10**15
Real, Int, Text, Flag = "a number", "a whole number", "text", "True or False"
EPOCH_FIELDS = {"epoch": Int, "step": Int, "train_loss": Real, "val_loss": Real,
                "val_accuracy": (Real, None)}
HISTORY_KINDS: dict[str, dict[str, Any]] = {
    "epoch": EPOCH_FIELDS, "student": EPOCH_FIELDS, "student_alone": EPOCH_FIELDS,
    "student_hard": EPOCH_FIELDS,
    "prune_step": {"k": Int, "steps": Int, "step": Int, "schedule": Text, "sparsity": Real,
                   "actual_sparsity": Real, "accuracy": (Real, None), "loss": Real},
    "checkpoint": {"test_accuracy": (Real, None)},  # the shipped model's closing record
    "remove_heads": {"fraction": Real, "rank": Text, "step": Int}}  # a GPT's heads
# ----- small checks ----------------------------------------------------------------------
def _is(value: Any, kind: Any) -> bool:
    if isinstance(kind, tuple):
        return any(_is(value, k) for k in kind)
    if kind is None:
        return value is None
    if kind == Flag:
        return isinstance(value, bool)
    if kind == Text:
        return isinstance(value, str) and len(value) <= 10_000
    if isinstance(value, bool):
        return False
    if kind == Int:
        return isinstance(value, int) and 0 <= value <= COUNTER_MAX
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _need(what: str, value: Any, kind: Any) -> None:
    if not _is(value, kind):
        want = " or ".join("None" if k is None else str(k)
                           for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise ValueError(f"{what} must be {want}; got {str(value)[:80]!r}")


def _dict(what: str, value: Any, keys: tuple[str, ...] | None = None) -> dict:
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be a dict; got {type(value).__name__}")
    if keys is not None:
        missing = [k for k in keys if k not in value]
        if missing:
            raise ValueError(f"{what} lacks {', '.join(missing)}")
    return value


def _no_tensors(what: str, value: Any, depth: int = 0) -> None:
    """Plain data only (configs, history): no tensors, nothing nested absurdly deep."""
    if depth > 20:
        raise ValueError(f"{what} is nested more than 20 levels deep")
    if isinstance(value, torch.Tensor):
        raise ValueError(f"{what} holds a tensor where plain data belongs")
    items = value.values() if isinstance(value, dict) else \
        value if isinstance(value, (list, tuple)) else ()
    for item in items:
        _no_tensors(what, item, depth + 1)


# ----- configuration and models, rebuilt on meta -------------------------------------------
def check_config(config: Any) -> dict:
    """The teacher's configuration: built-in data and model, widths within bounds."""
    config = _dict("config", config, CONFIG_KEYS[:5])
    lm = LM_KEY in config  # a language model on text (persist_lm)
    extra = sorted(set(config) - set(CONFIG_KEYS) - {HF_KEY} - set(LM_CONFIG_KEYS if lm else ()))
    if extra:
        raise ValueError(f"config has unknown keys {extra[:3]}")
    if lm:
        check_lm_config(config)
    else:
        check_own_config(config)  # a zoo name, or your own (imagefolder:/hf:, persist_own)
    check_choice("config init", config["init"], INITS)
    check_width(config["width"])
    check_seed("config seed", config["seed"])
    try:
        check_hidden(config.get("hidden"))
    except ValueError as err:
        raise ValueError(f"config {err}") from None
    return config


def _on_meta(build: Any) -> nn.Module:
    """A model built on `meta`: shapes and dtypes, no memory (the RNG is left alone)."""
    with torch.random.fork_rng(devices=[]), torch.device("meta"):
        model = build()
    count = sum(p.numel() for p in model.parameters())
    if count > LOAD_PARAMS_MAX:
        raise ValueError(f"the model it claims has {count:,} parameters, past the limit of "
                         f"{LOAD_PARAMS_MAX:,}")
    return model


def teacher_on_meta(config: dict) -> nn.Module:
    if LM_KEY in config:
        return _on_meta(lambda: lm_on_meta(config))
    if HF_KEY in config:
        return _on_meta(lambda: hf_on_meta(config))
    input_shape, image_shape, outputs = DATA_SHAPES[config["dataset"]]
    hidden = config.get("hidden")
    return _on_meta(lambda: build_model(
        config["model"], input_shape, outputs, width=config["width"], init=config["init"],
        seed=config["seed"], hidden=None if hidden is None else tuple(hidden),
        image_shape=image_shape))


def _check_arch(arch: Any, teacher: nn.Module) -> dict:
    """A student's architecture: known, small numbers, the teacher's inputs and outputs."""
    arch = _dict("arch", arch, ("name",))
    for key, value in arch.items():
        values = value if isinstance(value, list) else [value]
        if key == "name" or (key == "image_shape" and isinstance(value, list)):
            continue
        if len(values) > HIDDEN_LAYERS_MAX or not all(
                isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= HIDDEN_MAX
                for v in values):
            raise ValueError(f"arch {key} must be whole sizes in 1..{HIDDEN_MAX}; got "
                             f"{str(value)[:80]}")
    ours: dict = getattr(teacher, "arch", dict)()
    for key in ("n_in", "n_out", "image_shape"):
        if key in arch and arch[key] != ours.get(key, arch[key]):
            raise ValueError(f"arch {key} is {arch[key]!r}; the teacher's is {ours.get(key)!r}")
    return arch


# ----- states, masks, undo entries ---------------------------------------------------------
def check_state(what: str, state: Any, model: nn.Module) -> None:
    """The state must name exactly the model's tensors, with the same shapes and dtypes."""
    want = model.state_dict()
    if not isinstance(state, dict) or set(state) != set(want):
        extra = sorted(set(state) - set(want)) if isinstance(state, dict) else []
        missing = sorted(set(want) - set(state)) if isinstance(state, dict) else []
        raise ValueError(f"{what} belongs to another model: missing {missing[:3]}, "
                         f"unexpected {[str(k)[:40] for k in extra[:3]]}")
    for key, tensor in state.items():
        if not isinstance(tensor, torch.Tensor) or tensor.shape != want[key].shape:
            shape = tuple(tensor.shape) if isinstance(tensor, torch.Tensor) else \
                str(tensor)[:40]
            raise ValueError(f"{what} belongs to another model: {key} has shape {shape}, "
                             f"the model needs {tuple(want[key].shape)}")
        if tensor.dtype != want[key].dtype or tensor.layout != torch.strided:
            raise ValueError(f"{what}: {key} has dtype {tensor.dtype}; the model holds "
                             f"{want[key].dtype}")


def _check_masks(what: str, masks: Any, config: Any, model: nn.Module) -> None:
    if masks is None:
        return
    try:
        check_masks(masks, model.state_dict(), dict(model.named_parameters()))
    except ValueError as err:
        raise ValueError(f"{what}: {err}") from None
    if config is not None or not isinstance(model, GPT):  # a GPT's head and neuron
        check_prune_config(f"{what}: prune_config", config)  # removal has no setting


def check_prune_config(what: str, d: Any) -> PruneConfig:
    """A PruneConfig, or the per-layer kind prune_per_layer installs (has targets)."""
    d = _dict(what, d)
    try:
        if d.get("targets"):
            targets = tuple((str(n), float(v)) for n, v in d["targets"])
            return PerLayerConfig(**{**d, "targets": targets})
        return PruneConfig(**{k: v for k, v in d.items() if k != "targets"})
    except (TypeError, ValueError) as err:
        raise ValueError(f"{what} is not a pruning setting: {err}") from None


def _check_extras(what: str, cuts: Any, warnings: Any) -> None:
    for name, cut in _dict(f"{what} cuts", cuts or {}).items():
        if not isinstance(name, str) or not _is(cut, Real) or not math.isfinite(cut):
            raise ValueError(f"{what} cuts: {str(name)[:40]} -> {str(cut)[:40]} is not a "
                             "layer and a finite number")
    if not isinstance(warnings, (list, tuple)) or not all(_is(w, Text) for w in warnings):
        raise ValueError(f"{what} warnings must be a list of text")


def _check_undo(what: str, entry: Any, model: nn.Module) -> None:
    entry = _dict(what, entry)
    if not isinstance(entry.get("base"), dict):  # an older file: the plain base state
        check_state(f"{what} base", entry, model)
        return
    check_state(f"{what} base", entry["base"], model)
    _check_masks(what, entry.get("masks"), entry.get("prune_config"), model)
    _check_extras(what, entry.get("cuts"), entry.get("warnings") or [])
    _need(f"{what} job", entry.get("job"), (Int, None))


def check_slot(name: str, data: Any, model: nn.Module) -> None:
    what = f"slot {name}"
    data = _dict(what, data, SLOT_KEYS)
    _dict(f"{what} config", data["config"])
    _no_tensors(f"{what} config", data["config"])
    _need(f"{what} model_name", data["model_name"], Text)
    masked_base = isinstance(data["model_state"], str) and data["model_state"] == MASKED_BASE
    if masked_base and data["masks"] is None:
        raise ValueError(f"{what}: model_state is {MASKED_BASE!r} but the slot has no masks")
    for key in ("model_state", "base", "original", "initial"):
        if key == "model_state" and masked_base:  # the base times the masks (memory.py)
            continue
        check_state(f"{what}: {key}", data[key], model)
    rewind = _dict(f"{what} rewind_states", data["rewind_states"])
    if len(rewind) > REWIND_EPOCHS_KEPT:
        raise ValueError(f"{what}: {len(rewind)} rewind points; at most {REWIND_EPOCHS_KEPT}")
    for k, state in rewind.items():
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= REWIND_EPOCHS_KEPT:
            raise ValueError(f"{what}: rewind point {str(k)[:20]!r} is not an epoch in "
                             f"1..{REWIND_EPOCHS_KEPT}")
        check_state(f"{what}: rewind point {k}", state, model)
    _need(f"{what} epochs_trained", data["epochs_trained"], Int)
    undo = data["undo_stack"]
    if not isinstance(undo, list) or len(undo) > UNDO_MAX:
        count = len(undo) if isinstance(undo, list) else type(undo).__name__
        raise ValueError(f"{what}: {count} undo entries; at most {UNDO_MAX}")
    for i, entry in enumerate(undo):
        _check_undo(f"{what}: undo step {i}", entry, model)
    _check_masks(f"{what}: masks", data["masks"], data["prune_config"], model)
    _check_extras(what, data["cuts"], data["warnings"])


def check_history(history: Any) -> None:
    """At most HISTORY_MAX records, each of a known kind with the fields the curves read."""
    if not isinstance(history, list) or len(history) > HISTORY_MAX:
        count = len(history) if isinstance(history, list) else type(history).__name__
        raise ValueError(f"history must be a list of at most {HISTORY_MAX} records; got "
                         f"{count}")
    for i, record in enumerate(history):
        what = f"history record {i}"
        record = _dict(what, record, ("kind",))
        kind = record["kind"]
        if kind not in HISTORY_KINDS:
            raise ValueError(f"{what} has kind {str(kind)[:40]!r}; known: "
                             f"{', '.join(HISTORY_KINDS)}")
        for key, want in HISTORY_KINDS[kind].items():
            if key not in record:
                raise ValueError(f"{what} ({kind}) lacks {key}")
            _need(f"{what} {key}", record[key], want)
        _need(f"{what} job", record.get("job"), (Int, None))
        _no_tensors(what, record)
        if kind == "prune_step":
            snap = _dict(f"{what} snapshot", record.get("snapshot"), ("__snapshot__", "layers"))
            try:
                snapshot_from_dict(snap)
            except (TypeError, ValueError, KeyError, AttributeError) as err:
                raise ValueError(f"{what} snapshot is malformed: {str(err)[:120]}") from None


def check_structure(payload: Any, name: str) -> int:
    """Check the whole tree (see the module docstring); the storage bytes it may need."""
    try:
        payload = _dict("the file", payload, TOP_KEYS)
        config = check_config(payload["config"])
        teacher = teacher_on_meta(config)
        slots = _dict("slots", payload["slots"], ("teacher",))
        unknown = [s for s in slots if s not in SLOT_NAMES]
        if unknown:
            raise ValueError(f"unknown model slot {str(unknown[0])[:40]!r}")
        budget = 0
        for slot, data in slots.items():
            if slot == "teacher":
                model = teacher
            else:
                arch = _check_arch(_dict(f"slot {slot}", data, SLOT_KEYS)["arch"], teacher)
                model = _on_meta(lambda arch=arch: build_arch(arch))
            check_slot(slot, data, model)
            if slot == "teacher" and data["config"] != config:
                raise ValueError("slot teacher's config differs from the file's config")
            budget += STATES_PER_SLOT * sum(t.numel() * t.element_size()
                                            for t in model.state_dict().values())
        check_history(payload["history"])
        _need("total_steps", payload["total_steps"], Int)
        _need("pretrained", payload["pretrained"], Flag)
        if payload["selected"] not in slots:
            raise ValueError(f"selected slot {str(payload['selected'])[:40]!r} is not in the "
                             "file")
    except ValueError as err:
        raise ValueError(f"{name} is refused: {err}") from None
    except (TypeError, KeyError, AttributeError, RuntimeError, IndexError) as err:
        raise ValueError(f"{name} is refused: malformed session file: "
                         f"{type(err).__name__}: {str(err)[:160]}") from None
    return budget
