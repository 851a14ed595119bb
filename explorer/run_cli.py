"""``explorer run``: the whole pipeline headless (train, prune, fine-tune, distil, report).

Every option is checked here before torch is imported or data is loaded: an invalid one
exits with status 2 and one line naming the option and the value. The work itself lives
in explorer.pipeline, imported only once the options are known to be good.

Hook into the main command line with ``add_run_parser(subparsers)`` and dispatch to
``run_command(args)``; ``python -m explorer.run_cli run ...`` works on its own too.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from .config import (
    BATCH_SIZE_MAX,
    EPOCHS_MAX,
    LR_MAX,
    LR_MIN,
    OPTIMIZERS,
    SCOPES,
    STUDENT_WIDTH_MAX,
    STUDENT_WIDTH_MIN,
    TEMPERATURE_MAX,
    TEMPERATURE_MIN,
    check_number,
)

PROG = "explorer run"
# Mirrors of explorer.data.DATASETS and the engine's model zoo (importing those modules
# would import torch); tests check that they agree.
DATASETS = ("digits", "mnist-5k", "toy-regression", "pydoc-text")
MODELS = ("mlp", "lenet300", "lenet5", "resnet-small", "gpt-tiny")
TEXT_DATASETS, LM_MODELS = ("pydoc-text",), ("gpt-tiny",)  # explorer.text_data, explorer.lm
STUDENT_INITS = ("random", "teacher")
IMAGE_MODELS = ("lenet5", "resnet-small")
INITS = ("default", "xavier", "he")
NORMS = ("l1", "l2")
SCHEDULES = ("oneshot", "linear", "agp")
DEVICES = ("auto", "cpu", "cuda")
STEPS_MAX = 100
SEED_MAX = 2**31 - 1
MODEL_WIDTH_MIN, MODEL_WIDTH_MAX = 0.01, 16.0
FINETUNE_LR_FACTOR = 0.1  # Han et al. 2015 retrain at a tenth of the learning rate


def _number(low: float, high: float, integer: bool = False) -> Callable[[str], float]:
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


def _rewind(text: str) -> str | int:
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


def _output_path(text: str) -> Path:
    """A file path whose folder exists (checked now, not after minutes of training)."""
    path = Path(text)
    if not text or path.is_dir():
        raise argparse.ArgumentTypeError(f"must be a file path, got {text!r}")
    if not path.expanduser().resolve().parent.is_dir():
        raise argparse.ArgumentTypeError(f"folder of {text!r} does not exist")
    return path


def _one_line_error(parser: argparse.ArgumentParser) -> Callable[[str], None]:
    """Replace argparse's usage dump with the one line the issue asks for."""

    def error(message: str) -> None:
        sys.stderr.write(f"{parser.prog}: error: {message}\n")
        raise SystemExit(2)

    return error


