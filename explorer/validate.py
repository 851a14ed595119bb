"""Checks for the arguments config.py's bounds do not cover: seeds, switches, devices,
callbacks, output paths, data values, models and widths.

Every check raises ValueError naming the argument and the value given, before anything
in the session changes (the API promise of issues 8 and 19). Importing this module does
not import torch (the command line checks output paths with it before torch loads).
"""

from __future__ import annotations

import numbers
import os
import threading
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .config import (
    CLASSES_MAX,
    HIDDEN_LAYERS_MAX,
    HIDDEN_MAX,
    MODEL_WIDTH_MAX,
    WEIGHT_ABS_MAX,
    check_number,
    show_value,
)

if TYPE_CHECKING:
    import torch
    from torch import nn

SEED_MAX = 2**31 - 1  # what numpy, sklearn and torch all accept
# Pseudo file systems: a path there is never a regular file one can write a report to.
PSEUDO_ROOTS = (Path("/proc"), Path("/sys"))


def check_seed(name: str, value: object) -> int:
    """A whole number in 0..2**31-1 (train_test_split rejects negatives)."""
    return int(check_number(name, value, 0, SEED_MAX, integer=True))


def check_seed_range(seed: object, seeds: object) -> tuple[int, int]:
    """A first seed and a count of seeds whose last one, seed + seeds - 1, is a seed too
    (checked before the first seed's minutes of work, not after)."""
    first = check_seed("seed", seed)
    count = int(check_number("seeds", seeds, 1, SEED_MAX + 1, integer=True))
    last = first + count - 1
    if last > SEED_MAX:
        raise ValueError(f"seeds {first}..{last} go past the largest seed, {SEED_MAX}: with "
                         f"{count} seeds the first can be at most {SEED_MAX - count + 1}, "
                         f"got seed {first}")
    return first, count


def check_bool(name: str, value: object) -> bool:
    """True or False only: a string such as "no" would be truthy and mislead."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False; got {value!r}")
    return value


def check_index(name: str, value: object, n: int) -> int:
    """A whole number in 0..n-1 (NumPy integers count)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) \
            or not 0 <= int(value) < n:
        raise ValueError(f"{name} must be a whole number in 0..{n - 1}; got "
                         f"{show_value(value)}")
    return int(value)


def check_width(value: object) -> float:
    """A model's width multiplier: a number in (0, MODEL_WIDTH_MAX]."""
    width = check_number("width", value, 0.0, MODEL_WIDTH_MAX)
    if width <= 0:
        raise ValueError(f"width must be a number in (0, {MODEL_WIDTH_MAX:g}]; got {value!r}")
    return width


