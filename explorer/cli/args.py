"""Argument types and error handling shared by every ``explorer`` subcommand.

Each type checks a value while argparse parses it, so a bad option exits with status 2
and one line naming it before torch is imported or any work starts.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from ..config import REWIND_EPOCHS_KEPT, check_number
from ..validate import check_output_path, check_seed_range  # torch-free: no torch

PORT_MIN, PORT_MAX = 1, 65535


def shown(text: str) -> str:
    """The value as typed, quoted; a very long one shortened (10**400 has 401 digits)."""
    return repr(text) if len(text) <= 40 else f"{text[:20]!r}... ({len(text)} characters)"


def number(low: float, high: float, integer: bool = False) -> Callable[[str], float]:
    """An argparse type: a number in [low, high]; the error names the value given."""

    def parse(text: str) -> float:
        try:
            value = int(text) if integer else float(text)
        except ValueError:  # also an integer of more than 4,300 digits
            kind = "a whole number" if integer else "a number"
            raise argparse.ArgumentTypeError(f"must be {kind}, got {shown(text)}") from None
        try:
            return check_number("value", value, low, high, integer=integer)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"must be between {low:g} and {high:g}, got {shown(text)}") from None

    return parse


def rewind_point(text: str) -> str | int:
    """'init' or a whole number of epochs (lottery-ticket rewind point)."""
    if text == "init":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be 'init' or a whole number of epochs, got {shown(text)}") from None
    if not 1 <= value <= REWIND_EPOCHS_KEPT:
        raise argparse.ArgumentTypeError(
            f"must be 'init' or an epoch in 1..{REWIND_EPOCHS_KEPT} (the rewind points a "
            f"run records), got {shown(text)}")
    return value


def output_path(text: str) -> Path:
    """A regular file we can write (checked now, not after minutes of training): its folder
    exists and is writable; not a folder, a device, or anything under /proc or /sys."""
    try:
        return check_output_path("file", text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def seed_range_error(args: argparse.Namespace) -> str | None:
    """--seed S with --seeds N runs seeds S..S+N-1: the last must be a seed too (checked
    before the first seed trains); the one-line message, or None."""
    try:
        check_seed_range(args.seed, getattr(args, "seeds", 1))
    except ValueError as err:
        return f"argument --seed/--seeds: {err}"
    return None


def same_output_error(args: argparse.Namespace, options: Sequence[str]) -> str | None:
    """Two output options naming one file: the second write would replace the first (the
    model over the report). The one-line message naming both, or None."""
    seen: dict[str, tuple[str, object]] = {}
    for option in options:
        path = getattr(args, option.lstrip("-").replace("-", "_"), None)
        if path is None:
            continue
        key = os.path.realpath(os.path.expanduser(str(path)))
        if key in seen:
            other, other_path = seen[key]
            return (f"argument {option}: {str(path)!r} is the same file as {other} "
                    f"{str(other_path)!r}; the second would replace the first, so give "
                    "each its own path")
        seen[key] = (option, path)
    return None


def one_line_error(parser: argparse.ArgumentParser) -> None:
    """Replace argparse's usage dump with the one line the issue asks for."""

    def error(message: str) -> NoReturn:
        sys.stderr.write(f"{parser.prog}: error: {message}\n")
        raise SystemExit(2)

    # argparse has no hook for its error output; its docs say to override error(), and
    # the parsers here are built by argparse itself (subparsers), so the instance's is set
    parser.error = error  # type: ignore[method-assign,assignment]


def parse_port(text: str) -> int:
    """Return the port number in ``text``; raise ``ValueError`` naming the value if invalid."""
    try:
        port = int(text.strip(), 10)
    except ValueError:
        raise ValueError(f"{text!r} is not an integer port number") from None
    if not PORT_MIN <= port <= PORT_MAX:
        raise ValueError(f"{text!r} is out of range (expected {PORT_MIN}..{PORT_MAX})")
    return port


def parse_seconds(text: str) -> int:
    """Whole seconds >= 0 in ``text``; raise ``ValueError`` naming the value if invalid."""
    try:
        value = int(text.strip(), 10)
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number of seconds") from None
    if value < 0:
        raise ValueError(f"{text!r} is negative (0 turns culling off)")
    return value
