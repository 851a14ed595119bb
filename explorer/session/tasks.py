"""What differs between classification, regression and language modelling.

One Session class serves every task; the task object it holds (`session.objective`)
answers the questions whose answers differ: the headline number, the extras a
Snapshot carries, what an epoch record adds, and the distillation defaults. The
language model's own operations (heads, GPT students, shrink) live in
explorer.session.language; the training loop is the same for all (engine.train).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from torch import nn

from ..config import (
    DEFAULT_DISTILL_EPOCHS,
    DEFAULT_STUDENT_WIDTH,
    DEFAULT_TEMPERATURE,
    GPT_MODELS,
    TEXT_DATASETS,
)
from ..data.datasets import Dataset, Split
from ..data.text import TextCorpus
from ..engine.heads import head_sparsity
from ..engine.lm import SAMPLE_PROMPT, generate
from ..engine.metrics import Snapshot
from ..models.gpt import GPT

if TYPE_CHECKING:
    from .settings import Settings
    from .slots import ModelSlot

EVAL_WINDOWS = 256  # validation / test windows of a corpus, evenly spread over the split
LM_TEMPERATURE = 2.0  # default KD temperature for next-character distributions
SAMPLE_CHARS = 60


class Shown(Protocol):
    """What a task reads of the session it serves (explorer.session.session.Session has
    it; a protocol, since the session and its collaborators import this module)."""

    @property
    def objective(self) -> Task: ...
    @property
    def model(self) -> nn.Module: ...
    @property
    def settings(self) -> Settings: ...
    @property
    def slot(self) -> ModelSlot: ...


class Task:
    """Classification: accuracy is the headline; Hinton's KD at T = 4 by default."""

    name = "classification"  # the engine's switch for losses and metrics
    headline = "accuracy"
    is_lm = False
    default_temperature: float | None = DEFAULT_TEMPERATURE
    default_student: float = DEFAULT_STUDENT_WIDTH  # width multiplier (chosen: config)
    default_distill_epochs = DEFAULT_DISTILL_EPOCHS

    def snapshot_extra(self, session: Shown, snap: Snapshot, evaluated: bool) -> dict:
        """Extra readouts for a Snapshot of the selected model (none for images)."""
        return {}

    def epoch_record(self, record: dict) -> dict:
        """The history record of one epoch (the language model adds perplexity)."""
        return record


class Regression(Task):
    """Regression: MSE is the headline; distillation matches the teacher's outputs."""

    name = "regression"
    headline = "mse"
    default_temperature = None  # no temperature without a softmax
    default_student = 0.5  # the regression MLP's students (issue 25 measured classifiers)


class LanguageModelling(Task):
    """A character language model on a corpus: perplexity is the headline."""

    headline = "perplexity"
    is_lm = True
    default_temperature = LM_TEMPERATURE
    default_student = 1.0
    default_distill_epochs = 5

    def __init__(self, corpus: TextCorpus) -> None:
        self.corpus = corpus

    def snapshot_extra(self, session: Shown, snap: Snapshot, evaluated: bool) -> dict:
        model = as_gpt(session.model)
        extra = {"perplexity": perplexity(snap.loss) if evaluated else float("nan"),
                 "heads": head_sparsity(model), "heads_per_layer": model.heads_per_layer(),
                 "lm": True}
        if evaluated and session.settings.sample_in_snapshots:
            extra.update(prompt=SAMPLE_PROMPT,
                         sample=generate(model, self.corpus.vocab, SAMPLE_PROMPT,
                                         SAMPLE_CHARS))
        return extra

    def epoch_record(self, record: dict) -> dict:
        return {**record, "val_perplexity": perplexity(record["val_loss"])}


