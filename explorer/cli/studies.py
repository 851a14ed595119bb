"""``explorer reproduce | sensitivity | sweep``: argparse wiring, torch imported late.

Options are checked before torch is imported or data is loaded: a bad one exits with
status 2 and one line naming it. Hook into the main parser with the add_*_parser
functions; each sets ``handler(args, parser)`` like the other subcommands.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import math
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import (
    CPUS_PER_POINT_MAX,
    EXECUTORS,
    GPUS_PER_POINT_MAX,
    SEED_MAX,
    THREADS_MAX,
    check_targets,
)
from ..files import write_text
from ..studies.executors import RAY_HINT, Progress, check_resources
from ..studies.jsonsafe import json_safe
from ..studies.sweep import KEYS, expand, format_progress, sweep
from .args import (
    number,
    one_line_error,
    output_path,
    rewind_point,
    same_output_error,
    seed_range_error,
)
from .dashboard_args import absolute_spec
from .run import DATASETS, MODELS, own

if TYPE_CHECKING:
    from ..session.session import Session

EXPERIMENTS = ("han", "hinton", "lottery", "deep-compression", "llm-pruning")
SEEDS_MAX = 100


INT_KEYS = ("steps", "finetune_epochs", "batch_size", "epochs", "seed")
FLAG_KEYS = ("structured", "t_squared")
TEXT_KEYS = ("scope", "norm", "schedule", "optimizer")


def parse_value(key: str, text: str) -> Any:
    """A grid value typed from text (the command line), then checked like any other."""
    if key not in KEYS:
        raise ValueError(f"unknown sweep setting {key!r}; known: {', '.join(KEYS)}")
    text = text.strip()
    try:
        if key in FLAG_KEYS:
            lowered = text.lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            value: Any = lowered in ("true", "1", "yes")
        elif key == "rewind":
            value = text if text == "init" else int(text)
        elif key in INT_KEYS:
            value = int(text)
        elif key in TEXT_KEYS:
            value = text
        else:
            value = float(text)
    except ValueError:
        raise ValueError(f"{key}: cannot read {text!r}") from None
    return KEYS[key](key, value)


def parse_grid(items: Sequence[str]) -> dict[str, list]:
    """["sparsity=0.5,0.9", "schedule=oneshot,agp"] -> {"sparsity": [0.5, 0.9], ...}."""
    grid: dict[str, list] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not values.strip():
            raise ValueError(f"grid item {item!r} must look like KEY=V1,V2")
        if key in grid:
            raise ValueError(f"grid key {key!r} given twice")
        grid[key] = [parse_value(key, v) for v in values.split(",")]
    return grid


def _sparsity_list(text: str) -> list[float]:
    """"0,0.5,0.9" -> [0.0, 0.5, 0.9], each in [0, 1]."""
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be numbers separated by commas, got {text!r}")\
            from None
    bad = [v for v in values if not (math.isfinite(v) and 0.0 <= v <= 1.0)]
    if not values or bad:
        raise argparse.ArgumentTypeError(f"sparsities must lie in [0, 1], got {text!r}")
    return values


def _common(parser: argparse.ArgumentParser, threads: int = 1) -> None:
    parser.add_argument("--seed", type=number(0, SEED_MAX, integer=True), default=0)
    parser.add_argument("--threads", type=number(1, THREADS_MAX, integer=True),
                        default=threads, help="torch threads (fixed, for repeatable numbers)")
    parser.add_argument("--json", type=output_path, default=None, metavar="PATH")
    one_line_error(parser)


def _model_options(parser: argparse.ArgumentParser) -> None:
    # your own data and model too; their paths made absolute for workers (Ray's run elsewhere)
    parser.add_argument("--dataset", type=lambda t: absolute_spec(own(DATASETS, "imagefolder:")(t)),
                        default="digits", help="a built-in data set or imagefolder:PATH")
    parser.add_argument("--model", type=lambda t: absolute_spec(own(MODELS, "hf:")(t)),
                        default="mlp", help="a zoo model or hf:PATH (a transformers folder)")
    parser.add_argument("--epochs", type=number(1, 1000, integer=True), default=None,
                        help="train the baseline this long (default: the shipped checkpoint "
                             "where there is one, else 10 epochs)")


def add_reproduce_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "reproduce", help="rerun Han 2015 / Hinton 2015 / Frankle & Carbin 2019 on mnist-5k",
        description="Rerun a published result with the paper's own procedure on our engine "
                    "(mnist-5k, the 5,000-image MNIST subset), over one or more seeds, and "
                    "print ours (mean and 95% interval) beside the paper's numbers, with "
                    "each of the paper's claims shown or not shown by its interval "
                    "(Holm-corrected over the report's claims).")
    p.add_argument("experiment", choices=EXPERIMENTS)
    p.add_argument("--quick", action="store_true",
                   help="the same procedure with fewer rounds/steps and epochs (minutes)")
    p.add_argument("--seeds", type=number(1, SEEDS_MAX, integer=True), default=1,
                   metavar="N", help="run seeds SEED .. SEED+N-1; report means, 95%% "
                                     "t-intervals and paired differences")
    p.add_argument("--workers", type=number(0, 1024, integer=True), default=None,
                   help="seeds run in parallel processes (default: cores / threads; "
                        "0: one after another in this process)")
    p.add_argument("--rewind", type=rewind_point, default="init", metavar="init|K",
                   help="lottery: reset survivors to init (default) or to epoch K")
    p.add_argument("--model", default=None, metavar="hf:PATH",
                   help="llm-pruning: the small GPT (default build/llm-gpt: make llm-gpt)")
    _common(p)
    p.set_defaults(handler=lambda args, _parser: reproduce_command(args))
    return p


def reproduce_command(args: argparse.Namespace) -> int:
    if args.rewind != "init" and args.experiment != "lottery":
        sys.stderr.write(f"explorer reproduce: error: argument --rewind: applies to lottery "
                         f"only, not {args.experiment!r}\n")
        return 2
    message = seed_range_error(args)
    if message is not None:
        sys.stderr.write(f"explorer reproduce: error: {message}\n")
        return 2
    from ..studies.reproduce import format_result, reproduce
    from ..studies.stats import stderr_log

    options: dict = {"rewind": args.rewind} if args.experiment == "lottery" else {}
    if args.experiment == "llm-pruning":
        options["model"] = args.model
    elif args.model is not None:
        sys.stderr.write("explorer reproduce: error: argument --model: applies to "
                         f"llm-pruning only, not {args.experiment!r}\n")
        return 2
    start = time.perf_counter()
    result = reproduce(args.experiment, quick=args.quick, seed=args.seed, seeds=args.seeds,
                       threads=args.threads, workers=args.workers, log=stderr_log, **options)
    result["seconds"] = round(time.perf_counter() - start, 1)
    print(format_result(args.experiment, result))
    print(f"{result['seconds']:.0f} s")
    return _write_json(args.json, result)


def _write_json(path: Path | None, result: dict) -> int:
    """Write the JSON report when asked; the command's exit status."""
    if path is not None:
        write_text(path, json.dumps(json_safe(result), indent=1))  # checked writable up front
        print(f"results written to {path}")
    return 0


