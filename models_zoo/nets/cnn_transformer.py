"""CNN-Transformer of the SoundSCaper release (``Other_CNN_Transformer``).

Forward path (shapes for a 30-s clip, ``[B, 3001, 64]``)::

    conv1 3x3 (16) + BN + ReLU, max-pool (2, 2)    -> [B,  16, 1500, 32]
    conv3 5x5 pad 1 (32) + BN + ReLU, max-pool (3, 2) -> [B,  32,  499, 15]
    conv5 7x7 pad 1 (64) + BN + ReLU, max-pool (4, 1) -> [B,  64,  123, 11]
    conv7 9x9 pad 0 (128) + BN + ReLU, max-pool (5, 2) -> [B, 128,   23,  1]
    each of the 128 channels is a token of 23 values -> Linear(23, 512) -> one encoder layer
    (8-head self-attention, d_k = d_v = 64, output projection, residual + LayerNorm, no FFN)
    flatten [B, 128 * 512] = 65,536-d embedding -> the release's 12 linear heads.

The token projection is ``Linear(23, 512)``, so the net only accepts inputs whose time axis pools to
23 steps: :data:`FRAME_RANGE` (2,980 to 3,099 frames around a 30-s window of 3,001). Shorter clips must be
padded to 3001 frames.

Layers the release defines but never runs (kept so release checkpoints load key for key, and
counted in the 12,293,996 parameters): ``bn0`` (BatchNorm2d(64), 128), ``conv2``/``bn2`` (2,304 + 32),
``conv4``/``bn4`` (25,600 + 64), ``conv6``/``bn6`` (200,704 + 128) and ``mha_d_model_to_one``
(Linear(65536, 128), 8,388,736). They receive no gradient.

Module names equal the release's; :func:`map_original_keys` only strips a ``module.`` prefix.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping

import torch
from torch import nn
from torch.nn import functional as F

from soundaq.models_zoo.nets.common import ZooNet, add_linear_heads, linear_heads, strip_module_prefix
from soundaq.models_zoo.outputs import NetOutput

__all__ = ["FRAME_RANGE", "UNUSED_MODULES", "CNNTransformer", "map_original_keys", "pooled_steps"]

D_MODEL = 512
D_K = D_V = 64
N_HEADS = 8
N_TOKENS = 128          # channels of conv7 (each one a token)
TOKEN_DIM = 23          # time steps left after the last pooling, for a 30-s clip
MEL_BINS = 64

#: Modules defined by the release but absent from its forward pass.
UNUSED_MODULES = ("bn0", "conv2", "bn2", "conv4", "bn4", "conv6", "bn6", "mha_d_model_to_one")


def pooled_steps(frames: int) -> int:
    """Time steps left after the convolution/pooling stack for an input of ``frames`` frames."""
    t = frames // 2          # conv1 keeps the size; max-pool 2
    t = (t - 2) // 3         # conv3 (k5, p1) loses 2; max-pool 3
    t = (t - 4) // 4         # conv5 (k7, p1) loses 4; max-pool 4
    t = (t - 8) // 5         # conv7 (k9, p0) loses 8; max-pool 5
    return t


def _frame_range() -> tuple[int, int]:
    ok = [n for n in range(2000, 5000) if pooled_steps(n) == TOKEN_DIM]
    return ok[0], ok[-1]


#: Inclusive range of input lengths (frames) the token projection accepts.
FRAME_RANGE: tuple[int, int] = _frame_range()


class MultiHeadSelfAttention(nn.Module):
    """The release's ``MultiHeadAttention_nomask``: Q/K/V projections, scaled dot product, output
    projection ``fc``, then ``LayerNorm(out + input)``.
    """

    def __init__(self, d_model: int = D_MODEL, d_k: int = D_K, d_v: int = D_V, n_heads: int = N_HEADS):
        super().__init__()
        self.d_k, self.d_v, self.n_heads = d_k, d_v, n_heads
        self.W_Q = nn.Linear(d_model, d_k * n_heads)
        self.W_K = nn.Linear(d_model, d_k * n_heads)
        self.W_V = nn.Linear(d_model, d_v * n_heads)
        self.layernorm = nn.LayerNorm(d_model)
        self.fc = nn.Linear(n_heads * d_v, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        q = self.W_Q(x).view(b, n, self.n_heads, self.d_k).transpose(1, 2)
        k = self.W_K(x).view(b, n, self.n_heads, self.d_k).transpose(1, 2)
        v = self.W_V(x).view(b, n, self.n_heads, self.d_v).transpose(1, 2)
        # softmax(q k^T / sqrt(d_k)) v, no mask, no dropout: the fused kernel computes exactly that.
        context = F.scaled_dot_product_attention(q, k, v)
        context = context.transpose(1, 2).reshape(b, n, self.n_heads * self.d_v)
        return self.layernorm(self.fc(context) + x)


class EncoderLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc_self_attn = MultiHeadSelfAttention()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.enc_self_attn(x)


class Encoder(nn.Module):
    """Token projection ``mel_projection`` then ``n_layers`` attention-only encoder layers."""

    def __init__(self, input_dim: int = TOKEN_DIM, n_layers: int = 1):
        super().__init__()
        self.layers = nn.ModuleList([EncoderLayer() for _ in range(n_layers)])
        self.mel_projection = nn.Linear(input_dim, D_MODEL)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.mel_projection(x.reshape(x.shape[0], x.shape[1], -1))
        for layer in self.layers:
            x = layer(x)
        return x


def _conv(cin: int, cout: int, k: int, padding) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=(k, k), stride=(1, 1), padding=padding, bias=False)


class CNNTransformer(ZooNet):
    """CNN-Transformer of the SoundSCaper release: log-mel ``[B, ~3001, 64]`` -> :class:`NetOutput`."""

    uses_loudness = False
    min_frames, max_frames = FRAME_RANGE

    def __init__(self):
        super().__init__()
        self.bn0 = nn.BatchNorm2d(MEL_BINS)                      # unused by the release's forward
        self.conv1, self.bn1 = _conv(1, 16, 3, (1, 1)), nn.BatchNorm2d(16)
        self.conv2, self.bn2 = _conv(16, 16, 3, (1, 1)), nn.BatchNorm2d(16)   # unused
        self.conv3, self.bn3 = _conv(16, 32, 5, (1, 1)), nn.BatchNorm2d(32)
        self.conv4, self.bn4 = _conv(32, 32, 5, (2, 2)), nn.BatchNorm2d(32)   # unused
        self.conv5, self.bn5 = _conv(32, 64, 7, (1, 1)), nn.BatchNorm2d(64)
        self.conv6, self.bn6 = _conv(64, 64, 7, (2, 0)), nn.BatchNorm2d(64)   # unused
        self.conv7, self.bn7 = _conv(64, N_TOKENS, 9, (0, 0)), nn.BatchNorm2d(N_TOKENS)
        self.mha = Encoder(input_dim=TOKEN_DIM, n_layers=1)
        self.mha_d_model_to_one = nn.Linear(D_MODEL * N_TOKENS, N_TOKENS, bias=True)   # unused
        add_linear_heads(self, D_MODEL * N_TOKENS)

    def embed(self, mel: torch.Tensor) -> torch.Tensor:
        """The 65,536-d clip embedding (128 attended tokens of 512, flattened)."""
        self.check_inputs(mel)
        x = mel.unsqueeze(1)
        x = F.max_pool2d(F.relu_(self.bn1(self.conv1(x))), kernel_size=(2, 2))
        x = F.max_pool2d(F.relu_(self.bn3(self.conv3(x))), kernel_size=(3, 2))
        x = F.max_pool2d(F.relu_(self.bn5(self.conv5(x))), kernel_size=(4, 1))
        x = F.max_pool2d(F.relu_(self.bn7(self.conv7(x))), kernel_size=(5, 2))
        x = self.mha(x)
        return x.reshape(x.shape[0], -1)

    def forward(self, mel: torch.Tensor, loudness: torch.Tensor | None = None) -> NetOutput:
        """The twelve linear heads on the embedding of normalised log-mel ``[B, T, 64]`` (``loudness`` unused)."""
        return linear_heads(self, self.embed(mel))


def map_original_keys(state_dict: Mapping[str, torch.Tensor]) -> OrderedDict[str, torch.Tensor]:
    """Release ``Other_CNN_Transformer`` state dict -> this module's keys.

    Identity after removing a DataParallel ``module.`` prefix: ``bn0``, ``conv1..7``, ``bn1..7``,
    ``mha.mel_projection``, ``mha.layers.0.enc_self_attn.{W_Q,W_K,W_V,fc,layernorm}``,
    ``mha_d_model_to_one``, ``fc_final_*``. The unused modules are part of the release's state dict
    and load too.
    """
    return strip_module_prefix(state_dict)
