"""Convolutional zoo models: LeNet-5 and a small residual CNN with BatchNorm.

Both take flat or image inputs (flat ones are reshaped to `image_shape`), describe
themselves as plain constructor arguments (`arch`, read from the layer shapes) so a shrunk
copy can be rebuilt from a weights-only file, and give an `example_input()` on which the
dependency graph (engine.graph) finds their coupled channels for structured pruning.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def example_batch(model: nn.Module, shape: tuple[int, ...], batch: int) -> torch.Tensor:
    """A fixed random input of `shape` on the model's device (the graph traces on it)."""
    gen = torch.Generator().manual_seed(0)  # the user's RNG is not moved
    x = torch.randn(batch, *shape, generator=gen)
    return x.to(next(model.parameters()).device)


def _image(x: torch.Tensor, image_shape: tuple[int, ...]) -> torch.Tensor:
    return x.reshape(x.shape[0], *image_shape)


class LeNet5(nn.Module):
    """LeNet-5 (ReLU, max-pool): conv5x5 -> pool -> conv5x5 -> pool -> 120 -> 84 -> out.

    On 28x28 the second conv is unpadded as in LeCun et al. (16x5x5 features); on small
    images such as 8x8 digits it is padded so that a 2x2 map survives.
    """

    def __init__(self, image_shape: list[int] | tuple[int, ...], n_out: int,
                 channels: list[int] | tuple[int, ...] = (6, 16),
                 fc: list[int] | tuple[int, ...] = (120, 84)) -> None:
        super().__init__()
        c, h, w = (int(v) for v in image_shape)
        if min(h, w) < 4:
            raise ValueError(f"lenet5 needs images of at least 4x4; got {h}x{w}")
        self.image_shape = (c, h, w)
        self.n_out, self.channels, self.fc = int(n_out), tuple(channels), tuple(fc)
        pad2 = 2 if min(h, w) < 12 else 0
        self.conv1 = nn.Conv2d(c, self.channels[0], 5, padding=2)
        self.conv2 = nn.Conv2d(self.channels[0], self.channels[1], 5, padding=pad2)
        h2, w2 = (h // 2 + 2 * pad2 - 4) // 2, (w // 2 + 2 * pad2 - 4) // 2
        self.spatial = h2 * w2
        self.fc1 = nn.Linear(self.channels[1] * self.spatial, self.fc[0])
        self.fc2 = nn.Linear(self.fc[0], self.fc[1])
        self.fc3 = nn.Linear(self.fc[1], self.n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(torch.relu(self.conv1(_image(x, self.image_shape))), 2)
        x = F.max_pool2d(torch.relu(self.conv2(x)), 2).flatten(1)
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))

    def arch(self) -> dict:
        """Constructor arguments, read from the layers' shapes (also once shrunk)."""
        return {"name": "lenet5", "image_shape": list(self.image_shape), "n_out": self.n_out,
                "channels": [self.conv1.out_channels, self.conv2.out_channels],
                "fc": [self.fc1.out_features, self.fc2.out_features]}

    def example_input(self, batch: int = 2) -> torch.Tensor:
        """An image batch: the dependency graph traces the model on it."""
        return example_batch(self, self.image_shape, batch)

    def output_layer(self) -> str:
        return "fc3"


class Block(nn.Module):
    """Basic residual block: relu(bn2(conv2(relu(bn1(conv1 x)))) + shortcut(x))."""

    def __init__(self, c_in: int, mid: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, mid, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.projected = stride != 1 or c_in != c_out
        if self.projected:  # 1x1 projection shortcut when the shape changes
            self.shortcut = nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False)
            self.shortcut_bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        skip = self.shortcut_bn(self.shortcut(x)) if self.projected else x
        return torch.relu(out + skip)


class ResNetSmall(nn.Module):
    """stem conv+BN -> identity block -> strided projection block -> avg pool -> fc.

    The residual adds couple channels: the stem and block1.conv2 write the same stream,
    as do block2.conv2 and block2.shortcut. Structured pruning removes such coupled
    channels together: Torch-Pruning's dependency graph finds them (engine.graph).
    """

    def __init__(self, image_shape: list[int] | tuple[int, ...], n_out: int,
                 stem: int = 16, mids: list[int] | tuple[int, ...] = (16, 32),
                 out: int = 32) -> None:
        super().__init__()
        c = int(image_shape[0])
        self.image_shape = tuple(int(v) for v in image_shape)
        self.n_out, self.stem_width, self.mids, self.out = int(n_out), stem, tuple(mids), out
        self.stem = nn.Conv2d(c, stem, 3, padding=1, bias=False)
        self.stem_bn = nn.BatchNorm2d(stem)
        self.block1 = Block(stem, self.mids[0], stem, 1)
        self.block2 = Block(stem, self.mids[1], out, 2)
        self.fc = nn.Linear(out, self.n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.stem_bn(self.stem(_image(x, self.image_shape))))
        x = self.block2(self.block1(x))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))

    def arch(self) -> dict:
        """Constructor arguments, read from the layers' shapes (also once shrunk)."""
        return {"name": "resnet-small", "image_shape": list(self.image_shape),
                "n_out": self.n_out, "stem": self.stem.out_channels,
                "mids": [self.block1.conv1.out_channels, self.block2.conv1.out_channels],
                "out": self.block2.conv2.out_channels}

    def example_input(self, batch: int = 2) -> torch.Tensor:
        """An image batch: the dependency graph traces the model on it."""
        return example_batch(self, self.image_shape, batch)

    def output_layer(self) -> str:
        return "fc"


CNN_CLASSES = {"lenet5": LeNet5, "resnet-small": ResNetSmall}


def build_cnn(name: str, image_shape: tuple[int, int, int], n_out: int,
              width: float) -> nn.Module:
    """A zoo CNN with every channel count multiplied by `width` (at least one)."""
    def w(n: int) -> int:
        return max(1, int(math.ceil(n * width)))

    if name == "lenet5":
        return LeNet5(image_shape, n_out, (w(6), w(16)), (w(120), w(84)))
    return ResNetSmall(image_shape, n_out, w(16), (w(16), w(32)), w(32))
