"""Command line: ``explorer dashboard | bench | ...``.

This module must stay cheap to import: it validates arguments first and imports anything
heavy (torch, the Jupyter stack) only inside the subcommand that needs it.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import signal
import subprocess
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from ..config import MAX_PARAMS_ENV, check_number
from ..session.roots import DATA_ROOTS_ENV, allowed_roots
from .args import parse_port, parse_seconds
from .dashboard_args import (
    DATASET_ENV,
    DEFAULT_CULL_IDLE_S,
    DEFAULT_HOST,
    MODEL_ENV,
    TOKEN_ENV,
    absolute_spec,
    add_dashboard_parser,
    check_own_specs,
    data_roots,
    room_argv,
)
from .room_sizing import (
    default_max_visitors,
    default_preheat,
    kernel_threads,
    read_token_file,
    token_pipe,
)

PROG = "explorer"
DASHBOARD_NOTEBOOK = "dashboard.ipynb"
TALK_NOTEBOOK = "talk.ipynb"
CULL_INTERVAL_S = 60
LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")
TRACEBACK_ENV = "EXPLORER_TRACEBACK"  # set to 1: the funnel in main() prints tracebacks too

Handler = Callable[[argparse.Namespace, argparse.ArgumentParser], int]


def resource_path(name: str) -> Path:
    """Path of a file shipped as package data in ``explorer/resources``."""
    return Path(__file__).resolve().parents[1] / "resources" / name


def _has_display() -> bool:
    """Whether a browser could be opened on this machine (no X/Wayland display on Linux: no)."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name that may resolve to anything: treat as public


def voila_command(
    notebook: Path,
    *,
    host: str,
    port: int,
    open_browser: bool,
    debug: bool,
    theme: str = "light",
    preheat: int = 0,
    cull_idle: int = DEFAULT_CULL_IDLE_S,
    max_visitors: int = 0,
    allow_hosts: Sequence[str] = (),
    token_fd: int | None = None,
) -> list[str]:
    """The Voila command line that serves ``notebook`` (one notebook, never a folder).

    It runs ``explorer.cli.dashboard``, which reads the token (if any) from the pipe
    ``token_fd`` and serves with :class:`explorer.cli.room.ExplorerVoila`.
    """
    cmd = [sys.executable, "-m", "explorer.cli.dashboard"]
    if token_fd is not None:
        cmd.append(f"--token-fd={token_fd}")  # must come first
    cmd += [
        str(notebook),
        f"--port={port}",
        f"--Voila.ip={host}",
        # Voila silently moves to another port when the port is busy unless retries are off.
        "--Voila.port_retries=0",
        # Voila's own page theme (JupyterLab light/dark), so the page matches the app.
        f"--theme={theme}",
        # /voila/files/ would serve images (and more) from the notebook's folder: serve none.
        "--VoilaConfiguration.file_allowlist=[]",
    ]
    if preheat > 0:
        # Kernels run the notebook before anyone asks, so visitors wait less.
        cmd += ["--preheat_kernel=True", f"--pool_size={int(preheat)}"]
    if max_visitors > 0:
        cmd.append(f"--ExplorerVoila.max_visitors={max_visitors}")
    if allow_hosts:
        cmd.append(f"--ExplorerVoila.allowed_hosts={list(allow_hosts)!r}")
    if cull_idle > 0:
        cmd += [
            f"--MappingKernelManager.cull_idle_timeout={cull_idle}",
            f"--MappingKernelManager.cull_interval={min(CULL_INTERVAL_S, cull_idle)}",
        ]
    if not open_browser:
        cmd.append("--no-browser")
    if debug:
        cmd.append("--debug")  # log level DEBUG and tracebacks shown in the page
    else:
        cmd.append("--VoilaConfiguration.show_tracebacks=False")
    return cmd


