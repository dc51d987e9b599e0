"""Building blocks shared by the zoo networks: input checks, initialisation, conv blocks, output heads.

Attribute names follow the original SoundSCaper release (``conv1``/``bn1`` inside a conv block,
``fc_final_event``, ``fc_final_scene``, ``fc_final_ISOPls``, ``fc_final_ISOEvs`` and
``fc_final_<quality>`` for the heads) so that released state dicts load with few or no renames.

Stable API (part B's nets import it): :class:`ZooNet`, :func:`init_layer`, :func:`init_bn`,
:class:`ConvBlock`, :func:`add_linear_heads`, :func:`linear_heads`, :func:`make_output`,
:func:`strip_module_prefix`, :data:`HEAD_NAMES`, :data:`QUALITY_HEADS`.

Each net module also defines ``map_original_keys(state_dict) -> state_dict``: the one documented
mapping from the original release's keys to the module's own (soundaq.models_zoo.checkpoints calls it).
"""
from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping
from typing import ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F

from soundaq.base.vocab import EVENTS, QUALITIES, SCENES
from soundaq.models_zoo.outputs import NetOutput

#: Number of mel bins every zoo network expects.
MEL_BINS = 64
#: Frames of a 30-s clip (hop 10 ms, centred STFT) and loudness samples (2 ms) of a 30-s clip.
CLIP_FRAMES = 3001
CLIP_LOUDNESS_SAMPLES = 15000

#: Head attribute of each quality, in vocab.QUALITIES order (the original's names).
QUALITY_HEADS: dict[str, str] = {q: f"fc_final_{q}" for q in QUALITIES}
#: All head attributes of the original nets: scene, event, ISOP, ISOE and the 8 qualities.
HEAD_NAMES: tuple[str, ...] = ("fc_final_event", "fc_final_scene", "fc_final_ISOPls", "fc_final_ISOEvs",
                               *QUALITY_HEADS.values())


class ZooNet(nn.Module):
    """Base of every zoo network: the input contract and the facts the registry reads.

    Subclasses implement ``forward(mel, loudness=None) -> NetOutput``; ``mel`` is the normalised
    log-mel ``[B, T, 64]`` (T = 3001 for a 30-s clip) and ``loudness`` the normalised ISO 532-1
    loudness ``[B, T', 1]`` (T' = 15000), used only when :attr:`uses_loudness` is true.
    """

    #: True only for nets that read the loudness input (SoundAQnet).
    uses_loudness: ClassVar[bool] = False
    #: Smallest number of mel frames the architecture accepts (and largest, when it is fixed).
    min_frames: ClassVar[int] = 1
    max_frames: ClassVar[int | None] = None
    #: Smallest loudness length accepted (nets that use loudness).
    min_loudness_samples: ClassVar[int] = 1
    # The four named heads :func:`add_linear_heads` registers (declared for the type checker).
    fc_final_event: nn.Linear
    fc_final_scene: nn.Linear
    fc_final_ISOPls: nn.Linear
    fc_final_ISOEvs: nn.Linear

    def check_inputs(self, mel: torch.Tensor, loudness: torch.Tensor | None = None) -> None:
        """Raise ValueError with a plain message when the inputs break the contract."""
        name = type(self).__name__
        if not isinstance(mel, torch.Tensor) or mel.ndim != 3 or mel.shape[-1] != MEL_BINS:
            shape = tuple(mel.shape) if isinstance(mel, torch.Tensor) else type(mel).__name__
            raise ValueError(f"{name}: mel must be [batch, frames, {MEL_BINS}], got {shape}")
        frames = mel.shape[1]
        if frames < self.min_frames or (self.max_frames is not None and frames > self.max_frames):
            span = (f"{self.min_frames}..{self.max_frames}" if self.max_frames is not None
                    else f">= {self.min_frames}")
            raise ValueError(f"{name}: needs {span} mel frames, got {frames}")
        if self.uses_loudness:
            if loudness is None:
                raise ValueError(f"{name} needs the loudness input [batch, samples, 1]")
            if loudness.ndim != 3 or loudness.shape[-1] != 1 or loudness.shape[0] != mel.shape[0]:
                raise ValueError(f"{name}: loudness must be [batch={mel.shape[0]}, samples, 1], "
                                 f"got {tuple(loudness.shape)}")
            if loudness.shape[1] < self.min_loudness_samples:
                raise ValueError(f"{name}: needs >= {self.min_loudness_samples} loudness samples, "
                                 f"got {loudness.shape[1]}")


def init_layer(layer: nn.Module) -> None:
    """The original's initialisation: uniform with bound sqrt(6 / fan_in) (He-uniform), zero bias."""
    weight = layer.get_parameter("weight")
    fan_in = weight[0].numel()
    bound = math.sqrt(2.0 / fan_in) * math.sqrt(3.0)
    bias = getattr(layer, "bias", None)
    with torch.no_grad():
        weight.uniform_(-bound, bound)
        if bias is not None:
            bias.zero_()


def init_bn(bn: nn.Module) -> None:
    """Batch norm starts as the identity: weight 1, bias 0."""
    with torch.no_grad():
        bn.get_parameter("weight").fill_(1.0)
        bn.get_parameter("bias").zero_()


