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

Fixed weights. ``MultiTaskLoss(weights=(lambda_1, ..., lambda_12))`` sums ``lambda_i * L_i`` in the
:data:`TASKS` order, as the release's ``SoundAQnet_multi_loss_weighting`` (its ``-alpha`` list, in
``framework/processing.py``). :data:`LOSS_WEIGHTINGS` names the release's three fixed schemes; the
paper's table of them (``soundaqnet_loss_weighting``) sets them against uncertainty weighting.
:func:`parse_loss_weighting` reads the ``--loss-weighting`` setting.

Missing labels. A batch whose data source lacks a label group carries ``labelled`` (bool [B, 3], the
groups of :data:`soundaq.base.vocab.LABEL_GROUPS` each clip is labelled for; see
:data:`soundaq.models_zoo.outputs.LABELLED_KEY`). Each task loss is then the mean over the clips labelled
for its group, and a task no clip of the batch is labelled for is left out of the losses and of the
sum (with uncertainty weighting, its ``sigma`` term too), so a net trains on what the data label. A
batch without ``labelled``, or with every clip labelled for everything, takes exactly the unmasked path.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from soundaq.base.vocab import LABEL_GROUPS, QUALITIES
from soundaq.models_zoo.outputs import LABELLED_KEY, NetOutput

#: The twelve task losses, in the order of the original ``loss_list``.
TASKS: tuple[str, ...] = ("scene", "events", "isop", "isoe", *QUALITIES)

#: The original's fixed per-task factors used with uncertainty weighting (``alpha_list``).
ORIGINAL_ALPHA: dict[str, float] = {t: (1.0 if t in ("scene", "events") else 0.5) for t in TASKS}
#: The label group (vocab.LABEL_GROUPS) each task loss needs.
TASK_GROUP: dict[str, str] = {t: (t if t in ("scene", "events") else "qualities") for t in TASKS}


def _group_losses(out: NetOutput, batch: dict, group: str) -> dict[str, torch.Tensor]:
    """The unweighted losses of one label group's tasks over every clip of ``out``/``batch``."""
    if group == "scene":
        return {"scene": F.cross_entropy(out.scene_logits, batch["scene"].long())}
    if group == "events":
        return {"events": F.binary_cross_entropy_with_logits(out.event_logits,
                                                             batch["events"].to(out.event_logits.dtype))}
    losses = {"isop": F.mse_loss(out.isop.reshape(-1), batch["isop"].reshape(-1).to(out.isop.dtype)),
              "isoe": F.mse_loss(out.isoe.reshape(-1), batch["isoe"].reshape(-1).to(out.isoe.dtype))}
    target = batch["qualities"].to(out.qualities.dtype)
    for k, quality in enumerate(QUALITIES):
        losses[quality] = F.mse_loss(out.qualities[:, k], target[:, k])
    return losses


def _rows(out: NetOutput, batch: dict, rows: torch.Tensor) -> tuple[NetOutput, dict]:
    """The clips ``rows`` (bool [B]) of an output and its batch."""
    picked = NetOutput(**{k: v[rows] for k, v in out.as_dict().items()})
    return picked, {k: batch[k][rows] for k in ("scene", "events", "qualities", "isop", "isoe")}


def task_losses(out: NetOutput, batch: dict) -> dict[str, torch.Tensor]:
    """The unweighted task losses of one batch, keyed by :data:`TASKS` names (all twelve, in that
    order, unless the batch's ``labelled`` mask leaves a group without clips: see the module docstring).
    """
    mask = batch.get(LABELLED_KEY)
    if mask is None or bool(mask.all()):
        losses: dict[str, torch.Tensor] = {}
        for group in LABEL_GROUPS:
            losses.update(_group_losses(out, batch, group))
        return {t: losses[t] for t in TASKS}
    losses = {}
    mask = mask.to(device=out.scene_logits.device, dtype=torch.bool).reshape(-1, len(LABEL_GROUPS))
    for k, group in enumerate(LABEL_GROUPS):
        rows = mask[:, k]
        if bool(rows.all()):
            losses.update(_group_losses(out, batch, group))
        elif bool(rows.any()):
            losses.update(_group_losses(*_rows(out, batch, rows), group))
    return {t: losses[t] for t in TASKS if t in losses}


_HALF = 0.5
#: The release's fixed schemes (``SoundAQnet_multi_loss_weighting/application/Training.py``), lambda_1..12
#: in :data:`TASKS` order. ``equal`` is the plain sum every net trains with by default (= ``release-1``).
LOSS_WEIGHTINGS: dict[str, tuple[float, ...]] = {
    "equal": (1.0,) * 12,
    "release-1": (1.0,) * 12,
    "release-2": (1.0,) * 4 + (_HALF,) * 8,
    "release-3": (1.0,) * 2 + (_HALF,) * 10,
}
#: The names ``--loss-weighting`` takes besides a list of twelve weights.
LOSS_WEIGHTING_NAMES: tuple[str, ...] = ("uncertainty", *LOSS_WEIGHTINGS)


