"""Teacher and student side by side: distillation and the metrics that do not flatter.

Functions over a session's public state; Session exposes them as distill(),
train_student_alone(), train_student_hard(), soft_targets(), predictions() and
measure_slot(). A new student goes into its own ModelSlot ("student", "student_alone" or
"student_hard") as that slot's dense original; a classifier's students train under a
regime (explorer.engine.regime: labelled fraction, a class left out).
"""

from __future__ import annotations

import copy
import math
import threading
import warnings
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..config import DEFAULT_LABELLED, TrainConfig, check_choice
from ..engine import measure as m
from ..engine.distill import (
    REGRESSION_NO_TEMPERATURE,
    agreement,
    check_distill_args,
    check_student,
    kd_loss,
    regression_kd_loss,
    soft_view,
    student_from,
)
from ..engine.lm import teacher_kd_loss
from ..engine.metrics import Snapshot
from ..engine.regime import (
    Regime,
    SubsetSplit,
    hard_targets,
    masked_targets,
    regime_kd_loss,
    select_rows,
    subset,
)
from ..engine.train import DIVERGED, Event, LossFn, evaluate
from ..validate import (
    check_batches,
    check_bool,
    check_index,
    check_job_hooks,
    check_model,
    check_seed,
    check_trainable,
)
from . import core
from .slots import ModelSlot, clone_state
from .tasks import as_gpt

if TYPE_CHECKING:
    from .host import Host


def build_student(session: Host, student: float | nn.Module,
                  seed: int) -> tuple[nn.Module, dict]:
    """A student of the teacher's architecture at width `student`, or a copy of a module."""
    teacher = session.slots.model("teacher")
    tconf = session.slots["teacher"].config
    data = session.data
    if isinstance(student, nn.Module):
        check_model(student, type(student).__name__)
    model = student_from(teacher, student, model_name=tconf["model"],
                         input_shape=data.input_shape, n_outputs=data.n_outputs,
                         teacher_width=float(tconf.get("width", 1.0)),
                         init=tconf.get("init", "default"), seed=seed,
                         image_shape=data.image_shape if tconf["model"] != "mlp" else None)
    model.to(session.device)
    check_student(model, teacher, data.val.x)
    width = None if isinstance(student, nn.Module) else float(student)
    config = {**tconf, "model": tconf["model"] if width is not None
              else type(model).__name__, "student_width": width}
    return model, config


def resolve_regime(session: Host, labelled: float | None, leave_out: int | None,
                   seed: int | None = None) -> Regime:
    """The regime a student trains under (None: the defaults, explorer.config).

    Classification only: regression and language models keep every label and every class
    (ValueError if asked otherwise). The labelled rows are drawn with the student's seed
    (default: the session's seed + 1, as the student's init), so the three students of one
    seed see the same labelled images and seeds repeat the draw too.
    """
    # One label per example: a text session (gpt-tiny, or an hf: causal LM whose targets
    # are token windows) has none to hold back.
    classification = (session.data.task == "classification" and not session.is_lm
                      and session.data.train.y.dim() == 1)
    if labelled is None:
        labelled = DEFAULT_LABELLED if classification else 1.0
    if not classification and (labelled != 1.0 or leave_out is not None):
        raise ValueError(f"labelled={labelled!r} and leave_out={leave_out!r} apply to "
                         "classification only; this session's task keeps every label "
                         "(labelled=1, leave_out=None)")
    seed = session.seed + 1 if seed is None else check_seed("seed", seed)
    regime = Regime(labelled, leave_out, seed=seed)
    if leave_out is not None and leave_out >= session.data.n_outputs:
        raise ValueError(f"leave_out must be a class in 0..{session.data.n_outputs - 1}, "
                         f"got {leave_out}")
    return regime


def regime_training(session: Host, regime: Regime, kind: str, config: TrainConfig,
                    kd: tuple[float, float, bool] | None = None
                    ) -> tuple[SubsetSplit | None, TrainConfig, LossFn | None]:
    """(training rows, budget, loss) of a student of `kind` ("alone", "hard", "distill")
    under `regime`; None rows for the plain regime (the whole training split).

    Every student gets the same number of optimizer steps: `config.epochs` passes over
    the transfer set (or `config.steps`), so the student alone cycles its few labelled
    rows more often rather than train for fewer steps. `kd` is (T, alpha, t_squared).
    """
    if regime.full:
        return None, config, None
    train = session.data.train
    rows = select_rows(regime, train.y, session.data.n_outputs)
    steps = config.steps or config.epochs * math.ceil(len(rows.transfer) / config.batch_size)
    config = replace(config, steps=steps)
    if kind == "alone":
        return subset(train, rows.labelled), config, None
    teacher = session.slots.model("teacher")
    with session.lock:
        logits = session.students.teacher_cache.outputs(teacher, "train", train.x)
    if kind == "hard":
        return subset(train, rows.transfer, hard_targets(train.y, rows.labelled, logits)), \
            config, None
    assert kd is not None
    targets = masked_targets(train.y, rows.labelled)
    rows_split = subset(train, rows.transfer, targets)
    return rows_split, config, regime_kd_loss(rows_split, logits, targets, *kd)