def add_sensitivity_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "sensitivity", help="prune one layer at a time; per-layer targets for a budget",
        description="Per prunable layer, prune that layer alone to each sparsity and record "
                    "validation accuracy; with --max-drop, derive per-layer targets and "
                    "report the model pruned to them (validation and test).")
    _model_options(p)
    p.add_argument("--sparsities", type=_sparsity_list, default=None, metavar="S1,S2,...")
    p.add_argument("--finetune-epochs", type=number(0, 1000, integer=True), default=0)
    p.add_argument("--layers", default=None, metavar="NAME,...",
                   help="only these layers (default: every prunable layer)")
    p.add_argument("--max-drop", type=number(0.0, 1.0), default=None, metavar="D",
                   help="accuracy budget as a fraction, e.g. 0.01 for one point")
    _common(p)
    p.set_defaults(handler=lambda args, _parser: sensitivity_command(args))
    return p


def _baseline(args: argparse.Namespace, check: Callable[[Any], None] | None = None):
    """The session every command here starts from: shipped checkpoint or a trained baseline.
    `check(session)` judges what needs the model (layer names) before the baseline trains."""
    import torch

    from ..session.session import Session

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    session = Session(args.dataset, args.model, seed=args.seed, device="cpu",
                      pretrained=args.epochs is None)
    if check is not None:
        check(session)
    if not session.pretrained:
        session.train(epochs=args.epochs or 10)
        session.pruning.adopt_as_original()
    return session