def parse_loss_weighting(text: str) -> str | tuple[float, ...] | None:
    """Read a ``--loss-weighting`` value.

    Returns:
        ``"uncertainty"`` (learnt weights, :class:`UncertaintyWeighting`), ``None`` for ``equal`` (the
        plain sum, bit for bit the default training) or twelve non-negative weights in :data:`TASKS`
        order (a named scheme of :data:`LOSS_WEIGHTINGS` or ``L1,...,L12``).

    Raises:
        ValueError: one line naming the accepted forms (a wrong count, a non-number, a negative weight,
            every weight 0).
    """
    text = text.strip()
    if text == "uncertainty":
        return "uncertainty"
    if text == "equal":
        return None
    if text in LOSS_WEIGHTINGS:
        return LOSS_WEIGHTINGS[text]
    accepted = (f"give {', '.join(LOSS_WEIGHTING_NAMES)} or 12 comma-separated weights in the order "
                f"{', '.join(TASKS)}")
    parts = [p.strip() for p in text.split(",")]
    try:
        weights = tuple(float(p) for p in parts)
    except ValueError:
        raise ValueError(f"--loss-weighting {text!r}: not a scheme or a list of numbers; {accepted}") from None
    if len(weights) != len(TASKS):
        raise ValueError(f"--loss-weighting {text!r}: {len(weights)} weights, need {len(TASKS)}; {accepted}")
    if any(not (w >= 0.0) or w == float("inf") for w in weights):
        raise ValueError(f"--loss-weighting {text!r}: weights must be finite and >= 0; {accepted}")
    if not any(weights):
        raise ValueError(f"--loss-weighting {text!r}: every weight is 0, so the loss is 0 and nothing is learnt; "
                         f"give at least one task a weight > 0 ({accepted})")
    return weights


class UncertaintyWeighting(nn.Module):
    """Learnt per-task weights in the original's form ``alpha/sigma^2 * L + log(1 + sigma)``."""

    alpha: torch.Tensor     # the per-task factors, a non-persistent buffer (registered in __init__)

    def __init__(self, tasks=TASKS, alpha: dict[str, float] | None = None):
        super().__init__()
        self.tasks = tuple(tasks)
        alpha = ORIGINAL_ALPHA if alpha is None else alpha
        self.register_buffer("alpha", torch.tensor([float(alpha[t]) for t in self.tasks]), persistent=False)
        self.sigma = nn.Parameter(torch.ones(len(self.tasks)))

    def forward(self, losses: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Weighted sum over the tasks present in ``losses`` (a task without labels has no term)."""
        tasks = [t for t in self.tasks if t in losses]
        stacked = torch.stack([losses[t] for t in tasks])
        alpha: torch.Tensor = self.alpha
        sigma: torch.Tensor = self.sigma
        if len(tasks) < len(self.tasks):
            index = torch.tensor([self.tasks.index(t) for t in tasks], device=sigma.device)
            alpha, sigma = alpha[index], sigma[index]
        weighted = alpha * stacked / sigma.pow(2) + torch.log1p(sigma)
        return weighted.sum(), dict(zip(tasks, weighted.unbind(0)))

    def weights(self) -> dict[str, float]:
        """Effective factor on each task loss, ``alpha / sigma^2``."""
        w = (self.alpha / self.sigma.detach().pow(2)).tolist()
        return dict(zip(self.tasks, w))


class MultiTaskLoss(nn.Module):
    """Sum of the twelve task losses: plain (as the paper's models), with fixed weights ``weights``
    (twelve, :data:`TASKS` order) or uncertainty-weighted.
    """

    def __init__(self, uncertainty_weighting: bool = False, weights: tuple[float, ...] | None = None):
        super().__init__()
        if uncertainty_weighting and weights is not None:
            raise ValueError("give fixed weights or uncertainty weighting, not both")
        if weights is not None and len(weights) != len(TASKS):
            raise ValueError(f"weights: need {len(TASKS)} (one per task: {', '.join(TASKS)}), got {len(weights)}")
        if weights is not None and not any(weights):
            raise ValueError("weights: every weight is 0, so the loss is 0 and nothing is learnt; give at least "
                             "one task a weight > 0")
        self.uncertainty = UncertaintyWeighting() if uncertainty_weighting else None
        self.weights = None if weights is None else dict(zip(TASKS, (float(w) for w in weights)))

    def forward(self, out: NetOutput, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Return ``(total, parts)``; ``parts`` holds the unweighted loss of every task with labels."""
        parts = task_losses(out, batch)
        if self.weights is not None:
            total = torch.stack([self.weights[t] * v for t, v in parts.items()]).sum()
        elif self.uncertainty is None:
            total = torch.stack(list(parts.values())).sum()
        else:
            total, _ = self.uncertainty(parts)
        return total, parts
