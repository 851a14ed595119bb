"""``explorer run``: the whole pipeline headless (train, prune, fine-tune, distil, report).

Every option is checked here before torch is imported or data is loaded: an invalid one
exits with status 2 and one line naming the option and the value. The work itself lives
in explorer.studies.pipeline, imported only once the options are known to be good.

Hook into the main command line with ``add_run_parser(subparsers)`` and dispatch to
``run_command(args)``; ``python -m explorer.cli.run run ...`` works on its own too.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from .. import config as C
from ..config import (
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
)
from .args import (
    number,
    one_line_error,
    output_path,
    rewind_point,
    same_output_error,
    seed_range_error,
)

PROG = "explorer run"
SEEDS_MAX = 100
DATASETS, MODELS = C.ALL_DATASETS, C.ALL_MODELS  # what `--dataset` / `--model` accept


def own(choices: Sequence[str], prefix: str) -> Callable[[str], str]:
    """An argparse type: one of `choices`, or `prefix` + an existing folder (your own)."""

    def parse(text: str) -> str:
        if text in choices:
            return text
        if text.startswith(prefix):
            folder = Path(text[len(prefix):]).expanduser()
            if not folder.is_dir():
                raise argparse.ArgumentTypeError(f"{folder} is not a folder")
            return text
        raise argparse.ArgumentTypeError(
            f"invalid choice: {text!r} (choose from {', '.join(choices)}, or {prefix}PATH)")

    return parse


def is_own_model(model: str) -> bool:
    return model.startswith("hf:")


def configure(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add every `explorer run` option to `parser`."""
    add = parser.add_argument
    add("--dataset", type=own(DATASETS, "imagefolder:"), default="digits",
        help=f"{', '.join(DATASETS)}, or imagefolder:PATH (one sub-folder per class)")
    add("--model", type=own(MODELS, "hf:"), default="mlp",
        help=f"{', '.join(MODELS)}, or hf:PATH (a save_pretrained folder)")
    add("--width", type=number(C.MODEL_WIDTH_MIN, C.MODEL_WIDTH_MAX), default=1.0,
        help="width multiplier of the model's hidden layers")
    add("--init", choices=C.INITS, default="default")
    add("--optimizer", choices=OPTIMIZERS, default="adam")
    add("--lr", type=number(LR_MIN, LR_MAX), default=1e-3)
    add("--epochs", type=number(1, EPOCHS_MAX, integer=True), default=20)
    add("--batch-size", type=number(1, BATCH_SIZE_MAX, integer=True), default=64)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--prune-threshold", type=number(0.0, math.inf), metavar="T",
                      help="keep |w| >= T")
    mode.add_argument("--prune-sparsity", type=number(0.0, 1.0), metavar="S",
                      help="prune round(S*n) smallest |w| (structured: fraction of neurons)")
    mode.add_argument("--prune-std", type=number(0.0, math.inf), metavar="Q",
                      help="Han et al.: threshold = Q * std(w) per layer")
    add("--scope", choices=SCOPES, default="layer")
    add("--structured", action="store_true",
        help="remove whole neurons/filters (gpt-tiny: attention heads)")
    add("--norm", choices=C.NORMS, default=None, help="rank neurons by l1 (default) or l2")
    add("--schedule", choices=C.SCHEDULES, default=None,
        help=f"iterative schedule (default with --steps/--rewind: {C.FINETUNE_SCHEDULE})")
    add("--steps", type=number(1, C.STEPS_MAX, integer=True), default=None, metavar="K",
        help=f"iterative pruning steps (default with --schedule/--rewind: "
             f"{C.FINETUNE_STEPS})")
    add("--finetune-epochs", type=number(1, EPOCHS_MAX, integer=True), default=None,
        metavar="N", help=f"fine-tune after pruning at lr * {C.FINETUNE_LR_FACTOR:g} "
                          f"(iterative: per step, default {C.FINETUNE_EPOCHS})")
    add("--rewind", type=rewind_point, default=None, metavar="init|K",
        help="lottery ticket: reset survivors to init (or epoch K) before fine-tuning")
    add("--no-bn-recalibration", action="store_true",
        help="structured: keep the stale BatchNorm statistics (by default they are "
             f"re-estimated on {C.BN_RECALIBRATION_SAMPLES} training samples after channels go)")
    add("--student", type=number(STUDENT_WIDTH_MIN, STUDENT_WIDTH_MAX), default=None,
        metavar="W", help="width multiplier of a student: trained alone and distilled")
    add("--temperature", type=number(TEMPERATURE_MIN, TEMPERATURE_MAX), default=None,
        metavar="T", help=f"distillation temperature (default {C.DEFAULT_TEMPERATURE:g}; "
                          "classification only)")
    add("--alpha", type=number(0.0, 1.0), default=None, metavar="A",
        help=f"weight of the soft term (default {C.DEFAULT_ALPHA:g})")
    add("--labelled", type=number(C.LABELLED_MIN, 1.0), default=None, metavar="F",
        help=f"the students see labels for a fraction F of the training images (default "
             f"{C.DEFAULT_LABELLED:g}; the distilled one gets the teacher's soft answers on "
             "all; 1: all labels); classification only")
    add("--leave-out", type=number(0, 10**4, integer=True), default=None, metavar="C",
        help=f"leave class C out of the students' transfer set (Hinton's missing digit; "
             f"try {C.DEFAULT_LEAVE_OUT_CLASS}); classification only")
    add("--temperatures", type=temperature_list, default=None, metavar="T1,T2,...",
        help="also distil at each T: the curve, the best T on validation and its lead "
             "over T = 1 on test")
    add("--no-t-squared", action="store_true",
        help="leave out the T^2 factor on the soft term (Distiller's convention)")
    add("--layers", type=number(1, 24, integer=True), default=None, metavar="L",
        help="gpt-tiny: transformer blocks (default 4)")
    add("--heads", type=number(1, 32, integer=True), default=None, metavar="H",
        help="gpt-tiny: attention heads per block (default 4)")
    add("--context", type=number(8, 1024, integer=True), default=None, metavar="T",
        help="gpt-tiny: characters per window (default 64)")
    add("--train-windows", type=number(1, 10**7, integer=True), default=None, metavar="N",
        help="gpt-tiny: train on N evenly spread windows only (a small, quick budget)")
    add("--student-layers", type=number(1, 24, integer=True), default=None, metavar="L",
        help="gpt-tiny: a shallower student of L blocks (trained alone and distilled)")
    add("--student-init", choices=C.STUDENT_INITS, default=None,
        help="gpt-tiny: 'teacher' copies every other teacher block into the student")
    add("--bits", type=int, choices=C.QUANT_BITS, default=None, metavar="B",
        help="quantize the (pruned) weights to B bits at the end (32: off; docs/quantization.md)")
    add("--quant-scheme", choices=C.QUANT_SCHEMES, default=None,
        help="kmeans (Deep Compression weight sharing, default) or uniform (per channel)")
    add("--device", choices=C.DEVICES, default="auto")
    add("--max-params", type=number(1, 10**13, integer=True), default=None, metavar="N",
        help=f"the most parameters an hf: model may have, counted before its weights are "
             f"read (default {C.MODEL_PARAMS_MAX:,})")
    add("--seed", type=number(0, C.SEED_MAX, integer=True), default=0)
    add("--seeds", type=number(1, SEEDS_MAX, integer=True), default=1, metavar="N",
        help="run seeds SEED .. SEED+N-1: per-seed values, means, 95%% intervals and paired "
             "differences (pruned/fine-tuned vs baseline, distilled vs alone)")
    add("--workers", type=number(0, 1024, integer=True), default=None, metavar="W",
        help="with --seeds: seeds in parallel processes (default: one per core; 0: one "
             "after another in this process)")
    add("--json", type=output_path, default=None, metavar="PATH")
    add("--export", type=export_path, default=None, metavar="PATH",
        help="write the pruned (teacher) model; shrunk when --structured")
    add("--export-kind", choices=EXPORT_CHOICES, default=None,
        help="what --export writes (default: shrunk when --structured, else masked); hf: "
             "an hf: model as a save_pretrained folder with its tokenizer")
    one_line_error(parser)
    return parser


