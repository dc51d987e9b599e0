"""PANNs (a CNN14 backbone) as the SoundSCaper release used it (``Other_PANNs``).

Six convolution blocks (two 3x3 convolutions + BN + ReLU each; 64, 128, 256, 512, 1024, 2048
channels), 2x2 average pooling after the first five and dropout 0.2 after every block, then mean over
frequency, max + mean over time, ``fc1`` (2048 -> 2048) + ReLU and the release's 12 linear heads.
The release builds it with ``batchnormal=False``, so there is no input batch-norm ``bn0``.
Time and frequency are halved five times: the input needs at least 32 frames.
Parameters: 79,731,036 (all trainable; no unused layers).

The block names (``conv_block1..6``, ``fc1``) are those of PANNs' CNN14, so AudioSet-pretrained
CNN14 weights from a user's file load into the backbone (see :mod:`soundaq.models_zoo.nets.pretrained`).
Release checkpoints load after :func:`map_original_keys` (identity after a ``module.`` prefix).
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping

import torch
from torch import nn
from torch.nn import functional as F

from soundaq.models_zoo.nets.common import ConvBlock, ZooNet, add_linear_heads, linear_heads, strip_module_prefix
from soundaq.models_zoo.outputs import NetOutput

__all__ = ["BLOCK_CHANNELS", "DROPOUT", "PANNs", "map_original_keys"]

BLOCK_CHANNELS: tuple[int, ...] = (64, 128, 256, 512, 1024, 2048)
DROPOUT = 0.2
EMBEDDING_DIM = 2048


class PANNs(ZooNet):
    """PANNs/CNN14 of the SoundSCaper release: log-mel ``[B, T, 64]`` -> :class:`NetOutput`."""

    uses_loudness = False
    min_frames = 32

    def __init__(self):
        super().__init__()
        channels = 1
        for i, out_channels in enumerate(BLOCK_CHANNELS):
            self.add_module(f"conv_block{i + 1}", ConvBlock(channels, out_channels))
            channels = out_channels
        self.fc1 = nn.Linear(EMBEDDING_DIM, EMBEDDING_DIM, bias=True)
        add_linear_heads(self, EMBEDDING_DIM)

    def embed(self, mel: torch.Tensor) -> torch.Tensor:
        """The 2048-d clip embedding ``relu(fc1(max_t + mean_t of the frequency-averaged map))``."""
        self.check_inputs(mel)
        x = mel.unsqueeze(1)
        last = len(BLOCK_CHANNELS)
        for i in range(1, last + 1):
            block = getattr(self, f"conv_block{i}")
            # the release's last block pools (1, 1), an identity: skip it
            x = block(x, pool_size=(2, 2), pool_type="none" if i == last else "avg")
            x = F.dropout(x, p=DROPOUT, training=self.training)
        x = x.mean(dim=3)
        x = x.max(dim=2).values + x.mean(dim=2)
        return F.relu_(self.fc1(x))

    def forward(self, mel: torch.Tensor, loudness: torch.Tensor | None = None) -> NetOutput:
        """The twelve linear heads on the embedding of normalised log-mel ``[B, T, 64]`` (``loudness`` unused)."""
        return linear_heads(self, self.embed(mel))


def map_original_keys(state_dict: Mapping[str, torch.Tensor]) -> OrderedDict[str, torch.Tensor]:
    """Release ``Other_PANNs`` state dict -> this module's keys.

    Identity after removing a DataParallel ``module.`` prefix: ``conv_block<1..6>.{conv1,conv2}.weight``,
    ``conv_block<i>.{bn1,bn2}.*``, ``fc1.{weight,bias}``, ``fc_final_*.{weight,bias}``.
    """
    return strip_module_prefix(state_dict)
