"""The model zoo: small, honest architectures that train in seconds on a CPU."""

from __future__ import annotations

import math

import torch
from torch import nn

MODELS = ("mlp",)
INITS = ("default", "xavier", "he")
DEFAULT_HIDDEN = (256, 128)


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
                hidden: tuple[int, ...] | None = None) -> nn.Module:
    """Build a zoo model, seeded so that the same arguments give the same weights."""
    if name not in MODELS:
        raise ValueError(f"model must be one of {', '.join(MODELS)}; got {name!r}")
    torch.manual_seed(seed)
    n_in = int(math.prod(input_shape))
    model = MLP(n_in, scaled(hidden or DEFAULT_HIDDEN, width), n_outputs)
    init_weights(model, init)
    return model
