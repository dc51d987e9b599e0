"""The multi-task loss shared by every zoo network, and the original's uncertainty weighting.

The SoundSCaper training loops (``*/framework/processing.py``) compute twelve losses per batch:

* ``scene``: cross-entropy of the 3 scene logits (the original writes ``nll_loss(log_softmax(x))``,
  which is the same number);
* ``events``: binary cross-entropy of the 15 event probabilities (the original applies ``sigmoid``
  then ``BCELoss``; we use the logit form, equal in value and stable for large logits);
* ``isop``, ``isoe``: mean squared error of ISOPleasant and ISOEventful;
* one mean squared error per affective quality, in :data:`soundaq.base.vocab.QUALITIES` order.

Plain training adds the twelve (``Other_*`` and the paper's models). With
``uncertainty_weighting`` the sum becomes the original ``AutomaticWeightedLoss`` form, with one
learnt ``sigma`` per task (initialised to 1, trained by the same Adam, no weight decay)::

    total = sum_i  alpha_i / sigma_i**2 * L_i + log(1 + sigma_i)

with the original's fixed ``alpha``: 1 for scene and events, 0.5 for ISOP, ISOE and the 8 qualities.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from soundaq.models_zoo.outputs import NetOutput
from soundaq.base.vocab import QUALITIES

#: The twelve task losses, in the order of the original ``loss_list``.
TASKS: tuple[str, ...] = ("scene", "events", "isop", "isoe", *QUALITIES)

#: The original's fixed per-task factors used with uncertainty weighting (``alpha_list``).
ORIGINAL_ALPHA: dict[str, float] = {t: (1.0 if t in ("scene", "events") else 0.5) for t in TASKS}


def task_losses(out: NetOutput, batch: dict) -> dict[str, torch.Tensor]:
    """The twelve unweighted losses of one batch, keyed by :data:`TASKS` names."""
    losses = {
        "scene": F.cross_entropy(out.scene_logits, batch["scene"].long()),
        "events": F.binary_cross_entropy_with_logits(out.event_logits, batch["events"].to(out.event_logits.dtype)),
        "isop": F.mse_loss(out.isop.reshape(-1), batch["isop"].reshape(-1).to(out.isop.dtype)),
        "isoe": F.mse_loss(out.isoe.reshape(-1), batch["isoe"].reshape(-1).to(out.isoe.dtype)),
    }
    target = batch["qualities"].to(out.qualities.dtype)
    for k, quality in enumerate(QUALITIES):
        losses[quality] = F.mse_loss(out.qualities[:, k], target[:, k])
    return losses


class UncertaintyWeighting(nn.Module):
    """Learnt per-task weights in the original's form ``alpha/sigma^2 * L + log(1 + sigma)``."""

    def __init__(self, tasks=TASKS, alpha: dict[str, float] | None = None):
        super().__init__()
        self.tasks = tuple(tasks)
        alpha = ORIGINAL_ALPHA if alpha is None else alpha
        self.register_buffer("alpha", torch.tensor([float(alpha[t]) for t in self.tasks]), persistent=False)
        self.sigma = nn.Parameter(torch.ones(len(self.tasks)))

    def forward(self, losses: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        stacked = torch.stack([losses[t] for t in self.tasks])
        weighted = self.alpha * stacked / self.sigma.pow(2) + torch.log1p(self.sigma)
        return weighted.sum(), dict(zip(self.tasks, weighted.unbind(0)))

    def weights(self) -> dict[str, float]:
        """Effective factor on each task loss, ``alpha / sigma^2``."""
        w = (self.alpha / self.sigma.detach().pow(2)).tolist()
        return dict(zip(self.tasks, w))


class MultiTaskLoss(nn.Module):
    """Sum of the twelve task losses, plain (as the paper's models) or uncertainty-weighted."""

    def __init__(self, uncertainty_weighting: bool = False):
        super().__init__()
        self.uncertainty = UncertaintyWeighting() if uncertainty_weighting else None

    def forward(self, out: NetOutput, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Return ``(total, parts)``; ``parts`` holds the unweighted loss of every task."""
        parts = task_losses(out, batch)
        if self.uncertainty is None:
            total = torch.stack(list(parts.values())).sum()
        else:
            total, _ = self.uncertainty(parts)
        return total, parts
