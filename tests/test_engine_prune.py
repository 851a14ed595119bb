"""Pruning modes against torch.nn.utils.prune, structured pruning and physical shrink."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn.utils import prune as tprune

from explorer import PruneConfig, Session
from explorer.engine.prune import MagnitudeIndex, apply_masks, compute_masks, prunable_names
from explorer.engine.structure import count_params, model_groups, shrink_model, structured_masks
from explorer.models.zoo import MLP, build_model


def _weights(model: nn.Module) -> dict[str, torch.Tensor]:
    named = dict(model.named_parameters())
    return {n: named[n].detach().clone() for n in prunable_names(model)}


def _torch_modules(model: nn.Module) -> list[tuple[nn.Module, str]]:
    return [(model.get_submodule(n.rpartition(".")[0]), "weight") for n in prunable_names(model)]


@pytest.mark.parametrize("sizes", [(7, (13, 5), 3), (64, (256, 128), 10), (3, (1,), 2),
                                   (33, (17, 31, 9), 11)])
@pytest.mark.parametrize("sparsity", [0.0, 0.1, 0.37, 0.5, 0.9, 0.999])
def test_global_mask_equals_torch_global_unstructured(sizes: tuple, sparsity: float) -> None:
    """Global sparsity s prunes exactly what global_unstructured(L1Unstructured, s) does."""
    torch.manual_seed(sum(sizes[1]))
    model = MLP(sizes[0], sizes[1], sizes[2])
    ours = compute_masks(MagnitudeIndex(_weights(model)),
                         PruneConfig(sparsity=sparsity, scope="global"), min_density=0.0)
    reference = copy.deepcopy(model)
    tprune.global_unstructured(_torch_modules(reference), tprune.L1Unstructured,
                               amount=sparsity)
    for name in prunable_names(model):
        module = reference.get_submodule(name.rpartition(".")[0])
        assert torch.equal(ours.masks[name], module.weight_mask.bool()), name


@pytest.mark.parametrize("sparsity", [0.05, 0.5, 0.77, 1.0])
def test_layer_mask_equals_torch_l1_unstructured(sparsity: float) -> None:
    """Per-layer sparsity s equals l1_unstructured(amount=s) on every tensor (odd sizes too)."""
    torch.manual_seed(1)
    model = build_model("lenet5", (64,), 10, image_shape=(1, 8, 8))
    ours = compute_masks(MagnitudeIndex(_weights(model)), PruneConfig(sparsity=sparsity))
    for name in prunable_names(model):
        module = copy.deepcopy(model.get_submodule(name.rpartition(".")[0]))
        tprune.l1_unstructured(module, "weight", amount=sparsity)
        assert torch.equal(ours.masks[name], module.weight_mask.bool()), name


def test_session_global_prune_matches_torch_on_a_user_model() -> None:
    """Through the Session API (min density not binding) the oracle still holds."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(9, 21), nn.ReLU(), nn.Linear(21, 3))
    x, y = torch.randn(30, 9), torch.arange(30) % 3
    session = Session(model=model, train=(x, y), val=(x, y))
    reference = copy.deepcopy(model)
    session.prune(sparsity=0.63, scope="global")
    tprune.global_unstructured(_torch_modules(reference), tprune.L1Unstructured, amount=0.63)
    for name in session.slot.prunable:
        assert torch.equal(session.model.get_parameter(name),
                           reference.get_submodule(name.rpartition(".")[0]).weight)


def test_layer_emptied_guard_fires_and_warns() -> None:
    """Global pruning that would empty a layer keeps 1% of it and says so in the Snapshot."""
    session = Session("digits", "mlp")
    with torch.no_grad():  # make the last layer tiny so a global cut would take it all
        session.slot.base["layers.2.weight"].mul_(1e-4)
    session.slot.set_base(session.slot.base)
    snap = session.prune(sparsity=0.95, scope="global")
    last = snap.layer("layers.2.weight")
    assert last.nonzero == 13  # ceil(0.01 * 1280)
    assert any("layers.2.weight" in w and "minimum density" in w for w in snap.warnings)
    assert session.prune(sparsity=0.5).warnings == ()


def test_unstructured_modes_never_touch_non_prunable_tensors() -> None:
    """Biases, BatchNorm parameters and buffers stay bit-identical under every mode."""
    session = Session("digits", "resnet-small")
    prunable = set(session.slot.prunable)
    before = copy.deepcopy(session.model.state_dict())
    for kwargs in ({"sparsity": 0.8}, {"sparsity": 0.8, "scope": "global"},
                   {"threshold": 0.1}, {"std": 1.0}):
        session.prune(**kwargs)
        for name, tensor in session.model.state_dict().items():
            if name not in prunable:
                assert torch.equal(tensor, before[name]), (kwargs, name)
    assert sorted(session.snapshot(evaluate_model=False).prunable) == sorted(prunable)