def dashboard_env(*, theme: str, talk: bool, threads: int | None = None,
                  dataset: str | None = None, model: str | None = None,
                  data_roots: Sequence[str] = (),
                  max_params: int | None = None) -> dict[str, str]:
    """The environment of the Voila process; its kernels inherit it. Never the token.

    Theme, talk mode and the session's data set and model travel as variables: a preheated
    kernel has already run the notebook before any request (and its query string) exists.
    ``threads`` caps each kernel's torch/OpenMP threads unless the user set OMP_NUM_THREADS
    already. An ``imagefolder:``/``hf:`` path is made absolute (kernels run in the
    notebook's folder, not ours). ``data_roots``: the only folders a visitor's session
    file may name (explorer.session.roots), resolved; always set, so kernels never fall
    back to reading anything. ``max_params``: the kernels' parameter cap (config), when given.
    """
    env = dict(os.environ, EXPLORER_THEME=theme, EXPLORER_TALK="1" if talk else "0")
    env.pop(TOKEN_ENV, None)
    for name, value in ((DATASET_ENV, dataset), (MODEL_ENV, model)):
        env.pop(name, None)  # only what this command asked for reaches the kernels
        if value is not None:
            env[name] = absolute_spec(value)
    env[DATA_ROOTS_ENV] = os.pathsep.join(allowed_roots(data_roots))
    if max_params is not None:
        env[MAX_PARAMS_ENV] = str(max_params)
    if threads is not None and "OMP_NUM_THREADS" not in env:
        env["OMP_NUM_THREADS"] = str(threads)
        env.setdefault("MKL_NUM_THREADS", str(threads))
    # Where Voila finds the app's page template (explorer.cli.dashboard).
    jupyter_path = [str(resource_path("jupyter")), os.environ.get("JUPYTER_PATH", "")]
    env["JUPYTER_PATH"] = os.pathsep.join(p for p in jupyter_path if p)
    return env


def run_child(
    cmd: Sequence[str], env: dict[str, str] | None = None, pass_fds: Sequence[int] = ()
) -> int:
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
        child = subprocess.Popen(list(cmd), env=env, pass_fds=tuple(pass_fds))
        for fd in pass_fds:
            os.close(fd)  # the child holds its copy
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
    try:
        cull_idle = parse_seconds(args.cull_idle)
    except ValueError as exc:
        parser.error(f"--cull-idle: {exc}")
    host = args.host.strip()
    if not host:
        parser.error(f"--host: {args.host!r} is empty")
    if args.token_file is not None:
        try:
            token = read_token_file(args.token_file)
        except (OSError, UnicodeDecodeError) as exc:
            parser.error(f"--token-file: {exc}")
        if not token:
            parser.error(f"--token-file: {args.token_file!r} is empty")
    else:
        token = (args.token if args.token is not None else os.environ.get(TOKEN_ENV, "")).strip()
    if args.token is not None and not token:
        parser.error(f"--token: {args.token!r} is empty")
    preheat = default_preheat() if args.preheat is None else args.preheat
    max_visitors = default_max_visitors() if args.max_visitors is None else args.max_visitors
    if preheat < 0:
        parser.error(f"--preheat: {preheat} is negative (0 turns preheating off)")
    if max_visitors < 0:
        parser.error(f"--max-visitors: {max_visitors} is negative (0: no cap)")
    room_opts = room_argv(args, parser)  # --connect-grace, --pending-per-address
    if not is_loopback(host) and not token:
        parser.error(
            f"--host: refusing to serve on {host!r} without a token: anyone who can reach "
            f"this machine could run code in its kernels. Use --token-file or ${TOKEN_ENV} "
            f"(or --token, which other local users can see in the process list), or use "
            f"--host {DEFAULT_HOST}"
        )
    if args.notebook is not None:
        notebook = Path(args.notebook).expanduser().resolve()
    else:
        notebook = resource_path(TALK_NOTEBOOK if args.talk else DASHBOARD_NOTEBOOK)
    if not notebook.is_file():
        parser.error(f"NOTEBOOK: {str(notebook)!r} is not a file")
    if notebook.suffix != ".ipynb":
        parser.error(f"NOTEBOOK: {str(notebook)!r} is not a .ipynb notebook")

    try:
        roots = data_roots(args)
    except ValueError as exc:
        parser.error(f"--data-root: {exc}")
    try:
        check_own_specs(args)
    except ValueError as exc:
        parser.error(str(exc))
    if args.max_params is not None:
        try:
            check_number("--max-params", args.max_params, 1, 10**13, integer=True)
        except ValueError as exc:
            parser.error(str(exc))
    open_browser = not args.no_browser and _has_display()
    url_host = f"[{host}]" if ":" in host else host
    query = "?token=<your token>" if token else ""
    print(f"Compression Explorer dashboard: http://{url_host}:{port}/{query}", flush=True)
    token_fd = token_pipe(token) if token else None
    cmd = voila_command(
        notebook,
        host=host,
        port=port,
        open_browser=open_browser,
        debug=args.debug,
        theme=args.theme,
        preheat=preheat,
        cull_idle=cull_idle,
        max_visitors=max_visitors,
        allow_hosts=args.allow_host,
        token_fd=token_fd,
    ) + room_opts
    threads = kernel_threads(max_visitors or (os.cpu_count() or 1))
    env = dashboard_env(theme=args.theme, talk=args.talk, threads=threads,
                        dataset=args.dataset, model=args.model, data_roots=roots,
                        max_params=args.max_params)
    return run_child(cmd, env=env, pass_fds=[] if token_fd is None else [token_fd])


