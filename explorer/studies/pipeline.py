"""The pipeline behind `explorer run`: stages, a progress bar, the table and the report.

Order of work: train the baseline; with --student, train the student alone, a student on
the teacher's hard labels (classification) and distil it from the dense baseline (so every
"teacher agreement" means agreement with the baseline), all under one regime (--labelled,
--leave-out; explorer.engine.regime), and with --temperatures once more per T;
then prune and fine-tune the baseline. Every stage is measured on the test split.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import torch

from ..config import (
    DEFAULT_ALPHA,
    DEFAULT_LABELLED,
    FINETUNE_EPOCHS,
    FINETUNE_LR_FACTOR,
    FINETUNE_SCHEDULE,
    FINETUNE_STEPS,
)
from ..engine.metrics import Snapshot
from ..engine.train import DIVERGED, EpochEvent, StepEvent, StopEvent, evaluate
from ..files import write_text
from .jsonsafe import json_safe

if TYPE_CHECKING:
    from ..session.session import Session

STAGES = ("baseline", "pruned", "finetuned", "quantized", "student_alone", "student_hard",
          "distilled")
BAR_WIDTH = 30

RUN_PROG = "explorer run"  # how messages name the command


class Progress:
    """A plain-text bar on stderr: redrawn in place on a terminal, a line per epoch else."""

    def __init__(self, stream: TextIO | None = None) -> None:
        # sys.stderr when called, not at import: a test's capture (or a notebook cell's
        # stream) replaced at import time is closed later ("I/O operation on closed file")
        self.stream = sys.stderr if stream is None else stream
        self.tty = self.stream.isatty()
        self._last = 0.0

    def callback(self, stage: str, total_steps: int):
        state = {"step": 0}

        def on_event(event) -> None:
            if isinstance(event, StepEvent):
                state["step"] += 1
                now = time.monotonic()
                if self.tty and now - self._last > 0.1:
                    self._last = now
                    self._draw(stage, state["step"], total_steps, f"loss {event.loss:.4f}",
                               end="\r")
            elif isinstance(event, EpochEvent):
                acc = ("" if event.val_accuracy is None
                       else f" val acc {event.val_accuracy:.4f}")
                self._draw(stage, state["step"], total_steps,
                           f"epoch {event.epoch}/{event.epochs} val loss {event.val_loss:.4f}"
                           f"{acc}", end="\r" if self.tty else "\n")
            elif isinstance(event, StopEvent) and event.reason.startswith(DIVERGED):
                self.stream.write(f"\n{stage}: {event.reason}; the weights from before "
                                  "this stage are back\n")  # never a silent "done"

        return on_event

    def _draw(self, stage: str, step: int, total: int, text: str, end: str) -> None:
        frac = min(step / max(total, 1), 1.0)
        bar = "#" * round(frac * BAR_WIDTH)
        self.stream.write(f"{stage:<13} [{bar:<{BAR_WIDTH}}] {frac:4.0%} {text:<48}{end}")
        self.stream.flush()

    def done(self) -> None:
        if self.tty:
            self.stream.write("\n")


def _steps(session: Session, epochs: int, batch_size: int) -> int:
    return epochs * math.ceil(len(session.data.train) / batch_size)


def _prune_kwargs(args: argparse.Namespace) -> dict:
    kwargs = {"threshold": args.prune_threshold, "sparsity": args.prune_sparsity,
              "std": args.prune_std, "scope": args.scope}
    if args.structured:
        kwargs.update(structured=True, norm=args.norm or "l1")
    return kwargs


def _needs_engine(session: Session, args: argparse.Namespace) -> str | None:
    """Options that need the pruning engine (issue 3), when this build lacks it."""
    iterative = args.schedule is not None or args.steps is not None or args.rewind is not None
    wants = [("--structured", args.structured, "shrink"),
             ("--schedule/--steps/--rewind", iterative, "prune_iteratively"),
             ("--export", args.export is not None, "export")]
    for flag, wanted, method in wants:
        if wanted and not hasattr(session, method):
            return f"argument {flag}: this build has no Session.{method} (pruning engine)"
    return None


def run_stages(session: Session, args: argparse.Namespace,
               progress: Progress) -> dict[str, Snapshot]:
    """Run every requested stage; returns {stage: Snapshot on the test split}."""
    budget = {"lr": args.lr, "optimizer": args.optimizer, "batch_size": args.batch_size}
    stages: dict[str, Snapshot] = {}
    session.train(epochs=args.epochs, **budget,
                  on_event=progress.callback("baseline", _steps(session, args.epochs,
                                                                args.batch_size)))
    _, _, reference = evaluate(session.model, session.data.test, session.data.task)
    stages["baseline"] = session.measure("test", slot="teacher", reference=reference)
    if args.student is not None or getattr(args, "student_layers", None) is not None:
        total = _steps(session, args.epochs, args.batch_size)
        student = args.student
        if session.is_lm:  # one GPT student, copied by both runs (same init)
            student = session.students.make(args.student or 1.0, args.student_layers,
                                           args.student_init or "random")
        regime = student_regime(session, args)
        session.students.train_alone(student, epochs=args.epochs, **budget, **regime,
                                    on_event=progress.callback("student_alone", total))
        stages["student_alone"] = session.measure("test", slot="student_alone")
        if regime:  # classification: the third student, on the teacher's hard labels
            session.students.train_hard(student, epochs=args.epochs, **budget, **regime,
                                       on_event=progress.callback("student_hard", total))
            stages["student_hard"] = session.measure("test", slot="student_hard")
        kd = {"alpha": DEFAULT_ALPHA if args.alpha is None else args.alpha,
              "t_squared": not args.no_t_squared, "epochs": args.epochs, **budget, **regime}
        for temperature in getattr(args, "temperatures", None) or ():
            session.students.distill(student, temperature=temperature, **kd,
                            on_event=progress.callback(f"distilled T={temperature:g}", total))
            stages[f"{CURVE}{temperature:g}"] = session.measure("val", slot="student",
                                                                     full=False)
            stages[f"{CURVE_TEST}{temperature:g}"] = session.measure("test", slot="student",
                                                                          full=False)
        session.students.distill(student, temperature=args.temperature, **kd,
                        on_event=progress.callback("distilled", total))
        stages["distilled"] = session.measure("test", slot="student")
    if args.prune_threshold is None and args.prune_sparsity is None and args.prune_std is None:
        return stages
    session.settings.bn_recalibration = not getattr(args, "no_bn_recalibration", False)
    ft_epochs = args.finetune_epochs
    ft_budget = {**budget, "lr": max(args.lr * FINETUNE_LR_FACTOR, 1e-6)}
    if args.schedule is not None or args.steps is not None or args.rewind is not None:
        # Unset parts take the shared defaults (config.FINETUNE_*, as the app and
        # Session.prune_iteratively do), so one setting means the same everywhere.
        steps = args.steps or FINETUNE_STEPS
        ft_epochs = ft_epochs or FINETUNE_EPOCHS
        total = _steps(session, ft_epochs * steps, args.batch_size)
        rule = {"std": args.prune_std} if args.prune_std is not None else {}
        session.prune_iteratively(args.prune_sparsity, steps=steps, **rule,
                                  schedule=args.schedule or FINETUNE_SCHEDULE,
                                  finetune_epochs=ft_epochs, rewind=args.rewind,
                                  scope=args.scope, structured=args.structured,
                                  norm=args.norm or "l1", **ft_budget,
                                  on_event=progress.callback("finetuned", total))
        stages["finetuned"] = session.measure("test", slot="teacher", reference=reference)
        return stages
    if session.is_lm and args.structured:  # whole attention heads, ranked by --norm
        session.lm.remove_heads(args.prune_sparsity, rank=args.norm or "l1", scope=args.scope)
    else:
        session.prune(**_prune_kwargs(args))
    stages["pruned"] = session.measure("test", slot="teacher", reference=reference)
    if ft_epochs is not None:
        session.train(epochs=ft_epochs, **ft_budget, on_event=progress.callback(
            "finetuned", _steps(session, ft_epochs, args.batch_size)))
        stages["finetuned"] = session.measure("test", slot="teacher", reference=reference)
    return stages


def quantize_stage(session: Session, args: argparse.Namespace) -> dict[str, Snapshot]:
    """--bits B --quant-scheme S: quantize the teacher as the stages left it (pruned,
    fine-tuned), measured on test; {} when --bits is 32 or unset."""
    bits = getattr(args, "bits", None)
    if bits is None and getattr(args, "quant_scheme", None) is not None:
        raise ValueError("argument --quant-scheme: needs --bits B")
    if bits in (None, 32):
        return {}
    session.select("teacher")
    session.quantize(bits=bits, scheme=getattr(args, "quant_scheme", None) or "kmeans")
    return {"quantized": session.measure("test", slot="teacher")}


def quantized_line(snap: Snapshot) -> str:
    """The quantized sizes in words (weights only, as Deep Compression counts them)."""
    d = snap.extra
    return (f"quantized ({d['quant_label']}), weights only: "
            f"{_human(d['bytes_quantized'], 'B')} indices + codebooks, "
            f"{_human(d['bytes_huffman'], 'B')} Huffman-coded "
            f"({d['compression_ratio_huffman']:.1f}x smaller than dense fp32 "
            f"{_human(d['bytes_dense'], 'B')})")


CURVE, CURVE_TEST = "distilled_val_T=", "distilled_test_T="  # the --temperatures stages


def student_regime(session: Session, args: argparse.Namespace) -> dict:
    """distill()'s labelled= and leave_out= for a classifier (the session's defaults for
    what is unset); {} for regression and language models, which keep every label."""
    if session.is_lm or session.data.task != "classification":
        return {}
    return {"labelled": DEFAULT_LABELLED if getattr(args, "labelled", None) is None
            else args.labelled, "leave_out": getattr(args, "leave_out", None)}


def regime_text(session: Session) -> str | None:
    """The distilled student's regime in words, from what the session recorded."""
    if session.is_lm or session.data.task != "classification":
        return None  # no labels to hold back, no class to leave out
    regime = session.students.regime("student") if "student" in session.slots else None
    return None if regime is None else regime.describe()


