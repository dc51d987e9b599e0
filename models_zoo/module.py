"""One LightningModule for every zoo network: multi-task loss, metrics, checkpoints, prediction.

``SoundscapeModule("AD_CNN")`` builds the net from the registry and keeps it as ``self.net``, so a
checkpoint's ``state_dict`` holds ``net.<key>`` entries and its ``hyper_parameters`` hold
``net_name``: the same layout that ``soundaq import-original`` writes for released weights.
Every checkpoint also carries ``checkpoint["soundaq"] = {"model", "norm_stats", "provenance"}``
so that prediction can normalise raw features exactly as in training and every result can say
where its model came from.

Metrics are torchmetrics objects, logged per stage (``val``/``test``) as:

``<stage>/scene_acc``
    macro accuracy over the 3 scenes (mean of per-class accuracies, as the original);
``<stage>/event_auc``
    the paper's event AUC: ROC AUC over the 15 events of each clip, averaged over clips
    (clips whose labels are all 0 or all 1 are skipped, as the original skips all-0 clips);
``<stage>/event_auc_macro``
    the standard definition: ROC AUC per event over clips, averaged over events;
``<stage>/isop_mse``, ``<stage>/isoe_mse``, ``<stage>/<quality>_mse``
    mean squared errors; ``<stage>/paq_mse`` is the mean of the 8 quality MSEs (the paper's
    "mean PAQ MSE");
``<stage>/loss``
    the training objective on that stage's data.

Early stopping watches ``val/isop_mse`` (the original's ``monitor = 'ISOPls'``).
"""
from __future__ import annotations

import io
from typing import Any

import lightning as L
import torch
from torch import nn
from torchmetrics import MeanSquaredError, Metric
from torchmetrics.classification import MulticlassAccuracy, MultilabelAUROC

from models_zoo.losses import TASKS, MultiTaskLoss
from models_zoo.outputs import NetOutput
from models_zoo.vocab import EVENTS, QUALITIES, SCENES

#: The metric early stopping and best-checkpoint selection watch (lower is better).
MONITOR = "val/isop_mse"


