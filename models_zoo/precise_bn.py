"""Precise batch norm: the running statistics of batch-norm layers recomputed for a run's final weights.

:class:`soundaq.models_zoo.callbacks.PreciseBatchNorm` calls it at a clip budget's last step
(``Schedule.precise_bn_batches``), and :func:`soundaq.models_zoo.training.train_model` after a fit
that could not (a spawned fit, a run resumed at its last step).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch

from soundaq.models_zoo.module import LOUDNESS_PER_FRAME


def recompute_batchnorm(module: torch.nn.Module, loader: Iterable[Mapping[str, torch.Tensor]],
                        crop_frames: int | None, max_batches: int) -> dict[str, int]:
    """Batch-norm running statistics recomputed for the final weights ("precise BN").

    The running means and variances a net evaluates with are exponential averages (momentum 0.1) of
    the batches seen while its weights moved. After a short, fast-changing run they describe weights
    that are gone: YAMNet's 14 batch norms, for one, then squash every test clip to one output (its
    embedding's spread over clips fell from 0.57 in training mode to 0.0009 in evaluation mode). This
    resets them and averages, with equal weights, over the first ``max_batches`` batches of
    ``loader`` in training mode without gradients, on the same inputs as training (a centre crop of
    ``crop_frames`` frames when the run trained on crops). Deterministic: the loader's first batches,
    no dropout effect on the statistics of the layers before the dropout.

    Args:
        module: the model (a SoundscapeModule, called as ``module(mel, loudness)``); changed in place.
        loader: batches with ``"mel"`` (clips x frames x 64) and optionally ``"loudness"`` (clips x
            5 samples per frame).
        crop_frames: the training crop in frames (None: whole clips).
        max_batches: how many of the loader's first batches to average over.

    Returns:
        ``{"layers": number of batch-norm layers, "batches": batches used, "clips": clips used}``.
    """
    norms = [m for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
             and m.track_running_stats]
    if not norms:
        return {"layers": 0, "batches": 0, "clips": 0}
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None          # cumulative average over every batch that follows
    was_training, batches, clips = module.training, 0, 0
    module.train()
    try:
        with torch.no_grad():
            for batch in loader:
                mel, loud = _centre_crop(batch["mel"], batch.get("loudness"), crop_frames)
                module(mel, loud)
                batches += 1
                clips += int(mel.shape[0])
                if batches >= max_batches:
                    break
    finally:
        for m, momentum in zip(norms, saved, strict=True):
            m.momentum = momentum
        module.train(was_training)
    return {"layers": len(norms), "batches": batches, "clips": clips}


def _centre_crop(mel: torch.Tensor, loud: torch.Tensor | None,
                 crop_frames: int | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The centre ``crop_frames`` frames of a batch and the loudness samples of the same span."""
    if not crop_frames or mel.shape[1] <= crop_frames:
        return mel, loud
    start = (mel.shape[1] - crop_frames) // 2
    mel = mel[:, start:start + crop_frames]
    if loud is not None:
        span = LOUDNESS_PER_FRAME * crop_frames
        first = min(LOUDNESS_PER_FRAME * start, loud.shape[1] - span)
        loud = loud[:, first:first + span]
    return mel, loud
