"""Calibration statistics of Linear inputs, and one-shot pruning block by block.

The papers' sequential form (SparseGPT; Wanda's released code): the model is cut into its
transformer blocks; for block b the calibration inputs of its Linears are computed by
the model whose blocks before b are already pruned, the block's Linears are pruned from
those statistics, then block b+1 follows. Only per-layer statistics are held (an input
norm vector, or a cols x cols Hessian), never the activations: one block at a time.
Linears outside every block (an untied output head) form one last group.

Each capture runs the model forward on the calibration batches and stops at the end of
the block (an exception from a forward hook), so no block's call signature is needed
and any `forward(ids) -> logits` model works (gpt-tiny, an hf: causal LM).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn

STATS = ("norms", "hessian")


def module_of(weight_name: str) -> str:
    """"fc.weight" -> "fc"; a bare "weight" is the root module ("")."""
    return weight_name.rsplit(".", 1)[0] if "." in weight_name else ""


class _Stop(Exception):
    """Raised by a hook once the block of interest has run."""


@dataclass
class InputStats:
    """Running statistics of one Linear's inputs over calibration tokens."""

    columns: int
    hessian: bool
    tokens: int = 0
    sq: torch.Tensor | None = None  # sum over tokens of x_j^2
    xtx: torch.Tensor | None = None  # sum over tokens of x x^T (when hessian)

    def add(self, x: torch.Tensor) -> None:
        x = x.detach().reshape(-1, self.columns).to(torch.float64)
        sq = (x ** 2).sum(0)
        self.sq = sq if self.sq is None else self.sq + sq
        if self.hessian:
            xtx = x.T @ x
            self.xtx = xtx if self.xtx is None else self.xtx + xtx
        self.tokens += len(x)

    def norms(self) -> torch.Tensor:
        """||X_j||_2 over all calibration tokens (Wanda's activation term)."""
        assert self.sq is not None, "no calibration input reached this layer"
        return self.sq.sqrt()

    def gram(self) -> torch.Tensor:
        """X^T X over all calibration tokens (SparseGPT's H up to a constant)."""
        assert self.xtx is not None, "no calibration input reached this layer"
        return self.xtx


def blocks_of(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The transformer blocks, in order: the longest ModuleList holding Linears."""
    best: list[tuple[str, nn.Module]] = []
    for name, mod in model.named_modules():
        if isinstance(mod, nn.ModuleList) and len(mod) > len(best):
            kids = [(f"{name}.{i}", child) for i, child in enumerate(mod)]
            if all(any(isinstance(x, nn.Linear) for x in c.modules()) for _, c in kids):
                best = kids
    return best


def linear_groups(model: nn.Module, names: Sequence[str]) -> list[list[str]]:
    """`names` (qualified weight names of Linears) grouped by block, in block order;
    those in no block last, as one group."""
    blocks = blocks_of(model)
    groups: list[list[str]] = [[] for _ in blocks]
    rest: list[str] = []
    for wname in names:
        mod_name = module_of(wname)
        for i, (prefix, _) in enumerate(blocks):
            if mod_name.startswith(prefix + "."):
                groups[i].append(wname)
                break
        else:
            rest.append(wname)
    return [g for g in groups if g] + ([rest] if rest else [])


def _stop_module(model: nn.Module, group: list[str]) -> nn.Module | None:
    """The block containing `group`, after which capture may stop; None = run it all."""
    for prefix, block in blocks_of(model):
        if all(w.startswith(prefix + ".") for w in group):
            return block
    return None


@torch.no_grad()
def capture(model: nn.Module, group: list[str], batches: Sequence[torch.Tensor],
            hessian: bool, forward: Callable[[torch.Tensor], object] | None = None
            ) -> dict[str, InputStats]:
    """InputStats of every Linear in `group` over the calibration `batches`."""
    forward = forward or model
    modules = dict(model.named_modules())
    stats: dict[str, InputStats] = {}
    handles = []
    for wname in group:
        mod = modules[module_of(wname)]
        assert isinstance(mod, nn.Linear), f"{wname} is not a Linear"
        st = stats[wname] = InputStats(mod.in_features, hessian)
        handles.append(mod.register_forward_pre_hook(
            lambda _m, args, st=st: st.add(args[0])))
    stop = _stop_module(model, group)
    if stop is not None:
        def halt(*_: object) -> None:
            raise _Stop
        handles.append(stop.register_forward_hook(halt))
    was_training = model.training
    model.eval()
    try:
        for ids in batches:
            try:
                forward(ids)
            except _Stop:
                pass
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return stats


PruneFn = Callable[[str, torch.Tensor, InputStats], tuple[torch.Tensor, torch.Tensor]]


@torch.no_grad()
def prune_sequentially(model: nn.Module, names: Sequence[str],
                       batches: Sequence[torch.Tensor], prune: PruneFn, hessian: bool,
                       forward: Callable[[torch.Tensor], object] | None = None,
                       ) -> Iterator[tuple[int, int, dict[str, torch.Tensor]]]:
    """Prune block by block; yield (groups done, groups in all, masks so far).

    `prune(name, weight, stats) -> (new weight, kept mask)` is applied in place to each
    Linear of a block before the next block's statistics are taken.
    """
    params = dict(model.named_parameters())
    groups = linear_groups(model, names)
    masks: dict[str, torch.Tensor] = {}
    for done, group in enumerate(groups, 1):
        stats = capture(model, group, batches, hessian, forward)
        for wname in group:
            new, mask = prune(wname, params[wname].detach(), stats[wname])
            params[wname].copy_(new)
            masks[wname] = mask
        yield done, len(groups), masks


def dense_norms(model: nn.Module, names: Sequence[str], batches: Sequence[torch.Tensor],
                forward: Callable[[torch.Tensor], object] | None = None
                ) -> dict[str, torch.Tensor]:
    """||X_j||_2 of every Linear in `names` on the dense model, in one forward pass per
    batch (the slider's Wanda: computed once per calibration set and cached)."""
    stats = capture(model, list(names), batches, hessian=False, forward=forward)
    return {k: v.norms() for k, v in stats.items()}
