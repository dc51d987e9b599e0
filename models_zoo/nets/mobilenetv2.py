"""MobileNetV2 as the SoundSCaper release adapted it to log-mel input (``Other_MobileNetV2``).

Differences from torchvision's MobileNetV2, kept on purpose because the release has them:

* one input channel (the log-mel image ``[B, 1, T, 64]``);
* every strided convolution runs at stride 1 and is followed by ``AvgPool2d(stride)``, so the
  down-sampling is an average over 2x2 cells instead of a skipped sample;
* no dropout and no classifier; the 1280-d clip embedding (mean over frequency, then over time)
  feeds the 12 linear heads of the release (scene 3, event 15, ISOP, ISOE, one per quality).

Time and frequency are halved five times, so the input needs at least 32 frames.
Parameters: 2,259,164 (all trainable; no unused layers).

Module names equal the release's (``features.<i>...``, ``fc_final_*``), including the positions
of the parameter-free pooling layers inside each ``nn.Sequential``; :func:`map_original_keys`
therefore only strips a ``module.`` (DataParallel) prefix.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping

import torch
from torch import nn

from soundaq.models_zoo.nets.common import ZooNet, add_linear_heads, init_bn, init_layer, linear_heads, strip_module_prefix
from soundaq.models_zoo.outputs import NetOutput

__all__ = ["INVERTED_RESIDUAL_SETTING", "InvertedResidual", "MobileNetV2", "map_original_keys"]

#: (expansion t, output channels c, repeats n, first stride s) of the release (= the MobileNetV2 paper).
INVERTED_RESIDUAL_SETTING: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 2),
    (6, 160, 3, 1),
    (6, 320, 1, 1),
)
STEM_CHANNELS = 32
LAST_CHANNELS = 1280


def _pool(stride: int) -> nn.Module:
    # The release writes nn.AvgPool2d(stride) even for stride 1 (an identity); an nn.Identity at the
    # same position keeps the Sequential indices (and so the state-dict keys) without the no-op kernel.
    return nn.AvgPool2d(stride) if stride > 1 else nn.Identity()


class InvertedResidual(nn.Module):
    """Expand (1x1) -> depthwise 3x3 (+ average pool for stride 2) -> project (1x1), residual if shapes match."""

    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        hidden = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers += [nn.Conv2d(inp, hidden, 1, 1, 0, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True)]
        layers += [nn.Conv2d(hidden, hidden, 3, 1, 1, groups=hidden, bias=False), _pool(stride),
                   nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True),
                   nn.Conv2d(hidden, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup)]
        self.conv = nn.Sequential(*layers)
        for m in self.conv:
            if isinstance(m, nn.Conv2d):
                init_layer(m)
            elif isinstance(m, nn.BatchNorm2d):
                init_bn(m)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The block's output for feature maps ``[B, C, H, W]`` (plus ``x`` where the shapes allow a residual)."""
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(ZooNet):
    """MobileNetV2 of the SoundSCaper release: log-mel ``[B, T, 64]`` -> :class:`NetOutput`."""

    uses_loudness = False
    min_frames = 32

    def __init__(self):
        super().__init__()
        stem = nn.Sequential(nn.Conv2d(1, STEM_CHANNELS, 3, 1, 1, bias=False), _pool(2),
                             nn.BatchNorm2d(STEM_CHANNELS), nn.ReLU6(inplace=True))
        init_layer(stem[0])
        init_bn(stem[2])
        blocks: list[nn.Module] = [stem]
        channels = STEM_CHANNELS
        for t, c, n, s in INVERTED_RESIDUAL_SETTING:
            for i in range(n):
                blocks.append(InvertedResidual(channels, c, s if i == 0 else 1, expand_ratio=t))
                channels = c
        last = nn.Sequential(nn.Conv2d(channels, LAST_CHANNELS, 1, 1, 0, bias=False),
                             nn.BatchNorm2d(LAST_CHANNELS), nn.ReLU6(inplace=True))
        init_layer(last[0])
        init_bn(last[1])
        blocks.append(last)
        self.features = nn.Sequential(*blocks)
        self.last_channel = LAST_CHANNELS
        add_linear_heads(self, LAST_CHANNELS)

    def embed(self, mel: torch.Tensor) -> torch.Tensor:
        """The 1280-d clip embedding the heads read."""
        self.check_inputs(mel)
        x = self.features(mel.unsqueeze(1))
        return x.mean(dim=3).mean(dim=2)

    def forward(self, mel: torch.Tensor, loudness: torch.Tensor | None = None) -> NetOutput:
        """The twelve linear heads on the embedding of normalised log-mel ``[B, T, 64]`` (``loudness`` unused)."""
        return linear_heads(self, self.embed(mel))


def map_original_keys(state_dict: Mapping[str, torch.Tensor]) -> OrderedDict[str, torch.Tensor]:
    """Release ``Other_MobileNetV2`` state dict -> this module's keys.

    The names are the release's own, so the mapping is the identity after removing a DataParallel
    ``module.`` prefix: ``features.<i>.conv.<j>.*``, ``features.0.{0,2}.*``, ``features.18.{0,1}.*``,
    ``fc_final_{scene,event,ISOPls,ISOEvs,<quality>}.{weight,bias}``.
    """
    return strip_module_prefix(state_dict)
