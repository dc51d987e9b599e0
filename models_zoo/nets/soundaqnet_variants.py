"""SoundAQnet's ablation variants of the SoundSCaper release, in plain PyTorch (no dgl).

The release trains SoundAQnet's supplementary studies with one class per variant; each class here
computes what the release's class computes (checked against the release's code with its random
weights loaded key for key; the facts that check measured live in
:data:`soundaq.models_zoo.variants.RELEASE_VARIANTS`):

* **kernel subsets** (``SoundAQnet_different_kernels``: ``SoundAQnet_S1`` ... ``SoundAQnet_S2_S3_S4``):
  only the branches S1..S4 (kernels 3, 5, 7, 9; a log-mel and a loudness sub-branch each) of
  ``kernels`` feed the graph, which has ``2 * len(kernels)`` nodes (the log-mel nodes in kernel order,
  then the loudness nodes), and ``fc_all_nodes_to_classification_embeddings`` reads ``64 * nodes``.
  The release's classes also define the unused branches; this module builds only what the forward
  uses (both counts in ``RELEASE_VARIANTS``).
* **blocks** (``SoundAQnet_blocks``: ``SoundAQnet_block2/4/5``; 3 is the paper's net): 2..5 conv
  blocks per branch with 16, 32, 64, 128, 256 channels; the pooling and frequency padding of each
  block per kernel are the release's hand-set values (:data:`_MEL_PAD`, :data:`_MEL_POOL`,
  :data:`_LOUD_POOL`), so the frequency width reaching ``k_{k}_freq_to_1`` varies by kernel (block 4:
  6, 2, 2, 12; block 5: 2, 4, 4, 3 for k = 3, 5, 7, 9). A node has as many features as the last block
  has channels; ``embedding_h`` and the ``fc_residual_*`` layers read that width (+ 64).
* **dilation** (``SoundAQnet_dilation_rates``: ``SoundAQnet_1_1_1``, ``_1_2_5``, ``_1_3_5``, ``_2_3_5``;
  1-2-3 is the paper's net): the time dilation of conv blocks 1-3 of every branch.
* every release variant other than the paper's net builds its gated GCN with the classes' default
  ``n_layers = 3`` (two 32 -> 32 residual layers, then 32 -> 64); the paper's SoundAQnet has one.
  The same rule holds here: 1 layer only for 3 blocks with dilation 1-2-3.
* **SoundAQnet_AFF** (``SoundAQnet_CLAP_AFF``: ``SoundAQnet_CLAP_AFF_fusion``): no graph. Per input,
  each kernel's ``[B, 64, F]`` map (after max + mean over time) is fused with the mean over the four
  kernels by attentional feature fusion (Dai et al., 2021, "Attentional Feature Fusion", WACV;
  :class:`AFF`, modules ``clap_fusion_mel``/``clap_fusion_loudness``); the two results are fused
  again with the mean of both (``clap_fusion_mel_loudness``) and flattened (512) into
  ``fc_all_nodes_to_classification_embeddings``. Its class also defines the graph layers,
  ``k_{k}_freq_to_1`` and ``fc_residual_*`` and never uses them; they are built here too so that the
  trainable count equals the release class's (as for Baseline_CNN's unused layers).

Combinations the release has no class for (``blocks=2`` with ``dilation=1-1-1``, a kernel subset with
4 blocks, ...) apply each setting to the release's layout: the dilation replaces the time dilation of
the first ``min(blocks, 3)`` blocks, and a kernel subset keeps only its branches.

Inputs and outputs are SoundAQnet's (:mod:`soundaq.models_zoo.nets.soundaqnet`).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from soundaq.models_zoo.nets.common import MEL_BINS, ConvBlock, init_bn, init_layer
from soundaq.models_zoo.nets.soundaqnet import (
    KERNELS,
    GatedGraphConv,
    SoundAQnet,
    _loudness_block_name,
    _mean_max_time,
    _mel_block_name,
    add_task_layers,
)
from soundaq.models_zoo.variants import BLOCK_VALUES, DEFAULTS, DILATION_VALUES

BLOCKS = BLOCK_VALUES
DILATIONS = DILATION_VALUES
PAPER_DILATION: tuple[int, int, int] = DEFAULTS["dilation"]
CHANNELS = (16, 32, 64, 128, 256)

# Frequency padding of the log-mel branch, per kernel, block 1..5 (the release's values). The
# 3-block net pads block 3 like block 2; the 4- and 5-block nets pad block 3 of k = 7, 9 by 3, 4.
_PAD_3: dict[int, tuple[int, ...]] = {3: (1, 0, 0), 5: (2, 1, 1), 7: (3, 2, 2), 9: (4, 3, 3)}
_PAD_45: dict[int, tuple[int, ...]] = {3: (1, 0, 0, 1, 1), 5: (2, 1, 1, 2, 2), 7: (3, 2, 3, 3, 3), 9: (4, 3, 4, 4, 4)}
_MEL_PAD: dict[int, dict[int, tuple[int, ...]]] = {2: _PAD_3, 3: _PAD_3, 4: _PAD_45, 5: _PAD_45}
# Pooling after each log-mel block, per kernel (time, frequency).
_P22, _P21, _P11, _P12 = (2, 2), (2, 1), (1, 1), (1, 2)
_MEL_POOL: dict[int, dict[int, tuple[tuple[int, int], ...]]] = {
    2: {k: (_P22, _P22) for k in KERNELS},
    3: {k: (_P22, _P22, _P22) for k in KERNELS},
    4: {3: (_P22, _P22, _P11, _P11), 5: (_P22, _P22, _P11, _P11), 7: (_P22, _P22, _P11, _P11),
        9: (_P22, _P11, _P11, _P11)},
    5: {3: (_P22, _P22, _P11, _P11, _P11), 5: (_P22, _P21, _P11, _P11, _P12),
        7: (_P22, _P21, _P11, _P11, _P11), 9: (_P11, _P11, _P11, _P12, _P12)},
}
# Pooling after each loudness block (the same for every kernel).
_LOUD_POOL: dict[int, tuple[tuple[int, int], ...]] = {2: (_P21, _P21), 3: (_P21, _P21, _P21), 4: (_P21, _P21, _P11, _P11),
              5: (_P21, _P21, _P11, _P11, _P11)}

def _out_len(n: int, kernel: int, pad: int, dil: int, pool: int) -> int:
    """Length after two convolutions (kernel, padding, dilation, stride 1) and a pooling."""
    for _ in range(2):
        n = n + 2 * pad - dil * (kernel - 1)
    return n // pool if n > 0 else 0


class _Layout:
    """Per branch and block: channels, kernel, padding, dilation and pooling (see module docstring)."""

    def __init__(self, kernels: tuple[int, ...], blocks: int, dilation: tuple[int, int, int]):
        self.kernels, self.blocks, self.dilation = kernels, blocks, dilation

    def time_dilation(self, block: int) -> tuple[int, int]:
        return (self.dilation[block - 1], 1) if block <= 3 else (2, 2)

    def mel(self, k: int):
        """``(name, cin, cout, kernel, padding, dilation, pool)`` of each log-mel block of kernel k."""
        pads, pools = _MEL_PAD[self.blocks][k], _MEL_POOL[self.blocks][k]
        for b in range(1, self.blocks + 1):
            pad = (1, 1) if (k == 3 and b in (1, 4, 5)) else (0, pads[b - 1])
            yield (_mel_block_name(b, k), ([1, *CHANNELS])[b - 1], CHANNELS[b - 1], (k, k), pad,
                   self.time_dilation(b), pools[b - 1])

    def loudness(self, k: int):
        for b in range(1, self.blocks + 1):
            yield (_loudness_block_name(b, k), ([1, *CHANNELS])[b - 1], CHANNELS[b - 1], (k, 1), (0, 0),
                   self.time_dilation(b), _LOUD_POOL[self.blocks][b - 1])

    def mel_freq(self, k: int) -> int:
        """Frequency width of kernel k's last log-mel map (the input of ``k_{k}_freq_to_1``)."""
        width = MEL_BINS
        for _, _, _, kern, pad, dil, pool in self.mel(k):
            width = _out_len(width, kern[1], pad[1], dil[1], pool[1])
        return width

    def min_length(self, loudness: bool) -> int:
        """Shortest input (frames or loudness samples) for which every branch keeps >= 1 time step."""
        def ok(n: int) -> bool:
            for k in self.kernels:
                t = n
                for _, _, _, kern, pad, dil, pool in (self.loudness(k) if loudness else self.mel(k)):
                    t = _out_len(t, kern[0], pad[0], dil[0], pool[0])
                if t < 1:
                    return False
            return True
        n = 1
        while not ok(n):
            n += 1
        return n


