"""Oracles for the zoo's structured pruning, which goes through the dependency graph.

Two independent checks that fail when coupling is wrong: the groups must own exactly the
(parameter, dimension) pairs written out by hand below from the models' code (a residual
add ties the writers of one stream, a flatten spreads a channel over H*W columns), and a
50% shrink must leave exactly the parameter count of Torch-Pruning's own MagnitudePruner
at the same per-layer ratio.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

tp = pytest.importorskip("torch_pruning")

from explorer.engine.graph import dead_channels  # noqa: E402
from explorer.engine.structure import (  # noqa: E402
    count_params,
    model_groups,
    shrink_model,
    structured_masks,
)
from explorer.models.zoo import build_model  # noqa: E402


def out(*layers: str) -> set[tuple[str, int]]:
    """A layer's output side: weight rows and, where it has one, its bias."""
    return {(f"{n}.{p}", 0) for n in layers for p in ("weight", "bias")}


def into(*layers: str) -> set[tuple[str, int]]:
    return {(f"{n}.weight", 1) for n in layers}


def rows(*layers: str) -> set[tuple[str, int]]:  # convs without bias
    return {(f"{n}.weight", 0) for n in layers}


EXPECTED = {
    "mlp": {"layers.0": out("layers.0") | into("layers.1"),
            "layers.1": out("layers.1") | into("layers.2")},
    "lenet5": {"conv1": out("conv1") | into("conv2"), "conv2": out("conv2") | into("fc1"),
               "fc1": out("fc1") | into("fc2"), "fc2": out("fc2") | into("fc3")},
    "resnet-small": {
        # the stem and block1 add into one stream, read by block1 and both block2 paths
        "stem": rows("stem", "block1.conv2") | out("stem_bn", "block1.bn2")
        | into("block1.conv1", "block2.conv1", "block2.shortcut"),
        "block1.conv1": rows("block1.conv1") | out("block1.bn1") | into("block1.conv2"),
        "block2.conv1": rows("block2.conv1") | out("block2.bn1") | into("block2.conv2"),
        "block2.conv2": rows("block2.conv2", "block2.shortcut")
        | out("block2.bn2", "block2.shortcut_bn") | into("fc")},
}


def zoo(name: str, seed: int = 1) -> nn.Module:
    return build_model(name, (64,), 10, image_shape=(1, 8, 8), init="he", seed=seed)


@pytest.mark.parametrize("name", ["mlp", "lenet300", "lenet5", "resnet-small"])
def test_groups_own_exactly_the_hand_written_coupled_entries(name):
    model = zoo(name)
    groups, known = model_groups(model)
    expected = EXPECTED["mlp" if name == "lenet300" else name]
    assert known
    assert {g.name: {(m.param, m.dim) for m in g.members} for g in groups} == expected
    for group in groups:  # every entry of every channel, once: H*W columns after a flatten
        for mem in group.members:
            per_channel = model.get_parameter(mem.param).shape[mem.dim] // group.size
            assert sorted(mem.idx.tolist()) == list(range(group.size * per_channel))
            assert torch.equal(torch.bincount(mem.root, minlength=group.size),
                               torch.full((group.size,), per_channel))


@pytest.mark.parametrize("name", ["lenet5", "resnet-small"])
def test_coupled_writers_lose_the_same_channels(name):
    """The stem and block1.conv2 (and block2's two paths) drop the same channel indices."""
    model = zoo(name)
    params = {n: p.detach() for n, p in model.named_parameters()}
    groups, _ = model_groups(model)
    masks = structured_masks(params, groups, 0.5).masks
    for group in groups:
        gone = [~masks[m.param].flatten(1).any(1) for m in group.members if m.rank]
        assert all(torch.equal(g, gone[0]) for g in gone) and int(gone[0].sum()) > 0


@pytest.mark.parametrize("name", ["mlp", "lenet5", "resnet-small"])
def test_shrink_leaves_torch_prunings_own_parameter_count(name):
    """Torch-Pruning's MagnitudePruner at 50% per layer (output layer kept) ends with the
    same number of parameters as masking 50% of every group and shrinking."""
    model = zoo(name)
    params = dict(model.named_parameters())
    result = structured_masks({n: p.detach() for n, p in params.items()},
                              model_groups(model)[0], 0.5)
    with torch.no_grad():
        for pname, mask in result.masks.items():
            params[pname].mul_(mask)
    ours = count_params(shrink_model(model))
    theirs = zoo(name)
    pruner = tp.pruner.MagnitudePruner(
        theirs, theirs.example_input(), importance=tp.importance.MagnitudeImportance(p=1),
        pruning_ratio=0.5, ignored_layers=[theirs.get_submodule(theirs.output_layer())])
    pruner.step()
    assert ours == count_params(theirs) < count_params(zoo(name))


def test_dead_channels_need_every_entry_zero():
    """A zero producer row alone is not a dead channel: its consumer column still reads."""
    model = zoo("mlp")
    group = model_groups(model)[0][0]
    with torch.no_grad():
        model.layers[0].weight[3] = 0
        model.layers[0].bias[3] = 0
    assert dead_channels(group, model.state_dict()).tolist() == []
    with torch.no_grad():
        model.layers[1].weight[:, 3] = 0
    assert dead_channels(group, model.state_dict()).tolist() == [3]
