"""One-shot calibration pruning of a model's Linears: Wanda or SparseGPT, block by block.

`one_shot` is a generator (the caller drives it, as Torch-Pruning's interactive step): it
yields progress after each block, so a job can publish progress and check Stop between
blocks. Within a block, `stopped` is asked before each calibration batch, before each
layer and after each column block (SparseGPT), and a True answer raises InterruptedError
there: one block of a big model takes seconds, and Stop should not wait for it.
Weights are changed in place; the caller keeps the dense copy for Undo (and puts it back
on InterruptedError).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .calibrate import InputStats, linear_groups, module_of, prune_sequentially
from .criteria import check_groups, criterion_mask, parse_pattern
from .sparsegpt import DEFAULT_BLOCKSIZE, DEFAULT_DAMP, sparsegpt_prune


@dataclass(frozen=True)
class OneShotProgress:
    """After block `done` of `total`: the masks of every Linear pruned so far. An event
    from within a layer (SparseGPT, per column block) names `layer` and its `column` of
    `columns` done, and carries no masks (`done` blocks are finished before it)."""

    done: int
    total: int
    masks: dict[str, torch.Tensor]
    layer: str = ""
    column: int = 0
    columns: int = 0


def linear_names(model: nn.Module, names: Sequence[str]) -> list[str]:
    """The weights in `names` that belong to an nn.Linear (calibration criteria's reach)."""
    modules = dict(model.named_modules())
    return [n for n in names if isinstance(modules.get(module_of(n)), nn.Linear)]


def one_shot(model: nn.Module, names: Sequence[str], batches: Sequence[torch.Tensor],
             criterion: str, sparsity: float, pattern: str = "unstructured",
             blocksize: int = DEFAULT_BLOCKSIZE, damp: float = DEFAULT_DAMP,
             forward: Callable[[torch.Tensor], object] | None = None,
             on_columns: Callable[[OneShotProgress], None] | None = None,
             stopped: Callable[[], bool] | None = None,
             ) -> Iterator[OneShotProgress]:
    """Sequential Wanda (mask only) or SparseGPT (mask and update) of `names`' Linears.

    `on_columns` gets the within-block events: after each layer (Wanda) or each column
    block of a layer (SparseGPT). `stopped() -> True` raises InterruptedError at the next
    of those points (or before the next calibration batch)."""
    n, m = parse_pattern(pattern)

    def check() -> None:
        if stopped is not None and stopped():
            raise InterruptedError("stopped")

    run = forward or model

    def checked_forward(ids: torch.Tensor) -> object:
        check()  # a capture runs every calibration batch through the earlier blocks
        return run(ids)

    modules = dict(model.named_modules())
    targets = linear_names(model, names)
    for wname in targets:
        check_groups(wname, modules[module_of(wname)].weight.shape[1], m)

    total = len(linear_groups(model, targets))
    finished = [0]  # blocks done, for the within-layer events

    def reporter(name: str) -> Callable[[int, int], None]:
        def report(column: int, columns: int) -> None:
            if on_columns is not None:
                on_columns(OneShotProgress(finished[0], total, {}, name, column, columns))
            check()
        return report

    def wanda(name: str, w: torch.Tensor, st: InputStats
              ) -> tuple[torch.Tensor, torch.Tensor]:
        check()
        mask = criterion_mask("wanda", w, sparsity, pattern, st.norms())
        reporter(name)(w.shape[1], w.shape[1])
        return w * mask, mask

    def sparsegpt(name: str, w: torch.Tensor, st: InputStats
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        check()
        return sparsegpt_prune(w, st.gram(), sparsity, n, m, blocksize, damp,
                               reporter(name))

    if criterion not in ("wanda", "sparsegpt"):
        raise ValueError(f"one-shot criterion must be wanda or sparsegpt; got {criterion!r}")
    fn = wanda if criterion == "wanda" else sparsegpt
    for done, _, masks in prune_sequentially(model, targets, batches, fn,
                                                 hessian=criterion == "sparsegpt",
                                                 forward=checked_forward):
        finished[0] = done
        yield OneShotProgress(done, total, dict(masks))