def _pool(x: torch.Tensor, pool_size, pool_type: str) -> torch.Tensor:
    if pool_type == "avg":
        return F.avg_pool2d(x, kernel_size=pool_size)
    if pool_type == "max":
        return F.max_pool2d(x, kernel_size=pool_size)
    if pool_type == "avg+max":
        return F.avg_pool2d(x, kernel_size=pool_size) + F.max_pool2d(x, kernel_size=pool_size)
    if pool_type == "none":
        return x
    raise ValueError(f"unknown pool_type {pool_type!r} (avg, max, avg+max, none)")


class ConvBlock(nn.Module):
    """Two bias-free convolutions, each followed by batch norm and ReLU, then a pooling.

    Module names (``conv1``, ``conv2``, ``bn1``, ``bn2``) are the original's. ``dilation`` applies to
    both convolutions (the original's ``ConvBlock_dilation``).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size=(3, 3), padding=(1, 1),
                 dilation=(1, 1)):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=kernel_size, stride=(1, 1),
                               padding=padding, dilation=dilation, bias=False)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=kernel_size, stride=(1, 1),
                               padding=padding, dilation=dilation, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        init_layer(self.conv1)
        init_layer(self.conv2)
        init_bn(self.bn1)
        init_bn(self.bn2)

    def forward(self, x: torch.Tensor, pool_size=(2, 2), pool_type: str = "avg") -> torch.Tensor:
        """The two convolutions of ``x`` ``[B, C_in, T, F]``, then a ``pool_size`` pooling.

        Args:
            x: feature maps ``[B, in_channels, T, F]``.
            pool_size: the pooling kernel (time, frequency).
            pool_type: ``avg``, ``max``, ``avg+max`` (their sum) or ``none``.

        Raises:
            ValueError: another ``pool_type``.
        """
        x = F.relu_(self.bn1(self.conv1(x)))
        x = F.relu_(self.bn2(self.conv2(x)))
        return _pool(x, pool_size, pool_type)


def add_linear_heads(net: nn.Module, in_features: int, *, isop_isoe_in: int | None = None,
                     scene_in: int | None = None, event_in: int | None = None) -> None:
    """Register the original's 12 output layers on ``net`` under the original's names.

    ``fc_final_event`` (15), ``fc_final_scene`` (3), ``fc_final_ISOPls``/``fc_final_ISOEvs`` (1 each)
    and ``fc_final_<quality>`` (1 each). ``event_in``/``scene_in``/``isop_isoe_in`` override the input
    width of the event, scene and ISO heads (nets that feed them other embeddings).
    """
    net.fc_final_event = nn.Linear(event_in or in_features, len(EVENTS), bias=True)
    net.fc_final_scene = nn.Linear(scene_in or in_features, len(SCENES), bias=True)
    net.fc_final_ISOPls = nn.Linear(isop_isoe_in or in_features, 1, bias=True)
    net.fc_final_ISOEvs = nn.Linear(isop_isoe_in or in_features, 1, bias=True)
    for attr in QUALITY_HEADS.values():
        setattr(net, attr, nn.Linear(in_features, 1, bias=True))


def qualities_from_heads(net: nn.Module, x: torch.Tensor | Mapping[str, torch.Tensor]) -> torch.Tensor:
    """The 8 quality heads as ``[B, 8]`` in vocab.QUALITIES order.

    ``x`` is one embedding for all heads, or a mapping quality -> that quality's own embedding.
    """
    cols = []
    for quality, attr in QUALITY_HEADS.items():
        inp = x[quality] if isinstance(x, Mapping) else x
        cols.append(getattr(net, attr)(inp))
    return torch.cat(cols, dim=-1)


def make_output(scene_logits: torch.Tensor, event_logits: torch.Tensor, qualities: torch.Tensor,
                isop: torch.Tensor, isoe: torch.Tensor) -> NetOutput:
    """Assemble a :class:`NetOutput`, flattening ``[B, 1]`` ISO outputs to ``[B]``."""
    return NetOutput(scene_logits=scene_logits, event_logits=event_logits, qualities=qualities,
                     isop=isop.reshape(-1), isoe=isoe.reshape(-1))


def linear_heads(net: nn.Module, x: torch.Tensor) -> NetOutput:
    """Apply the 12 heads registered by :func:`add_linear_heads` to one shared embedding ``[B, D]``."""
    def head(name: str) -> torch.Tensor:
        return net.get_submodule(name)(x)

    return make_output(head("fc_final_scene"), head("fc_final_event"), qualities_from_heads(net, x),
                       head("fc_final_ISOPls"), head("fc_final_ISOEvs"))


def strip_module_prefix(state_dict: Mapping[str, torch.Tensor]) -> OrderedDict[str, torch.Tensor]:
    """Drop the ``module.`` prefix that ``nn.DataParallel``/DDP add, when every key carries it."""
    keys = list(state_dict)
    if keys and all(k.startswith("module.") for k in keys):
        return OrderedDict((k[len("module."):], v) for k, v in state_dict.items())
    return OrderedDict(state_dict.items())