@pytest.mark.parametrize("norm, n", [("l1", 1), ("l2", 2)])
def test_structured_ranking_equals_torch_ln_structured(norm: str, n: int) -> None:
    """Structured masks on an MLP's hidden layers remove the rows ln_structured(dim=0)
    removes, with their biases and the next layer's columns (the graph's consumers)."""
    torch.manual_seed(2)
    model = MLP(20, (17, 9), 4)
    params = dict(model.named_parameters())
    groups, known = model_groups(model)
    assert known and [g.name for g in groups] == ["layers.0", "layers.1"]
    result = structured_masks(params, groups, 0.41, norm)
    for i, group in enumerate(groups):
        module = copy.deepcopy(model.get_submodule(group.name))
        tprune.ln_structured(module, "weight", amount=0.41, n=n, dim=0)
        rows = module.weight_mask.bool()[:, 0]
        assert torch.equal(result.masks[f"{group.name}.weight"].any(1), rows)
        assert torch.equal(result.masks[f"{group.name}.bias"], rows)
        consumer = result.masks[f"layers.{i + 1}.weight"]
        assert torch.equal(consumer.any(0), rows)  # exactly the removed channels' columns
    assert result.masks["layers.2.weight"].any(1).all()  # the output layer keeps its outputs
    assert "layers.2.bias" not in result.masks


def test_structured_prune_reports_both_fractions_and_reverts() -> None:
    """Channel fraction and parameter fraction are labelled; reset restores biases too."""
    session = Session("digits", "mlp")
    base = copy.deepcopy(session.model.state_dict())
    snap = session.prune(sparsity=0.5, structured=True, norm="l2")
    assert snap.extra["channel_fraction_removed"] == 0.5
    # 128 of 256 and 64 of 128 neurons go: rows, biases and the consumers' columns.
    removed = 128 * 64 + 128 + 64 * 256 + 64 * 128 + 64 + 10 * 64
    assert snap.extra["param_fraction_removed"] == pytest.approx(removed / 50_826)
    assert int((session.model.layers[0].bias == 0).sum()) >= 128
    session.prune(sparsity=0.3)  # back to unstructured: biases return to the base
    assert torch.equal(session.model.layers[0].bias, base["layers.0.bias"])
    session.reset_pruning()
    for name, tensor in session.model.state_dict().items():
        assert torch.equal(tensor, base[name]), name
    with pytest.raises(ValueError, match="structured"):
        session.prune(threshold=0.1, structured=True)
    with pytest.raises(ValueError, match="norm"):
        session.prune(sparsity=0.1, structured=True, norm="l3")


def _randomise_bn(model: nn.Module, shape: tuple) -> None:
    """Train-mode passes give the BatchNorms non-trivial running statistics."""
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(32, *shape) * 2 + 0.5)
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
    model.eval()


def _mask_groups(model: nn.Module, groups: list, sparsity: float) -> None:
    params = dict(model.named_parameters())
    result = structured_masks(params, groups, sparsity)
    apply_masks({n: params[n] for n in result.masks},
                {n: params[n].detach().clone() for n in result.masks}, result.masks)


CASES = [("mlp", (1, 8, 8), None), ("lenet5", (1, 8, 8), None), ("lenet5", (1, 28, 28), None),
         ("resnet-small", (1, 8, 8), None), ("resnet-small", (1, 8, 8), "stem"),
         ("resnet-small", (1, 8, 8), "block1.conv1"), ("resnet-small", (1, 8, 8),
                                                       "block2.conv1"),
         ("resnet-small", (1, 8, 8), "block2.conv2"), ("resnet-small", (3, 12, 12), None)]


@pytest.mark.parametrize("name, shape, only", CASES)
@pytest.mark.parametrize("sparsity", [0.3, 0.75])
def test_shrunk_outputs_equal_masked_outputs(name: str, shape: tuple, only: str | None,
                                             sparsity: float) -> None:
    """Physically removing the pruned channels changes no output (1e-5), in fewer params."""
    torch.manual_seed(4)
    n_in = shape[0] * shape[1] * shape[2]
    model = build_model(name, (n_in,), 10, image_shape=shape, init="he", seed=5)
    _randomise_bn(model, (n_in,))
    groups, _ = model_groups(model)
    _mask_groups(model, [g for g in groups if only in (None, g.name)], sparsity)
    small = shrink_model(model)
    x = torch.randn(16, n_in)
    with torch.no_grad():
        assert torch.allclose(small(x), model(x), atol=1e-5)
    assert count_params(small) < count_params(model)
    assert small(x).shape[1] == 10  # the output layer keeps every output


def test_session_shrink_and_refusal_for_unknown_graphs() -> None:
    """Session.shrink() gives a smaller equal model, for the zoo and for a user's module
    (traced on the session's data); a module nothing can trace is refused by layer."""
    session = Session("digits", "lenet5")
    session.prune(sparsity=0.5, structured=True)
    small = session.shrink()
    x = session.data.val.x
    assert torch.allclose(small(x), session.model(x), atol=1e-5)
    assert count_params(small) < count_params(session.model)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
    x4, y = torch.randn(12, 4), torch.arange(12) % 2
    user = Session(model=model, train=(x4, y), val=(x4, y))
    user.prune(sparsity=0.5, structured=True)
    assert int((user.model[0].weight.abs().sum(1) == 0).sum()) == 3
    assert int((user.model[2].weight.abs().sum(0) == 0).sum()) == 3  # the consumer's columns
    small = user.shrink()
    assert small[0].out_features == 3 and small[2].in_features == 3
    with torch.no_grad():
        assert torch.allclose(small(x4), user.model(x4), atol=1e-5)
    bare = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))  # no session, no example
    groups, known = model_groups(bare)
    assert not known and [g.name for g in groups] == ["0"]  # masking still works
    with pytest.raises(ValueError, match="'0'"):
        shrink_model(bare)