def temperature_curve(stages: dict[str, Snapshot]) -> dict[str, dict]:
    """{T: {"val_accuracy", "test_accuracy"}} of the --temperatures runs."""
    return {name[len(CURVE):]: {"val_accuracy": snap.accuracy,
                                "test_accuracy": stages[CURVE_TEST + name[len(CURVE):]].accuracy}
            for name, snap in stages.items() if name.startswith(CURVE)}


def curve_lines(curve: dict[str, dict]) -> list[str]:
    """The temperature curve of one seed, and its best T on validation."""
    if not curve:
        return []
    best = max(curve, key=lambda t: curve[t]["val_accuracy"])
    lines = ["temperature curve (one seed; --seeds N gives intervals): " + ", ".join(
        f"T={t} val {v['val_accuracy']:.4f} test {v['test_accuracy']:.4f}"
        for t, v in curve.items())]
    lines.append(f"best T on validation: {best}")
    return lines


def versions() -> dict:
    import numpy
    import sklearn

    from .. import __version__

    return {"explorer": __version__, "python": platform.python_version(),
            "torch": torch.__version__, "numpy": numpy.__version__,
            "scikit-learn": sklearn.__version__}


def _human(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.2f} {prefix}{unit}".rstrip()
    return f"{value:g} {unit}".rstrip()