def sensitivity_command(args: argparse.Namespace) -> int:
    from ..studies.sensitivity import (
        DEFAULT_SPARSITIES,
        derive_budget,
        sensitivity,
        sensitivity_table,
    )

    layers = None if args.layers is None else [n.strip() for n in args.layers.split(",")]

    def known_layers(session: Session) -> None:
        if layers is not None:
            check_targets(dict.fromkeys(layers, 0.0), session.slot.prunable)

    session = _baseline(args, known_layers)  # a layer name that is not there: exit 2 now
    try:
        result = sensitivity(session, args.sparsities or DEFAULT_SPARSITIES,
                             finetune_epochs=args.finetune_epochs, layers=layers)
    except ValueError as err:
        sys.stderr.write(f"explorer sensitivity: error: {err}\n")
        return 2
    print(f"validation accuracy with one layer pruned (dense: {result['dense_accuracy']:.2%})")
    print(sensitivity_table(result))
    if args.max_drop is not None:
        targets = derive_budget(result, args.max_drop)
        snap = session.pruning.per_layer(targets)
        test = session.snapshot("test")
        result["budget"] = {"max_drop": args.max_drop, "targets": targets,
                            "sparsity": snap.sparsity, "val_accuracy": snap.accuracy,
                            "test_accuracy": test.accuracy}
        print(f"\ntargets for a drop of at most {args.max_drop:.2%}: "
              + ", ".join(f"{n} {s:.0%}" for n, s in targets.items()))
        print(f"applied together: sparsity {snap.sparsity:.1%}, validation accuracy "
              f"{snap.accuracy:.2%}, test accuracy {test.accuracy:.2%}")
    return _write_json(args.json, result)


def add_sweep_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "sweep", help="run a grid of settings (process pool or Ray)",
        description="Run every point of a grid from one trained baseline, each an independent "
                    "seeded run, and print a table. Example: --grid sparsity=0.5,0.9 "
                    "--grid schedule=oneshot,agp --grid steps=3 --grid finetune_epochs=0,1")
    _model_options(p)
    p.add_argument("--grid", action="append", required=True, metavar="KEY=V1,V2",
                   help="a setting and its values (repeat for more)")
    p.add_argument("--executor", choices=EXECUTORS, default="local",
                   help="local: this machine (a process pool); ray: Ray tasks (the ray extra)")
    p.add_argument("--address", default=None,
                   help="submit to this existing Ray cluster (e.g. 10.0.0.5:6379 or "
                        "ray://head:10001) instead of starting a local Ray (executor ray)")
    p.add_argument("--workers", type=number(0, 1024, integer=True), default=None,
                   help="parallel points (0: one after another in this process; with "
                        "--address the cluster's resources decide)")
    p.add_argument("--cpus-per-point", type=number(0, CPUS_PER_POINT_MAX), default=None,
                   metavar="N", help="Ray CPUs each point holds (default: --threads)")
    p.add_argument("--gpus-per-point", type=number(0, GPUS_PER_POINT_MAX), default=None,
                   metavar="N", help="Ray GPUs each point holds; a point runs on CUDA when "
                                     "its worker has it (default: 0)")
    p.add_argument("--csv", type=output_path, default=None, metavar="PATH")
    p.add_argument("--seeds", type=number(1, SEEDS_MAX, integer=True), default=1,
                   metavar="N", help="repeat every point for seeds SEED .. SEED+N-1 (fine-tuning "
                                     "order and student init; the baseline is shared) and "
                                     "report means with 95%% t-intervals")
    _common(p)
    p.set_defaults(handler=lambda args, parser: sweep_command(args, parser))
    return p