def clip_auc(probs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """ROC AUC of each row (clip) over its columns (events), by pairwise ranking with ties as 1/2.

    Returns ``(auc [B], valid [B])``; a row is valid when it has at least one positive and one
    negative label (otherwise its AUC is undefined and reported as 0).
    """
    targets = targets > 0.5
    pos = targets.unsqueeze(2)            # [B, E, 1]: i is positive
    neg = (~targets).unsqueeze(1)         # [B, 1, E]: j is negative
    diff = probs.unsqueeze(2) - probs.unsqueeze(1)   # [B, E, E]: p_i - p_j
    wins = (diff > 0).to(probs.dtype) + 0.5 * (diff == 0).to(probs.dtype)
    pairs = (pos & neg).to(probs.dtype)
    n_pairs = pairs.sum(dim=(1, 2))
    valid = n_pairs > 0
    auc = torch.where(valid, (wins * pairs).sum(dim=(1, 2)) / n_pairs.clamp_min(1), torch.zeros_like(n_pairs))
    return auc, valid


class ClipwiseAUROC(Metric):
    """The paper's event AUC: per-clip ROC AUC over the 15 events, averaged over clips."""

    higher_is_better = True
    full_state_update = False

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.add_state("auc_sum", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("clips", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, probs: torch.Tensor, targets: torch.Tensor) -> None:
        auc, valid = clip_auc(probs.detach().double(), targets.detach())
        # Not in place: states reset under inference mode must stay usable in later stages.
        self.auc_sum = self.auc_sum + auc[valid].sum()
        self.clips = self.clips + valid.sum()

    def compute(self) -> torch.Tensor:
        if self.clips == 0:
            return torch.tensor(float("nan"), dtype=torch.float64)
        return self.auc_sum / self.clips


class MeanColumnMSE(Metric):
    """Mean over columns of the per-column mean squared error (the paper's mean PAQ MSE)."""

    higher_is_better = False
    full_state_update = False

    def __init__(self, columns: int, **kwargs):
        super().__init__(**kwargs)
        self.add_state("sq_sum", default=torch.zeros(columns, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("rows", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        self.sq_sum = self.sq_sum + (preds.detach().double() - target.detach().double()).pow(2).sum(dim=0)
        self.rows = self.rows + preds.shape[0]

    def compute(self) -> torch.Tensor:
        return (self.sq_sum / self.rows.clamp_min(1)).mean()


class StageMetrics(nn.Module):
    """The torchmetrics objects of one stage; ``names()`` lists what gets logged."""

    def __init__(self):
        super().__init__()
        self.scene_acc = MulticlassAccuracy(num_classes=len(SCENES), average="macro")
        self.event_auc = ClipwiseAUROC()
        self.event_auc_macro = MultilabelAUROC(num_labels=len(EVENTS), average="macro")
        self.isop_mse = MeanSquaredError()
        self.isoe_mse = MeanSquaredError()
        self.quality_mse = nn.ModuleDict({q: MeanSquaredError() for q in QUALITIES})
        self.paq_mse = MeanColumnMSE(len(QUALITIES))

    def update(self, out: NetOutput, batch: dict) -> None:
        events_true = batch["events"]
        self.scene_acc.update(out.scene_logits.detach(), batch["scene"].long())
        probs = torch.sigmoid(out.event_logits.detach())
        self.event_auc.update(probs, events_true)
        self.event_auc_macro.update(probs, (events_true > 0.5).long())
        self.isop_mse.update(out.isop.detach().reshape(-1), batch["isop"].reshape(-1).to(out.isop.dtype))
        self.isoe_mse.update(out.isoe.detach().reshape(-1), batch["isoe"].reshape(-1).to(out.isoe.dtype))
        q_true = batch["qualities"].to(out.qualities.dtype)
        for k, q in enumerate(QUALITIES):
            self.quality_mse[q].update(out.qualities[:, k].detach(), q_true[:, k])
        self.paq_mse.update(out.qualities.detach(), q_true)

    def items(self):
        """``(suffix, metric object)`` pairs, suffixes as logged after ``<stage>/``."""
        yield "scene_acc", self.scene_acc
        yield "event_auc", self.event_auc
        yield "event_auc_macro", self.event_auc_macro
        yield "isop_mse", self.isop_mse
        yield "isoe_mse", self.isoe_mse
        for q in QUALITIES:
            yield f"{q}_mse", self.quality_mse[q]
        yield "paq_mse", self.paq_mse


def _plain(obj):
    """Numpy arrays/scalars and tensors as lists/floats, so checkpoints load with weights_only=True."""
    if obj is None or isinstance(obj, (str, bool, int, float)):
        return obj
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if hasattr(obj, "tolist"):  # numpy array/scalar or torch tensor
        return obj.tolist()
    return str(obj)


class SoundscapeModule(L.LightningModule):
    """Any zoo net behind one training/evaluation/prediction interface.

    ``net`` lets a caller pass a ready module (tests, user nets that follow the net contract);
    otherwise the registry builds ``net_name`` with ``net_kwargs``.
    """

    def __init__(self, net_name: str, lr: float = 5e-4, uncertainty_weighting: bool = False,
                 norm_stats: dict | None = None, provenance: dict | None = None,
                 net_kwargs: dict | None = None, net: nn.Module | None = None):
        super().__init__()
        net_kwargs = dict(net_kwargs or {})
        self.save_hyperparameters({"net_name": net_name, "lr": float(lr),
                                   "uncertainty_weighting": bool(uncertainty_weighting),
                                   "net_kwargs": _plain(net_kwargs)})
        if net is None:
            from models_zoo.registry import build_net

            net = build_net(net_name, **net_kwargs)
        self.net = net
        self.net_name = net_name
        self.norm_stats = _plain(norm_stats)
        self.provenance = _plain(provenance) or {}
        self.loss = MultiTaskLoss(uncertainty_weighting)
        self.val_metrics = StageMetrics()
        self.test_metrics = StageMetrics()

    # -- forward ----------------------------------------------------------------------------------
    @property
    def uses_loudness(self) -> bool:
        return bool(getattr(self.net, "uses_loudness", False))

    def forward(self, mel: torch.Tensor, loudness: torch.Tensor | None = None) -> NetOutput:
        return self.net(mel, loudness if self.uses_loudness else None)

    def _forward_batch(self, batch: dict) -> NetOutput:
        if self.uses_loudness and batch.get("loudness") is None:
            raise ValueError(f"{self.net_name} needs the loudness input but the batch has none")
        return self(batch["mel"], batch.get("loudness"))

    # -- steps ------------------------------------------------------------------------------------
    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        out = self._forward_batch(batch)
        total, parts = self.loss(out, batch)
        n = int(batch["scene"].shape[0])
        self.log("train/loss", total, on_step=True, on_epoch=True, prog_bar=True, batch_size=n)
        for task in TASKS:
            self.log(f"train/loss_{task}", parts[task], on_step=False, on_epoch=True, batch_size=n)
        return total

    def _eval_step(self, batch: dict, stage: str, metrics: StageMetrics) -> torch.Tensor:
        out = self._forward_batch(batch)
        total, _ = self.loss(out, batch)
        n = int(batch["scene"].shape[0])
        metrics.update(out, batch)
        self.log(f"{stage}/loss", total, on_step=False, on_epoch=True, batch_size=n, sync_dist=True)
        for suffix, metric in metrics.items():
            self.log(f"{stage}/{suffix}", metric, on_step=False, on_epoch=True,
                     prog_bar=suffix in ("isop_mse", "scene_acc"))
        return total

    @staticmethod
    def _thaw(metrics: StageMetrics) -> None:
        """Clone metric states left as inference tensors by an earlier ``trainer.validate``/``test``
        (they cannot be updated in place under fit's no-grad validation otherwise)."""
        if torch.is_inference_mode_enabled():
            return
        for metric in metrics.modules():
            if isinstance(metric, Metric):
                for name in metric._defaults:
                    value = getattr(metric, name)
                    if isinstance(value, torch.Tensor) and value.is_inference():
                        setattr(metric, name, value.clone())

    def on_validation_epoch_start(self) -> None:
        self._thaw(self.val_metrics)

    def on_test_epoch_start(self) -> None:
        self._thaw(self.test_metrics)

    def validation_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return self._eval_step(batch, "val", self.val_metrics)

    def test_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return self._eval_step(batch, "test", self.test_metrics)

    def predict_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> dict[str, Any]:
        """Per-clip outputs: softmax scene and sigmoid event probabilities, qualities, ISOP, ISOE."""
        out = self._forward_batch(batch)
        result = {
            "scene_probabilities": torch.softmax(out.scene_logits.float(), dim=-1).cpu(),
            "event_probabilities": torch.sigmoid(out.event_logits.float()).cpu(),
            "qualities": out.qualities.float().cpu(),
            "isop": out.isop.float().reshape(-1).cpu(),
            "isoe": out.isoe.float().reshape(-1).cpu(),
        }
        if "clip" in batch:
            result["clip"] = list(batch["clip"])
        return result

    # -- optimisation -----------------------------------------------------------------------------
    def configure_optimizers(self):
        # Adam as in every original training loop; the uncertainty sigmas (if any) train with it.
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr, betas=(0.9, 0.999), eps=1e-8)

    def on_fit_start(self) -> None:
        """Take normalisation statistics and data provenance from the data module when it has them."""
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is None:
            return
        if self.norm_stats is None and getattr(datamodule, "norm_stats", None) is not None:
            self.norm_stats = _plain(datamodule.norm_stats)
        describe = getattr(datamodule, "describe", None)
        if callable(describe) and "data" not in self.provenance:
            self.provenance = {**self.provenance, "data": _plain(describe())}

    # -- checkpoints ------------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["soundaq"] = {"model": self.net_name, "norm_stats": self.norm_stats,
                                 "provenance": self.provenance}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        info = checkpoint.get("soundaq") or {}
        if info.get("norm_stats") is not None:
            self.norm_stats = info["norm_stats"]
        if info.get("provenance"):
            self.provenance = info["provenance"]

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path, map_location=None, hparams_file=None, strict=None, **kwargs):
        """Lightning's loader, also for checkpoints written without Lightning's version stamp
        (``soundaq import-original`` output, hand-made files): those are stamped in memory first."""
        try:
            return super().load_from_checkpoint(checkpoint_path, map_location=map_location,
                                                hparams_file=hparams_file, strict=strict, **kwargs)
        except KeyError as err:
            if err.args != ("pytorch-lightning_version",):
                raise
        checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
        checkpoint["pytorch-lightning_version"] = L.__version__
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        buffer.seek(0)
        return super().load_from_checkpoint(buffer, map_location=map_location, hparams_file=hparams_file,
                                            strict=strict, **kwargs)

    def count_parameters(self) -> int:
        """Trainable parameters of the net alone (the paper's counts; loss weights excluded)."""
        return sum(p.numel() for p in self.net.parameters() if p.requires_grad)
