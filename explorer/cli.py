"""Command line: ``explorer dashboard | bench | ...``.

This module must stay cheap to import: it validates arguments first and imports anything
heavy (torch, the Jupyter stack) only inside the subcommand that needs it.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

PROG = "explorer"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8866
PORT_MIN, PORT_MAX = 1, 65535
DASHBOARD_NOTEBOOK = "dashboard.ipynb"

Handler = Callable[[argparse.Namespace, argparse.ArgumentParser], int]


def resource_path(name: str) -> Path:
    """Path of a file shipped as package data in ``explorer/resources``."""
    return Path(__file__).resolve().parent / "resources" / name


def parse_port(text: str) -> int:
    """Return the port number in ``text``; raise ``ValueError`` naming the value if invalid."""
    try:
        port = int(text.strip(), 10)
    except ValueError:
        raise ValueError(f"{text!r} is not an integer port number") from None
    if not PORT_MIN <= port <= PORT_MAX:
        raise ValueError(f"{text!r} is out of range (expected {PORT_MIN}..{PORT_MAX})")
    return port


def _has_display() -> bool:
    """Whether a browser could be opened on this machine (no X/Wayland display on Linux: no)."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def voila_command(
    notebook: Path, *, host: str, port: int, open_browser: bool, debug: bool
) -> list[str]:
    """The Voila command line that serves ``notebook`` (one notebook, never a folder)."""
    cmd = [
        sys.executable,
        "-m",
        "voila",
        str(notebook),
        f"--port={port}",
        f"--Voila.ip={host}",
        # Voila silently moves to another port when the port is busy unless retries are off.
        "--Voila.port_retries=0",
    ]
    if not open_browser:
        cmd.append("--no-browser")
    if debug:
        cmd.append("--debug")  # log level DEBUG and tracebacks shown in the page
    else:
        cmd.append("--VoilaConfiguration.show_tracebacks=False")
    return cmd


def run_child(cmd: Sequence[str]) -> int:
    """Run ``cmd``, forward SIGINT/SIGTERM to it, and return its exit status.

    The child stays in our process group, so killing the group stops both. A Ctrl-C typed in
    a terminal already reaches the whole foreground group; SIGINT is forwarded only when we
    are not the terminal's foreground group (e.g. ``kill -INT`` from a script), so the child
    does not get it twice. Our handlers are installed before the child starts, so the child
    starts with default dispositions even where SIGINT was ignored (a background job).
    """
    child: subprocess.Popen | None = None
    pending: list[int] = []

    def terminal_delivered_it() -> bool:
        try:
            return os.tcgetpgrp(sys.stdin.fileno()) == os.getpgrp()
        except (OSError, ValueError, AttributeError):
            return False

    def forward(signum: int, _frame: object) -> None:
        if child is None:  # not started yet: deliver once it is
            pending.append(signum)
            return
        if signum == signal.SIGINT and terminal_delivered_it():
            return
        if child.poll() is None:
            try:
                child.send_signal(signum)
            except ProcessLookupError:
                pass

    forwarded = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, forward) for sig in forwarded}
    try:
        child = subprocess.Popen(list(cmd))
        if pending:
            child.send_signal(pending[0])
        code = child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    # A child killed by signal N reports -N; the shell convention is 128 + N.
    return 128 - code if code < 0 else code


def cmd_dashboard(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """``explorer dashboard``: serve the dashboard notebook with Voila."""
    try:
        port = parse_port(args.port)
    except ValueError as exc:
        parser.error(f"--port: {exc}")  # exits with status 2
    host = args.host.strip()
    if not host:
        parser.error(f"--host: {args.host!r} is empty")
    if args.notebook is None:
        notebook = resource_path(DASHBOARD_NOTEBOOK)
    else:
        notebook = Path(args.notebook).expanduser().resolve()
    if not notebook.is_file():
        parser.error(f"NOTEBOOK: {str(notebook)!r} is not a file")
    if notebook.suffix != ".ipynb":
        parser.error(f"NOTEBOOK: {str(notebook)!r} is not a .ipynb notebook")

    open_browser = not args.no_browser and _has_display()
    url_host = f"[{host}]" if ":" in host else host
    print(f"Compression Explorer dashboard: http://{url_host}:{port}/", flush=True)
    cmd = voila_command(notebook, host=host, port=port, open_browser=open_browser, debug=args.debug)
    return run_child(cmd)


def cmd_bench(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """``explorer bench``: the benchmark suite (see explorer.bench)."""
    from .bench import bench_command

    return bench_command(args)


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The top-level parser and one subparser per subcommand (by name)."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="Compression Explorer: pruning and distillation you can watch."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers: dict[str, argparse.ArgumentParser] = {}

    p = sub.add_parser(
        "dashboard",
        help="serve the interactive dashboard with Voila",
        description="Serve the Compression Explorer dashboard (a Voila app) on HOST:PORT.",
    )
    p.add_argument(
        "notebook",
        nargs="?",
        metavar="NOTEBOOK",
        default=None,
        help="notebook to serve (default: the packaged dashboard.ipynb)",
    )
    p.add_argument(
        "--port",
        default=str(DEFAULT_PORT),
        help=f"port to listen on, {PORT_MIN}..{PORT_MAX} (default: {DEFAULT_PORT}); fails if busy",
    )
    p.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"address to bind (default: {DEFAULT_HOST}, local only)",
    )
    p.add_argument(
        "--no-browser",
        action="store_true",
        help="do not open a web browser (never opened when there is no display)",
    )
    p.add_argument("--debug", action="store_true", help="debug logging and tracebacks in the page")
    p.set_defaults(handler=cmd_dashboard)
    subparsers["dashboard"] = p

    from .run_cli import _one_line_error, add_run_parser, run_command  # no torch here

    parser.error = _one_line_error(parser)  # type: ignore[method-assign]

    run = add_run_parser(sub)
    run.set_defaults(handler=lambda args, _parser: run_command(args))
    subparsers["run"] = run

    from .bench import add_bench_parser  # cheap: torch loads only when the bench runs

    p = add_bench_parser(sub)
    p.set_defaults(handler=cmd_bench)
    subparsers["bench"] = p

    from .repro_cli import add_reproduce_parser, add_sensitivity_parser, add_sweep_parser

    for name, add in (("reproduce", add_reproduce_parser),
                      ("sensitivity", add_sensitivity_parser), ("sweep", add_sweep_parser)):
        subparsers[name] = add(sub)
    return parser, subparsers


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``explorer`` command; returns the exit status."""
    parser, _subparsers = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    return handler(args, parser)