def sweep_command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    def fail(option: str, message: str) -> int:
        sys.stderr.write(f"explorer sweep: error: argument {option}: {message}\n")
        return 2

    for message in (seed_range_error(args), same_output_error(args, ("--csv", "--json"))):
        if message is not None:
            sys.stderr.write(f"explorer sweep: error: {message}\n")
            return 2
    try:
        grid = parse_grid(args.grid)
        if args.seeds > 1:
            if "seed" in grid:
                raise ValueError("give seeds with --seeds N or with seed=..., not both")
            grid["seed"] = [args.seed + i for i in range(args.seeds)]
        expand(grid)  # every point checked (and the grid's size) before torch is imported
    except ValueError as err:
        return fail("--grid", str(err))
    ray_only = (("--address", args.address), ("--cpus-per-point", args.cpus_per_point),
                ("--gpus-per-point", args.gpus_per_point))
    for option, value in ray_only:
        if value is not None and args.executor != "ray":
            return fail(option, f"{value!r} needs --executor ray")
    if args.executor == "ray":
        try:
            check_resources(args.threads if args.cpus_per_point is None else args.cpus_per_point,
                            args.gpus_per_point or 0)
        except ValueError as err:
            return fail("--cpus-per-point/--gpus-per-point", str(err))
        if importlib.util.find_spec("ray") is None:
            return fail("--executor", RAY_HINT)
    session = _baseline(args)
    stop = threading.Event()
    show = _progress_printer(sys.stderr)
    try:
        with _ctrl_c_stops(stop):
            table = sweep(session, grid, executor=args.executor, address=args.address,
                          workers=args.workers, threads=args.threads, stop=stop,
                          on_progress=show, cpus_per_point=args.cpus_per_point,
                          gpus_per_point=args.gpus_per_point)
    except (ImportError, ValueError) as err:
        sys.stderr.write(f"\nexplorer sweep: error: {err}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("\nexplorer sweep: interrupted; outstanding points cancelled\n")
        return 130
    show(None)
    print(table)
    meta = table.meta
    if args.seeds > 1:
        from ..studies.stats import format_seed_groups, seed_groups

        meta["summary"] = seed_groups(table.rows, [k for k in grid if k != "seed"])
        print(format_seed_groups(meta["summary"]))
    print(f"{meta['done']} of {meta['points']} points in {meta['seconds']:.1f} s "
          f"({meta['executor']}, {meta['workers']} workers)"
          + ("; stopped: the rest were cancelled" if meta["stopped"] else ""))
    if args.csv is not None:
        table.to_csv(args.csv)
        print(f"table written to {args.csv}")
    if args.json is not None:
        table.to_json(args.json)
        print(f"table written to {args.json}")
    return 130 if meta["stopped"] else 0


def _progress_printer(stream) -> Callable[[Progress | None], None]:
    """A progress bar on a terminal (one line, redrawn); one line per point elsewhere.
    Call it with None to end the bar."""
    tty = stream.isatty()
    shown = False

    def show(progress: Progress | None) -> None:
        nonlocal shown
        if progress is None:
            if tty and shown:
                stream.write("\n")
            return
        line = format_progress(progress)
        if tty:
            width = shutil.get_terminal_size().columns
            stream.write("\r" + line[: max(width - 1, 20)] + "\x1b[K")
        else:
            stream.write(line + "\n")
        stream.flush()
        shown = True

    return show


@contextlib.contextmanager
def _ctrl_c_stops(stop: threading.Event):
    """The first Ctrl-C sets `stop` (the sweep cancels what is outstanding and returns the
    finished rows); a second raises KeyboardInterrupt as usual."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        sys.stderr.write("\nstopping: cancelling outstanding points (Ctrl-C again to quit "
                         "at once)\n")
        sys.stderr.flush()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
