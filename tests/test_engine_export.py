"""Export round trips (masked / zeros / shrunk) and copying pruned models."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
from torch.nn.utils import prune as tprune

from explorer import Session
from explorer.engine.export import load_exported
from explorer.engine.structure import count_params
from explorer.models.zoo import build_model


def _sparsity(model: torch.nn.Module, names: list[str]) -> float:
    tensors = [model.get_parameter(n) for n in names]
    return sum(int((t == 0).sum()) for t in tensors) / sum(t.numel() for t in tensors)


@pytest.fixture(scope="module")
def pruned() -> Session:
    session = Session("digits", "resnet-small", seed=0)
    with torch.no_grad():  # train-mode passes give BatchNorm real running statistics
        session.model.train()(session.data.train.x[:256])
    session.slot.set_base(session.model.state_dict())
    session.prune(sparsity=0.4, structured=True)
    session.model.eval()
    return session


@pytest.fixture(params=["mlp-unstructured", "lenet5-structured", "resnet-structured"])
def session(request: pytest.FixtureRequest, pruned: Session) -> Session:
    if request.param == "resnet-structured":
        return pruned
    if request.param == "mlp-unstructured":
        s = Session("digits", "mlp")
        s.prune(sparsity=0.8, scope="global")
    else:
        s = Session("digits", "lenet5")
        s.prune(sparsity=0.5, structured=True, norm="l2")
    s.model.eval()
    return s


@pytest.mark.parametrize("kind", ["masked", "zeros", "shrunk"])
def test_export_round_trip_gives_same_outputs(session: Session, kind: str, tmp_path) -> None:
    """Each kind loads with weights_only=True into a plain module: same outputs (1e-6)."""
    path = tmp_path / f"{kind}.pt"
    session.export(path, kind=kind)
    payload = torch.load(path, weights_only=True)
    assert payload["kind"] == kind and isinstance(payload["arch"], dict)
    model = load_exported(path)
    x = session.data.val.x
    with torch.no_grad():
        assert torch.allclose(model(x), session.model(x), atol=1e-6)
    if kind == "shrunk":
        pruned_channels = session.slot.prune_config.structured
        assert (count_params(model) < count_params(session.model)) == pruned_channels
    else:
        assert _sparsity(model, session.slot.prunable) == pytest.approx(
            session.snapshot(evaluate_model=False).sparsity)


def test_masked_export_is_what_torch_prune_writes(pruned: Session, tmp_path) -> None:
    """Keys, shapes and dtypes equal those of torch.nn.utils.prune.custom_from_mask."""
    path = tmp_path / "masked.pt"
    pruned.export(path, kind="masked")
    state = torch.load(path, weights_only=True)["state_dict"]
    reference = copy.deepcopy(pruned.model)
    for name, mask in pruned.slot.masks.items():
        tprune.custom_from_mask(reference.get_submodule(name.rpartition(".")[0]),
                                name.rpartition(".")[2], mask)
    ref_state = reference.state_dict()
    assert list(state) == list(ref_state)
    for key, tensor in ref_state.items():
        assert state[key].dtype == tensor.dtype and state[key].shape == tensor.shape, key
        if key.endswith("_mask"):
            assert torch.equal(state[key], tensor), key
    # a user can load it into a fresh model prepared with torch's own prune.identity
    fresh = build_model("resnet-small", (64,), 10, image_shape=(1, 8, 8), seed=9)
    for key in state:
        if key.endswith("_mask"):
            module, _, param = key[: -len("_mask")].rpartition(".")
            tprune.identity(fresh.get_submodule(module), param)
    fresh.load_state_dict(state)
    fresh.eval()
    x = pruned.data.val.x
    with torch.no_grad():
        assert torch.allclose(fresh(x), pruned.model(x), atol=1e-6)
    for key in state:  # _orig holds the dense base, as torch keeps the unpruned values
        if key.endswith("_orig"):
            assert torch.equal(state[key], pruned.slot.base[key[: -len("_orig")]])


def test_zeros_export_loads_into_a_plain_model(tmp_path) -> None:
    """kind="zeros" is a plain state dict any fresh instance of the model accepts."""
    session = Session("digits", "mlp")
    session.prune(sparsity=0.7)
    session.export(tmp_path / "z.pt", kind="zeros")
    plain = build_model("mlp", (64,), 10)
    plain.load_state_dict(torch.load(tmp_path / "z.pt", weights_only=True)["state_dict"])
    assert torch.equal(plain(session.data.val.x), session.model(session.data.val.x))


def test_deepcopy_and_pickle_of_pruned_models() -> None:
    """copy.deepcopy works on a pruned session's model and on a torch-pruned reload."""
    session = Session("digits", "mlp")
    session.prune(sparsity=0.6, structured=True)
    twin = copy.deepcopy(session.model)
    x = session.data.val.x
    assert torch.equal(twin(x), session.model(x))
    pickle.loads(pickle.dumps(session.model))


def test_masked_reload_plain_or_with_torch_masks_deepcopies(tmp_path) -> None:
    """A masked file reloads as a plain module, or (keep_masks) with torch's prune slots;
    both deepcopy (the latter before any grad-recording forward, a torch limitation)."""
    session = Session("digits", "mlp")
    session.prune(sparsity=0.6)
    session.export(tmp_path / "m.pt", kind="masked")
    x = session.data.val.x
    plain = load_exported(tmp_path / "m.pt")
    assert not any(k.endswith("_mask") for k in plain.state_dict())
    assert torch.equal(copy.deepcopy(plain)(x), session.model(x))
    hooked = load_exported(tmp_path / "m.pt", keep_masks=True)
    assert "layers.0.weight_mask" in hooked.state_dict()
    twin = copy.deepcopy(hooked)
    with torch.no_grad():
        assert torch.equal(twin(x), session.model(x))
        assert torch.equal(copy.deepcopy(twin)(x), session.model(x))


def test_export_rejects_bad_kind_and_unknown_graph_shrink(tmp_path) -> None:
    """Bad kinds and unshrinkable user models raise ValueError and write nothing."""
    session = Session("digits", "mlp")
    with pytest.raises(ValueError, match="kind"):
        session.export(tmp_path / "x.pt", kind="onnx")
    model = torch.nn.Sequential(torch.nn.Linear(4, 3))
    x, y = torch.randn(9, 4), torch.arange(9) % 3
    user = Session(model=model, train=(x, y), val=(x, y))
    with pytest.raises(ValueError, match="no structured group.*'0', the output layer"):
        user.export(tmp_path / "u.pt", kind="shrunk")
    user.export(tmp_path / "u.pt", kind="masked")
    with pytest.raises(ValueError, match="model="):
        load_exported(tmp_path / "u.pt")
    fresh = load_exported(tmp_path / "u.pt", model=torch.nn.Sequential(torch.nn.Linear(4, 3)))
    assert torch.equal(fresh(x), model(x))
    assert not (tmp_path / "x.pt").exists()
