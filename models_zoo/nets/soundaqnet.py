"""SoundAQnet (SoundSCaper's own model), re-implemented in plain PyTorch (no dgl).

Inputs: the normalised log-mel ``[B, T, 64]`` (T = 3001 for 30 s) and the normalised ISO 532-1
loudness ``[B, T', 1]`` (T' = 15000). Outputs: scene, events, ISOP, ISOE and the 8 qualities.

1. ``bn0``: batch norm per mel bin.
2. Four log-mel branches with kernels k = 3, 5, 7, 9 (``conv_block{1,2,3}`` for k = 3,
   ``conv_block{1,2,3}_kernel_{k}`` otherwise): three :class:`ConvBlock`s (16, 32, 64 channels),
   the 2nd and 3rd with time dilation 2 and 3, each followed by 2x2 average pooling and dropout 0.2;
   then max + mean over time -> ``[B, 64, 5]`` and ``k_{k}_freq_to_1`` (5 -> 1) + ReLU -> a 64-d node.
3. Four loudness branches (``conv_block{1,2,3}[_kernel_{k}]_loudness``), kernels (k, 1), no padding,
   dilations 1, 2, 3 in time, 2x1 average pooling, dropout 0.2; max + mean over time -> a 64-d node.
4. A gated graph convolution (Bresson & Laurent's residual gated GCN, one layer, 32 -> 64) over the
   8 nodes of a complete graph with self-loops, whose edge features are all ones (the original
   builds that graph with dgl for every clip; here it is a dense, batched computation):
   ``h = embedding_h(nodes)``, ``e = embedding_e(1)``, then for edge j -> i
   ``e_ji = D h_j + E h_i + C e``, ``sigma = sigmoid(e_ji)``,
   ``h_i' = A h_i + sum_j sigma_ji * B h_j / (sum_j sigma_ji + 1e-6)``, batch norm, ReLU.
5. Per node a residual fusion ``gelu(fc_residual_*([node, h_node']))`` (128 -> 64); the 8 results
   are concatenated (512, "kernel embeddings"), ``fc_all_nodes_to_classification_embeddings``
   (512 -> 512) + GELU, one GELU embedding per task (event/scene 256, ISOP/ISOE 64, qualities 128)
   and the final linear heads.

``k_{k}_freq_to_1`` exist only for the log-mel branches. All layers are used; 2,701,812
trainable parameters. Module names equal the original's, so its state dict loads without renames.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from soundaq.base.vocab import QUALITIES
from soundaq.models_zoo.nets.common import (
    MEL_BINS,
    QUALITY_HEADS,
    ConvBlock,
    ZooNet,
    add_linear_heads,
    init_bn,
    init_layer,
    make_output,
    qualities_from_heads,
    strip_module_prefix,
)
from soundaq.models_zoo.outputs import NetOutput

KERNELS = (3, 5, 7, 9)
#: Node order of the graph: the 4 log-mel kernels, then the 4 loudness kernels.
NODE_NAMES = tuple(f"mel_k{k}" for k in KERNELS) + tuple(f"loudness_k{k}" for k in KERNELS)


def _mel_block_name(block: int, k: int) -> str:
    return f"conv_block{block}" if k == 3 else f"conv_block{block}_kernel_{k}"


def _loudness_block_name(block: int, k: int) -> str:
    return f"conv_block{block}_loudness" if k == 3 else f"conv_block{block}_kernel_{k}_loudness"


def _mean_max_time(x: torch.Tensor) -> torch.Tensor:
    """``[B, C, T, F]`` -> max over time + mean over time -> ``[B, C, F]``."""
    return x.amax(dim=2) + x.mean(dim=2)


def add_task_layers(net: nn.Module, graph_dim: int) -> None:
    """SoundAQnet's task branch (release names): an embedding per task from the graph's [graph_dim]
    vector (events and scene 256, ISOP and ISOE 64, each quality 128), then the output heads.
    """
    net.fc_embedding_event = nn.Linear(graph_dim, 256)
    net.fc_embedding_scene = nn.Linear(graph_dim, 256)
    net.fc_embedding_ISOPls = nn.Linear(graph_dim, 64)
    net.fc_embedding_ISOEvs = nn.Linear(graph_dim, 64)
    for q in QUALITIES:
        setattr(net, f"fc_embedding_{q}", nn.Linear(graph_dim, 128))
    add_linear_heads(net, 128, event_in=256, scene_in=256, isop_isoe_in=64)


class GatedGraphConv(nn.Module):
    """One residual gated graph convolution layer on a batch of complete graphs with self-loops.

    ``h``: node features ``[B, N, in_dim]``; ``e``: edge features broadcastable to ``[B, N, N, in_dim]``
    where ``e[b, j, i]`` is the edge from node j to node i. Returns ``(h', e')`` with ``h'`` of shape
    ``[B, N, out_dim]`` and ``e'`` of shape ``[B, N, N, out_dim]``. Linear layers ``A``..``E`` and
    batch norms ``bn_node_h``/``bn_node_e`` carry the original's names. Batch norm statistics run
    over all nodes (and all edges) of the batch, as over a dgl batched graph.
    """

    # the five linear maps, registered by name in __init__ (declared for the type checker)
    A: nn.Linear
    B: nn.Linear
    C: nn.Linear
    D: nn.Linear
    E: nn.Linear

    def __init__(self, in_dim: int, out_dim: int, dropout: float = 0.0, batch_norm: bool = True,
                 residual: bool = True):
        super().__init__()
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.residual = residual and in_dim == out_dim
        for name in ("A", "B", "C", "D", "E"):
            setattr(self, name, nn.Linear(in_dim, out_dim, bias=True))
        self.bn_node_h = nn.BatchNorm1d(out_dim)
        self.bn_node_e = nn.BatchNorm1d(out_dim)

    def forward(self, h: torch.Tensor, e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One gated graph convolution over the complete graph (see the module docstring, step 4).

        Args:
            h: node features ``[B, N, in_dim]``.
            e: edge features ``[B, N, N, in_dim]`` (or broadcastable to it), ``e[b, j, i]`` of edge j -> i.

        Returns:
            ``(h', e')``: ``[B, N, out_dim]`` and ``[B, N, N, out_dim]``.
        """
        batch, nodes, _ = h.shape
        ah, bh, dh, eh = self.A(h), self.B(h), self.D(h), self.E(h)
        ce = self.C(e)
        # e'[b, j, i] = D h_j (source) + E h_i (destination) + C e_ji
        e_new = dh[:, :, None, :] + eh[:, None, :, :] + ce
        e_new = e_new.expand(batch, nodes, nodes, e_new.shape[-1])
        sigma = torch.sigmoid(e_new)
        # aggregate the messages arriving at each destination i over all sources j (dim 1)
        h_new = ah + (sigma * bh[:, :, None, :]).sum(dim=1) / (sigma.sum(dim=1) + 1e-6)
        if self.batch_norm:
            h_new = self.bn_node_h(h_new.reshape(-1, h_new.shape[-1])).reshape(h_new.shape)
            e_new = self.bn_node_e(e_new.reshape(-1, e_new.shape[-1])).reshape(e_new.shape)
        h_new, e_new = F.relu(h_new), F.relu(e_new)
        if self.residual:
            h_new, e_new = h + h_new, e + e_new
        h_new = F.dropout(h_new, self.dropout, training=self.training)
        e_new = F.dropout(e_new, self.dropout, training=self.training)
        return h_new, e_new


