"""The metrics a training run logs, streamed over batches: a torchmetrics ``Metric`` with no formulas of its own.

:class:`SoundAQMetrics` keeps each batch's predictions and labels (a few numbers per clip) and, at
``compute()``, hands all of them to :func:`soundaq.models_zoo.metrics.score`: the very function that
scores predictions tables and bootstrap resamples. So the value logged as ``val/scene_acc`` during
training is, by construction, the ``scene_acc`` of the leaderboard's table of the same clips.

Under DDP the kept rows are gathered from every process (``dist_reduce_fx="cat"``) before scoring,
so metrics are computed over the whole split, not averaged over processes. The class is defined at
module level so that a trainer holding it can be pickled (``--strategy ddp_spawn``).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from soundaq.base.vocab import EVENTS, LABEL_GROUPS, QUALITIES, SCENES
from soundaq.models_zoo.eval_data import EvalData, MetricInputError
from soundaq.models_zoo.metrics import score
from soundaq.models_zoo.outputs import LABELLED_KEY, NetOutput

#: State name -> columns per clip.
_STATES: dict[str, int] = {
    "scene_true": 0, "scene_prob": len(SCENES), "event_true": len(EVENTS), "event_prob": len(EVENTS),
    "quality_true": len(QUALITIES), "quality_pred": len(QUALITIES), "iso_true": 2, "iso_pred": 2,
    "labelled": len(LABEL_GROUPS),
}
#: The truth states of each label group.
_TRUTH = {"scene": ("scene_true",), "events": ("event_true",), "qualities": ("quality_true", "iso_true")}


class SoundAQMetrics(Metric):
    """Every metric of :data:`soundaq.models_zoo.metrics.METRICS`, over all clips seen since ``reset()``.

    ``update(output, batch)``: ``output`` is a :class:`~soundaq.models_zoo.outputs.NetOutput` (or its
    ``as_dict()``) of B clips: ``scene_logits`` [B, 3], ``event_logits`` [B, 15], ``qualities`` [B, 8],
    ``isop`` [B], ``isoe`` [B]; ``batch`` holds the labels ``scene`` [B] (index into SCENES),
    ``events`` [B, 15] (0/1), ``qualities`` [B, 8], ``isop`` [B], ``isoe`` [B], and optionally
    ``labelled`` [B, 3] (bool, vocab.LABEL_GROUPS order; absent: everything labelled).

    ``compute()`` returns :func:`~soundaq.models_zoo.metrics.score`'s flat dict (every metric, the
    confusion counts, how many clips/events each mean used). Scene probabilities are the softmax of
    the logits and event probabilities the sigmoid, as the predictions tables hold them. A label group
    no clip is labelled for is scored as missing (its metrics NaN, ``labelled_<group>`` 0).

    Raises:
        MetricInputError: ``compute()`` before any ``update()``, non-finite outputs, or a label group
            that some clips have and others lack.
    """

    is_differentiable = False
    higher_is_better = None
    full_state_update = False

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        for name in _STATES:
            self.add_state(name, default=[], dist_reduce_fx="cat")

    def update(self, output: NetOutput | Mapping[str, torch.Tensor], batch: Mapping[str, Any]) -> None:
        """Keep one batch's outputs and labels (see the class docstring for the shapes)."""
        out = output.as_dict() if isinstance(output, NetOutput) else output

        def rows(x: torch.Tensor, width: int) -> torch.Tensor:
            x = x.detach().to(torch.float64)
            return x.reshape(-1) if width == 0 else x.reshape(-1, width)

        scene_true = rows(batch["scene"], 0)
        mask = batch.get(LABELLED_KEY)
        new = {
            "scene_true": scene_true,
            "scene_prob": torch.softmax(rows(out["scene_logits"], len(SCENES)), dim=-1),
            "event_true": rows(batch["events"], len(EVENTS)),
            "event_prob": torch.sigmoid(rows(out["event_logits"], len(EVENTS))),
            "quality_true": rows(batch["qualities"], len(QUALITIES)),
            "quality_pred": rows(out["qualities"], len(QUALITIES)),
            "iso_true": torch.stack([rows(batch["isop"], 0), rows(batch["isoe"], 0)], 1),
            "iso_pred": torch.stack([rows(out["isop"], 0), rows(out["isoe"], 0)], 1),
            "labelled": (torch.ones(scene_true.shape[0], len(LABEL_GROUPS), dtype=torch.float64,
                                    device=scene_true.device)
                         if mask is None else rows(mask, len(LABEL_GROUPS))),
        }
        for name, value in new.items():
            getattr(self, name).append(value)    # the list states of add_state (one per name of _STATES)

    def compute(self) -> dict[str, float | int]:
        """Score every clip kept since ``reset()`` (gathered over processes under DDP) with ``metrics.score``.

        Raises:
            MetricInputError: no batch was kept, or a label group that some clips have and others lack.
        """
        if isinstance(self.scene_true, list) and not self.scene_true:  # (a tensor once gathered under DDP)
            raise MetricInputError("SoundAQMetrics: compute() before any update(); fix: update with a batch first")
        gathered = {name: dim_zero_cat(getattr(self, name)).cpu().numpy() for name in _STATES}
        labelled: np.ndarray = gathered.pop("labelled") > 0.5
        arrays: dict[str, np.ndarray | None] = {**gathered, "scene_true": gathered["scene_true"].astype("int64")}
        for k, group in enumerate(LABEL_GROUPS):
            if labelled[:, k].all():
                continue
            if labelled[:, k].any():
                raise MetricInputError(f"streamed batches: {int(labelled[:, k].sum())} of {len(labelled)} clips have "
                                       f"{group} labels; fix: score data with or without {group} labels, not a mix")
            for name in _TRUTH[group]:
                arrays[name] = None
        fields: dict[str, Any] = arrays            # array fields only: EvalData's other keywords are not in it
        return score(EvalData(**fields, source="streamed batches"))
