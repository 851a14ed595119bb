"""Convolutional zoo models: LeNet-5 and a small residual CNN with BatchNorm.

Both take flat or image inputs (flat ones are reshaped to `image_shape`), describe
themselves as plain constructor arguments (`arch`) so a shrunk copy can be rebuilt from
a weights-only file, and declare their channel groups (`groups`) for structured pruning.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .groups import Group


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
        return {"name": "lenet5", "image_shape": list(self.image_shape), "n_out": self.n_out,
                "channels": list(self.channels), "fc": list(self.fc)}

    def groups(self) -> list[Group]:
        return [Group("conv1", ("conv1",), (), (("conv2", 1),)),
                Group("conv2", ("conv2",), (), (("fc1", self.spatial),)),
                Group("fc1", ("fc1",), (), (("fc2", 1),)),
                Group("fc2", ("fc2",), (), (("fc3", 1),))]

    def resized_arch(self, kept: dict[str, int]) -> dict:
        arch = self.arch()
        arch["channels"] = [kept.get("conv1", self.channels[0]),
                            kept.get("conv2", self.channels[1])]
        arch["fc"] = [kept.get("fc1", self.fc[0]), kept.get("fc2", self.fc[1])]
        return arch


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
    channels together (group "stream1", "stream2"), as Torch-Pruning does.
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
        return {"name": "resnet-small", "image_shape": list(self.image_shape),
                "n_out": self.n_out, "stem": self.stem_width, "mids": list(self.mids),
                "out": self.out}

    def groups(self) -> list[Group]:
        return [
            Group("stream1", ("stem", "block1.conv2"), ("stem_bn", "block1.bn2"),
                  (("block1.conv1", 1), ("block2.conv1", 1), ("block2.shortcut", 1))),
            Group("block1.conv1", ("block1.conv1",), ("block1.bn1",), (("block1.conv2", 1),)),
            Group("block2.conv1", ("block2.conv1",), ("block2.bn1",), (("block2.conv2", 1),)),
            Group("stream2", ("block2.conv2", "block2.shortcut"),
                  ("block2.bn2", "block2.shortcut_bn"), (("fc", 1),)),
        ]

    def resized_arch(self, kept: dict[str, int]) -> dict:
        arch = self.arch()
        arch["stem"] = kept.get("stream1", self.stem_width)
        arch["mids"] = [kept.get("block1.conv1", self.mids[0]),
                        kept.get("block2.conv1", self.mids[1])]
        arch["out"] = kept.get("stream2", self.out)
        return arch


CNN_CLASSES = {"lenet5": LeNet5, "resnet-small": ResNetSmall}


def build_cnn(name: str, image_shape: tuple[int, int, int], n_out: int,
              width: float) -> nn.Module:
    """A zoo CNN with every channel count multiplied by `width` (at least one)."""
    def w(n: int) -> int:
        return max(1, int(math.ceil(n * width)))

    if name == "lenet5":
        return LeNet5(image_shape, n_out, (w(6), w(16)), (w(120), w(84)))
    return ResNetSmall(image_shape, n_out, w(16), (w(16), w(32)), w(32))
