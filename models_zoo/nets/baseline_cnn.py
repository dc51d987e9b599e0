"""Baseline CNN of SoundSCaper (``Other_Baseline_CNN/framework/models_pytorch.py``), re-implemented.

Forward path (input ``[B, T, 64]`` as one channel), all convolutions bias-free, each + BN + ReLU:
conv1 3x3 pad 1 (16) -> max-pool 2x2; conv3 5x5 pad 1 (32) -> max-pool 3x2;
conv5 7x7 pad 1 (64) -> max-pool 4x1; conv7 9x9 pad 0 (128) -> max-pool 5x2;
mean over time -> 128-d embedding -> twelve linear heads.

Layers the original defines but never calls are kept so the released weights load and the
parameter count matches (1,009,900): ``bn0`` (BatchNorm2d over the 64 mel bins), ``conv2``/``bn2``
(16->16, 3x3), ``conv4``/``bn4`` (32->32, 5x5), ``conv6``/``bn6`` (64->64, 7x7). They receive no
gradient. Accepts any length of at least 340 frames.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from soundaq.models_zoo.nets.common import MEL_BINS, ZooNet, add_linear_heads, linear_heads, strip_module_prefix
from soundaq.models_zoo.outputs import NetOutput


def _conv(cin: int, cout: int, k: int, padding) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=(k, k), stride=(1, 1), padding=padding, bias=False)


class _PlainCNNTrunk(ZooNet):
    """The conv trunk shared by the Baseline and Hierarchical CNNs (same layers, same names)."""

    # conv7 (9x9, no padding) needs 13 steps so that its 5-step max-pool has one output
    min_frames = 340
    embedding_dim = 128

    def __init__(self):
        super().__init__()
        self.bn0 = nn.BatchNorm2d(MEL_BINS)  # defined by the original, unused in its forward
        self.conv1 = _conv(1, 16, 3, (1, 1))
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = _conv(16, 16, 3, (1, 1))  # unused by the original forward
        self.bn2 = nn.BatchNorm2d(16)
        self.conv3 = _conv(16, 32, 5, (1, 1))
        self.bn3 = nn.BatchNorm2d(32)
        self.conv4 = _conv(32, 32, 5, (2, 2))  # unused
        self.bn4 = nn.BatchNorm2d(32)
        self.conv5 = _conv(32, 64, 7, (1, 1))
        self.bn5 = nn.BatchNorm2d(64)
        self.conv6 = _conv(64, 64, 7, (2, 0))  # unused
        self.bn6 = nn.BatchNorm2d(64)
        self.conv7 = _conv(64, 128, 9, (0, 0))
        self.bn7 = nn.BatchNorm2d(128)

    def embed(self, mel: torch.Tensor) -> torch.Tensor:
        x = mel.unsqueeze(1)
        x = F.max_pool2d(F.relu_(self.bn1(self.conv1(x))), kernel_size=(2, 2))
        x = F.max_pool2d(F.relu_(self.bn3(self.conv3(x))), kernel_size=(3, 2))
        x = F.max_pool2d(F.relu_(self.bn5(self.conv5(x))), kernel_size=(4, 1))
        x = F.max_pool2d(F.relu_(self.bn7(self.conv7(x))), kernel_size=(5, 2))
        # [B, 128, T', 1] -> mean over time -> [B, 128]
        return x.mean(dim=2).flatten(1)


class BaselineCNN(_PlainCNNTrunk):
    """Baseline CNN (see the module docstring): log-mel ``[B, T >= 340, 64]`` -> :class:`NetOutput`."""

    def __init__(self):
        super().__init__()
        add_linear_heads(self, self.embedding_dim)

    def forward(self, mel: torch.Tensor, loudness: torch.Tensor | None = None) -> NetOutput:
        """The twelve heads' outputs for a batch of normalised log-mel ``[B, T, 64]`` (``loudness`` unused)."""
        self.check_inputs(mel, loudness)
        return linear_heads(self, self.embed(mel))


def map_original_keys(state_dict):
    """Release ``Other_Baseline_CNN`` state dict -> this module's keys: the identity (after removing
    a DataParallel ``module.`` prefix): ``bn0.*``, ``conv{1..7}.weight``, ``bn{1..7}.*``, ``fc_final_*``.
    """
    return strip_module_prefix(state_dict)