def cmd_bench(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """``explorer bench``: the benchmark suite (see explorer.bench.suite)."""
    from ..bench.suite import bench_command

    return bench_command(args)


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The top-level parser and one subparser per subcommand (by name)."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="Compression Explorer: pruning and distillation you can watch."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    dashboard = add_dashboard_parser(sub)
    dashboard.set_defaults(handler=cmd_dashboard)
    subparsers: dict[str, argparse.ArgumentParser] = {"dashboard": dashboard}

    from .args import one_line_error
    from .run import add_run_parser, run_command  # no torch here

    parser.error = one_line_error(parser)  # type: ignore[method-assign]

    run = add_run_parser(sub)
    run.set_defaults(handler=lambda args, _parser: run_command(args))
    subparsers["run"] = run

    from ..bench.suite import add_bench_parser  # cheap: torch loads only when the bench runs

    p = add_bench_parser(sub)
    p.set_defaults(handler=cmd_bench)
    subparsers["bench"] = p

    from .studies import add_reproduce_parser, add_sensitivity_parser, add_sweep_parser

    for name, add in (("reproduce", add_reproduce_parser),
                      ("sensitivity", add_sensitivity_parser), ("sweep", add_sweep_parser)):
        subparsers[name] = add(sub)
    return parser, subparsers


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``explorer`` command; returns the exit status.

    The one funnel for what escapes a command: a ValueError (your own data or model
    refused, a weights file refused, a file that cannot be written) is one line on stderr
    and status 2; Ctrl-C is one line, "interrupted", and status 130. Set
    EXPLORER_TRACEBACK=1 to see the traceback as well.
    """
    name = PROG
    try:
        parser, _subparsers = build_parser()
        args = parser.parse_args(argv)
        handler: Handler | None = getattr(args, "handler", None)
        if handler is None:
            parser.print_help(sys.stderr)
            return 2
        name = f"{PROG} {args.command}"
        return handler(args, parser)
    except KeyboardInterrupt:
        _last_line(f"{name}: interrupted")
        return 130
    except ValueError as err:
        _last_line(f"{name}: error: {one_line(err)}")
        return 2


def one_line(err: BaseException) -> str:
    """The message of `err` on one line."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return " ".join(lines) or type(err).__name__


def _last_line(message: str) -> None:
    if os.environ.get(TRACEBACK_ENV, "") not in ("", "0"):
        traceback.print_exc()
    # a progress bar may hold the terminal's line: start a fresh one
    start = "\n" if sys.stderr.isatty() else ""
    sys.stderr.write(f"{start}{message}\n")
    sys.stderr.flush()