class SoundAQnet(ZooNet):
    """SoundAQnet (see the module docstring): log-mel ``[B, T, 64]`` and loudness ``[B, 5T, 1]`` -> :class:`NetOutput`."""

    uses_loudness = True
    # the k = 9 branches lose 16, 32 and 48 steps to their convolutions and halve after each block
    min_frames = 280
    min_loudness_samples = 280
    node_dim = 64
    hidden_dim = 32
    graph_dim = 512
    dropout = 0.2

    def __init__(self):
        super().__init__()
        n_nodes = len(NODE_NAMES)
        self.bn0 = nn.BatchNorm2d(MEL_BINS)
        init_bn(self.bn0)
        for k in KERNELS:
            pad1 = (1, 1) if k == 3 else (0, (k - 1) // 2)
            pad23 = (0, 0) if k == 3 else (0, (k - 1) // 2 - 1)
            setattr(self, _mel_block_name(1, k), ConvBlock(1, 16, (k, k), pad1))
            setattr(self, _mel_block_name(2, k), ConvBlock(16, 32, (k, k), pad23, dilation=(2, 1)))
            setattr(self, _mel_block_name(3, k), ConvBlock(32, 64, (k, k), pad23, dilation=(3, 1)))
            setattr(self, f"k_{k}_freq_to_1", nn.Linear(5, 1, bias=True))
        for k in KERNELS:
            for block, (cin, cout, dil) in enumerate(((1, 16, 1), (16, 32, 2), (32, 64, 3)), start=1):
                setattr(self, _loudness_block_name(block, k),
                        ConvBlock(cin, cout, (k, 1), (0, 0), dilation=(dil, 1)))

        self.embedding_h = nn.Linear(self.node_dim, self.hidden_dim)
        self.embedding_e = nn.Linear(self.node_dim, self.hidden_dim)
        self.layers = nn.ModuleList([GatedGraphConv(self.hidden_dim, self.node_dim, dropout=0.0,
                                                    batch_norm=True, residual=True)])
        self.fc_all_nodes_to_classification_embeddings = nn.Linear(n_nodes * self.node_dim, self.graph_dim)
        for node in NODE_NAMES:
            setattr(self, f"fc_residual_{node}", nn.Linear(2 * self.node_dim, self.node_dim))
        add_task_layers(self, self.graph_dim)
        for layer in (self.fc_all_nodes_to_classification_embeddings, *self._task_layers()):
            init_layer(layer)

    def _task_layers(self):
        names = ["fc_embedding_event", "fc_embedding_scene", "fc_embedding_ISOPls", "fc_embedding_ISOEvs"]
        names += [f"fc_embedding_{q}" for q in QUALITIES]
        names += ["fc_final_event", "fc_final_scene", "fc_final_ISOPls", "fc_final_ISOEvs"]
        names += list(QUALITY_HEADS.values())
        return [getattr(self, n) for n in names]

    def _branch(self, x: torch.Tensor, names, pool) -> torch.Tensor:
        for name in names:
            x = getattr(self, name)(x, pool_size=pool, pool_type="avg")
            x = F.dropout(x, p=self.dropout, training=self.training)
        return _mean_max_time(x)

    def encode(self, mel: torch.Tensor, loudness: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """Intermediate embeddings: ``nodes`` ``[B, 8, 64]`` (graph input, in :data:`NODE_NAMES`
        order), ``graph`` ``[B, 8, 64]`` (gated GCN output), ``kernels`` ``[B, 512]`` (fused node
        embeddings) and ``common`` ``[B, 512]`` (the shared embedding feeding the task heads).
        """
        self.check_inputs(mel, loudness)
        if loudness is None:   # check_inputs has said so already; this tells the type checker
            raise ValueError(f"{type(self).__name__} needs the loudness input [batch, samples, 1]")
        x = self.bn0(mel.unsqueeze(1).transpose(1, 3)).transpose(1, 3)  # batch norm per mel bin
        nodes = []
        for k in KERNELS:
            xk = self._branch(x, [_mel_block_name(b, k) for b in (1, 2, 3)], (2, 2))  # [B, 64, 5]
            nodes.append(F.relu(getattr(self, f"k_{k}_freq_to_1")(xk))[..., 0])
        y = loudness.unsqueeze(1)
        for k in KERNELS:
            yk = self._branch(y, [_loudness_block_name(b, k) for b in (1, 2, 3)], (2, 1))  # [B, 64, 1]
            nodes.append(yk[..., 0])
        node_feats = torch.stack(nodes, dim=1)  # [B, 8, 64]

        h = self.embedding_h(node_feats)
        e = self.embedding_e(node_feats.new_ones(1, 1, 1, self.node_dim))  # all-ones edge features
        for layer in self.layers:
            h, e = layer(h, e)
        fused = [F.gelu(getattr(self, f"fc_residual_{name}")(torch.cat([node_feats[:, i], h[:, i]], dim=-1)))
                 for i, name in enumerate(NODE_NAMES)]
        kernels = torch.cat(fused, dim=-1)  # [B, 512], node after node
        common = F.gelu(self.fc_all_nodes_to_classification_embeddings(kernels))
        return {"nodes": node_feats, "graph": h, "kernels": kernels, "common": common}

    def forward(self, mel: torch.Tensor, loudness: torch.Tensor | None = None) -> NetOutput:
        """The heads' outputs for normalised log-mel ``[B, T, 64]`` and loudness ``[B, T', 1]`` (required)."""
        common = self.encode(mel, loudness)["common"]

        def emb(name: str) -> torch.Tensor:
            return F.gelu(getattr(self, f"fc_embedding_{name}")(common))

        qualities = qualities_from_heads(self, {q: emb(q) for q in QUALITIES})
        return make_output(self.fc_final_scene(emb("scene")), self.fc_final_event(emb("event")), qualities,
                           self.fc_final_ISOPls(emb("ISOPls")), self.fc_final_ISOEvs(emb("ISOEvs")))


def map_original_keys(state_dict):
    """Release ``SoundAQnet`` state dict -> this module's keys: the identity (after removing a
    DataParallel ``module.`` prefix). The dense :class:`GatedGraphConv` keeps the dgl layer's names
    (``layers.0.{A,B,C,D,E}.*``, ``layers.0.bn_node_{h,e}.*``), so 391 keys load one to one.
    """
    return strip_module_prefix(state_dict)
