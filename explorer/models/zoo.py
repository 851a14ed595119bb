"""The model zoo: small, honest architectures that train in seconds on a CPU."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..config import INITS, MODELS
from .cnn import example_batch

if TYPE_CHECKING:
    from ..data.datasets import Dataset

DEFAULT_HIDDEN = (256, 128)
LENET300_HIDDEN = (300, 100)  # LeNet-300-100 (LeCun et al. 1998; Han et al. 2015)


class MLP(nn.Module):
    """Fully connected ReLU network: in -> hidden... -> out (default 64-256-128-10)."""

    def __init__(self, n_in: int, hidden: tuple[int, ...], n_out: int) -> None:
        super().__init__()
        sizes = (n_in, *hidden, n_out)
        self.n_in, self.hidden, self.n_out = n_in, tuple(hidden), n_out
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        for layer in self.layers[:-1]:
            x = torch.relu(layer(x))
        return self.layers[-1](x)

    def arch(self) -> dict:
        """Plain constructor arguments (ints and lists), read from the layers' shapes:
        enough to rebuild the model, also after structured pruning shrank it."""
        return {"name": "mlp", "n_in": self.layers[0].in_features,
                "hidden": [layer.out_features for layer in self.layers[:-1]],
                "n_out": self.layers[-1].out_features}

    def example_input(self, batch: int = 2) -> torch.Tensor:
        """An input of the right shape: the dependency graph traces the model on it."""
        return example_batch(self, (self.n_in,), batch)

    def output_layer(self) -> str:
        """The layer writing the outputs (structured pruning keeps all of them)."""
        return f"layers.{len(self.layers) - 1}"


def init_weights(model: nn.Module, scheme: str) -> None:
    """Re-initialise Linear/Conv weights: PyTorch default, Xavier uniform or He normal.

    Xavier: U(-a, a), a = sqrt(6 / (fan_in + fan_out)). He: N(0, 2 / fan_in), fan_in of a
    conv being C_in * k_h * k_w. Biases start at zero for the named schemes.
    """
    if scheme not in INITS:
        raise ValueError(f"init must be one of {', '.join(INITS)}; got {scheme!r}")
    if scheme == "default":
        return
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            if scheme == "xavier":
                nn.init.xavier_uniform_(module.weight)
            else:
                nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)


def scaled(widths: tuple[int, ...], width: float) -> tuple[int, ...]:
    """Multiply hidden widths by `width`, never below one unit."""
    return tuple(max(1, int(math.ceil(w * width))) for w in widths)


def build_model(name: str, input_shape: tuple[int, ...], n_outputs: int,
                width: float = 1.0, init: str = "default", seed: int = 0,
                hidden: tuple[int, ...] | None = None,
                image_shape: tuple[int, int, int] | None = None) -> nn.Module:
    """Build a zoo model, seeded so that the same arguments give the same weights.

    `image_shape` (C, H, W) is needed by the CNNs; flat inputs are reshaped to it.
    `hidden` sets the MLP's widths (before the `width` multiplier).
    """
    if name not in MODELS:
        raise ValueError(f"model must be one of {', '.join(MODELS)}; got {name!r}")
    if init not in INITS:
        raise ValueError(f"init must be one of {', '.join(INITS)}; got {init!r}")
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not 0 < width <= 16:
        raise ValueError(f"width must be a number in (0, 16]; got {width!r}")
    if hidden is not None and (not hidden or any(int(h) != h or h < 1 for h in hidden)):
        raise ValueError(f"hidden must be positive whole widths; got {hidden!r}")
    torch.manual_seed(seed)
    n_in = int(math.prod(input_shape))
    if name in ("mlp", "lenet300"):
        default = DEFAULT_HIDDEN if name == "mlp" else LENET300_HIDDEN
        model: nn.Module = MLP(n_in, scaled(tuple(hidden or default), width), n_outputs)
    else:
        from .cnn import build_cnn

        if image_shape is None:
            raise ValueError(f"model {name!r} needs image inputs; this data set has none")
        model = build_cnn(name, image_shape, n_outputs, width)
    init_weights(model, init)
    return model


def model_arch(model: nn.Module) -> dict | None:
    """The plain description `.arch()` of a zoo model; None for any other module."""
    arch = getattr(model, "arch", None)
    return arch() if callable(arch) else None


def build_from_arch(arch: dict) -> nn.Module:
    """Rebuild a model (random weights) from the plain description of `.arch()`."""
    arch = dict(arch)
    name = arch.pop("name", None)
    if name == "mlp":
        return MLP(int(arch["n_in"]), tuple(int(h) for h in arch["hidden"]),
                   int(arch["n_out"]))
    from .cnn import CNN_CLASSES

    if name not in CNN_CLASSES:
        raise ValueError(f"unknown architecture {name!r}")
    return CNN_CLASSES[name](**arch)


def check_fits(model: nn.Module, name: str, data: Dataset) -> None:
    """A (user) model must map the inputs to one output per class / regression target."""
    x, y = data.val.x[:2], data.val.y[:2]
    was_training = model.training
    try:
        with torch.no_grad():
            out = model.eval()(x)
    except Exception as err:  # any failure means the model cannot take this data
        raise ValueError(f"model {name} cannot take inputs of shape "
                         f"{tuple(x.shape[1:])}: {err}") from err
    finally:
        model.train(was_training)
    want = (len(x), data.n_outputs) if data.task == "classification" else tuple(y.shape)
    if tuple(out.shape) != tuple(want):
        raise ValueError(f"model {name} outputs shape {tuple(out.shape)}; "
                         f"this {data.task} data needs {tuple(want)}")
