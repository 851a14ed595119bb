"""Attention heads of transformers models as structured groups, and the whole graph view.

A head is head_dim query, key and value rows plus head_dim columns of the output
projection; masking all of them makes the head's output exactly zero (zero query and key
give uniform attention over zero values), and removing them is what shrinking does, after
which the attention module is told its new head count. Two layouts are recognised: separate
``query/key/value`` Linears with ``attention_head_size`` and an ``output.dense`` beside them
(BERT, ViT and their kin), and GPT-2's fused ``c_attn`` (rows q | k | v) with ``c_proj``.

`graph_of(model)` gives every group of a model with an example input (`example_of`: the
zoo's and `models.hf.HFModel`'s `example_input()`, or one the session gave a user's module):
heads, then the dependency graph's channel groups.
It is computed once per model and cached on it (tracing ResNet-18 takes about a second).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from .graph import (
    GraphGroup,
    Member,
    channel_groups,
    dead_channels,
    shrink_channels,
)
from .tracing import last_layer

CACHE = "_explorer_graph"


def _head_members(n: int, hd: int, rows: tuple[str, ...], out: str,
                  fused: bool) -> tuple[Member, ...]:
    idx = torch.arange(n * hd * (3 if fused else 1))
    root = (idx % (n * hd)) // hd
    cols = torch.arange(n * hd)
    members = []
    for name in rows:
        members.append(Member(f"{name}.weight", 0, idx, root, True))
        members.append(Member(f"{name}.bias", 0, idx, root, False))
    members.append(Member(f"{out}.weight", 1, cols, cols // hd, False))
    return tuple(members)


def _layout(model: nn.Module, name: str,
            module: Any) -> tuple[tuple[str, ...], str, int, int, bool] | None:
    """(row projections, output projection, heads, head size, fused) of an attention module."""
    prefix = f"{name}." if name else ""

    def linear(attr: str) -> bool:
        return isinstance(getattr(module, attr, None), nn.Linear)

    if all(linear(p) for p in ("q_proj", "k_proj", "v_proj", "o_proj")) and \
            hasattr(module, "head_dim"):  # ViT in transformers 5, Llama-style blocks
        if module.k_proj.out_features != module.q_proj.out_features:
            return None  # grouped-query attention: heads do not pair one to one
        hd = int(module.head_dim)
        return (tuple(f"{prefix}{p}" for p in ("q_proj", "k_proj", "v_proj")),
                f"{prefix}o_proj", module.q_proj.out_features // hd, hd, False)
    if all(linear(p) for p in ("query", "key", "value")) and \
            hasattr(module, "attention_head_size"):  # BERT and kin
        parent = name.rpartition(".")[0]
        out = f"{parent}.output.dense" if parent else "output.dense"
        try:
            model.get_submodule(out)
        except AttributeError:
            return None
        hd = int(module.attention_head_size)
        return (tuple(f"{prefix}{p}" for p in ("query", "key", "value")), out,
                module.query.out_features // hd, hd, False)
    if linear("c_attn") and hasattr(module, "head_dim") and hasattr(module, "split_size"):
        hd = int(module.head_dim)  # GPT-2 (its Conv1D made Linear by models.hf)
        return ((f"{prefix}c_attn",), f"{prefix}c_proj", int(module.split_size) // hd, hd,
                True)
    return None


def attention_groups(model: nn.Module) -> tuple[list[GraphGroup], set[str]]:
    """(one head group per attention module, the projection modules they own)."""
    groups, owned = [], set()
    params = dict(model.named_parameters())
    for name, module in model.named_modules():
        layout = _layout(model, name, module)
        if layout is None:
            continue
        rows, out, n, hd, fused = layout
        owned |= {*rows, out}
        members = _head_members(n, hd, rows, out, fused)
        if n > 1:
            groups.append(GraphGroup(name, n, tuple(m for m in members if m.param in params),
                                     kind="heads"))
    return groups, owned


EXAMPLE = "_explorer_example"


def example_of(model: nn.Module) -> torch.Tensor | None:
    """The input that traces `model`'s graph: its own `example_input()` (zoo and hf
    models), else the one `give_example` attached (a user's module, from the session's
    data), else None (the graph is unknown)."""
    own = getattr(model, "example_input", None)
    if callable(own):
        return own()
    given = model.__dict__.get(EXAMPLE)
    if given is None:
        return None
    device = next((p.device for p in model.parameters()), given.device)
    return given.to(device)  # the module may have moved since (not a buffer: not moved)


def give_example(model: nn.Module, example: torch.Tensor) -> None:
    """Let the dependency graph trace a module that has no `example_input()`."""
    if not callable(getattr(model, "example_input", None)):
        model.__dict__[EXAMPLE] = example.detach()[:2].clone()


def graph_of(model: Any, example: torch.Tensor | None = None,
             output: str | None = None) -> tuple[list[GraphGroup], list[str]]:
    """(groups, skipped reasons) of `model`, traced on `example` with `output` the layer
    writing the outputs; they default to `example_of(model)` and the model's
    `output_layer()`, else the last Linear/Conv to run (`graph.last_layer`)."""
    cached = model.__dict__.get(CACHE)
    if cached is not None:
        return cached
    example = example_of(model) if example is None else example
    if example is None:
        raise ValueError(f"{type(model).__name__} has no example input to trace its graph")
    if output is None:
        own = getattr(model, "output_layer", None)
        output = own() if callable(own) else last_layer(model, example)
    heads, owned = attention_groups(model)
    channels, skipped = channel_groups(model, example, output, owned)
    result = (heads + channels, skipped)
    if not result[0]:
        raise ValueError(f"no structured group in {type(model).__name__}: "
                         + ("; ".join(skipped[:3]) or f"only {output!r}, the output layer, "
                            "writes channels, and its outputs are the model's"))
    model.__dict__[CACHE] = result
    return result


def _sliced(linear: Any, rows: torch.Tensor | None, cols: torch.Tensor | None) -> nn.Linear:
    w = linear.weight.detach()
    w = w.index_select(0, rows) if rows is not None else w
    w = w.index_select(1, cols) if cols is not None else w
    new = nn.Linear(w.shape[1], w.shape[0], bias=linear.bias is not None).to(w.device)
    with torch.no_grad():
        new.weight.copy_(w)
        if linear.bias is not None:
            b = linear.bias.detach()
            new.bias.copy_(b.index_select(0, rows) if rows is not None else b)
    return new


def _set(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, module)


@torch.no_grad()
def shrink_heads(model: nn.Module, groups: list[GraphGroup]) -> None:
    """Remove every dead head of `groups` from `model` in place (heads kept in order)."""
    state = model.state_dict()
    for group in groups:
        if group.kind != "heads":
            continue
        dead = set(dead_channels(group, state).tolist())
        if not dead:
            continue
        att = model.get_submodule(group.name)
        layout = _layout(model, group.name, att)
        assert layout is not None, group.name  # the groups were made from this layout
        rows, out, _, hd, fused = layout
        keep = torch.tensor([h for h in range(group.size) if h not in dead])
        cols = (keep[:, None] * hd + torch.arange(hd)).flatten()
        width = group.size * hd
        sel = torch.cat([cols + i * width for i in range(3)]) if fused else cols
        for r in rows:
            _set(model, r, _sliced(model.get_submodule(r), sel, None))
        _set(model, out, _sliced(model.get_submodule(out), None, cols))
        for attr in ("num_heads", "num_attention_heads"):  # what forward reads, per layout
            if hasattr(att, attr):
                setattr(att, attr, len(keep))
        for attr in ("split_size", "all_head_size"):
            if hasattr(att, attr):
                setattr(att, attr, len(keep) * hd)


def graph_shrink(model: Any) -> nn.Module:
    """A physically smaller copy of `model`: dead channels (graph) and dead heads removed."""
    groups, _ = graph_of(model)
    example = example_of(model)
    assert example is not None  # graph_of refuses a model without one
    small = shrink_channels(model, groups, example)
    shrink_heads(small, groups)
    small.__dict__.pop(CACHE, None)  # shapes changed: the copy traces its own graph
    return small



@torch.no_grad()
def graph_removed_fraction(model: nn.Module) -> float:
    """Fraction of all parameters a shrink would remove, counted from the dead channels
    without tracing a copy (a slider move on an 11M-parameter model cannot afford one).

    An entry goes when its row or its column belongs to a dead channel or head, which is
    exactly what `graph_shrink` slices away (tests compare the two). Counted per parameter
    dimension through the groups' plan (engine.plan): no full-size mask per move.
    """
    from .plan import plan_for

    groups, _ = graph_of(model)
    return plan_for(groups).removed_fraction(dict(model.named_parameters()))


# Projections whose output rows are heads (gpt-tiny, Llama-style, BERT-style); GPT-2's
# fused c_attn holds q | k | v, each split into heads.
HEAD_ROWS = ("q", "k", "v", "q_proj", "k_proj", "v_proj", "query", "key", "value")


def head_rows(model: nn.Module) -> dict[str, np.ndarray]:
    """For each attention projection weight whose output rows are heads: the head of each
    row (a fused q|k|v projection's three rows of a head share it; a gpt-tiny block with
    removed heads keeps their original numbers). Grouped-query k/v projections have fewer
    heads than q: each is split by the head size. For pictures (engine.network)."""
    out: dict[str, np.ndarray] = {}
    for name, module in model.named_modules():
        hd = getattr(module, "head_dim", getattr(module, "attention_head_size", None))
        if not isinstance(hd, int) or isinstance(hd, bool) or hd < 1:
            continue
        prefix = f"{name}." if name else ""
        ids = getattr(module, "head_ids", None)
        for attr in (*HEAD_ROWS, "c_attn"):
            linear = getattr(module, attr, None)
            if not isinstance(linear, nn.Linear) or linear.out_features % hd:
                continue
            rows = np.arange(linear.out_features)
            fused = attr == "c_attn"
            if fused and linear.out_features % (3 * hd):
                continue
            head = (rows % (linear.out_features // 3)) // hd if fused else rows // hd
            if isinstance(ids, torch.Tensor) and ids.numel() == head.max() + 1:
                head = ids.cpu().numpy()[head]  # gpt-tiny: the heads' own numbers
            out[f"{prefix}{attr}.weight"] = head
    return out
