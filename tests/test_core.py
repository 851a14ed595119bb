"""Core invariants and oracles of the skeleton: masks, training, commit, bad input."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import torch
import torch.nn.utils.prune as tprune
from torch import nn

from explorer import Session
from explorer.config import PruneConfig
from explorer.engine.prune import MagnitudeIndex, compute_masks


@pytest.fixture(scope="module")
def trained() -> Session:
    return Session.default(device="cpu")


def fresh(trained: Session) -> Session:
    """A cheap independent copy of the trained default session."""
    session = Session("digits", "mlp", device="cpu")
    assert session.pretrained, "the shipped checkpoint must match the default config"
    return session


def states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def shipped_mlp() -> nn.Module:
    """The shipped trained digits MLP, built once; the oracles copy it, never change it."""
    session = Session("digits", "mlp", device="cpu")
    assert session.pretrained, "the shipped checkpoint must match the default config"
    return session.model


def mlp_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {f"layers.{i}.weight": layer.weight.detach().clone()
            for i, layer in enumerate(model.layers)}


def torch_masks(model: nn.Module, amount: float, scope: str) -> dict[str, torch.Tensor]:
    """torch.nn.utils.prune's masks on a copy of the MLP: global_unstructured with
    L1Unstructured, or l1_unstructured on each layer."""
    oracle = copy.deepcopy(model)
    if scope == "global":
        modules = [(m, "weight") for m in oracle.layers]
        tprune.global_unstructured(modules, pruning_method=tprune.L1Unstructured,
                                   amount=amount)
    else:
        for layer in oracle.layers:
            tprune.l1_unstructured(layer, "weight", amount=amount)
    return {f"layers.{i}.weight": layer.weight_mask.bool()
            for i, layer in enumerate(oracle.layers)}


def test_threshold_up_and_back_restores_weights_bit_for_bit(trained):
    """Pruning never stacks masks: threshold 0 after a big cut gives the base back."""
    session = fresh(trained)
    before = {k: v.clone() for k, v in session.model.state_dict().items()}
    for t in (0.01, 0.05, 0.2, 0.05):
        session.prune(threshold=t)
    assert not states_equal(before, session.model.state_dict())
    session.prune(threshold=0.0)
    assert states_equal(before, session.model.state_dict())
    session.prune(sparsity=0.8, scope="global")
    session.reset_pruning()
    assert states_equal(before, session.model.state_dict())


@pytest.mark.parametrize("amount", [0.1, 0.5, 0.9, 0.37])
def test_global_mask_equals_torch_global_unstructured(shipped_mlp, amount):
    """Oracle: global scope == torch.nn.utils.prune.global_unstructured(L1Unstructured)."""
    ours = compute_masks(MagnitudeIndex(mlp_weights(shipped_mlp)),
                         PruneConfig(sparsity=amount, scope="global"))
    assert not ours.warnings  # the density guard must not have changed anything
    for name, mask in torch_masks(shipped_mlp, amount, "global").items():
        assert torch.equal(ours.masks[name], mask), name


@pytest.mark.parametrize("amount", [0.3, 0.75])
def test_layer_mask_equals_torch_l1_unstructured(shipped_mlp, amount):
    """Oracle: per-layer scope == torch.nn.utils.prune.l1_unstructured on each layer."""
    ours = compute_masks(MagnitudeIndex(mlp_weights(shipped_mlp)),
                         PruneConfig(sparsity=amount, scope="layer"))
    for name, mask in torch_masks(shipped_mlp, amount, "layer").items():
        assert torch.equal(ours.masks[name], mask), name


def test_session_prune_masks_equal_torch_in_both_scopes(trained, shipped_mlp):
    """Through Session.prune (one session, masks rebuilt from the base each time) the
    masks still equal torch's, for global and per-layer scope."""
    session = fresh(trained)
    for amount, scope in ((0.37, "global"), (0.9, "global"), (0.3, "layer"), (0.75, "layer")):
        snap = session.prune(sparsity=amount, scope=scope)
        assert not snap.warnings
        for name, mask in torch_masks(shipped_mlp, amount, scope).items():
            assert torch.equal(session.slot.masks[name], mask), (amount, scope, name)


def test_odd_sizes_prune_exactly_round_s_n():
    """Target sparsity prunes exactly round(s * n) weights, also for odd sizes."""
    gen = torch.Generator().manual_seed(1)
    weights = {"a": torch.randn(7, 3, generator=gen), "b": torch.randn(13, generator=gen)}
    for s in (0.0, 0.33, 0.5, 0.99, 1.0):
        result = compute_masks(MagnitudeIndex(weights), PruneConfig(sparsity=s))
        for name, w in weights.items():
            assert int((~result.masks[name]).sum()) == round(s * w.numel())


def test_global_guard_keeps_minimum_density_and_warns():
    """Global scope must not empty a layer: it keeps 1% and says so."""
    weights = {"big": torch.linspace(1, 2, 1000), "tiny": torch.full((200,), 1e-3)}
    result = compute_masks(MagnitudeIndex(weights), PruneConfig(sparsity=0.5, scope="global"))
    assert int(result.masks["tiny"].sum()) == 2  # ceil(1% of 200)
    assert any("tiny" in w for w in result.warnings)