class AFF(nn.Module):
    """Attentional feature fusion of two ``[B, C, H, W]`` maps (Dai et al., 2021), the release's form.

    ``forward(x, residual)``: ``w = sigmoid(local(x + residual) + global(x + residual))``, returns
    ``2 x w + 2 residual (1 - w)``. A batch of one is doubled for the batch norms, as the release does.
    """

    def __init__(self, channels: int = 64, r: int = 4):
        super().__init__()
        inter = channels // r

        def branch(*head: nn.Module) -> nn.Sequential:
            return nn.Sequential(*head, nn.Conv2d(channels, inter, 1), nn.BatchNorm2d(inter), nn.ReLU(inplace=True),
                                 nn.Conv2d(inter, channels, 1), nn.BatchNorm2d(channels))

        self.local_att = branch()
        self.global_att = branch(nn.AdaptiveAvgPool2d(1))

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        """The fusion of two ``[B, C, H, W]`` maps (see the class docstring); same shape."""
        xa = x + residual
        single = xa.shape[0] == 1
        if single:
            xa = torch.cat([xa, xa], dim=0)
        weight = torch.sigmoid(self.local_att(xa) + self.global_att(xa))
        if single:
            weight = weight[:1]
        return 2 * x * weight + 2 * residual * (1 - weight)


