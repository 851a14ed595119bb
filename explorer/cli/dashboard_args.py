"""The ``explorer dashboard`` subcommand's options and the constants they name.

argparse only (nothing heavy is imported); explorer.cli.main runs the command.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .args import PORT_MAX, PORT_MIN
from .run import DATASETS, MODELS, own  # argparse and config only

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8866
THEMES = ("light", "dark")
TOKEN_ENV = "EXPLORER_TOKEN"  # read by explorer.cli.dashboard, never put on a command line
# The session the packaged notebook opens (ExplorerApp.default reads them).
DATASET_ENV, MODEL_ENV = "EXPLORER_DATASET", "EXPLORER_MODEL"
# Kernels whose page went away without saying so (closed laptop, lost network) are shut
# down after this long without activity; kernels with a live connection are never culled.
DEFAULT_CULL_IDLE_S = 900
# A page's kernel keeps its place once the page connects; one that never connects (a plain
# GET) is shut down this long after its page went out (explorer.cli.room_places).
DEFAULT_CONNECT_GRACE_S = 60
DEFAULT_PENDING_PER_ADDRESS = 2


def absolute_spec(spec: str) -> str:
    """``imagefolder:PATH`` / ``hf:PATH`` with PATH absolute (kernels run in the notebook's
    folder, not ours); a zoo name unchanged."""
    for prefix in ("imagefolder:", "hf:"):
        if spec.startswith(prefix):
            return prefix + str(Path(spec[len(prefix):]).expanduser().resolve())
    return spec


def add_dashboard_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """The ``dashboard`` subcommand's parser (argparse only: nothing heavy is imported)."""
    p = sub.add_parser(
        "dashboard",
        help="serve the interactive dashboard with Voila",
        description="Serve the Compression Explorer dashboard (a Voila app) on HOST:PORT. "
        "One notebook is served, never a folder.",
    )
    p.add_argument(
        "notebook",
        nargs="?",
        metavar="NOTEBOOK",
        default=None,
        help="notebook to serve (default: the packaged dashboard.ipynb, or talk.ipynb with --talk)",
    )
    p.add_argument(
        "--port",
        default=str(DEFAULT_PORT),
        help=f"port to listen on, {PORT_MIN}..{PORT_MAX} (default: {DEFAULT_PORT}); fails if busy",
    )
    p.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"address to bind (default: {DEFAULT_HOST}, local only); any other address "
        "needs a token",
    )
    p.add_argument("--theme", choices=THEMES, default="light", help="colour theme (default: light)")
    p.add_argument(
        "--talk", action="store_true", help="talk mode: the packaged talk notebook, larger type"
    )
    p.add_argument(
        "--token",
        default=None,
        help=f"access token visitors must give (?token=...); prefer ${TOKEN_ENV}, since a "
        "command-line token shows in the process list",
    )
    p.add_argument(
        "--token-file",
        default=None,
        metavar="PATH",
        help="read the access token from this file (chmod 600): it then appears in no "
        "command line and no environment",
    )
    p.add_argument(
        "--preheat",
        nargs="?",
        type=int,
        const=None,
        default=None,
        metavar="N",
        help="kernels that run the notebook before anyone asks (faster pages); 0: off "
        "(default, and --preheat alone: sized to this machine)",
    )
    p.add_argument(
        "--max-visitors",
        type=int,
        default=None,
        metavar="N",
        help="most visitors with a live session at once; later ones get a 'the room is "
        "full' page and no kernel; 0: no cap (default: what the memory holds)",
    )
    p.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a Host name visitors may use besides loopback names and --host (repeatable); "
        "other Host headers get 403",
    )
    p.add_argument(
        "--cull-idle",
        default=str(DEFAULT_CULL_IDLE_S),
        metavar="SECONDS",
        help="shut down kernels idle and disconnected this long; 0: never "
        f"(default: {DEFAULT_CULL_IDLE_S})",
    )
    p.add_argument(
        "--connect-grace",
        default=str(DEFAULT_CONNECT_GRACE_S),
        metavar="SECONDS",
        help="shut down a visitor's kernel whose page has not connected this long after it "
        f"was served (a plain GET); 0: never (default: {DEFAULT_CONNECT_GRACE_S})",
    )
    p.add_argument(
        "--pending-per-address",
        type=int,
        default=DEFAULT_PENDING_PER_ADDRESS,
        metavar="N",
        help="most kernels one client address may hold whose page has not connected yet; "
        "further pages are asked to retry in a few seconds; 0: no limit "
        f"(default: {DEFAULT_PENDING_PER_ADDRESS})",
    )
    p.add_argument(
        "--no-browser",
        action="store_true",
        help="do not open a web browser (never opened when there is no display)",
    )
    p.add_argument("--debug", action="store_true", help="debug logging and tracebacks in the page")
    p.add_argument(
        "--dataset", type=own(DATASETS, "imagefolder:"), default=None,
        help="the data set the packaged notebook opens: a zoo name or imagefolder:PATH "
        "(default: digits)")
    p.add_argument(
        "--model", type=own(MODELS, "hf:"), default=None,
        help="the model it opens: a zoo name or hf:PATH, a save_pretrained folder "
        "(default: mlp)")
    p.add_argument(
        "--data-root", action="append", default=[], metavar="PATH",
        help="a folder whose data and models a visitor's uploaded session file may name "
        "(repeatable; default: the --dataset and --model folders); files naming anything "
        "else are refused")
    p.add_argument(
        "--max-params", type=int, default=None, metavar="N",
        help="the most parameters a model may have, opened or uploaded (default: 1 billion)")
    return p


