"""Structured groups of any architecture, found by Torch-Pruning's DependencyGraph.

The graph traces one forward pass and says which output channels are coupled (a residual
add ties every block's output, a depthwise conv ties its input to its output, a flatten
spreads one channel over H*W classifier columns). Each coupled set becomes a `GraphGroup`:
for every parameter it touches, which positions along which dimension belong to which
group channel. Masks zero all of them (producer rows, biases, BatchNorm scale and shift,
consumer columns), so a masked channel adds exactly nothing downstream; shrinking asks the
graph to remove the same channels, which is why shrunk equals masked (tested per model).

Kept out, with the reason recorded (`skipped`): groups that pass through a layer which
normalises across channels (LayerNorm, GroupNorm: removing a channel changes every other
channel's output, masking does not) or that hold an embedding or a free parameter (the
residual stream of a transformer), and the output layer's own outputs. Attention heads are
their own groups (`attention.attention_groups`): the graph sees a head only as channels.
Refused, naming the layer (ValueError): channels that pass through an operation whose
channel mapping the graph cannot know (a custom torch.autograd.Function, which it would
treat as element-wise); tracing itself and its failures live in engine.tracing.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from .plan import _SCORES, group_scores, plan_for  # noqa: F401  (group_scores: API)
from .tracing import CONVS, build_graph, opaque_op

NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


@dataclass(frozen=True)
class Member:
    """Positions `idx` along `dim` of parameter `param` belong to group channels `root`."""

    param: str
    dim: int
    idx: torch.Tensor
    root: torch.Tensor
    rank: bool  # a producer weight: counts in the channel's L1/L2 norm


@dataclass(frozen=True)
class GraphGroup:
    """Channels (or heads) removed together, with every parameter entry they own."""

    name: str
    size: int
    members: tuple[Member, ...]
    kind: str = "channels"  # "channels" (graph) | "heads" (attention)


def _members(module: nn.Module, mname: str, out: bool, idx: torch.Tensor,
             root: torch.Tensor) -> list[Member] | str:
    """The parameter entries one graph dependency touches, or why it cannot be masked."""
    def m(p: str, dim: int, rank: bool) -> Member:
        return Member(f"{mname}.{p}", dim, idx, root, rank)

    has_bias = getattr(module, "bias", None) is not None
    if isinstance(module, nn.Linear):
        if out:
            return [m("weight", 0, True)] + ([m("bias", 0, False)] if has_bias else [])
        return [m("weight", 1, False)]
    if isinstance(module, CONVS):
        depthwise = module.groups == module.in_channels == module.out_channels
        if module.groups != 1 and not depthwise:
            return f"{mname}: grouped convolution (groups={module.groups})"
        if out or depthwise:
            return [m("weight", 0, out)] + ([m("bias", 0, False)] if has_bias else [])
        return [m("weight", 1, False)]
    if isinstance(module, NORMS):
        return [m("weight", 0, False), m("bias", 0, False)] if module.affine else []
    if any(True for _ in module.parameters(recurse=False)):
        return (f"{mname} ({type(module).__name__}) mixes channels or holds the residual "
                "stream: removing one would change the others, masking would not")
    return []


def channel_groups(model: nn.Module, example: torch.Tensor, output_layer: str,
                   exclude: set[str]) -> tuple[list[GraphGroup], list[str]]:
    """(groups, skipped reasons) of every Linear/Conv output the graph can remove.

    `exclude`: module names handled elsewhere (attention projections, pruned as heads).
    """
    graph = build_graph(model, example)
    names = {m: n for n, m in model.named_modules()}
    free = {id(p): n for n, p in model.named_parameters()}
    ignored = [model.get_submodule(output_layer)]
    order = {n: i for i, n in enumerate(names.values())}  # the model's own layer order
    groups, skipped = [], []
    for group in graph.get_all_groups(ignored_layers=ignored,
                                      root_module_types=(*CONVS, nn.Linear)):
        found = _group_members(group, names, free, output_layer, exclude)
        if isinstance(found, str):
            skipped.append(found)
            continue
        size = int(max(int(m.root.max()) for m in found)) + 1 if found else 0
        writers = [m.param.rpartition(".")[0] for m in found if m.rank]
        if size > 1 and writers:  # named by its first writer in the model's own order
            groups.append(GraphGroup(min(writers, key=order.__getitem__), size,
                                     tuple(found)))
    return sorted(groups, key=lambda g: order[g.name]), skipped


def _group_members(group, names: dict[nn.Module, str], free: dict[int, str],  # noqa: ANN001
                   output_layer: str, exclude: set[str]) -> list[Member] | str:
    """The parameter entries of one Torch-Pruning group, or why it is skipped. Raises,
    naming the layer, when the channels pass through an operation the graph cannot read."""
    members: list[Member] = []
    root_name = None
    for item in group.items:
        dep, module = item.dep, item.dep.target.module
        opaque = opaque_op(dep.target)
        if opaque is not None:
            layer = names.get(group.items[0].dep.target.module, "?")
            raise ValueError(
                f"cannot prune the outputs of {layer!r} structurally: they pass through "
                f"{opaque}, which the dependency graph treats as element-wise without "
                "knowing how it maps channels; use unstructured pruning instead")
        if isinstance(module, nn.Parameter):  # a free tensor (ViT's cls_token): the mask
            pname = free.get(id(module), "a parameter")  # would miss it
            return f"group of {root_name}: {pname}: a free parameter on these channels"
        mname = names.get(module) if isinstance(module, nn.Module) else None
        if mname is None:
            continue  # an operation (add, reshape, activation): no parameters
        out = "out_channels" in dep.handler.__name__
        root_name = mname if root_name is None else root_name
        if mname in exclude:
            return f"group of {root_name}: {mname}: attention projection (pruned as whole heads)"
        if mname == output_layer and out:
            return f"group of {root_name}: {mname}: the output layer"
        idx = torch.tensor([int(i) for i in item.idxs], dtype=torch.long)
        root = torch.tensor([int(i) for i in item.root_idxs], dtype=torch.long)
        found = _members(module, mname, out, idx, root)
        if isinstance(found, str):
            return f"group of {root_name}: {found}"
        members += found
    return members if root_name is not None else "an unnamed group"



def graph_masks(params: dict[str, torch.Tensor], groups: list[GraphGroup], sparsity: float,
                norm: str) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Masks that remove round(s * n) lowest-norm channels of every group (one survives).

    Each parameter is cut along at most a few dimensions, so its mask is the outer AND of
    one keep-vector per dimension. The groups' index tensors are laid end to end once per
    group list and the ranks kept until a ranked weight changes (engine.plan), so a slider
    move is a compare and one index_fill per parameter dimension.
    """
    plan = plan_for(groups)
    drop, warnings = plan.dropped(params, sparsity, norm)
    return plan.masks(params, drop), warnings


