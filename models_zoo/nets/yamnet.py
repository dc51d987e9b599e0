"""YAMNet as the SoundSCaper release used it (``Other_YAMNet``, built on the torch_audioset port).

The backbone is Google's YAMNet (a MobileNetV1: one 3x3 convolution and 13 depthwise-separable
blocks, batch-norm epsilon 1e-4, TensorFlow "SAME" padding), applied to the whole log-mel image
``[B, 1, T, 64]`` rather than to 0.96-s patches. Global average pooling gives a 1024-d clip
embedding that feeds the release's 12 linear heads. There is no AudioSet classifier; an AudioSet
backbone can be loaded from a user's file with :mod:`soundaq.models_zoo.nets.pretrained`.

"SAME" padding pads ``total = max(0, (ceil(n / s) - 1) * s + k - n)`` per axis, ``total // 2``
before and the rest after (TensorFlow puts the odd pixel at the end), so every input length works.
Parameters: 3,235,100 (all trainable; no unused layers).

Module names equal the release's (``layer1.fused.{conv,bn}``, ``layer<i>.{depthwise,pointwise}_conv.{conv,bn}``,
``fc_final_*``); :func:`map_original_keys` only strips a ``module.`` prefix.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping

import torch
from torch import nn
from torch.nn import functional as F

from soundaq.models_zoo.nets.common import ZooNet, add_linear_heads, linear_heads, strip_module_prefix
from soundaq.models_zoo.outputs import NetOutput

__all__ = ["BATCHNORM_EPSILON", "LAYER_CONFIG", "YAMNet", "map_original_keys", "same_padding"]

#: YAMNet's batch-norm epsilon (TF Slim default in its params); 1e-5 would change the outputs.
BATCHNORM_EPSILON = 1e-4

#: (kind, stride, output channels) of the 14 layers; all kernels are 3x3.
LAYER_CONFIG: tuple[tuple[str, int, int], ...] = (
    ("conv", 2, 32),
    ("separable", 1, 64),
    ("separable", 2, 128),
    ("separable", 1, 128),
    ("separable", 2, 256),
    ("separable", 1, 256),
    ("separable", 2, 512),
    ("separable", 1, 512),
    ("separable", 1, 512),
    ("separable", 1, 512),
    ("separable", 1, 512),
    ("separable", 1, 512),
    ("separable", 2, 1024),
    ("separable", 1, 1024),
)
EMBEDDING_DIM = 1024


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow "SAME" padding of one axis: ``(before, after)``."""
    effective = (kernel - 1) * dilation + 1
    out = -(-size // stride)
    total = max(0, (out - 1) * stride + effective - size)
    return total // 2, total - total // 2


class Conv2dSame(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow "SAME" padding, computed from the input size at each call."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0, groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (t0, t1) = same_padding(x.shape[2], self.kernel_size[0], self.stride[0], self.dilation[0])
        (f0, f1) = same_padding(x.shape[3], self.kernel_size[1], self.stride[1], self.dilation[1])
        if t0 == t1 and f0 == f1:  # symmetric: let the convolution pad, no copy
            return F.conv2d(x, self.weight, None, self.stride, (t0, f0), self.dilation, self.groups)
        return F.conv2d(F.pad(x, (f0, f1, t0, t1)), self.weight, None, self.stride, 0, self.dilation, self.groups)


class ConvBnRelu(nn.Module):
    def __init__(self, conv: Conv2dSame):
        super().__init__()
        self.conv = conv
        self.bn = nn.BatchNorm2d(conv.out_channels, eps=BATCHNORM_EPSILON)
        self.relu = nn.ReLU(inplace=True)  # after batch norm: no second full-size tensor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


class Conv(nn.Module):
    """Plain 3x3 convolution + BN + ReLU (YAMNet's first layer)."""

    def __init__(self, stride: int, in_channels: int, out_channels: int):
        super().__init__()
        self.fused = ConvBnRelu(Conv2dSame(in_channels, out_channels, 3, stride))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fused(x)


class SeparableConv(nn.Module):
    """Depthwise 3x3 (+ BN + ReLU) then pointwise 1x1 (+ BN + ReLU)."""

    def __init__(self, stride: int, in_channels: int, out_channels: int):
        super().__init__()
        self.depthwise_conv = ConvBnRelu(Conv2dSame(in_channels, in_channels, 3, stride, groups=in_channels))
        self.pointwise_conv = ConvBnRelu(Conv2dSame(in_channels, out_channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise_conv(self.depthwise_conv(x))


class YAMNet(ZooNet):
    """YAMNet of the SoundSCaper release: log-mel ``[B, T, 64]`` -> :class:`NetOutput`."""

    uses_loudness = False
    min_frames = 1

    def __init__(self):
        super().__init__()
        self.layer_names: list[str] = []
        channels = 1
        for i, (kind, stride, out_channels) in enumerate(LAYER_CONFIG):
            block = Conv if kind == "conv" else SeparableConv
            name = f"layer{i + 1}"
            self.add_module(name, block(stride, channels, out_channels))
            self.layer_names.append(name)
            channels = out_channels
        add_linear_heads(self, EMBEDDING_DIM)

    def embed(self, mel: torch.Tensor) -> torch.Tensor:
        """The 1024-d clip embedding (global average of the last feature map)."""
        self.check_inputs(mel)
        x = mel.unsqueeze(1)
        for name in self.layer_names:
            x = getattr(self, name)(x)
        return x.mean(dim=(2, 3))

    def forward(self, mel: torch.Tensor, loudness: torch.Tensor | None = None) -> NetOutput:
        """The twelve linear heads on the embedding of normalised log-mel ``[B, T, 64]`` (``loudness`` unused)."""
        return linear_heads(self, self.embed(mel))


def map_original_keys(state_dict: Mapping[str, torch.Tensor]) -> OrderedDict[str, torch.Tensor]:
    """Release ``Other_YAMNet`` state dict -> this module's keys.

    Identity after removing a DataParallel ``module.`` prefix: ``layer1.fused.conv.weight``,
    ``layer1.fused.bn.*``, ``layer<2..14>.{depthwise_conv,pointwise_conv}.{conv.weight,bn.*}``,
    ``fc_final_*.{weight,bias}``.
    """
    return strip_module_prefix(state_dict)