def configure(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add every `explorer run` option to `parser`."""
    add = parser.add_argument
    add("--dataset", choices=DATASETS, default="digits")
    add("--model", choices=MODELS, default="mlp")
    add("--width", type=_number(MODEL_WIDTH_MIN, MODEL_WIDTH_MAX), default=1.0,
        help="width multiplier of the model's hidden layers")
    add("--init", choices=INITS, default="default")
    add("--optimizer", choices=OPTIMIZERS, default="adam")
    add("--lr", type=_number(LR_MIN, LR_MAX), default=1e-3)
    add("--epochs", type=_number(1, EPOCHS_MAX, integer=True), default=20)
    add("--batch-size", type=_number(1, BATCH_SIZE_MAX, integer=True), default=64)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--prune-threshold", type=_number(0.0, math.inf), metavar="T",
                      help="keep |w| >= T")
    mode.add_argument("--prune-sparsity", type=_number(0.0, 1.0), metavar="S",
                      help="prune round(S*n) smallest |w| (structured: fraction of neurons)")
    mode.add_argument("--prune-std", type=_number(0.0, math.inf), metavar="Q",
                      help="Han et al.: threshold = Q * std(w) per layer")
    add("--scope", choices=SCOPES, default="layer")
    add("--structured", action="store_true",
        help="remove whole neurons/filters (gpt-tiny: attention heads)")
    add("--norm", choices=NORMS, default=None, help="rank neurons by l1 (default) or l2")
    add("--schedule", choices=SCHEDULES, default=None, help="iterative schedule")
    add("--steps", type=_number(1, STEPS_MAX, integer=True), default=None, metavar="K")
    add("--finetune-epochs", type=_number(1, EPOCHS_MAX, integer=True), default=None,
        metavar="N", help=f"fine-tune after pruning at lr * {FINETUNE_LR_FACTOR:g}")
    add("--rewind", type=_rewind, default=None, metavar="init|K",
        help="lottery ticket: reset survivors to init (or epoch K) before fine-tuning")
    add("--student", type=_number(STUDENT_WIDTH_MIN, STUDENT_WIDTH_MAX), default=None,
        metavar="W", help="width multiplier of a student: trained alone and distilled")
    add("--temperature", type=_number(TEMPERATURE_MIN, TEMPERATURE_MAX), default=None,
        metavar="T", help="distillation temperature (default 4; classification only)")
    add("--alpha", type=_number(0.0, 1.0), default=None, metavar="A",
        help="weight of the soft term (default 0.7)")
    add("--no-t-squared", action="store_true",
        help="leave out the T^2 factor on the soft term (Distiller's convention)")
    add("--layers", type=_number(1, 24, integer=True), default=None, metavar="L",
        help="gpt-tiny: transformer blocks (default 4)")
    add("--heads", type=_number(1, 32, integer=True), default=None, metavar="H",
        help="gpt-tiny: attention heads per block (default 4)")
    add("--context", type=_number(8, 1024, integer=True), default=None, metavar="T",
        help="gpt-tiny: characters per window (default 64)")
    add("--train-windows", type=_number(1, 10**7, integer=True), default=None, metavar="N",
        help="gpt-tiny: train on N evenly spread windows only (a small, quick budget)")
    add("--student-layers", type=_number(1, 24, integer=True), default=None, metavar="L",
        help="gpt-tiny: a shallower student of L blocks (trained alone and distilled)")
    add("--student-init", choices=STUDENT_INITS, default=None,
        help="gpt-tiny: 'teacher' copies every other teacher block into the student")
    add("--device", choices=DEVICES, default="auto")
    add("--seed", type=_number(0, SEED_MAX, integer=True), default=0)
    add("--json", type=_output_path, default=None, metavar="PATH")
    add("--export", type=_output_path, default=None, metavar="PATH",
        help="write the pruned (teacher) model; shrunk when --structured")
    parser.error = _one_line_error(parser)  # type: ignore[method-assign]
    return parser


def add_run_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `run` on the main command line's subparsers."""
    parser = subparsers.add_parser(
        "run", help="run a compression pipeline headless",
        description="Train, prune, fine-tune and distil without a browser; print a table "
                    "and optionally write a JSON report.")
    configure(parser)
    parser.set_defaults(func=run_command)
    return parser


def check_combination(args: argparse.Namespace) -> str | None:
    """Rules between options; returns the one-line message of the first one broken."""
    message = _check_lm(args)
    if message is not None:
        return message
    prune_given = next((f"--prune-{m} {getattr(args, f'prune_{m}'):g}"
                        for m in ("threshold", "sparsity", "std")
                        if getattr(args, f"prune_{m}") is not None), None)
    regression = args.dataset == "toy-regression"
    needs_prune = [("--structured", args.structured), ("--finetune-epochs", args.finetune_epochs),
                   ("--schedule", args.schedule), ("--steps", args.steps),
                   ("--rewind", args.rewind)]
    for flag, value in needs_prune:
        if value not in (None, False) and prune_given is None:
            return f"argument {flag}: needs a pruning option (--prune-sparsity S, ...)"
    iterative = [("--structured", args.structured), ("--schedule", args.schedule),
                 ("--steps", args.steps), ("--rewind", args.rewind)]
    for flag, value in iterative:
        if value not in (None, False) and args.prune_sparsity is None:
            return f"argument {flag}: works with --prune-sparsity, not {prune_given}"
    if args.structured and args.scope != "layer":
        return f"argument --scope: structured pruning is per layer, got {args.scope!r}"
    if args.norm is not None and not args.structured:
        return f"argument --norm: {args.norm!r} ranks neurons, so it needs --structured"
    if args.prune_std is not None and args.scope == "global":
        return "argument --scope: --prune-std is a per-layer rule, got 'global'"
    student = args.student is not None or args.student_layers is not None
    for flag, value in (("--temperature", args.temperature), ("--alpha", args.alpha),
                        ("--no-t-squared", args.no_t_squared or None)):
        if value is not None and not student:
            return f"argument {flag}: needs --student W"
    if regression and args.temperature is not None:
        return (f"argument --temperature: {args.temperature:g} does not apply to "
                "toy-regression (no logits to soften; the student matches outputs by MSE)")
    if regression and args.model in IMAGE_MODELS:
        return f"argument --model: {args.model!r} needs images; toy-regression has none"
    return None


def _check_lm(args: argparse.Namespace) -> str | None:
    """Rules of the language-model track (pydoc-text with gpt-tiny)."""
    lm = args.model in LM_MODELS
    if lm != (args.dataset in TEXT_DATASETS):
        return (f"argument --model: {args.model!r} does not go with --dataset "
                f"{args.dataset!r} (gpt-tiny takes pydoc-text, and only it)")
    lm_only = [("--layers", args.layers), ("--heads", args.heads), ("--context", args.context),
               ("--train-windows", args.train_windows),
               ("--student-layers", args.student_layers),
               ("--student-init", args.student_init)]
    for flag, value in lm_only:
        if value is not None and not lm:
            return f"argument {flag}: applies to --model gpt-tiny only, not {args.model!r}"
    if not lm:
        return None
    if args.init != "default":
        return f"argument --init: gpt-tiny has one init ('default'), got {args.init!r}"
    if args.schedule is not None or args.steps is not None or args.rewind is not None:
        return "argument --schedule/--steps/--rewind: not available for gpt-tiny yet"
    if args.student_init == "teacher" and args.student not in (None, 1.0):
        return (f"argument --student-init: 'teacher' copies blocks, so the student keeps "
                f"the teacher's width; got --student {args.student:g}")
    if args.student_init is not None and args.student is None and args.student_layers is None:
        return "argument --student-init: needs --student-layers L (or --student W)"
    return None


def run_command(args: argparse.Namespace) -> int:
    """Validate the combination, then run the pipeline; returns the exit status."""
    message = check_combination(args)
    if message is not None:
        sys.stderr.write(f"{PROG}: error: {message}\n")
        return 2
    from .pipeline import run_pipeline  # torch is imported from here on

    return run_pipeline(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Stand-alone entry: ``python -m explorer.run_cli run [options]``."""
    parser = argparse.ArgumentParser(prog="explorer")
    parser.error = _one_line_error(parser)  # type: ignore[method-assign]
    sub = parser.add_subparsers(dest="command", required=True)
    add_run_parser(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