def check_hidden(value: object) -> tuple[int, ...] | None:
    """An MLP's hidden widths: a list or tuple of 1..HIDDEN_LAYERS_MAX whole numbers, each
    in 1..HIDDEN_MAX (a bare number is not a list of widths)."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ValueError(f"hidden must be a list of layer widths such as (256, 128); "
                         f"got {show_value(value)}")
    if not 1 <= len(value) <= HIDDEN_LAYERS_MAX:
        raise ValueError(f"hidden must list 1 to {HIDDEN_LAYERS_MAX} layer widths; got "
                         f"{len(value)}: {show_value(tuple(value))[:80]}")
    widths = []
    for h in value:
        try:
            widths.append(int(check_number("hidden width", h, 1, HIDDEN_MAX, integer=True)))
        except ValueError:
            raise ValueError(f"hidden must be whole widths in 1..{HIDDEN_MAX}; got "
                             f"{show_value(h)} in {show_value(tuple(value))[:120]}") from None
    return tuple(widths)


def check_device_available(device: torch.device) -> torch.device:
    """Refuse a CUDA device this machine does not have (torch raises AssertionError)."""
    import torch

    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda; got {str(device)!r}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {str(device)!r} is not available here (no CUDA); "
                             "use cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"device {str(device)!r} is not available here: this machine "
                             f"has {torch.cuda.device_count()} CUDA device(s)")
    return device


def check_job_hooks(stop: object, on_event: object) -> None:
    """`stop` must be a threading.Event (or None) and `on_event` callable (or None)."""
    if stop is not None and not isinstance(stop, threading.Event):
        raise ValueError(f"stop must be a threading.Event or None; got {stop!r}")
    if on_event is not None and not callable(on_event):
        raise ValueError(f"on_event must be callable or None; got {on_event!r}")


def check_output_path(name: str, path: object) -> Path:
    """A regular file we can write, checked before minutes of work rather than after: its
    folder exists and is writable, it is not a folder, a device or a file under /proc or
    /sys, and an existing file is writable."""
    if not isinstance(path, (str, Path)) or not str(path).strip():
        raise ValueError(f"{name} must be a file path; got {path!r}")
    shown = str(path)
    target = Path(path).expanduser()
    resolved = target.resolve()
    for root in PSEUDO_ROOTS:
        if resolved == root or root in resolved.parents:
            raise ValueError(f"{name} {shown!r} is under {root}, a pseudo file system, not "
                             "a regular file to write")
    if target.is_dir():
        raise ValueError(f"{name} {shown!r} is a folder, not a file")
    folder = resolved.parent
    if not folder.is_dir():
        raise ValueError(f"{name} {shown!r}: its folder does not exist")
    if resolved.exists():
        if not resolved.is_file():
            raise ValueError(f"{name} {shown!r} exists and is not a regular file")
        if not os.access(resolved, os.W_OK):
            raise ValueError(f"{name} {shown!r} exists and is not writable")
    # the write goes to a temporary file beside it (explorer.files), even over an old file
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"{name} {shown!r}: its folder {str(folder)!r} is not writable")
    return target


def check_data(name: str, x: torch.Tensor, y: torch.Tensor, task: str) -> None:
    """Inputs real-valued and finite; targets of the task's kind (class indices in
    0..CLASSES_MAX-1, or finite real regression targets)."""
    import torch

    if x.is_complex():
        raise ValueError(f"{name}: x has dtype {x.dtype}; the explorer takes real-valued "
                         "inputs (float or integer)")
    if y.is_complex():
        raise ValueError(f"{name}: y has dtype {y.dtype}; targets must be real-valued")
    if x.is_floating_point() and not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        raise ValueError(f"{name}: x holds {bad} NaN or infinite values")
    if y.is_floating_point() and not bool(torch.isfinite(y).all()):
        bad = int((~torch.isfinite(y)).sum())
        raise ValueError(f"{name}: y holds {bad} NaN or infinite values")
    if task != "classification" or y.numel() == 0:
        return
    if y.ndim != 1 or y.is_floating_point():
        raise ValueError(f"{name}: classification targets must be a 1-d integer tensor of "
                         f"class indices; got dtype {y.dtype}, shape {tuple(y.shape)}")
    low, high = int(y.min()), int(y.max())
    if low < 0:
        raise ValueError(f"{name}: class indices must be >= 0; got {low}")
    if high >= CLASSES_MAX:
        raise ValueError(f"{name}: class index {high} is past the limit of {CLASSES_MAX} "
                         f"classes (labels 0..{CLASSES_MAX - 1}); a model with {high + 1} "
                         "outputs is not what you meant")


def check_model(model: nn.Module, name: str) -> None:
    """A user's module the explorer can own: real data (not on `meta`), float32 weights,
    no weight shared between two layers (each layer is pruned on its own), and values
    check_weights accepts."""
    import torch

    owners: dict[int, str] = {}
    for pname, param in model.named_parameters(remove_duplicate=False):
        if param.device.type == "meta":
            raise ValueError(f"model {name}: parameter {pname} is on the meta device (it has "
                             "no values); materialise the model (to_empty, then initialise) "
                             "first")
        if param.dtype != torch.float32:
            raise ValueError(f"model {name}: parameter {pname} has dtype {param.dtype}; the "
                             "explorer trains float32 models (call model.float())")
        first = owners.setdefault(id(param), pname)
        if first != pname:
            raise ValueError(f"model {name}: {first} and {pname} are one shared (tied) "
                             "weight; the explorer prunes each layer's own weight, so untie "
                             "them (or give the model without the tie)")
    for bname, buffer in model.named_buffers():
        if buffer.device.type == "meta":
            raise ValueError(f"model {name}: buffer {bname} is on the meta device (it has no "
                             "values)")
    check_weights(f"model {name}", model.state_dict(),
                  dict(model.named_parameters(remove_duplicate=False)))


STATISTICS = ("running_mean", "running_var")  # BatchNorm buffers: statistics, not weights


def check_weights(what: str, state: Mapping[str, torch.Tensor],
                  parameters: Collection[str] | None = None) -> None:
    """Values a model can be shown and pruned with, each refusal naming the layer: finite
    parameters no larger than WEIGHT_ABS_MAX in magnitude (3e38 overflowed the histogram's
    range to NaN), finite BatchNorm statistics and variances >= 0 (a negative one made
    every output NaN, shown as "same as dense"). `parameters` names the state's parameters;
    without it, keys ending in .weight or .bias count as parameters. Other buffers (an
    attention mask may hold -inf) are not checked."""
    for key, tensor in state.items():
        leaf = key.rsplit(".", 1)[-1]
        param = key in parameters if parameters is not None else leaf in ("weight", "bias")
        if not tensor.is_floating_point() or tensor.numel() == 0 or \
                not (param or leaf in STATISTICS):
            continue
        layer = key.rsplit(".", 1)[0] if "." in key else key
        flat = tensor.detach().flatten()
        bad = int((~flat.isfinite()).sum())
        if bad:
            raise ValueError(f"{what}: {key} holds {bad:,} NaN or infinite values")
        if leaf == "running_var" and bool((flat < 0).any()):
            raise ValueError(f"{what}: BatchNorm layer {layer!r} has a negative running "
                             f"variance ({float(flat.min()):.4g}); a variance is never "
                             "negative: its statistics are corrupt")
        peak = float(flat.abs().max())
        if param and peak > WEIGHT_ABS_MAX:
            raise ValueError(f"{what}: layer {layer!r} holds a weight of {peak:.4g} ({key}); "
                             f"weights past {WEIGHT_ABS_MAX:g} in magnitude are refused (their "
                             "squares, norms and histogram ranges overflow float32)")


def check_trainable(model: nn.Module, name: str) -> None:
    """Training needs at least one parameter with requires_grad=True."""
    params = list(model.parameters())
    if params and not any(p.requires_grad for p in params):
        raise ValueError(f"model {name} has no trainable parameter (requires_grad=False on "
                         f"all {len(params)}); set requires_grad_(True) on the ones to train")


def check_batches(model: nn.Module, n_train: int, batch_size: int) -> None:
    """BatchNorm1d cannot train on a batch of one example: refuse a batch size that makes
    one (the last batch of every epoch when n_train % batch_size == 1)."""
    from torch import nn

    if not any(isinstance(m, nn.BatchNorm1d) for m in model.modules()):
        return
    if batch_size == 1 or n_train % batch_size == 1:
        raise ValueError(f"batch_size {batch_size} leaves a batch of a single example (of "
                         f"{n_train} training examples), and BatchNorm1d cannot train on "
                         "one; pick another batch size")


def check_masks(masks: object, base: Mapping[str, torch.Tensor], names: Collection[str],
                biases: bool = False) -> dict[str, torch.Tensor]:
    """Boolean keep-masks for some of `names`, each of its weight's shape (on its device).

    A mask on a bias is refused unless `biases` (structured masks cover a removed channel's
    bias and BatchNorm entries; magnitude pruning never prunes biases, DESIGN section 4).
    """
    import torch

    if not isinstance(masks, Mapping) or not masks:
        raise ValueError(f"masks must map layer names to boolean tensors; got "
                         f"{type(masks).__name__}")
    out = {}
    for name, mask in masks.items():
        if not biases and isinstance(name, str) and name.rsplit(".", 1)[-1] == "bias":
            raise ValueError(f"mask for {name!r} is refused: biases are not pruned (only the "
                             "weights of Linear and Conv layers; a structured prune masks a "
                             "removed channel's bias itself)")
        if name not in names:
            raise ValueError(f"mask for unknown layer {name!r}; maskable: "
                             f"{', '.join(sorted(names))}")
        if not isinstance(mask, torch.Tensor):
            raise ValueError(f"mask {name} must be a boolean tensor; got "
                             f"{type(mask).__name__}")
        if mask.dtype != torch.bool:
            raise ValueError(f"mask {name} has dtype {mask.dtype}; masks are boolean (True "
                             "keeps a weight, False prunes it)")
        if mask.shape != base[name].shape:
            raise ValueError(f"mask {name} has shape {tuple(mask.shape)}; the weight has "
                             f"{tuple(base[name].shape)}")
        out[str(name)] = mask.to(base[name].device)
    return out


def check_prunable(model: nn.Module, name: str, prunable: list[str]) -> None:
    """A model without Linear/Conv weights leaves nothing to prune or to show."""
    if not prunable:
        raise ValueError(f"model {name} has no prunable layers (Linear or Conv weights); "
                         "the explorer prunes those")