class OwnLanguageModelling(Task):
    """A transformers causal LM (``hf:PATH``) on a corpus: perplexity is the headline.

    `is_lm` stays False on purpose: the language-model track's own operations (head plans,
    GPT students, shrink, samples) are written for gpt-tiny's GPT class; this model prunes
    (magnitude, and heads and neurons structured) through the dependency graph like any
    `hf:` model, and trains and evaluates as next-character classification at every
    position, like gpt-tiny.
    """

    headline = "perplexity"

    def __init__(self, corpus: TextCorpus) -> None:
        self.corpus = corpus

    def snapshot_extra(self, session: Shown, snap: Snapshot, evaluated: bool) -> dict:
        out = {"perplexity": perplexity(snap.loss) if evaluated else float("nan")}
        bpc = getattr(self.corpus, "bits_per_char", None)  # a model's own tokenizer
        if bpc is not None:
            out["bits_per_char"] = bpc(snap.loss, snap.split) if evaluated else float("nan")
        return out

    def epoch_record(self, record: dict) -> dict:
        return {**record, "val_perplexity": perplexity(record["val_loss"])}


def _not_text(session: Shown, what: str) -> ValueError:
    config = session.slot.config
    return ValueError(f"{what} applies to a language model on text (gpt-tiny); this "
                      f"session holds {config['model']!r} on {config['dataset']!r}")


def require_lm(session: Shown, what: str) -> LanguageModelling:
    """The session's language-modelling task; ValueError when it holds another model."""
    if not isinstance(session.objective, LanguageModelling):
        raise _not_text(session, what)
    return session.objective


def text_corpus(session: Shown, what: str) -> TextCorpus:
    """The corpus of a session on text (gpt-tiny or an hf: causal LM); ValueError else."""
    objective = session.objective
    if isinstance(objective, (LanguageModelling, OwnLanguageModelling)):
        return objective.corpus
    raise _not_text(session, what)


def as_gpt(model: nn.Module) -> GPT:
    """`model` as a GPT, or a ValueError naming what it is."""
    if not isinstance(model, GPT):
        raise ValueError(f"a language model must be a GPT (explorer.models.gpt); got "
                         f"{type(model).__name__}")
    return model


def perplexity(loss: float) -> float:
    """exp(cross-entropy), capped so a diverged loss gives a large finite number."""
    return math.exp(min(loss, 50.0))


def objective_for(data: Dataset, corpus: TextCorpus | None = None) -> Task:
    """The task object for a data set (and its corpus, for text)."""
    if corpus is not None:
        return LanguageModelling(corpus)
    return Regression() if data.task == "regression" else Task()


def is_text_request(dataset: object, model: object) -> bool:
    """Whether Session(dataset, model) means the language-model track."""
    return is_text_model(model) or is_text_data(dataset)


def is_text_model(model: object) -> bool:
    return model in GPT_MODELS or isinstance(model, GPT)


def is_text_data(dataset: object) -> bool:
    if isinstance(dataset, TextCorpus) or (isinstance(dataset, str)
                                           and dataset in TEXT_DATASETS):
        return True
    return isinstance(dataset, (str, Path)) and str(dataset).endswith(".txt")


def check_pairing(dataset: object, model: object) -> None:
    """A text data set needs a language model and a language model needs text."""
    own = isinstance(model, str) and model.startswith("hf:")  # a causal LM? seen on loading
    if is_text_data(dataset) and not (is_text_model(model) or own):
        shown = model if isinstance(model, str) else type(model).__name__
        raise ValueError(f"data set {str(dataset)!r} is text and needs a language model "
                         f"({', '.join(GPT_MODELS)}); got model {shown!r}")
    if is_text_model(model) and dataset is not None and not is_text_data(dataset):
        shown = dataset if isinstance(dataset, str) else type(dataset).__name__
        raise ValueError(f"model {model if isinstance(model, str) else 'GPT'!r} is a "
                         f"language model and needs text ({', '.join(TEXT_DATASETS)} or a "
                         f".txt file); got data set {shown!r}")


def corpus_dataset(corpus: TextCorpus, max_train_windows: int | None = None) -> Dataset:
    """The corpus as windows: all of train (non-overlapping), EVAL_WINDOWS of val/test."""
    splits = {s: Split(*corpus.windows(s, EVAL_WINDOWS if s != "train" else
                                       max_train_windows)) for s in ("train", "val", "test")}
    return Dataset(corpus.name, "classification", splits["train"], splits["val"],
                   splits["test"], (corpus.context,), None, len(corpus.vocab))
