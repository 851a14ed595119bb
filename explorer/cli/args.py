"""Argument types and error handling shared by every ``explorer`` subcommand.

Each type checks a value while argparse parses it, so a bad option exits with status 2
and one line naming it before torch is imported or any work starts.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from ..config import check_number


def number(low: float, high: float, integer: bool = False) -> Callable[[str], float]:
    """An argparse type: a number in [low, high]; the error names the value given."""

    def parse(text: str) -> float:
        try:
            value = int(text) if integer else float(text)
        except ValueError:
            kind = "a whole number" if integer else "a number"
            raise argparse.ArgumentTypeError(f"must be {kind}, got {text!r}") from None
        try:
            return check_number("value", value, low, high, integer=integer)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"must be between {low:g} and {high:g}, got {text!r}") from None

    return parse


def rewind_point(text: str) -> str | int:
    """'init' or a whole number of epochs (lottery-ticket rewind point)."""
    if text == "init":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be 'init' or a whole number of epochs, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 'init' or >= 0, got {text!r}")
    return value


def output_path(text: str) -> Path:
    """A file path whose folder exists (checked now, not after minutes of training)."""
    path = Path(text)
    if not text or path.is_dir():
        raise argparse.ArgumentTypeError(f"must be a file path, got {text!r}")
    if not path.expanduser().resolve().parent.is_dir():
        raise argparse.ArgumentTypeError(f"folder of {text!r} does not exist")
    return path


def one_line_error(parser: argparse.ArgumentParser) -> Callable[[str], None]:
    """Replace argparse's usage dump with the one line the issue asks for."""

    def error(message: str) -> None:
        sys.stderr.write(f"{parser.prog}: error: {message}\n")
        raise SystemExit(2)

    return error
