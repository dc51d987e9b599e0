"""A toy net from outside the project: everything a plug-in needs (docs/extending.md).

Put this file on PYTHONPATH and use ``--model soundaq_toynet:ToyNet``, or declare it in your package's
pyproject.toml with one line::

    [project.entry-points."soundaq.models"]
    ToyNet = "soundaq_toynet:ToyNet"
"""
import torch
from torch import nn

from soundaq.models_zoo.nets.common import ZooNet, add_linear_heads, linear_heads


class ToyNet(ZooNet):
    """A 1-D convolution over the log-mel frames, mean+max pooled, the zoo's twelve heads."""

    name = "ToyNet"          # its registry name (the class name when absent)
    min_frames = 16          # accepts any length from 16 frames: trains on crops in the embedded schedule
    schedule = {"lr": 3e-3}  # noqa: RUF012 - a plain class attribute, as docs/extending.md shows; what it needs of the training schedule (lr, warmup_fraction, grad_clip)

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(64, 8, kernel_size=5, padding=2)
        add_linear_heads(self, 16)

    def forward(self, mel, loudness=None):
        self.check_inputs(mel, loudness)
        x = torch.relu(self.conv(mel.transpose(1, 2)))      # [B, 8, T]
        return linear_heads(self, torch.cat([x.mean(-1), x.amax(-1)], dim=1))