def table(stages: dict[str, Snapshot]) -> str:
    """The end-of-run table, one row per stage that ran, in pipeline order."""
    regression = any(s.task != "classification" for s in stages.values())
    quality = "test mse" if regression else "test acc"
    lm = any("perplexity" in s.extra for s in stages.values())
    head = (quality, *(("test ppl",) if lm else ()), "agreement", "params", "nonzero",
            "sparsity", "bytes dense", "bytes sparse", "bytes shrunk", "FLOPs dense", "FLOPs eff.")
    rows = []
    for name in STAGES:
        if name not in stages:
            continue
        d = stages[name].to_dict()
        agree = d.get("teacher_agreement")
        rows.append((name, f"{d['mse']:.4f}" if regression else f"{d['accuracy']:.4f}",
                     *((f"{d['perplexity']:.3f}",) if lm else ()),
                     "-" if agree is None else f"{agree:.4f}", str(d["params"]),
                     str(d["nonzero"]), f"{d['sparsity']:.1%}", _human(d["bytes_dense"], "B"),
                     _human(d["bytes_sparse"], "B"), _human(d.get("bytes_shrunk"), "B"),
                     _human(d["flops_dense"]), _human(d["flops_effective"])))
    widths = [max(len(r[i]) for r in [("stage", *head), *rows]) for i in range(len(head) + 1)]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                       for i, (c, w) in enumerate(zip(r, widths)))
             for r in [("stage", *head), *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def report(args: argparse.Namespace, session: Session, stages: dict[str, Snapshot]) -> dict:
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
              if k not in ("func", "command") and not callable(v)}
    config["finetune_lr"] = args.lr * FINETUNE_LR_FACTOR
    device = {"name": str(session.device), "threads": torch.get_num_threads(),
              "cuda": torch.cuda.get_device_name(session.device)
              if session.device.type == "cuda" else None}
    return json_safe({"config": config, "device": device, "versions": versions(),
                   "teacher": "baseline", "regime": regime_text(session),
                   "temperature_curve": temperature_curve(stages),
                   "stages": {k: stages[k].to_dict() for k in STAGES if k in stages}})


