"""Tracing a model for the dependency graph, and naming the layer when something fails.

`build_graph` asks Torch-Pruning (imported here only, lazily: kernels start without it)
for the graph of one forward pass; `running_layers` keeps the stack of submodules running,
so a failure in tracing (or in the forward of a shrunk copy, `check_runs`) names the layer
that raised. `opaque_op` says when the graph met an operation whose channel mapping it
cannot know (a user's torch.autograd.Function), which it would treat as element-wise.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torch.autograd.function import BackwardCFunction

CONVS = (nn.Conv1d, nn.Conv2d)


@contextmanager
def running_layers(model: nn.Module) -> Iterator[list[str]]:
    """The names of the submodules running now, innermost last (forward hooks keep it);
    after an exception it still holds the layer that raised."""
    stack: list[str] = []

    def leave(*_: object) -> None:  # a forward hook's non-None return replaces the output
        stack.pop()

    handles = []
    for name, module in model.named_modules():
        if name:
            handles.append(module.register_forward_pre_hook(
                lambda _m, _a, n=name: stack.append(n)))
            handles.append(module.register_forward_hook(leave))
    try:
        yield stack
    finally:
        for handle in handles:
            handle.remove()


def _at(model: nn.Module, stack: list[str]) -> str:
    if not stack:
        return ""
    return f" in layer {stack[-1]!r} ({type(model.get_submodule(stack[-1])).__name__})"


def build_graph(model: nn.Module, example: torch.Tensor) -> Any:  # tp.DependencyGraph
    """Torch-Pruning's graph of `model` traced on `example`; a failure is a ValueError
    naming the layer that was running and the reason."""
    import torch_pruning as tp

    was = model.training
    with running_layers(model) as stack:
        try:  # the graph is traced through autograd: callers may sit inside no_grad
            with torch.enable_grad(), warnings.catch_warnings():
                # Torch-Pruning warns that it would cut free parameters (ViT's cls_token)
                # along their last dimension; channel_groups refuses those groups, by name
                warnings.filterwarnings("ignore", message="Unwrapped parameters detected")
                return tp.DependencyGraph().build_dependency(model.eval(),
                                                             example_inputs=example)
        except Exception as err:  # tracing failures come in many types; name the layer
            raise ValueError(f"the dependency graph cannot trace {type(model).__name__}"
                             f"{_at(model, stack)}: {type(err).__name__}: {err}") from err
        finally:
            model.train(was)


@torch.no_grad()
def last_layer(model: nn.Module, example: torch.Tensor) -> str:
    """The Linear/Conv that runs last on `example`: taken as the layer writing the outputs
    for a module that does not name it (`output_layer()`)."""
    order: list[str] = []
    handles = [m.register_forward_hook(lambda *_, n=name: order.append(n))
               for name, m in model.named_modules() if isinstance(m, (*CONVS, nn.Linear))]
    was = model.training
    try:
        model.eval()(example)
    finally:
        model.train(was)
        for handle in handles:
            handle.remove()
    if not order:
        raise ValueError(f"{type(model).__name__} runs no Linear or Conv layer to prune")
    return order[-1]


def _eval_out(model: nn.Module, example: torch.Tensor) -> torch.Tensor:
    was = model.training
    try:
        return model.eval()(example)
    finally:
        model.train(was)


@torch.no_grad()
def check_runs(model: nn.Module, small: nn.Module, example: torch.Tensor) -> None:
    """The shrunk `small` must still run on `example` and answer in `model`'s shape; a
    forward that hard-codes a width (``x.view(-1, 400)``) breaks, and is refused by layer."""
    with running_layers(small) as stack:
        try:
            out = _eval_out(small, example)
        except Exception as err:  # any failure means the removal broke the forward
            raise ValueError(
                f"removing channels breaks {type(small).__name__}{_at(small, stack)}: "
                f"{type(err).__name__}: {err} (does its forward hard-code a width?); "
                "export kind='masked' or 'zeros' instead") from err
    want = getattr(_eval_out(model, example), "shape", None)
    got = getattr(out, "shape", None)
    if got != want:  # e.g. a fixed-width view that folds the batch instead of failing
        raise ValueError(f"removing channels changes the output shape of "
                         f"{type(small).__name__} from {want} to {got}")


def opaque_op(node: Any) -> str | None:  # node: a Torch-Pruning graph Node
    """Why the graph cannot know how an operation maps channels, or None when it can."""
    grad_fn = node.grad_fn
    if isinstance(grad_fn, BackwardCFunction):  # a torch.autograd.Function of the user's
        return f"the custom autograd function {type(grad_fn).__name__}"
    if grad_fn is not None and not hasattr(grad_fn, "name"):
        return f"the unknown operation {type(grad_fn).__name__}"
    return None
