"""One LightningModule for every zoo network: multi-task loss, metrics, checkpoints, prediction.

``SoundscapeModule("AD_CNN")`` builds the net from the registry and keeps it as ``self.net``, so a
checkpoint's ``state_dict`` holds ``net.<key>`` entries and its ``hyper_parameters`` hold
``net_name``: the same layout that ``soundaq import-original`` writes for released weights.
Every checkpoint also carries ``checkpoint["soundaq"] = {"model", "norm_stats", "provenance"}``
so that prediction can normalise raw features exactly as in training and every result can say
where its model came from.

Metrics are the project's one set of definitions, :class:`soundaq.models_zoo.streaming.SoundAQMetrics` (a
torchmetrics ``Metric`` per stage, updated every batch, computed and reset at epoch end, synchronised
across processes under DDP). Every scalar of :data:`soundaq.models_zoo.metrics.METRICS` is logged as
``<stage>/<name>`` (``val``/``test``), e.g.:

``<stage>/scene_acc``
    the paper's scene accuracy (mean over the 3 scenes of correct / clips of that scene);
``<stage>/event_auc``
    the paper's event AUC: ROC AUC over the 15 events of each clip, averaged over clips;
``<stage>/event_auc_macro``, ``<stage>/event_map``, ``<stage>/scene_acc_plain``, ``<stage>/scene_f1_macro``
    the standard definitions;
``<stage>/isop_mse``, ``<stage>/isoe_mse``, ``<stage>/mse_<quality>``, ``<stage>/aq_mse_mean``
    mean squared errors (``aq_mse_mean``: the mean of the 8 quality MSEs, the paper's "mean PAQ MSE");
``<stage>/pearson_<quality>``
    Pearson r of each quality;
``<stage>/loss``
    the training objective on that stage's data.

The formulas are in soundaq.models_zoo.metrics (one definition per metric for the whole project).

Early stopping watches ``val/isop_mse`` (the original's ``monitor = 'ISOPls'``), or ``val/loss`` when the
data have no quality labels (:func:`monitor_for`). Metrics of a label group the data lack are not logged.
"""
from __future__ import annotations

import io
import math
from typing import Any

import lightning as L
import torch
from torch import nn
from torchmetrics import Metric

from soundaq.base.vocab import LABEL_GROUPS
from soundaq.models_zoo.losses import MultiTaskLoss
from soundaq.models_zoo.metrics import METRICS, unlabelled
from soundaq.models_zoo.outputs import NetOutput
from soundaq.models_zoo.schedules import PAPER_LR
from soundaq.models_zoo.streaming import SoundAQMetrics

#: The metric early stopping and best-checkpoint selection watch (lower is better).
MONITOR = "val/isop_mse"
#: What they watch instead when the data have no quality labels (so no ISOP).
FALLBACK_MONITOR = "val/loss"


def monitor_for(tasks=LABEL_GROUPS) -> str:
    """:data:`MONITOR` when ``tasks`` (the data's label groups) include the qualities, else
    :data:`FALLBACK_MONITOR` (the validation loss over the tasks that are labelled).
    """
    return MONITOR if "qualities" in tuple(tasks) else FALLBACK_MONITOR

#: Learning-rate schedules of :class:`SoundscapeModule` (see soundaq.models_zoo.schedules).
LR_SCHEDULES = ("constant", "onecycle")
#: ISO 532-1 loudness samples (2 ms) per log-mel frame (10 ms): how crops of the two inputs line up.
LOUDNESS_PER_FRAME = 5


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


