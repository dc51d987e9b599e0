"""AD_CNN: the three-layer CNN of the ARAUS-style affective-dimension baseline, as in SoundSCaper's
``Other_AD_CNN/framework/models_pytorch.py`` (re-implemented here).

Layout (input ``[B, 3001, 64]`` as one channel):
conv 7x7 (16) -> BN -> ReLU; conv 7x7 (16) -> BN -> ReLU -> max-pool 5x5 -> dropout 0.3;
conv 7x7 (32) -> BN -> ReLU -> max-pool 4x10 -> dropout 0.3; flatten (32 x 150 x 1 = 4800);
linear 4800 -> 100 -> ReLU -> dropout 0.3; twelve linear heads on the 100-d embedding.

The flatten makes the net length-specific: it accepts 3000..3019 frames (150 time steps after
pooling), i.e. 30-s clips. 521,472 trainable parameters.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from soundaq.models_zoo.nets.common import ZooNet, add_linear_heads, linear_heads, strip_module_prefix
from soundaq.models_zoo.outputs import NetOutput


class ADCNN(ZooNet):
    """AD_CNN (see the module docstring): log-mel ``[B, 3000..3019, 64]`` -> :class:`NetOutput`; no loudness."""

    min_frames = 3000
    max_frames = 3019
    embedding_dim = 100
    dropout = 0.3

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, kernel_size=(7, 7), stride=(1, 1), padding=(3, 3), bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 16, kernel_size=(7, 7), stride=(1, 1), padding=(3, 3), bias=False)
        self.bn2 = nn.BatchNorm2d(16)
        self.conv3 = nn.Conv2d(16, 32, kernel_size=(7, 7), stride=(1, 1), padding=(3, 3), bias=False)
        self.bn3 = nn.BatchNorm2d(32)
        # 32 channels x 150 time steps x 1 mel step after the two poolings of a 3001-frame clip.
        self.linear_layer = nn.Linear(32 * 150, self.embedding_dim, bias=True)
        add_linear_heads(self, self.embedding_dim)

    def forward(self, mel: torch.Tensor, loudness: torch.Tensor | None = None) -> NetOutput:
        """The twelve heads' outputs for a batch of normalised log-mel ``[B, T, 64]`` (``loudness`` unused)."""
        self.check_inputs(mel, loudness)
        x = mel.unsqueeze(1)
        x = F.relu_(self.bn1(self.conv1(x)))
        x = F.relu_(self.bn2(self.conv2(x)))
        x = F.dropout(F.max_pool2d(x, kernel_size=(5, 5)), p=self.dropout, training=self.training)
        x = F.relu_(self.bn3(self.conv3(x)))
        x = F.dropout(F.max_pool2d(x, kernel_size=(4, 10)), p=self.dropout, training=self.training)
        x = F.relu(self.linear_layer(x.flatten(1)))
        x = F.dropout(x, p=self.dropout, training=self.training)
        return linear_heads(self, x)


def map_original_keys(state_dict):
    """Release ``Other_AD_CNN`` state dict -> this module's keys: the identity (after removing a
    DataParallel ``module.`` prefix). The release file wraps the dict as ``{"state_dict": ...}``;
    soundaq.models_zoo.checkpoints unwraps that first. Keys: ``conv{1,2,3}.weight``, ``bn{1,2,3}.*``,
    ``linear_layer.*``, ``fc_final_*``.
    """
    return strip_module_prefix(state_dict)
