"""The seeded evaluation subsets a big model's first answer runs on (a slider move, a bits
move): how many rows, and which. Typed against `Measured`, the few session members they
read, so explorer.session.quant and .core share them without importing each other."""

from __future__ import annotations

from typing import Protocol

import torch
from torch import nn

from ..config import FAST_EVAL_MIN_PARAMS, FAST_EVAL_SAMPLES, LM_FAST_EVAL_WINDOWS
from ..data.datasets import Dataset, Split


class Headlined(Protocol):
    """A task as far as the subsets care: its headline metric (explorer.session.tasks)."""

    @property
    def headline(self) -> str: ...


class Measured(Protocol):
    """What the subsets read of a session (explorer.session.session.Session has it)."""

    @property
    def model(self) -> nn.Module: ...
    @property
    def data(self) -> Dataset: ...
    @property
    def seed(self) -> int: ...
    @property
    def is_lm(self) -> bool: ...
    @property
    def objective(self) -> Headlined: ...


def quick_subset(session: Measured, split: str = "val") -> int | None:
    """FAST_EVAL_SAMPLES for a model of FAST_EVAL_MIN_PARAMS or more whose `split` is
    larger than that (a slider move's first answer), else None (evaluate everything)."""
    n = sum(p.numel() for p in session.model.parameters())
    size = len(session.data.split(split))
    # a language model's rows are windows of many tokens: far fewer make a first answer
    lm = session.is_lm or session.objective.headline == "perplexity"
    rows = LM_FAST_EVAL_WINDOWS if lm else FAST_EVAL_SAMPLES
    return rows if n >= FAST_EVAL_MIN_PARAMS and size > rows else None


def subset_split(session: Measured, split: str, n: int) -> Split:
    """The first `n` of a seeded permutation of `split`: the same rows every move."""
    whole = session.data.split(split)
    gen = torch.Generator().manual_seed(session.seed)
    idx = torch.randperm(len(whole), generator=gen)[:n].sort().values.to(whole.x.device)
    return Split(whole.x[idx], whole.y[idx])
