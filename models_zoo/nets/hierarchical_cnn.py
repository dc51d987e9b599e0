"""Hierarchical CNN of SoundSCaper (``Other_Hierarchical_CNN/framework/models_pytorch.py``), re-implemented.

Same conv trunk as the Baseline CNN (see :mod:`soundaq.models_zoo.nets.baseline_cnn`, including its
unused ``bn0``, ``conv2``, ``conv4``, ``conv6`` layers), with hierarchical heads:
events from the 128-d embedding; scene from the event logits through a 15x15 linear embedding
(``event_embedding_layer``, no activation) and ``fc_final_scene`` (15 -> 3); the 8 qualities from the
embedding; ISOP/ISOE from the 8 predicted qualities through ``PAQ_embedding_layer`` (8x8) + ReLU and
``fc_final_ISOPls``/``fc_final_ISOEvs`` (8 -> 1). 1,009,633 trainable parameters.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from soundaq.base.vocab import EVENTS, QUALITIES
from soundaq.models_zoo.nets.baseline_cnn import _PlainCNNTrunk
from soundaq.models_zoo.nets.common import add_linear_heads, make_output, qualities_from_heads, strip_module_prefix
from soundaq.models_zoo.outputs import NetOutput


class HierarchicalCNN(_PlainCNNTrunk):
    """Hierarchical CNN (see the module docstring): scene from the events, ISOP/ISOE from the qualities."""

    def __init__(self):
        super().__init__()
        add_linear_heads(self, self.embedding_dim, scene_in=len(EVENTS), isop_isoe_in=len(QUALITIES))
        self.event_embedding_layer = nn.Linear(len(EVENTS), len(EVENTS), bias=True)
        self.PAQ_embedding_layer = nn.Linear(len(QUALITIES), len(QUALITIES), bias=True)

    def forward(self, mel: torch.Tensor, loudness: torch.Tensor | None = None) -> NetOutput:
        """The heads' outputs for normalised log-mel ``[B, T, 64]`` (``loudness`` unused)."""
        self.check_inputs(mel, loudness)
        x = self.embed(mel)
        event = self.fc_final_event(x)
        scene = self.fc_final_scene(self.event_embedding_layer(event))
        qualities = qualities_from_heads(self, x)
        paq = F.relu(self.PAQ_embedding_layer(qualities))
        return make_output(scene, event, qualities, self.fc_final_ISOPls(paq), self.fc_final_ISOEvs(paq))


def map_original_keys(state_dict):
    """Release ``Other_Hierarchical_CNN`` state dict -> this module's keys: the identity (after
    removing a DataParallel ``module.`` prefix): the Baseline CNN's keys plus
    ``event_embedding_layer.*`` and ``PAQ_embedding_layer.*``.
    """
    return strip_module_prefix(state_dict)