@pytest.mark.parametrize("optimizer", ["adam", "momentum", "sgd"])
def test_masked_weights_stay_exactly_zero_through_training(trained, optimizer):
    """50+ steps with weight decay: pruned weights stay exactly 0."""
    session = fresh(trained)
    session.prune(sparsity=0.7, scope="layer")
    masks = {k: v.clone() for k, v in session.slot.masks.items()}
    session.train(epochs=3, lr=1e-2, optimizer=optimizer, batch_size=32, weight_decay=1e-2)
    assert session.jobs.total_steps >= 50
    params = dict(session.model.named_parameters())
    for name, mask in masks.items():
        assert torch.all(params[name][~mask] == 0)
        assert torch.all(params[name][mask] != 0)


def test_training_commits_survivors_and_keeps_pruned_base_values(trained):
    """After training a pruned model, pruned entries keep their old base; undo restores."""
    session = fresh(trained)
    old_base = {k: v.clone() for k, v in session.slot.base.items()}
    session.prune(sparsity=0.5)
    mask = session.slot.masks["layers.1.weight"].clone()
    session.train(epochs=1)
    new_base = session.slot.base["layers.1.weight"]
    assert torch.equal(new_base[~mask], old_base["layers.1.weight"][~mask])
    assert not torch.equal(new_base[mask], old_base["layers.1.weight"][mask])
    assert session.snapshot().sparsity == pytest.approx(0.5, abs=1e-3)
    session.undo()
    assert states_equal(session.slot.base, old_base)
    session.train(epochs=1)
    session.reset()
    assert states_equal(session.model.state_dict(), old_base)


def test_short_training_run_learns_digits():
    """Real run: an untrained MLP reaches > 0.9 validation accuracy in a few epochs."""
    torch.manual_seed(0)
    session = Session("digits", "mlp", device="cpu", pretrained=False)
    assert session.snapshot().accuracy < 0.3
    snap = session.train(epochs=5, lr=1e-3)
    assert snap.accuracy > 0.9


@pytest.mark.parametrize(
    "kwargs, named",
    [
        ({"sparsity": 1.5}, "1.5"),
        ({"sparsity": -0.1}, "-0.1"),
        ({"threshold": -0.2}, "-0.2"),
        ({"threshold": float("nan")}, "nan"),
        ({}, "none"),
        ({"threshold": 0.1, "sparsity": 0.5}, "threshold, sparsity"),
        ({"sparsity": 0.5, "scope": "galaxy"}, "galaxy"),
        ({"sparsity": "half"}, "half"),
    ],
)
def test_bad_prune_arguments_raise_and_leave_state(trained, kwargs, named):
    """Bad input: ValueError naming the value; the model and masks are unchanged."""
    session = fresh(trained)
    session.prune(sparsity=0.3)
    weights = {k: v.clone() for k, v in session.model.state_dict().items()}
    masks = {k: v.clone() for k, v in session.slot.masks.items()}
    with pytest.raises(ValueError, match=named):
        session.prune(**kwargs)
    assert states_equal(weights, session.model.state_dict())
    assert states_equal(masks, session.slot.masks)
    assert session.slot.prune_config.sparsity == 0.3


@pytest.mark.parametrize(
    "kwargs, named",
    [
        ({"epochs": 0}, "epochs"),
        ({"lr": -1.0}, "lr"),
        ({"optimizer": "rmsprop"}, "rmsprop"),
        ({"batch_size": 2.5}, "batch_size"),
    ],
)
def test_bad_training_arguments_raise_before_training(trained, kwargs, named):
    session = fresh(trained)
    base = {k: v.clone() for k, v in session.slot.base.items()}
    with pytest.raises(ValueError, match=named):
        session.train(**kwargs)
    assert states_equal(base, session.slot.base) and not session.slot.undo_stack


def test_snapshot_counts_and_json(trained):
    """Snapshot counts agree with the model, and to_dict is JSON-ready."""
    import json

    snap = fresh(trained).prune(sparsity=0.6, scope="layer")
    assert snap.params == sum(p.numel() for p in trained.model.parameters())
    assert snap.sparsity == pytest.approx(0.6, abs=1e-3)
    for layer in snap.layers:
        assert layer.hist_counts.dtype.name == "int32"
        assert layer.hist_edges.dtype.name == "float32"
        assert int(layer.hist_counts.sum()) <= layer.nonzero
    data = json.loads(json.dumps(snap.to_dict()))
    assert {"accuracy", "loss", "sparsity", "params", "nonzero", "layers"} <= data.keys()
    assert {"name", "numel", "nonzero", "sparsity", "hist_counts", "hist_edges"} <= data["layers"][
        0
    ].keys()


def test_checkpoint_loads_weights_only():
    """The shipped checkpoint is plain tensors: weights_only loading works."""
    from explorer.engine.checkpoint import packaged_path

    payload = torch.load(packaged_path(), weights_only=True)
    assert payload["config"]["dataset"] == "digits"
    assert Session("digits", "mlp", device="cpu").snapshot().accuracy > 0.95


def test_core_imports_no_ui_libraries():
    """The one rule: importing explorer loads none of ipywidgets, plotly, anywidget, IPython."""
    code = (
        "import sys, explorer, explorer.session.session, explorer.session.jobs; "
        "bad = [m for m in ('ipywidgets', 'plotly', 'anywidget', 'IPython') "
        "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