def room_argv(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[str]:
    """``--connect-grace`` and ``--pending-per-address`` as the server's options; a bad value
    exits through ``parser.error`` naming it."""
    text = str(args.connect_grace).strip()
    if not text.isdigit():
        parser.error(f"--connect-grace: {args.connect_grace!r} is not a whole number of "
                     "seconds >= 0 (0: never)")
    grace = int(text)
    if args.pending_per_address < 0:
        parser.error(f"--pending-per-address: {args.pending_per_address} is negative "
                     "(0: no limit)")
    return [f"--ExplorerVoila.connect_grace={grace}",
            f"--ExplorerVoila.pending_per_address={args.pending_per_address}"]


def data_roots(args: argparse.Namespace) -> list[str]:
    """The folders visitors' session files may name: --data-root, else the folders of
    --dataset / --model (a zoo name names none). ValueError naming a root that is not a
    folder."""
    if not args.data_root:
        return [spec.split(":", 1)[1] for spec in (args.dataset, args.model)
                if spec is not None and spec.startswith(("imagefolder:", "hf:"))]
    for root in args.data_root:
        if not Path(root).expanduser().is_dir():
            raise ValueError(f"{root!r} is not a folder")
    return list(args.data_root)


def check_own_specs(args: argparse.Namespace) -> None:
    """--dataset imagefolder:PATH must be a folder, --model hf:PATH a folder whose
    config.json reads (no auto_map): checked before the server starts, so a bad path is
    one line and exit 2, not a started server whose page shows Voila's generic error.
    (Opening the model itself is the kernel's work: transformers is too slow to load here.)"""
    for option, spec in (("--dataset", args.dataset), ("--model", args.model)):
        if spec is None or ":" not in spec:
            continue
        prefix, path = spec.split(":", 1)
        folder = Path(path).expanduser()
        if not folder.is_dir():
            raise ValueError(f"{option} {spec}: {str(folder)!r} is not a folder")
        if prefix == "hf":
            if not (folder / "config.json").is_file():
                raise ValueError(f"{option} {spec}: {str(folder)!r} has no config.json (a "
                                 "folder written by save_pretrained holds one)")
            from ..models.hf import read_config  # torch: only when an hf: model is named

            read_config(folder)