class WarmupCosine:
    """The one-cycle learning-rate factor of step ``t`` (Smith & Topin 2019, as torch's OneCycleLR without
    momentum cycling): ``1/25 -> 1`` linearly over ``warm`` steps, then a cosine down to ``1/25e4`` at
    ``total``. A class (picklable, stored by value in checkpoints) that, unlike OneCycleLR, also works
    for runs of a handful of steps.
    """

    START, END = 1.0 / 25.0, 1.0 / 25e4

    def __init__(self, total: int, warm: int):
        self.total, self.warm = max(int(total), 1), max(int(warm), 1)

    def __call__(self, step: int) -> float:
        """The factor the peak learning rate is multiplied by at optimisation step ``step`` (from 0)."""
        if step < self.warm:
            return self.START + (1.0 - self.START) * step / self.warm
        progress = min((step - self.warm) / max(self.total - self.warm, 1), 1.0)
        return self.END + (1.0 - self.END) * 0.5 * (1.0 + math.cos(math.pi * progress))


def _plugin_target(name: str) -> str | None:
    """Where a plug-in net's class lives (so its checkpoints load in another process); None for the zoo's."""
    from soundaq.base.errors import UserError
    from soundaq.models_zoo.registry import get_spec

    try:
        spec = get_spec(name)
    except UserError:
        return None
    return spec.target if spec.plugin else None


