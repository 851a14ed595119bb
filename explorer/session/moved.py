"""Session names that moved in issue 27, kept for one release as warning aliases.

`session.train_student_alone(...)` still works and warns with a DeprecationWarning that
names the new spelling (`session.students.train_alone`). Remove this module (and
Session.__getattr__/__setattr__) in the release after 0.x: nothing in the repository
uses the old names.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .host import Host

_SLOT_FIELDS = ("model_name", "config", "base", "masks", "prune_config", "cuts", "warnings",
                "original", "initial", "rewind_states", "epochs_trained", "undo_stack",
                "prunable", "kept_note", "bn_samples")

# old name -> the new spelling, a dotted path from the session
MOVED: dict[str, str] = {
    **{name: f"slot.{name}" for name in _SLOT_FIELDS},
    "task": "data.task",
    "models": "slots.names",
    "slot_model": "slots.model",
    "check_idle": "jobs.check_idle",
    "job": "jobs.job",
    "job_running": "jobs.running",
    "forget_job": "jobs.forget",
    "run_training": "jobs.run_training",
    "jobs_started": "jobs.started",
    "total_steps": "jobs.total_steps",
    "teacher_cache": "students.teacher_cache",
    "distill": "students.distill",
    "train_student_alone": "students.train_alone",
    "train_student_hard": "students.train_hard",
    "make_student": "students.make",
    "build_student": "students.build",
    "soft_targets": "students.soft_targets",
    "predictions": "students.predictions",
    "regime": "students.regime",
    "dark_knowledge": "students.dark_knowledge",
    "calibration": "students.calibration",
    "per_class_accuracy": "students.per_class_accuracy",
    "bias_correction": "students.bias_correction",
    "corpus": "lm.corpus",
    "remove_heads": "lm.remove_heads",
    "remove_neurons": "lm.remove_neurons",
    "sample": "lm.sample",
    "prune_per_layer": "pruning.per_layer",
    "install_masks": "pruning.install_masks",
    "rewind_state": "pruning.rewind_state",
    "rewind_to": "pruning.rewind_to",
    "adopt_as_original": "pruning.adopt_as_original",
    "bytes_shrunk": "pruning.bytes_shrunk",
    "bn_recalibration": "settings.bn_recalibration",
    "sample_in_snapshots": "settings.sample_in_snapshots",
    "engine_snapshot": "refine",
}

# old names whose new spelling takes other arguments: old -> (new spelling, adapter)
_CALLS: dict[str, tuple[str, Callable[[Host], Any]]] = {
    "SLOTS": ("explorer.session.slots.SLOT_NAMES", lambda s: _slot_names()),
    "measure_slot": ("session.measure(split, slot=...)",
                     lambda s: lambda slot, split="val", **kw: s.measure(split, slot=slot,
                                                                         **kw)),
    "save_checkpoint": ("session.export(path, kind='checkpoint')",
                        lambda s: partial(s.export, kind="checkpoint")),
    "quick_subset": ("explorer.session.core.quick_subset(session)",
                     lambda s: partial(_core("quick_subset"), s)),
    "subset_split": ("explorer.session.core.subset_split(session, ...)",
                     lambda s: partial(_core("subset_split"), s)),
    "full_norms": ("explorer.session.core.full_norms(session)",
                   lambda s: partial(_core("full_norms"), s)),
    "load_data": ("explorer.session.core.load_data", lambda s: _core("load_data")),
}


def _slot_names() -> tuple[str, ...]:
    from .slots import SLOT_NAMES

    return SLOT_NAMES


def _core(name: str) -> Callable[..., Any]:
    from . import core

    return getattr(core, name)


def _warn(name: str, new: str) -> None:
    warnings.warn(f"Session.{name} is deprecated: use {new} (issue 27)",
                  DeprecationWarning, stacklevel=3)


def _owner(session: Host, path: str) -> tuple[Any, str]:
    *parents, last = path.split(".")
    owner: Any = session
    for part in parents:
        owner = getattr(owner, part)
    return owner, last


def get(session: Host, name: str) -> Any:
    """Session.__getattr__: a moved name, resolved with a warning; else AttributeError."""
    if name in MOVED:
        _warn(name, f"session.{MOVED[name]}")
        owner, last = _owner(session, MOVED[name])
        return getattr(owner, last)
    if name in _CALLS:
        new, adapter = _CALLS[name]
        _warn(name, new)
        return adapter(session)
    raise AttributeError(f"'Session' object has no attribute {name!r}")


def set(session: Host, name: str, value: Any) -> bool:  # noqa: A001 (mirrors get)
    """Session.__setattr__: write a moved name through (True), with a warning."""
    if name not in MOVED or "." not in MOVED[name] or name == "models":
        return False
    _warn(name, f"session.{MOVED[name]}")
    owner, last = _owner(session, MOVED[name])
    setattr(owner, last, value)
    return True