def run_student(session: Host, slot: str, student: float | nn.Module, loss_fn: LossFn | None,
                train_config: TrainConfig, seed: int | None,
                stop: threading.Event | None, on_event: Callable[[Event], None] | None,
                record: dict, train: SubsetSplit | None = None) -> Snapshot:
    """Train a new student with `loss_fn` (None: labels only) and install it in `slot`.

    The same job loop as Session.train (Session.jobs.run_training). Atomic: after an
    exception or a divergence no student is installed and its curves are removed.
    `session` is a Session (whose build_student knows the language model's students).
    `train` replaces the training split (see regime_training).
    """
    seed = session.seed + 1 if seed is None else check_seed("seed", seed)
    check_job_hooks(stop, on_event)
    with session.jobs.job(f"training the {slot.replace('_', ' ')}"):
        model, config = session.students.build(student, seed=seed)
        check_trainable(model, "student")
        check_batches(model, len(session.data.train), train_config.batch_size)
        size_note = student_size_warning(model, session.slots.model("teacher"))
        init = clone_state(model.state_dict())
        with session.lock:
            session.jobs.started += 1
            job_id, steps_before = session.jobs.started, session.jobs.total_steps
        try:
            ended = session.jobs.run_training(model, train_config, kind=slot, masks=None,
                                         seed=seed, stop=stop, on_event=on_event,
                                         loss_fn=loss_fn, train=train)
        except BaseException:
            with session.lock:
                session.jobs.forget(job_id)
                session.jobs.total_steps = steps_before
            raise
        with session.lock:
            if ended is not None and ended.reason.startswith(DIVERGED):
                session.jobs.forget(job_id)
                session.jobs.total_steps = steps_before
                return session.snapshot()
            session.slots[slot] = ModelSlot(model, config["model"], {**config, **record},
                                            init)
    snap = session.measure("val", slot=slot, full=False)
    return snap if size_note is None else replace(snap, warnings=(*snap.warnings, size_note))


def student_size_warning(student: nn.Module, teacher: nn.Module) -> str | None:
    """A warning (also raised as a UserWarning, before training) when the student has more
    parameters than its teacher: distillation is meant to train a smaller model."""
    n_student = sum(p.numel() for p in student.parameters())
    n_teacher = sum(p.numel() for p in teacher.parameters())
    if n_student <= n_teacher:
        return None
    note = (f"warning: the student has {n_student / max(n_teacher, 1):.1f}x the teacher's "
            f"parameters ({n_student:,} vs {n_teacher:,}); distillation usually trains a "
            "smaller model")
    warnings.warn(note, UserWarning, stacklevel=3)
    return note


def distill(session: Host, student: float | nn.Module, temperature: float | None,
            alpha: float, train_config: TrainConfig, t_squared: bool, seed: int | None,
            stop: threading.Event | None,
            on_event: Callable[[Event], None] | None,
            regime: Regime | None = None) -> Snapshot:
    """Distil the teacher slot's current model into a new student (slot "student").

    See Session.distill for the arguments. Images: teacher outputs cached by sample
    index; text: the teacher's logits per batch of windows (a cache of every window's
    logits would cost N * T * V floats).
    """
    objective = session.objective
    if objective.default_temperature is None and temperature is not None:
        raise ValueError(REGRESSION_NO_TEMPERATURE)
    temperature = objective.default_temperature if temperature is None else temperature
    if temperature is not None:
        temperature, alpha = check_distill_args(temperature, alpha)
    check_bool("t_squared", t_squared)
    teacher = session.slots.model("teacher")
    record: dict = {"temperature": temperature, "alpha": alpha, "t_squared": t_squared,
                    "epochs": train_config.epochs}
    regime = Regime() if regime is None else regime
    loss_fn: LossFn
    if not regime.full:
        assert temperature is not None  # resolve_regime keeps regimes to classification
        train, config, regime_loss = regime_training(
            session, regime, "distill", train_config, (temperature, alpha, t_squared))
        assert regime_loss is not None
        record["teacher"] = session.students.teacher_cache.key
        return run_student(session, "student", student, regime_loss, config, seed, stop,
                           on_event, {"distill": record, "regime": regime.to_dict()}, train)
    if objective.is_lm and temperature is not None:
        loss_fn = teacher_kd_loss(as_gpt(teacher), temperature, alpha, t_squared)
    else:
        cache = session.students.teacher_cache
        with session.lock:
            targets = cache.outputs(teacher, "train", session.data.train.x)
        record["teacher"] = cache.key

        def loss_fn(out: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
                    index: torch.Tensor) -> torch.Tensor:  # cache rows by sample index
            if temperature is None:
                return regression_kd_loss(out, targets[index], y, alpha)
            return kd_loss(out, targets[index], y, temperature, alpha, t_squared)

    return run_student(session, "student", student, loss_fn, train_config, seed, stop,
                       on_event, {"distill": record, "regime": regime.to_dict()})


