"""A big model's slider answer computed on its survivors only: the compact twin.

A structured slider move zeroes whole channels; the masked model still spends every
multiply-add on them. The twin is a structural copy of the model whose tensors are the
masked model's, sliced to the channels that are not dead (engine.plan: every entry of the
channel zero, exactly what a shrink removes), so it computes the same function with about
(1 - s)^2 of the convolution work, without tracing anything per move. It serves a big
model's first answer only (Session.prune's subset): BatchNorm statistics re-estimated on
the twin go back into the model (a dead channel's input is exactly zero, so its mean and
variance are zero there), and the subset is evaluated on it. The full-set answer that
follows measures the masked model itself.

Only plain channel groups whose tensors live in Linear, Conv and affine BatchNorm layers
are sliced; anything else (attention heads, a norm without affine parameters, a layer
that reads its width from an attribute) gives no twin, and a twin whose output differs
from the masked model's on the example input is refused once and for all (`twin_of`).
"""

from __future__ import annotations

import copy
import threading
import weakref
from typing import Any

import torch
from torch import nn

from .plan import GroupPlan, plan_for
from .tracing import CONVS

NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)
BUFFERS = ("running_mean", "running_var")


class Twin:
    """A copy of `model`'s modules whose tensors are loaded, sliced, for one move."""

    def __init__(self, model: nn.Module, plan: GroupPlan) -> None:
        self.plan = plan
        tensors = [*model.parameters(), *model.buffers()]
        memo: dict[int, Any] = {id(t): torch.empty(0) for t in tensors}
        self.module = copy.deepcopy(model, memo)  # the structure only: no tensor copied
        self.module.__dict__.pop("_explorer_graph", None)  # engine.attention's cache
        self.depthwise = {n for n, m in model.named_modules()
                          if isinstance(m, CONVS) and m.groups > 1}
        self.norms = {n for n, m in model.named_modules() if isinstance(m, NORMS)}

    def load(self, model: nn.Module) -> None:
        """Every tensor of `model`, sliced to the channels that are alive in it now."""
        params: dict[str, torch.Tensor] = dict(model.named_parameters())
        kept = self._kept(params)
        twin = dict(self.module.named_modules())
        for name, module in model.named_modules():
            copy_to = twin[name]
            for pname, tensor in module.named_parameters(recurse=False):
                full = f"{name}.{pname}" if name else pname
                copy_to._parameters[pname] = _sliced(  # type: ignore[assignment]
                    tensor.detach(), kept.get(full))
            for bname, buf in module.named_buffers(recurse=False):
                rows = kept.get(f"{name}.weight") if bname in BUFFERS else None
                copy_to._buffers[bname] = buf if rows is None else \
                    _sliced(buf, {0: rows[0]}).clone()
            if name in self.depthwise:
                copy_to.groups = copy_to.weight.shape[0]

    def _kept(self, params: dict[str, torch.Tensor]) -> dict[str, dict[int, torch.Tensor]]:
        """Per cut parameter and dimension, the positions of channels that are not dead."""
        dead = self.plan.dead(params)
        kept: dict[str, dict[int, torch.Tensor]] = {}
        for name, dims in self.plan.cuts.items():
            for dim, cut in dims.items():
                keep = torch.ones(params[name].shape[dim], dtype=torch.bool)
                keep.index_fill_(0, cut.idx[dead[cut.chan]], False)
                kept.setdefault(name, {})[dim] = \
                    torch.nonzero(keep).flatten().to(params[name].device)
        return kept

    @torch.no_grad()
    def norms_back(self, model: nn.Module) -> None:
        """The twin's BatchNorm statistics into `model` (zero on the dead channels)."""
        twin = dict(self.module.named_modules())
        kept = self._kept(dict(model.named_parameters()))
        for name, module in model.named_modules():
            rows = kept.get(f"{name}.weight", {}).get(0)
            if name not in self.norms or rows is None:
                continue  # uncut norms share the model's own buffers
            for bname in BUFFERS:
                buf = getattr(module, bname)
                buf.zero_()
                buf.index_copy_(0, rows, getattr(twin[name], bname))
            module.num_batches_tracked.copy_(twin[name].num_batches_tracked)

    def release(self) -> None:
        """Drop the sliced tensors (they are rebuilt on the next move)."""
        for module in self.module.modules():
            for key in module._parameters:  # plain tensors: the twin is never trained
                module._parameters[key] = None if module._parameters[key] is None else \
                    torch.empty(0)  # type: ignore[assignment]
            for key in module._buffers:
                module._buffers[key] = None if module._buffers[key] is None else \
                    torch.empty(0)


def _sliced(tensor: torch.Tensor, dims: dict[int, torch.Tensor] | None) -> torch.Tensor:
    for dim, rows in (dims or {}).items():
        if len(rows) < tensor.shape[dim]:
            tensor = tensor.index_select(dim, rows)
    return tensor


def _supported(model: nn.Module, plan: GroupPlan) -> bool:
    if any(g.kind != "channels" for g in plan.groups):
        return False
    modules = dict(model.named_modules())
    if any(isinstance(m, NORMS) and not m.affine for m in modules.values()):
        return False  # its statistics belong to channels that no parameter names
    for name in plan.cuts:
        owner = modules.get(name.rpartition(".")[0])
        if isinstance(owner, NORMS) and owner.affine:
            continue
        if not isinstance(owner, (nn.Linear, *CONVS)):
            return False
    return True


@torch.no_grad()
def _same_function(model: nn.Module, twin: Twin, example: torch.Tensor) -> bool:
    was = model.training
    try:
        twin.load(model)
        model.eval()
        twin.module.eval()
        want, got = model(example), twin.module(example)
        return isinstance(want, torch.Tensor) and isinstance(got, torch.Tensor) and \
            got.shape == want.shape and torch.allclose(got, want, rtol=1e-3, atol=1e-4)
    except Exception:  # noqa: BLE001 - any failure means: no twin for this model
        return False
    finally:
        model.train(was)
        twin.release()


# model -> (the plan its twin was built for, the twin or None when refused); shared by
# threads (sessions, studies): read and written under _TWINS_LOCK, a twin built under it
# too (once per model and group list: a second thread waits for it rather than build a
# second one while the first has the model in eval mode).
_TWINS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_TWINS_LOCK = threading.RLock()


def twin_of(model: nn.Module, groups: list, example: torch.Tensor | None) -> Twin | None:
    """The compact twin of `model`, or None: built and checked once per group list, on
    the first move that leaves a dead channel (a dense model needs no twin)."""
    plan = plan_for(groups)
    with _TWINS_LOCK:
        cached = _TWINS.get(model)
        if cached is not None and cached[0] is plan:
            return cached[1]
        if example is None or not _supported(model, plan):
            _TWINS[model] = (plan, None)
            return None
        if not bool(plan.dead(dict(model.named_parameters())).any()):
            return None
        twin = Twin(model, plan)
        kept = twin if _same_function(model, twin, example) else None
        _TWINS[model] = (plan, kept)
        return kept


def refuse_twin(model: nn.Module) -> None:
    """No twin for `model` from now on (its forward failed on one)."""
    with _TWINS_LOCK:
        cached = _TWINS.get(model)
        if cached is not None:
            _TWINS[model] = (cached[0], None)