def make_session(args: argparse.Namespace):
    """The untrained session `explorer run` starts from, seeded by --seed."""
    from ..data.text import DEFAULT_CONTEXT
    from ..session.session import Session

    torch.manual_seed(args.seed)
    context = getattr(args, "context", None)
    return Session(args.dataset, args.model, width=args.width, init=args.init,
                   seed=args.seed, device=args.device, pretrained=False,
                   max_params=getattr(args, "max_params", None),
                   layers=getattr(args, "layers", None), heads=getattr(args, "heads", None),
                   context=DEFAULT_CONTEXT if context is None else int(context),
                   max_train_windows=getattr(args, "train_windows", None))


def run_pipeline(args: argparse.Namespace) -> int:
    """Build the session, run the stages, print the table, write the JSON and export."""
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.stderr.write(f"{RUN_PROG}: error: argument --device: 'cuda' is not available here\n")
        return 2
    session = make_session(args)
    missing = _needs_engine(session, args)
    if missing is not None:
        sys.stderr.write(f"{RUN_PROG}: error: {missing}\n")
        return 2
    progress = Progress()
    try:
        stages = run_stages(session, args, progress)
        stages.update(quantize_stage(session, args))
    except ValueError as err:  # a combination only the session can judge
        progress.done()
        sys.stderr.write(f"{RUN_PROG}: error: {err}\n")
        return 2
    progress.done()
    print(table(stages))
    if "quantized" in stages:
        print(quantized_line(stages["quantized"]))
    regime = regime_text(session)
    if regime is not None:
        print(f"distillation regime: {regime}")
    for line in curve_lines(temperature_curve(stages)):
        print(line)
    if args.json is not None:
        write_text(args.json, json.dumps(report(args, session, stages), indent=1))
        print(f"report written to {args.json}")
    if args.export is not None:
        kind = getattr(args, "export_kind", None) or (
            "shrunk" if args.structured else "masked")
        session.export(args.export, kind=kind)
        print(f"model written to {args.export}")
    return 0