EXPORT_CHOICES = (*C.EXPORT_KINDS, "hf", "checkpoint")  # Session.export's kinds


def export_path(text: str) -> Path:
    """--export: a file we can write, or an existing folder (only --export-kind hf writes
    one; check_combination says so for the other kinds)."""
    folder = Path(text).expanduser()
    return folder if folder.is_dir() else output_path(text)


def temperature_list(text: str) -> tuple[float, ...]:
    """An argparse type: comma-separated temperatures in the named bounds, 1 to 12 of them."""
    parse = number(TEMPERATURE_MIN, TEMPERATURE_MAX)
    parts = [p for p in text.split(",") if p.strip()]
    if not 1 <= len(parts) <= 12:
        raise argparse.ArgumentTypeError(f"must list 1 to 12 temperatures, got {text!r}")
    return tuple(sorted({parse(p.strip()) for p in parts}))


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
    message = (_check_lm(args) or seed_range_error(args)
               or same_output_error(args, ("--json", "--export")))
    if message is None and getattr(args, "quant_scheme", None) and \
            getattr(args, "bits", None) is None:
        message = f"argument --quant-scheme: {args.quant_scheme!r} needs --bits B"
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
        std_ok = args.prune_std is not None and flag != "--structured"  # Han, iterated
        if value not in (None, False) and args.prune_sparsity is None and not std_ok:
            return f"argument {flag}: works with --prune-sparsity, not {prune_given}"
    if getattr(args, "no_bn_recalibration", False) and not args.structured:
        return "argument --no-bn-recalibration: BatchNorm is recalibrated only after " \
               "structured pruning, so it needs --structured"
    kind = getattr(args, "export_kind", None)
    if kind is not None and args.export is None:
        return f"argument --export-kind: {kind!r} needs --export PATH"
    if kind == "hf" and not is_own_model(args.model):
        return (f"argument --export-kind: 'hf' writes an hf: model's save_pretrained folder; "
                f"--model {args.model!r} is not one")
    if args.export is not None and kind != "hf" and Path(args.export).is_dir():
        return (f"argument --export: {str(args.export)!r} is a folder, not a file (only "
                "--export-kind hf writes a folder)")
    if getattr(args, "seeds", 1) > 1 and args.export is not None:
        return f"argument --export: writes one model; got --seeds {args.seeds}"
    if getattr(args, "workers", None) is not None and getattr(args, "seeds", 1) == 1:
        return "argument --workers: needs --seeds N (N > 1)"
    if isinstance(args.rewind, int) and args.rewind > args.epochs:  # before 50 s of training
        return (f"argument --rewind: {args.rewind} is not an epoch the baseline records: it "
                f"trains --epochs {args.epochs}, so rewind to init or 1..{args.epochs}")
    if args.structured and args.scope != "layer":
        return f"argument --scope: structured pruning is per layer, got {args.scope!r}"
    if args.norm is not None and not args.structured:
        return f"argument --norm: {args.norm!r} ranks neurons, so it needs --structured"
    if args.prune_std is not None and args.scope == "global":
        return "argument --scope: --prune-std is a per-layer rule, got 'global'"
    student = args.student is not None or args.student_layers is not None
    if is_own_model(args.model) and (student or args.width != 1.0 or args.init != "default"):
        flag = "--student" if student else "--width" if args.width != 1.0 else "--init"
        return (f"argument {flag}: applies to the zoo's models, not to {args.model!r} "
                "(its architecture and weights come from its folder)")
    for flag, value in (("--temperature", args.temperature), ("--alpha", args.alpha),
                        ("--no-t-squared", args.no_t_squared or None),
                        ("--labelled", getattr(args, "labelled", None)),
                        ("--leave-out", getattr(args, "leave_out", None)),
                        ("--temperatures", getattr(args, "temperatures", None))):
        if value is not None and not student:
            return f"argument {flag}: needs --student W"
    classes_only = [("--labelled", getattr(args, "labelled", None) not in (None, 1.0)),
                     ("--leave-out", getattr(args, "leave_out", None) is not None),
                     ("--temperatures", getattr(args, "temperatures", None) is not None)]
    for flag, given in classes_only:
        if given and (regression or args.model in C.GPT_MODELS):
            return (f"argument {flag}: applies to classification, not to "
                    f"{'toy-regression' if regression else args.model!r}")
    if regression and args.temperature is not None:
        return (f"argument --temperature: {args.temperature:g} does not apply to "
                "toy-regression (no logits to soften; the student matches outputs by MSE)")
    if regression and args.model in C.IMAGE_MODELS:
        return f"argument --model: {args.model!r} needs images; toy-regression has none"
    return None