def parse_kernels(kernels: Iterable[int] | None) -> tuple[int, ...]:
    """The kernel subset in :data:`KERNELS` order (``None``: all four).

    Raises:
        ValueError: an empty subset, a repeated kernel or one not in 3, 5, 7, 9.
    """
    if kernels is None:
        return KERNELS
    chosen = tuple(int(k) for k in kernels)
    if not chosen or len(set(chosen)) != len(chosen) or any(k not in KERNELS for k in chosen):
        raise ValueError(f"kernels must be a non-empty subset of {'+'.join(map(str, KERNELS))} without "
                         f"repeats, got {chosen}")
    return tuple(k for k in KERNELS if k in chosen)


class SoundAQnetVariant(SoundAQnet):
    """SoundAQnet with a kernel subset, 2-5 conv blocks, other time dilations, or AFF fusion.

    Args:
        kernels: the branches kept (subset of 3, 5, 7, 9; default all).
        blocks: conv blocks per branch (2, 3, 4 or 5; 3 is the paper's).
        dilation: time dilation of blocks 1-3 (one of :data:`DILATIONS`; (1, 2, 3) is the paper's).
        aff: the release's ``SoundAQnet_CLAP_AFF_fusion`` (all kernels, 3 blocks, paper dilation only).

    Raises:
        ValueError: a value outside those sets, or ``aff`` with any other setting.
    ``forward(mel [B, T, 64], loudness [B, T', 1]) -> NetOutput`` is :class:`SoundAQnet`'s, over :meth:`encode`.
    """

    def __init__(self, kernels: Iterable[int] | None = None, blocks: int = 3,
                 dilation: Iterable[int] = PAPER_DILATION, aff: bool = False):
        nn.Module.__init__(self)
        kernels = parse_kernels(kernels)
        dilation = tuple(int(d) for d in dilation)
        if int(blocks) not in BLOCKS:
            raise ValueError(f"blocks must be one of {', '.join(map(str, sorted(BLOCKS)))}, got {blocks}")
        if dilation not in DILATIONS:
            raise ValueError("dilation must be one of " + ", ".join("-".join(map(str, d)) for d in DILATIONS)
                             + f", got {'-'.join(map(str, dilation))}")
        if aff and (kernels != KERNELS or int(blocks) != 3 or dilation != PAPER_DILATION):
            raise ValueError("SoundAQnet_AFF takes no kernels, blocks or dilation setting")
        self.kernels, self.blocks, self.dilation_rates, self.aff = kernels, int(blocks), dilation, bool(aff)
        self.layout = _Layout(kernels, self.blocks, dilation)
        self.node_names = tuple(f"mel_k{k}" for k in kernels) + tuple(f"loudness_k{k}" for k in kernels)
        # the shortest inputs depend on the layout: instance values over SoundAQnet's class values
        self.min_frames = self.layout.min_length(loudness=False)  # type: ignore[misc]
        self.min_loudness_samples = self.layout.min_length(loudness=True)  # type: ignore[misc]
        self.gcn_layers = 1 if (self.blocks == 3 and dilation == PAPER_DILATION) else 3
        self.bn0 = nn.BatchNorm2d(MEL_BINS)
        init_bn(self.bn0)
        feat = CHANNELS[self.blocks - 1]
        for k in kernels:
            for name, cin, cout, kern, pad, dil, _ in self.layout.mel(k):
                setattr(self, name, ConvBlock(cin, cout, kern, pad, dilation=dil))
            setattr(self, f"k_{k}_freq_to_1", nn.Linear(self.layout.mel_freq(k), 1, bias=True))
        for k in kernels:
            for name, cin, cout, kern, pad, dil, _ in self.layout.loudness(k):
                setattr(self, name, ConvBlock(cin, cout, kern, pad, dilation=dil))
        if self.aff:
            self.clap_fusion_mel = AFF(self.node_dim)
            self.clap_fusion_loudness = AFF(self.node_dim)
            self.clap_fusion_mel_loudness = AFF(self.node_dim)
        self.embedding_h = nn.Linear(feat, self.hidden_dim)
        self.embedding_e = nn.Linear(self.node_dim, self.hidden_dim)
        layers = [GatedGraphConv(self.hidden_dim, self.hidden_dim) for _ in range(self.gcn_layers - 1)]
        self.layers = nn.ModuleList([*layers, GatedGraphConv(self.hidden_dim, self.node_dim)])
        self.fc_all_nodes_to_classification_embeddings = nn.Linear(len(self.node_names) * self.node_dim,
                                                                   self.graph_dim)
        for node in self.node_names:
            setattr(self, f"fc_residual_{node}", nn.Linear(feat + self.node_dim, self.node_dim))
        self._add_task_layers()
        for layer in (self.fc_all_nodes_to_classification_embeddings, *self._task_layers()):
            init_layer(layer)

    def _add_task_layers(self) -> None:
        add_task_layers(self, self.graph_dim)

    def _run(self, x: torch.Tensor, blocks) -> torch.Tensor:
        for name, *_, pool in blocks:
            x = getattr(self, name)(x, pool_size=pool, pool_type="avg")
            x = F.dropout(x, p=self.dropout, training=self.training)
        return _mean_max_time(x)  # [B, C, F]

    def _branch_maps(self, mel: torch.Tensor, loudness: torch.Tensor | None):
        self.check_inputs(mel, loudness)
        if loudness is None:   # check_inputs has said so already; this tells the type checker
            raise ValueError(f"{type(self).__name__} needs the loudness input [batch, samples, 1]")
        x = self.bn0(mel.unsqueeze(1).transpose(1, 3)).transpose(1, 3)  # batch norm per mel bin
        y = loudness.unsqueeze(1)
        mel_maps = [self._run(x, self.layout.mel(k)) for k in self.kernels]          # [B, C, F_k]
        loud_maps = [self._run(y, self.layout.loudness(k)) for k in self.kernels]    # [B, C, 1]
        return mel_maps, loud_maps

    def _aff_common(self, mel_maps, loud_maps) -> torch.Tensor:
        """The release's ``SoundAQnet_CLAP_AFF_fusion`` path: ``[B, 512]`` before the GELU."""
        def fuse(maps, aff: AFF) -> torch.Tensor:
            overall = torch.stack(maps, dim=0).mean(dim=0)[..., None]                 # [B, 64, F, 1]
            return torch.cat([aff(overall, m[..., None]) for m in maps], dim=-1)      # [B, 64, F, K]

        mel_all = fuse(mel_maps, self.clap_fusion_mel)
        loud_all = fuse(loud_maps, self.clap_fusion_loudness)
        both = torch.cat([mel_all, loud_all], dim=2).mean(dim=2)[..., None]          # [B, 64, K, 1]
        mel_fused = self.clap_fusion_mel_loudness(both, mel_all.mean(dim=2)[..., None])
        loud_fused = self.clap_fusion_mel_loudness(both, loud_all.mean(dim=2)[..., None])
        return self.fc_all_nodes_to_classification_embeddings(torch.cat([mel_fused, loud_fused], dim=-1).flatten(1))

    def encode(self, mel: torch.Tensor, loudness: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """As :meth:`SoundAQnet.encode` with ``N = 2 * len(kernels)`` nodes of ``C`` features (the last
        block's channels): ``nodes`` ``[B, N, C]``, ``graph`` ``[B, N, 64]``, ``kernels`` ``[B, 64 N]``,
        ``common`` ``[B, 512]``. The AFF net has no graph: only ``common``.
        """
        mel_maps, loud_maps = self._branch_maps(mel, loudness)
        if self.aff:
            return {"common": F.gelu(self._aff_common(mel_maps, loud_maps))}
        nodes = [F.relu(getattr(self, f"k_{k}_freq_to_1")(m))[..., 0] for k, m in zip(self.kernels, mel_maps)]
        nodes += [m[..., 0] for m in loud_maps]
        node_feats = torch.stack(nodes, dim=1)
        h = self.embedding_h(node_feats)
        e = self.embedding_e(node_feats.new_ones(1, 1, 1, self.node_dim))  # all-ones edge features
        for layer in self.layers:
            h, e = layer(h, e)
        fused = [F.gelu(getattr(self, f"fc_residual_{name}")(torch.cat([node_feats[:, i], h[:, i]], dim=-1)))
                 for i, name in enumerate(self.node_names)]
        kernels = torch.cat(fused, dim=-1)
        common = F.gelu(self.fc_all_nodes_to_classification_embeddings(kernels))
        return {"nodes": node_feats, "graph": h, "kernels": kernels, "common": common}

    def release_keys(self, state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The release class's state dict reduced to this net's keys: the layers of the branches a
        kernel subset drops (defined but unused by the release's ``SoundAQnet_S*``) are left out.

        Raises:
            KeyError: a key this net needs is not in ``state_dict``.
        """
        from soundaq.models_zoo.nets.common import strip_module_prefix

        state = strip_module_prefix(state_dict)
        return {k: state[k] for k in self.state_dict()}
