"""Johnson et al.'s TransformerNet, laid out so pytorch/examples state dicts load.

Parameter names follow the `fast_neural_style` example (conv1.conv2d.weight,
in1.weight, res1.conv1.conv2d.weight, deconv1.conv2d.weight, ...), since users own
many such `.pth` files. The reference network works on 0-255 inputs; this class
takes and returns [0, 1] like every streamnst network and rescales inside.
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import nn

# Old checkpoints saved InstanceNorm running statistics that current torch rejects.
_STALE_KEY = re.compile(r"in\d+\.running_(mean|var)$|\.num_batches_tracked$")


class ConvLayer(nn.Module):
    def __init__(self, cin: int, cout: int, kernel_size: int, stride: int) -> None:
        super().__init__()
        self.reflection_pad = nn.ReflectionPad2d(kernel_size // 2)
        self.conv2d = nn.Conv2d(cin, cout, kernel_size, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2d(self.reflection_pad(x))


class UpsampleConvLayer(ConvLayer):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        return super().forward(x)


def _inorm(channels: int) -> nn.InstanceNorm2d:
    return nn.InstanceNorm2d(channels, affine=True)


class ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = ConvLayer(channels, channels, 3, 1)
        self.in1 = _inorm(channels)
        self.conv2 = ConvLayer(channels, channels, 3, 1)
        self.in2 = _inorm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.in1(self.conv1(x)))
        return x + self.in2(self.conv2(y))


class TransformerNet(nn.Module):
    STRIDE = 4
    MARGIN = 0  # reflection padding inside every conv already handles borders

    def __init__(self) -> None:
        super().__init__()
        self.config: dict = {}
        self.conv1 = ConvLayer(3, 32, 9, 1)
        self.in1 = _inorm(32)
        self.conv2 = ConvLayer(32, 64, 3, 2)
        self.in2 = _inorm(64)
        self.conv3 = ConvLayer(64, 128, 3, 2)
        self.in3 = _inorm(128)
        self.res1 = ResidualBlock(128)
        self.res2 = ResidualBlock(128)
        self.res3 = ResidualBlock(128)
        self.res4 = ResidualBlock(128)
        self.res5 = ResidualBlock(128)
        self.deconv1 = UpsampleConvLayer(128, 64, 3, 1)
        self.in4 = _inorm(64)
        self.deconv2 = UpsampleConvLayer(64, 32, 3, 1)
        self.in5 = _inorm(32)
        self.deconv3 = ConvLayer(32, 3, 9, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.in1(self.conv1(x * 255.0)))
        y = F.relu(self.in2(self.conv2(y)))
        y = F.relu(self.in3(self.conv3(y)))
        for block in (self.res1, self.res2, self.res3, self.res4, self.res5):
            y = block(y)
        y = F.relu(self.in4(self.deconv1(y)))
        y = F.relu(self.in5(self.deconv2(y)))
        return (self.deconv3(y) / 255.0).clamp(0.0, 1.0)

    def fuse(self) -> TransformerNet:
        return self


def clean_state_dict(state: dict) -> dict:
    """Drop keys that old pytorch/examples checkpoints carry and current torch rejects."""
    return {k: v for k, v in state.items() if not _STALE_KEY.search(k)}


def looks_like_transformer_net(state: dict) -> bool:
    return "conv1.conv2d.weight" in state and "deconv3.conv2d.weight" in state