@torch.no_grad()
def dead_channels(group: GraphGroup, state: dict[str, torch.Tensor]) -> torch.Tensor:
    """Group channels whose every entry is zero (what a shrink removes)."""
    alive = torch.zeros(group.size, dtype=torch.bool)
    for mem in group.members:
        vals = state[mem.param].index_select(mem.dim, mem.idx.to(state[mem.param].device))
        nz = vals.movedim(mem.dim, 0).reshape(len(mem.idx), -1).ne(0).any(1).cpu()
        alive[mem.root[nz]] = True
    dead = torch.nonzero(~alive).flatten()
    return dead[:-1] if len(dead) == group.size else dead  # a layer keeps one channel


def shrink_channels(model: nn.Module, groups: list[GraphGroup],
                    example: torch.Tensor) -> nn.Module:
    """A deep copy with every dead channel of `groups` physically removed by the graph."""
    import torch_pruning as tp

    small = copy.deepcopy(model)
    state = small.state_dict()
    dead = {g.name: dead_channels(g, state) for g in groups if g.kind == "channels"}
    if not any(len(d) for d in dead.values()):
        return small
    graph = build_graph(small, example)
    for name, idxs in dead.items():
        if len(idxs) == 0:
            continue
        module = small.get_submodule(name)
        fn = tp.prune_linear_out_channels if isinstance(module, nn.Linear) \
            else tp.prune_conv_out_channels
        group = graph.get_pruning_group(module, fn, idxs=[int(i) for i in idxs])
        group.prune()
    return small
