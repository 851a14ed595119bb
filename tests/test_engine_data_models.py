"""Data sets, bring-your-own data, the model zoo and initialisation statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from explorer import Session
from explorer.data.datasets import _mnist_5k_path, from_tensors, load_dataset
from explorer.models.zoo import build_from_arch, build_model


@pytest.fixture(scope="module")
def mnist():
    return load_dataset("mnist-5k", seed=0)


def test_mnist_5k_label_is_last_column_and_split_is_stratified(mnist) -> None:
    """The label column is the last one; every split holds each class equally often."""
    import gzip

    with gzip.open(_mnist_5k_path(), "rt") as fh:
        last = [int(line.rsplit(",", 1)[1]) for line in fh]
    assert np.bincount(last).tolist() == [500] * 10  # labels 0..9, 500 each, sorted
    assert (mnist.train.x.shape, mnist.val.x.shape, mnist.test.x.shape) == (
        (3000, 784), (1000, 784), (1000, 784))
    for split, per_class in ((mnist.train, 300), (mnist.val, 100), (mnist.test, 100)):
        assert torch.bincount(split.y).tolist() == [per_class] * 10
    assert mnist.image_shape == (1, 28, 28) and mnist.n_outputs == 10
    assert len(set(mnist.train.y[:30].tolist())) > 3  # shuffled, not sorted by label


def test_splits_are_seeded_and_disjoint() -> None:
    """Same seed, same split; different seed, different split; no example twice."""
    a, b, c = (load_dataset("digits", seed=s) for s in (0, 0, 1))
    assert torch.equal(a.train.x, b.train.x) and not torch.equal(a.train.x, c.train.x)
    rows = torch.cat([a.train.x, a.val.x, a.test.x])
    assert len(rows) == 1797
    toy = load_dataset("toy-regression")
    assert toy.task == "regression" and torch.equal(toy.train.x, toy.train.y)
    assert toy.train.x.shape[1] == 10 and len(toy.val) > 0 and len(toy.test) > 0


def _toy_tensors(n: int = 60, classes: int = 3):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 5, generator=g), torch.arange(n) % classes


def test_bring_your_own_tensors_and_loaders_agree() -> None:
    """A DataLoader is materialised to the same tensors as the (x, y) tuple."""
    x, y = _toy_tensors()
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3))
    s1 = Session(model=model, train=(x, y), val=(x[:20], y[:20]))
    loader = DataLoader(TensorDataset(x, y), batch_size=7, shuffle=False)
    s2 = Session(model=nn.Sequential(nn.Linear(5, 3)), train=loader, val=(x[:20], y[:20]),
                 test=loader)
    assert torch.equal(s1.data.train.x, s2.data.train.x)
    assert torch.equal(s1.data.train.y, s2.data.train.y)
    assert s1.data.n_outputs == 3 and s1.slot.prunable == ["0.weight", "2.weight"]
    assert s1.prune(sparsity=0.5).sparsity == pytest.approx(0.5, abs=0.02)
    reg = Session(model=nn.Linear(5, 2), train=(x, x[:, :2]), val=(x, x[:, :2]),
                  task="regression")
    assert reg.snapshot().accuracy is None


@pytest.mark.parametrize("kwargs, needle", [
    ({"train": (torch.randn(10, 5), torch.arange(9) % 2)}, "10 rows but y has 9"),
    ({"val": (torch.randn(10, 4), torch.arange(10) % 2)}, "val: inputs have shape (4,)"),
    ({"train": (torch.randn(10, 5), torch.full((10,), 3))}, "every label is 3"),
    ({"task": "ranking"}, "ranking"),
    ({"train": (torch.randn(10, 5), torch.randn(10))}, "integer"),
])
def test_bring_your_own_bad_data_raises_naming_it(kwargs: dict, needle: str) -> None:
    """Mismatched shapes, a single class, float labels, unknown tasks -> ValueError."""
    args = {"train": (torch.randn(10, 5), torch.arange(10) % 2),
            "val": (torch.randn(10, 5), torch.arange(10) % 2)}
    args.update(kwargs)
    with pytest.raises(ValueError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        Session(model=nn.Linear(5, 2), **args)


def test_user_model_with_wrong_output_width_is_refused() -> None:
    """A model whose outputs do not match the classes is refused, naming the shapes."""
    x, y = _toy_tensors()
    with pytest.raises(ValueError, match=r"outputs shape \(2, 4\)"):
        Session(model=nn.Linear(5, 4), train=(x, y), val=(x, y))
    with pytest.raises(ValueError, match="not both"):
        Session("digits", model=nn.Linear(5, 3), train=(x, y), val=(x, y))
    assert from_tensors((x, y), (x, y)).name.endswith("(test = val)")


@pytest.mark.parametrize("name, shape", [
    ("mlp", (1, 8, 8)), ("lenet300", (1, 28, 28)), ("lenet300", (1, 8, 8)),
    ("lenet5", (1, 8, 8)), ("lenet5", (1, 28, 28)), ("resnet-small", (1, 8, 8)),
    ("resnet-small", (3, 12, 12))])
def test_zoo_models_run_and_rebuild_from_arch(name: str, shape: tuple) -> None:
    """Every zoo model takes flat inputs and rebuilds from its plain arch description."""
    n_in = math.prod(shape)
    model = build_model(name, (n_in,), 10, image_shape=shape, seed=3)
    x = torch.randn(4, n_in)
    assert model(x).shape == (4, 10)
    twin = build_from_arch(model.arch())
    twin.load_state_dict(model.state_dict())
    model.eval(), twin.eval()
    assert torch.equal(model(x), twin(x))


def test_lenet300_shapes_and_width_multiplier() -> None:
    """LeNet-300-100 is 784-300-100-10 (266,610 parameters); width scales hidden layers."""
    model = build_model("lenet300", (784,), 10)
    assert [tuple(p.shape) for n, p in model.named_parameters() if n.endswith("weight")] == [
        (300, 784), (100, 300), (10, 100)]
    assert sum(p.numel() for p in model.parameters()) == 266_610
    assert build_model("lenet300", (64,), 10, width=0.5).hidden == (150, 50)
    assert build_model("mlp", (64,), 10, hidden=(32, 16, 8)).hidden == (32, 16, 8)
    assert build_model("lenet5", (64,), 10, width=2.0, image_shape=(1, 8, 8)).channels == (
        12, 32)
    for bad in ({"width": 0}, {"init": "glorot"}, {"hidden": (0,)}):
        with pytest.raises(ValueError):
            build_model("mlp", (64,), 10, **bad)
    with pytest.raises(ValueError, match="lenet5"):
        build_model("lenet5", (10,), 10)


def test_init_statistics_match_the_formulas() -> None:
    """Xavier: |w| <= sqrt(6/(fan_in+fan_out)), std = a/sqrt(3); He: std = sqrt(2/fan_in)."""
    xavier = build_model("lenet300", (784,), 10, init="xavier").layers[0]
    a = math.sqrt(6 / (784 + 300))
    w = xavier.weight.detach()
    assert float(w.abs().max()) <= a and float(w.abs().max()) > 0.99 * a
    assert float(w.std()) == pytest.approx(a / math.sqrt(3), rel=0.01)
    assert float(xavier.bias.detach().abs().max()) == 0.0
    he = build_model("lenet300", (784,), 10, init="he").layers[0].weight.detach()
    assert float(he.std()) == pytest.approx(math.sqrt(2 / 784), rel=0.01)
    assert float(he.mean()) == pytest.approx(0.0, abs=0.01 * math.sqrt(2 / 784) * 10)
    conv = build_model("resnet-small", (64,), 10, init="he", image_shape=(1, 8, 8),
                       width=2.0).block2.conv2.weight.detach()  # 64 x 64 x 3 x 3
    fan_in = conv.shape[1] * conv.shape[2] * conv.shape[3]
    assert float(conv.std()) == pytest.approx(math.sqrt(2 / fan_in), rel=0.03)
    default = build_model("lenet300", (784,), 10).layers[0].weight.detach()
    assert float(default.abs().max()) <= 1 / math.sqrt(784)  # PyTorch's U(-1/sqrt(fan_in), .)


def test_positional_session_and_hidden_still_work() -> None:
    """Session("digits", "mlp") is unchanged; hidden= reaches the MLP."""
    session = Session("digits", "mlp")
    assert session.pretrained and session.data.name == "digits"
    assert torch.equal(session.data.val.x, load_dataset("digits", seed=0).val.x)
    other = Session("digits", "mlp", seed=3, pretrained=False)
    assert torch.equal(other.data.val.x, load_dataset("digits", seed=3).val.x)
    small = Session("digits", "mlp", hidden=(16,), pretrained=False)
    assert small.model.hidden == (16,) and small.slot.config["hidden"] == [16]