class SoundscapeModule(L.LightningModule):
    """Any zoo net behind one training/evaluation/prediction interface.

    ``net`` lets a caller pass a ready module (tests, user nets that follow the net contract);
    otherwise the registry builds ``net_name`` with ``net_kwargs``.
    """

    def __init__(self, net_name: str, lr: float = PAPER_LR, uncertainty_weighting: bool = False,
                 norm_stats: dict | None = None, provenance: dict | None = None,
                 net_kwargs: dict | None = None, net: nn.Module | None = None, *,
                 lr_schedule: str = "constant", warmup_fraction: float = 0.0, crop_frames: int | None = None,
                 seed: int = 0, head_lr_width: int | None = None, loss_weights: tuple[float, ...] | None = None):
        super().__init__()
        net_kwargs = dict(net_kwargs or {})
        if lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule {lr_schedule!r}: use one of {', '.join(LR_SCHEDULES)}")
        self.save_hyperparameters({"net_name": net_name, "lr": float(lr),
                                   "uncertainty_weighting": bool(uncertainty_weighting),
                                   "net_kwargs": _plain(net_kwargs), "lr_schedule": lr_schedule,
                                   "warmup_fraction": float(warmup_fraction),
                                   "crop_frames": None if crop_frames is None else int(crop_frames),
                                   "seed": int(seed),
                                   "head_lr_width": None if head_lr_width is None else int(head_lr_width),
                                   "loss_weights": None if loss_weights is None else [float(w) for w in loss_weights]})
        if net is None:
            from soundaq.models_zoo.registry import build_net

            net = build_net(net_name, **net_kwargs)
        self.net = net
        self.net_name = net_name
        self.norm_stats = _plain(norm_stats)
        self.provenance = _plain(provenance) or {}
        self.loss = MultiTaskLoss(uncertainty_weighting, None if loss_weights is None else tuple(loss_weights))
        self.val_metrics = SoundAQMetrics()
        self.test_metrics = SoundAQMetrics()

    # -- forward ----------------------------------------------------------------------------------
    @property
    def uses_loudness(self) -> bool:
        """True when the net reads the ISO 532-1 loudness input beside the log-mel."""
        return bool(getattr(self.net, "uses_loudness", False))

    def forward(self, mel: torch.Tensor, loudness: torch.Tensor | None = None) -> NetOutput:
        """The net's outputs for normalised log-mel [B, T, 64] (and loudness [B, 5T, 1] if the net reads it)."""
        return self.net(mel, loudness if self.uses_loudness else None)

    def _forward_batch(self, batch: dict) -> NetOutput:
        if self.uses_loudness and batch.get("loudness") is None:
            raise ValueError(f"{self.net_name} needs the loudness input but the batch has none")
        return self(batch["mel"], batch.get("loudness"))

    def crop(self, batch: dict) -> dict:
        """A random crop of ``crop_frames`` log-mel frames of every training clip (and the loudness of the
        same stretch of time: 5 loudness samples per 10-ms frame), drawn from ``(seed, global_step)`` so
        that a resumed run draws the same crops. Batches no longer than the crop are returned as they are.
        """
        length = self.hparams.get("crop_frames")
        mel = batch["mel"]
        if not length or mel.shape[1] <= length:
            return batch
        generator = torch.Generator().manual_seed(int(self.hparams.get("seed", 0)) * 1_000_003 + int(self.global_step))
        starts = torch.randint(0, mel.shape[1] - length + 1, (mel.shape[0],), generator=generator).tolist()
        out = dict(batch)
        out["mel"] = torch.stack([mel[i, s:s + length] for i, s in enumerate(starts)])
        loud = batch.get("loudness")
        if self.uses_loudness and loud is not None:
            span = LOUDNESS_PER_FRAME * length
            first = [min(LOUDNESS_PER_FRAME * s, loud.shape[1] - span) for s in starts]
            out["loudness"] = torch.stack([loud[i, a:a + span] for i, a in enumerate(first)])
        return out

    # -- steps ------------------------------------------------------------------------------------
    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        """The summed task loss of a (cropped) training batch; logs it and each task's part."""
        batch = self.crop(batch)
        out = self._forward_batch(batch)
        total, parts = self.loss(out, batch)
        n = int(batch["scene"].shape[0])
        # sync_dist: under DDP the epoch values are means over every process's clips (one process: no-op).
        self.log("train/loss", total, on_step=True, on_epoch=True, prog_bar=True, batch_size=n, sync_dist=True)
        for task, value in parts.items():      # the tasks the batch has labels for
            self.log(f"train/loss_{task}", value, on_step=False, on_epoch=True, batch_size=n, sync_dist=True)
        return total

    def _eval_step(self, batch: dict, stage: str, metrics: Metric) -> torch.Tensor:
        out = self._forward_batch(batch)
        total, _ = self.loss(out, batch)
        metrics.update(out, batch)
        self.log(f"{stage}/loss", total, on_step=False, on_epoch=True, batch_size=int(batch["scene"].shape[0]),
                 sync_dist=True)
        return total

    def _log_epoch_metrics(self, stage: str, metrics: Metric) -> None:
        """Compute (over all processes), log every scalar of the METRICS registry whose labels the data
        have, reset.
        """
        if not metrics.update_called:
            return
        values = metrics.compute()
        metrics.reset()
        missing = set(unlabelled(values))
        for name in METRICS:
            if METRICS[name].task in missing:
                continue
            # Already identical on every rank (compute() gathered the states); sync_dist only keeps
            # Lightning's epoch-level bookkeeping consistent under DDP (the mean of equal values).
            self.log(f"{stage}/{name}", float(values[name]), on_step=False, on_epoch=True, sync_dist=True,
                     prog_bar=name in ("isop_mse", "scene_acc"))

    @staticmethod
    def _thaw(metrics: Metric) -> None:
        """Clone metric states left as inference tensors by an earlier ``trainer.validate``/``test``
        (they cannot be updated in place under fit's no-grad validation otherwise).
        """
        if torch.is_inference_mode_enabled():
            return
        for metric in metrics.modules():
            if isinstance(metric, Metric):
                for name in metric._defaults:
                    value = getattr(metric, name)
                    if isinstance(value, torch.Tensor) and value.is_inference():
                        setattr(metric, name, value.clone())

    def on_validation_epoch_start(self) -> None:
        """Make the validation metrics' states updatable again (see ``_thaw``)."""
        self._thaw(self.val_metrics)

    def on_test_epoch_start(self) -> None:
        """Make the test metrics' states updatable again (see ``_thaw``)."""
        self._thaw(self.test_metrics)

    def on_validation_epoch_end(self) -> None:
        """Log the epoch's ``val/*`` metrics and reset them."""
        self._log_epoch_metrics("val", self.val_metrics)

    def on_test_epoch_end(self) -> None:
        """Log the epoch's ``test/*`` metrics and reset them."""
        self._log_epoch_metrics("test", self.test_metrics)

    def validation_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        """The loss of a validation batch (whole clips); updates the ``val`` metrics."""
        return self._eval_step(batch, "val", self.val_metrics)

    def test_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        """The loss of a test batch (whole clips); updates the ``test`` metrics."""
        return self._eval_step(batch, "test", self.test_metrics)

    def predict_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> dict[str, Any]:
        """Per-clip outputs: softmax scene and sigmoid event probabilities, qualities, ISOP, ISOE."""
        out = self._forward_batch(batch)
        result: dict[str, Any] = {
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
    def parameter_groups(self) -> list[dict]:
        """Adam's parameter groups: one at ``lr``; with ``head_lr_width`` set, each output head whose
        input is wider gets ``lr * head_lr_width / fan_in``. Adam moves every weight by about the
        learning rate per step, so a head reading a wide embedding (MobileNetV2 1,280, PANNs 2,048,
        CNN-Transformer 65,536 values) moves its output ``fan_in`` times as far per step as one reading
        a narrow one; scaling its rate by the width keeps every head's per-step change alike (the
        "maximal update" rule for output layers).
        """
        from soundaq.models_zoo.nets.common import HEAD_NAMES

        lr, width = float(self.hparams["lr"]), self.hparams.get("head_lr_width")
        heads = {id(p): p for name in HEAD_NAMES if width and isinstance(getattr(self.net, name, None), nn.Linear)
                 for p in getattr(self.net, name).parameters()}
        groups: dict[float, list] = {}
        for name in HEAD_NAMES:
            layer = getattr(self.net, name, None)
            if width and isinstance(layer, nn.Linear):
                rate = lr * min(1.0, float(width) / layer.in_features)
                groups.setdefault(rate, []).extend(layer.parameters())
        rest = [p for p in self.parameters() if id(p) not in heads]
        out = [{"params": rest, "lr": lr}]
        out += [{"params": params, "lr": rate} for rate, params in sorted(groups.items(), reverse=True)]
        return out

    def configure_optimizers(self):
        """Adam as in every original training loop (the uncertainty sigmas, if any, train with it), over
        :meth:`parameter_groups`; with ``lr_schedule="onecycle"`` the one-cycle shape over the run's steps
        (:class:`WarmupCosine`: linear warm-up for ``warmup_fraction`` of them from lr/25 to lr, then
        cosine decay to lr/25e4), stepped per batch, each group from its own peak rate.
        """
        groups = self.parameter_groups()
        optimizer = torch.optim.Adam(groups, lr=self.hparams.lr, betas=(0.9, 0.999), eps=1e-8)
        if self.hparams.get("lr_schedule", "constant") == "constant":
            return optimizer
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        warm = min(max(1, round(float(self.hparams.get("warmup_fraction", 0.25)) * total)), total)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, WarmupCosine(total, warm))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

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
        """Add the ``soundaq`` entry: net name, normalisation statistics, provenance, plug-in class path."""
        checkpoint["soundaq"] = {"model": self.net_name, "norm_stats": self.norm_stats,
                                 "provenance": self.provenance, "target": _plugin_target(self.net_name)}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Restore the normalisation statistics and provenance of the ``soundaq`` entry."""
        info = checkpoint.get("soundaq") or {}
        if info.get("norm_stats") is not None:
            self.norm_stats = info["norm_stats"]
        if info.get("provenance"):
            self.provenance = info["provenance"]

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path, map_location=None, hparams_file=None, strict=None, **kwargs):
        """Lightning's loader, also for checkpoints written without Lightning's version stamp
        (``soundaq import-original`` output, hand-made files): those are stamped in memory first.
        """
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
