"""Training schedules, named once: the paper's, and the embedded set's short-budget preset.

Pure data (no torch import), so command-line parsers can show the values as defaults.

``paper`` is the original release's training loop (``SoundAQnet/framework/processing.py`` and the
``Other_*`` copies): Adam with learning rate 5e-4, batch 32, full 30-s clips, up to 100 epochs,
early stopping after 10 epochs without a lower validation ISOPleasant MSE. It is the default on
ARAUS and whenever a user gives ``--max-epochs``.

``embedded`` is what the main job (``bash scripts/leaderboard.sh``) can afford on a 2-core CPU in a
quarter of an hour, and it is the same for every model, so the comparison is fair: every model sees
the same number of training clips (:attr:`Schedule.budget_clips`). What makes those clips count
(each measured in docs/leaderboard.md): small batches (more steps per clip), a one-cycle learning
rate (warm-up to a peak, then cosine decay to ~0), gradient-norm clipping (a guard against the
divergence a higher rate invites), and random crops of :attr:`Schedule.crop_seconds` for the nets
whose architecture accepts shorter inputs (PANNs itself trains on crops; AD_CNN and CNN-Transformer
have fixed-length layers and see whole clips). Tests always use whole clips.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

#: Adam learning rate of the original training loops.
PAPER_LR = 5e-4
#: Clips per batch of the original training loops.
PAPER_BATCH_SIZE = 32
#: Epoch bound of the original training loops (early stopping usually ends sooner).
PAPER_MAX_EPOCHS = 100
#: Early stopping patience of the original training loops (epochs without a better val ISOP MSE).
PATIENCE = 10


@dataclass(frozen=True)
class Schedule:
    """How a model is trained. ``budget_clips`` (when set) fixes the training clips every model sees
    and replaces epochs; otherwise ``max_epochs`` with early stopping after ``patience`` epochs.

    Attributes:
        name: ``"paper"`` or ``"embedded"`` (or a user's name).
        batch_size: clips per optimisation step.
        lr: Adam's (peak) learning rate.
        lr_schedule: ``"constant"`` (the paper) or ``"onecycle"`` (linear warm-up over
            ``warmup_fraction`` of the steps to ``lr``, then cosine decay; torch's OneCycleLR).
        warmup_fraction: share of the steps spent warming up (``onecycle`` only).
        grad_clip: clip the gradients' global 2-norm to this value (None: no clipping).
        crop_seconds: train on a random crop of this many seconds of each clip for nets that accept
            shorter inputs (None: whole clips). Validation and tests always see whole clips.
        budget_clips: training clips per model (steps = budget_clips // batch_size), or None.
        max_epochs, patience: epoch bound and early-stopping patience (used when budget_clips is None).
        divergence_factor: stop and flag a run whose training loss exceeds this multiple of its
            first step's loss, or is not finite.
        head_lr_width: output heads reading an embedding wider than this train at
            ``lr * head_lr_width / width`` (None: every weight at ``lr``, as the paper); see
            :meth:`soundaq.models_zoo.module.SoundscapeModule.parameter_groups`.
        val_per_epoch, val_clips: a budget validates ``val_per_epoch`` times per epoch and at its last
            step, on the first ``val_clips`` validation clips (None: all): the learning curve's points.
        precise_bn_batches: after a clip budget, recompute the batch-norm statistics of the final
            weights over this many training batches (0: keep the running averages, as the paper); see
            :func:`soundaq.models_zoo.precise_bn.recompute_batchnorm`.
    """

    name: str
    batch_size: int = PAPER_BATCH_SIZE
    lr: float = PAPER_LR
    lr_schedule: str = "constant"
    warmup_fraction: float = 0.0
    grad_clip: float | None = None
    crop_seconds: float | None = None
    budget_clips: int | None = None
    max_epochs: int | None = PAPER_MAX_EPOCHS
    patience: int | None = PATIENCE
    divergence_factor: float = 100.0
    head_lr_width: int | None = None
    precise_bn_batches: int = 0
    val_per_epoch: int = 1
    val_clips: int | None = None

    @property
    def steps(self) -> int | None:
        """Optimisation steps of a clip budget (None when epochs decide)."""
        return None if self.budget_clips is None else max(1, self.budget_clips // self.batch_size)

    def with_overrides(self, **changes) -> Schedule:
        """A copy with some fields replaced (None values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def as_dict(self) -> dict:
        """The fields as a plain dict (run identities and provenance record it)."""
        return asdict(self)

    def describe(self) -> str:
        """One line for table headers and provenance."""
        if self.budget_clips is not None:
            crop = f"random {self.crop_seconds:g}-s crops where the net accepts them, " if self.crop_seconds else ""
            return (f"equal budget: {self.budget_clips} training clips per model ({self.steps} steps of "
                    f"{self.batch_size}), {crop}Adam {self.lr_schedule} lr {self.lr:g}"
                    + (f", gradient clipping {self.grad_clip:g}" if self.grad_clip else ""))
        return (f"{self.name}: up to {self.max_epochs} epochs at batch {self.batch_size}, Adam lr {self.lr:g}"
                + (f", early stopping after {self.patience} epochs without a lower val ISOP MSE"
                   if self.patience else ""))


def crop_frames_for(net: object, schedule: Schedule) -> int | None:
    """Log-mel frames of the schedule's training crops for ``net``.

    Args:
        net: a net instance or class; its ``max_frames`` (a fixed input length), ``min_frames`` and,
            for nets reading loudness, ``min_loudness_samples`` (5 loudness samples per frame) decide.
        schedule: the run's schedule; its ``crop_seconds`` at the 10-ms hop (centred frames).

    Returns:
        The crop length in frames, or None when the schedule asks for whole clips, the architecture
        has a fixed input length or it needs more frames than the crop holds.
    """
    if not schedule.crop_seconds:
        return None
    frames = int(round(schedule.crop_seconds * 100)) + 1          # 10-ms hop, centred frames
    if getattr(net, "max_frames", None) is not None or frames < int(getattr(net, "min_frames", 1)):
        return None
    if getattr(net, "uses_loudness", False) and 5 * frames < int(getattr(net, "min_loudness_samples", 1)):
        return None
    return frames


#: The original release's schedule.
PAPER = Schedule("paper")

#: The embedded set's preset (see the module docstring; measured in docs/leaderboard.md).
EMBEDDED = Schedule("embedded", batch_size=8, lr=2e-3, lr_schedule="onecycle", warmup_fraction=0.25,
                    grad_clip=1.0, crop_seconds=4.0, budget_clips=240, max_epochs=None, patience=None,
                    head_lr_width=128, precise_bn_batches=8, val_per_epoch=2, val_clips=8)

SCHEDULES: dict[str, Schedule] = {s.name: s for s in (PAPER, EMBEDDED)}
