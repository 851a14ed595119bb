"""Read-only views of a session for front ends: the selected model's network picture and
its one-shot accuracy-vs-sparsity curve, and a language model's text sample.

The curve and the sample are computed on a copy: the session's lock is held only while
the model (and its dense base) is copied, so a slider (or a job) never waits for them, and
the session is never changed. Functions over a session's public state, like
explorer.session.workflows.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..config import PruneConfig
from ..engine.lm import SAMPLE_PROMPT, generate
from ..engine.network import NetworkPicture, NetworkState, network_picture, network_state
from ..engine.prune import MagnitudeIndex, apply_masks, compute_masks
from ..engine.structure import model_groups, structured_masks
from ..engine.train import evaluate
from .tasks import SAMPLE_CHARS, as_gpt, require_lm, text_corpus

if TYPE_CHECKING:
    from .host import Host

CURVE_LEVELS = tuple(float(s) for s in np.round(np.linspace(0.0, 0.98, 15), 3))


@dataclass(frozen=True)
class CurvePoint:
    """One level of the one-shot curve, measured on the validation split."""

    sparsity: float  # pruned fraction of the prunable weights reached
    accuracy: float | None  # None for regression
    loss: float


def network_view(session: Host, picture: NetworkPicture | None = None
                 ) -> tuple[NetworkPicture, NetworkState]:
    """The selected model as a network picture: `picture` (the fixed link set of its dense
    base, computed here when None) and what its masks keep now (a weight at zero is
    pruned)."""
    with session.lock:
        params = session.slot.params()
        if picture is None:
            picture = network_picture(session.slot.base, list(session.slot.prunable))
        # a pruned weight is zero: the weights are their own masks (no pass over them)
        return picture, network_state(picture, {n: params[n] for n in picture.layers})


def oneshot_curve(session: Host, levels: tuple[float, ...] = CURVE_LEVELS,
                  scope: str = "layer", structured: bool = False, norm: str = "l1",
                  stop: threading.Event | None = None) -> list[CurvePoint]:
    """Validation accuracy and loss of the selected model's dense base pruned one-shot to
    each level, computed on a copy (see the module note). A set `stop` ends it early."""
    with session.lock:
        model = copy.deepcopy(session.model)
        base = {name: value.detach().clone() for name, value in session.slot.base.items()}
        prunable, val, task = list(session.slot.prunable), session.data.val, session.data.task
    model.load_state_dict(base)
    params = dict(model.named_parameters())
    index = MagnitudeIndex({name: base[name] for name in prunable})
    groups = model_groups(model)[0] if structured else []
    total = sum(params[name].numel() for name in prunable)
    points: list[CurvePoint] = []
    for level in levels:
        if stop is not None and stop.is_set():
            break
        if structured:
            result = structured_masks(base, groups, level, norm)
        else:
            result = compute_masks(index, PruneConfig(sparsity=level, scope=scope))
        names = dict.fromkeys([*prunable, *result.masks])
        apply_masks({name: params[name] for name in names}, base, result.masks)
        loss, accuracy, _ = evaluate(model, val, task)
        with torch.no_grad():
            nonzero = sum(int(torch.count_nonzero(params[name])) for name in prunable)
        points.append(CurvePoint(1.0 - nonzero / max(total, 1), accuracy, float(loss)))
    return points


def text_sample(session: Host, prompt: str = SAMPLE_PROMPT,
                n_chars: int = SAMPLE_CHARS) -> str:
    """Session.lm.sample() on a copy: the lock is held only while the model is copied, so
    a slider move never waits behind the 60 forward passes of a sample."""
    if not session.is_lm:  # an hf: causal LM with its own tokenizer: n_chars tokens
        corpus = text_corpus(session, "a text sample")
        with session.lock:
            own = copy.deepcopy(session.model)
        return generate(own, corpus.vocab, prompt, n_chars, context=corpus.context)
    vocab = require_lm(session, "a text sample").corpus.vocab
    with session.lock:
        model = as_gpt(copy.deepcopy(session.model))
    return generate(model, vocab, prompt, n_chars)