def _check_lm(args: argparse.Namespace) -> str | None:
    """Rules of the language-model track (pydoc-text with gpt-tiny)."""
    lm = args.model in C.GPT_MODELS
    text = args.dataset in C.TEXT_DATASETS
    # an hf: causal LM takes text too (with its own tokenizer when its folder has one)
    if (lm and not text) or (text and not lm and not str(args.model).startswith("hf:")):
        return (f"argument --model: {args.model!r} does not go with --dataset "
                f"{args.dataset!r} (pydoc-text takes gpt-tiny or an hf: causal LM)")
    for flag, value in (("--context", args.context), ("--train-windows", args.train_windows)):
        if value is not None and not text:  # an hf: causal LM on text takes them too
            return (f"argument {flag}: applies to --dataset pydoc-text (gpt-tiny or an hf: "
                    f"causal LM), not {args.dataset!r}")
    lm_only = [("--layers", args.layers), ("--heads", args.heads),
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
    if getattr(args, "seeds", 1) > 1:
        from ..studies.repeat import run_repeated  # torch is imported from here on

        return run_repeated(args)
    from ..studies.pipeline import run_pipeline  # torch is imported from here on

    return run_pipeline(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Stand-alone entry: ``python -m explorer.cli.run run [options]``."""
    parser = argparse.ArgumentParser(prog="explorer")
    one_line_error(parser)
    sub = parser.add_subparsers(dest="command", required=True)
    add_run_parser(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
