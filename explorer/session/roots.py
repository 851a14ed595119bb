"""The folders a session file may name when a dashboard visitor loads it (issue 26).

``Session.load(path)`` from Python opens whatever the file names: the caller is the
operator, reading their own files. A visitor's upload is not: a crafted file naming
``imagefolder:/some/private/folder`` would have the visitor's kernel read, train on and
export that folder. So the app passes the folders the operator allows (``explorer
dashboard --data-root PATH``, repeatable; by default the folders of its ``--dataset`` and
``--model``), and every path the file names (its data set and model, in the file's config
and every slot's: image folders, ``hf:`` folders, text files, anything that is not a
built-in name) must lie inside one of them after symlinks are resolved. A path inside a
root, not a prefix: /data2 is not inside /data.

Anything else is refused with one message, the same whether the path exists or not, and
decided before the path is opened, listed or stat'ed: a path outside the roots as written
is refused without touching the file system; one inside them is then resolved
(os.path.realpath, which follows links but reports nothing) and must still be inside.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..config import ALL_DATASETS, ALL_MODELS

DATA_ROOTS_ENV = "EXPLORER_DATA_ROOTS"  # the dashboard's --data-root folders, os.pathsep-joined
PREFIXES = ("imagefolder:", "hf:")
SPEC_KEYS = ("dataset", "model")
OUTSIDE = ("it names data or a model outside the folders this app may read (the operator "
           "allows folders with explorer dashboard --data-root)")
Roots = tuple[str, ...]


def allowed_roots(paths: Iterable[str | Path]) -> Roots:
    """The operator's folders as absolute paths with symlinks resolved, each once."""
    return tuple(dict.fromkeys(os.path.realpath(os.path.expanduser(str(p))) for p in paths))


def roots_from_env(env: Mapping[str, str] | None = None) -> Roots | None:
    """The roots the dashboard put in the environment; None when it put none."""
    text = (os.environ if env is None else env).get(DATA_ROOTS_ENV)
    if text is None:
        return None
    return allowed_roots(p for p in text.split(os.pathsep) if p)


def spec_path(spec: object) -> str | None:
    """The path a data set / model spec names; None for a built-in name (or None)."""
    if spec is None or spec in ALL_DATASETS or spec in ALL_MODELS:
        return None
    text = str(spec)
    for prefix in PREFIXES:
        if text.startswith(prefix):
            return text[len(prefix):]
    return text


def own_folders(config: Mapping[str, Any]) -> Roots:
    """The folders a session's own config names (its data and model), resolved."""
    paths = [spec_path(config.get(key)) for key in SPEC_KEYS]
    return allowed_roots(p for p in paths if p)


def _inside(path: str, roots: Iterable[str]) -> bool:
    for root in roots:
        if path == root or path.startswith(root.rstrip(os.sep) + os.sep):
            return True
    return False


def is_allowed(spec: object, roots: Roots) -> bool:
    """True when `spec` is a built-in name or a path inside one of `roots` (resolved)."""
    if spec is None or (isinstance(spec, str) and spec_path(spec) is None):
        return True
    if not isinstance(spec, str):
        return False
    path = spec_path(spec) or ""
    if "\0" in path or not os.path.isabs(path):
        return False
    written = os.path.normpath(path)  # as written: no file system access yet
    if not _inside(written, [*roots, *(os.path.abspath(r) for r in roots)]):
        return False
    return _inside(os.path.realpath(path), roots)


def named_specs(payload: Any) -> list[object]:
    """Every data set / model a session file's object tree names (its config, each
    slot's config and model name); malformed parts are left to loadshape."""
    if not isinstance(payload, dict):
        return []
    configs = [payload.get("config")]
    slots = payload.get("slots")
    names: list[object] = []
    for data in (slots.values() if isinstance(slots, dict) else ()):
        if isinstance(data, dict):
            configs.append(data.get("config"))
            names.append(data.get("model_name"))
    for config in configs:
        if isinstance(config, dict):
            names += [config.get(key) for key in SPEC_KEYS]
    return names


def check_roots(payload: Any, roots: Roots, name: str) -> None:
    """Refuse (one message, nothing about the path's existence) a file naming anything
    outside `roots`."""
    if not all(is_allowed(spec, roots) for spec in named_specs(payload)):
        raise ValueError(f"{name} is refused: {OUTSIDE}")
