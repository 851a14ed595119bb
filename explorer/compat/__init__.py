"""Every patch this project makes to another library's internals, one module per library.

Each module says the upstream version it was written against and registers canaries:
checks of the exact internal a patch relies on (the attribute, the signature, the source
text or the bundled JavaScript it rewrites), never a bare import. A canary that fails
raises :class:`CompatError` naming the library, its installed version and the missing
piece. The fast tests run every canary (tests/test_compat.py, which also breaks each one
on purpose); the room runs them when it starts (``explorer.cli.room``) and refuses to start
when a patch that keeps visitors apart is gone, or starts without a speed-up and says so.

Importing this package imports no third-party library; each module imports its own.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

# the modules holding canaries, in the order they run
MODULES = ("voila", "anywidget", "plotly", "torch_ao")


class CompatError(RuntimeError):
    """An internal of another library that a patch here relies on is not as expected."""


def installed(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def missing(distribution: str, written_for: str, piece: str, detail: str = "") -> NoReturn:
    """Raise CompatError: `piece` of `distribution` is not what the patch expects."""
    raise CompatError(f"{distribution} {installed(distribution)}: {piece} is missing or "
                      f"changed{': ' + detail if detail else ''} (explorer.compat was written "
                      f"against {distribution} {written_for})")


@dataclass(frozen=True)
class Canary:
    """One check of one internal: `check()` returns None or raises CompatError."""

    distribution: str
    written_for: str
    piece: str  # what the patch relies on, in words a maintainer can grep for
    patch: str  # what stops working without it
    required: bool  # True: the room refuses to start; False: it starts without the patch
    check: Callable[[], None]


def canaries() -> list[Canary]:
    """Every registered canary (imports the libraries they check)."""
    found: list[Canary] = []
    for name in MODULES:
        found.extend(importlib.import_module(f"{__name__}.{name}").CANARIES)
    return found


def run_canaries(only: tuple[str, ...] | None = None) -> list[tuple[Canary, CompatError]]:
    """Run the canaries (of the distributions in `only`, or all); the failures."""
    failed = []
    for canary in canaries():
        if only is not None and canary.distribution not in only:
            continue
        try:
            canary.check()
        except CompatError as err:
            failed.append((canary, err))
    return failed