def slot_outputs(session: Host, slots: tuple[str, ...],
                 x: torch.Tensor) -> list[torch.Tensor]:
    """Each slot's outputs on `x` in eval mode; every model's mode is restored."""
    outs = []
    for slot in slots:
        model = session.slots.model(slot)
        was_training = model.training
        model.eval()
        with torch.inference_mode():
            outs.append(model(x))
        model.train(was_training)
    return outs


def soft_targets(session: Host, index: int, temperature: float = 4.0,
                 student: str | None = "student") -> dict:
    """Teacher's and student's softened probabilities for validation example `index`."""
    if session.data.task != "classification":
        raise ValueError(REGRESSION_NO_TEMPERATURE)
    if student is not None:
        check_choice("student", student, ("student", "student_alone"))
    index = check_index("index", index, len(session.data.val))
    slots = ("teacher",) if student is None else ("teacher", student)
    with session.lock:
        outs = [out[0] for out in
                slot_outputs(session, slots, session.data.val.x[index:index + 1])]
    if student is None:
        view = {**soft_view(outs[0], outs[0], temperature), "student": None, "kl": None}
    else:
        view = soft_view(outs[0], outs[1], temperature)
    return {"index": index, "label": int(session.data.val.y[index]),
            "student_slot": student, **view}


def measure_slot(session: Host, slot: str, split: str = "val", *, full: bool = True,
                 latency: bool = False, reference: torch.Tensor | None = None) -> Snapshot:
    """Session.measure() for any slot; the selection is restored afterwards."""
    with session.lock:
        home = session.selected
        if slot != home:
            session.select(slot)
        try:
            snap = core.engine_snapshot(session, split)
            data = session.data.split(split)
            model = session.model
            _, _, outputs = evaluate(model, data, session.data.task)
            if reference is None and slot != "teacher":
                reference = session.students.teacher_cache.outputs(session.slots.model("teacher"),
                                                          split, data.x)
            extra: dict = {"model_slot": slot, "teacher_agreement": None,
                           "bytes_shrunk": session.pruning.bytes_shrunk()}
            if reference is not None and session.data.task == "classification":
                extra["teacher_agreement"] = agreement(outputs, reference)
            if full:
                extra.update(m.model_metrics(model, data.x, data.y, session.data.task,
                                             session.data.n_outputs, outputs, snap.sparsity,
                                             latency=latency,
                                             shrunk=extra["bytes_shrunk"] is not None))
                if latency:
                    extra.update(variant_latencies(session, extra, data.x))
            else:
                extra.update({"bytes_dense": m.bytes_dense(model),
                              "bytes_sparse": m.bytes_sparse(model),
                              "mse": None if session.data.task == "classification"
                              else snap.loss})
            return replace(snap, extra={**snap.extra, **extra})
        finally:
            if session.selected != home:
                session.select(home)


def variant_latencies(session: Host, extra: dict, x: torch.Tensor) -> dict:
    """Beside the masked model's latency (in `extra`): the dense base's (the same model
    unmasked, so the page shows that masking alone buys no time) and, under structured
    pruning, the shrunk copy's (what removing neurons buys on this machine)."""
    out = {"latency_dense_ms_b1": extra.get("latency_ms_b1"),
           "latency_dense_ms_b256": extra.get("latency_ms_b256"),
           "latency_shrunk_ms_b1": None, "latency_shrunk_ms_b256": None}
    slot = session.slot
    if slot.masks is not None or slot.quant is not None:
        dense = copy.deepcopy(slot.model)
        dense.load_state_dict(slot.base)
        out["latency_dense_ms_b1"] = m.latency_ms(dense, x, 1)
        out["latency_dense_ms_b256"] = m.latency_ms(dense, x, 256)
    if extra.get("bytes_shrunk") is not None:
        small = session.shrink()
        out["latency_shrunk_ms_b1"] = m.latency_ms(small, x, 1)
        out["latency_shrunk_ms_b256"] = m.latency_ms(small, x, 256)
    return out


@torch.no_grad()
def predictions(session: Host, split: str, limit: int) -> tuple:
    """(targets, outputs) of the selected model on `split` as NumPy, at most `limit` rows."""
    with session.lock:
        data = session.data.split(split)
        _, _, outputs = evaluate(session.model, data, session.data.task)
        return (data.y[:limit].cpu().numpy(), outputs[:limit].cpu().numpy())
