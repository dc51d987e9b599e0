"""The Lightning callbacks of a training run (:func:`soundaq.models_zoo.training.train_model`).

Module-level classes, so a trainer holding them can be pickled (``--strategy ddp_spawn``). Their
state travels in the checkpoints, so a resumed run continues exactly as an uninterrupted one:
:class:`EpochSeed` reseeds the data order and dropout per epoch, :class:`TrainClock` keeps the
training seconds and the learning curve, :class:`DivergenceGuard` the first loss. A clip budget ends
on a checkpoint (:class:`ClipBudget`), with precise batch norm first (:class:`PreciseBatchNorm`);
:class:`ValidationMemoryFormat` validates in the memory format measured fastest for inference.
"""
from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any, NamedTuple

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint, RichProgressBar

from soundaq.models_zoo.cpu_policy import apply_memory_format
from soundaq.models_zoo.module import MONITOR
from soundaq.models_zoo.precise_bn import recompute_batchnorm
from soundaq.models_zoo.schedules import PATIENCE, Schedule


def _headline_values(values: Any) -> dict[str, float | None]:
    """The headline validation metrics (soundaq.models_zoo.metrics.HEADLINE) of ``values``; None where not finite."""
    from soundaq.models_zoo.metrics import HEADLINE

    out: dict[str, float | None] = {}
    for name in HEADLINE:
        value = values.get(f"val/{name}")
        out[name] = None if value is None or not math.isfinite(float(value)) else float(value)
    return out


class TrainClock(L.Callback):
    """Seconds spent training (validation excluded) and the learning curve, kept across resumed sessions.

    At the end of every validation during a fit it records a point ``{"seconds", "step", "clips", <val
    metric>: value}`` (the headline metrics of soundaq.models_zoo.metrics). Its state travels in the
    checkpoints, so a resumed run has the points of the sessions before; points after the checkpoint it
    resumes from are made again by the resumed run, exactly as before.
    """

    def __init__(self) -> None:
        self.previous = 0.0
        self.started: float | None = None
        self.validating = 0.0
        self._val_started: float | None = None
        self.points: list[dict] = []
        self.mark_precise_bn = False   # the next point validates weights with precise batch norm

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Start this session's clock."""
        self.started = time.perf_counter()
        self.validating = 0.0

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Stop counting training time while a fit validates."""
        if trainer.state.fn == "fit":
            self._val_started = time.perf_counter()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Add the learning curve's point of this step (not for the sanity check) and resume the clock."""
        if self._val_started is None:
            return
        if not trainer.sanity_checking:
            step = int(trainer.global_step)
            point: dict[str, Any] = {"seconds": round(self.seconds(), 3), "step": step,
                                     "clips": step * _batch_size(trainer)}
            point.update(_headline_values(trainer.callback_metrics))
            if self.mark_precise_bn:
                point["precise_bn"] = True
                self.mark_precise_bn = False
            self.points = [p for p in self.points if p["step"] < step] + [point]
        self.validating += time.perf_counter() - self._val_started
        self._val_started = None

    def seconds(self) -> float:
        """Training seconds so far, over every session of the run, validation excluded."""
        if self.started is None:
            return self.previous
        now = time.perf_counter()
        running = 0.0 if self._val_started is None else now - self._val_started
        current = now - self.started - self.validating - running
        return self.previous + max(current, 0.0)

    def state_dict(self) -> dict[str, Any]:
        """The seconds and the curve's points, saved in checkpoints."""
        return {"seconds": self.seconds(), "points": list(self.points)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the seconds and the points of the sessions before (a resumed run)."""
        self.previous = float(state_dict.get("seconds", 0.0))
        self.points = list(state_dict.get("points", []))


def _datamodule(trainer: L.Trainer) -> Any:
    """The trainer's data module (Lightning sets ``trainer.datamodule`` when a fit starts; not declared on the class)."""
    return getattr(trainer, "datamodule", None)


def _batch_size(trainer: L.Trainer) -> int:
    return int(getattr(_datamodule(trainer), "batch_size", 0) or 0)


def validate_precise_bn_weights(trainer: L.Trainer, module: L.LightningModule, datamodule: L.LightningDataModule,
                                clock: TrainClock) -> None:
    """Validate the final weights once more and add the learning curve's last point, marked ``precise_bn``.

    The point validated at the budget's last step still used the stale running statistics, so without
    this the curve would end far from the test scores. Same validation clips as the curve's other points.

    Args:
        trainer: the trainer that fitted ``module``.
        module: the module holding the final weights with recomputed batch-norm statistics.
        datamodule: the run's data module (its validation loader).
        clock: the run's clock, whose points get the new one.
    """
    if not clock.points:
        return
    results = trainer.validate(module, datamodule=datamodule, verbose=False)
    last = dict(clock.points[-1])
    last.update(_headline_values(results[0] if results else {}))
    last["precise_bn"] = True
    clock.points = [*clock.points, last]


class TrainingDiverged(Exception):
    """Raised by :class:`DivergenceGuard` to end a fit at once (no validation, no checkpoint of the exploded weights).

    ``info`` holds the step and the losses; :func:`soundaq.models_zoo.training.train_model` catches it.
    """

    def __init__(self, info: dict):
        super().__init__(f"training diverged at step {info['step']} (loss {info['loss']})")
        self.info = info


class DivergenceGuard(L.Callback):
    """Ends a run whose training loss is not finite or exceeds ``factor`` times its first step's loss.

    Gradient clipping (on in the embedded schedule) prevents most divergence; this guard catches what
    is left, so that a run never continues on exploded weights: it raises :class:`TrainingDiverged`,
    which ends the fit before any validation or checkpoint of those weights; ``train_model``
    records the step and the loss, and the last checkpoint written before stays the run's result
    (tables mark the model as diverged).
    """

    def __init__(self, factor: float = 100.0):
        self.factor = float(factor)
        self.first: float | None = None
        self.diverged: dict | None = None

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        """Check this step's loss; raise :class:`TrainingDiverged` when it is not finite or far above the first."""
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if loss is None:
            return
        value = float(loss.detach())
        if self.first is None and math.isfinite(value):
            self.first = max(value, 1e-8)
        if not math.isfinite(value) or (self.first is not None and value > self.factor * self.first):
            self.diverged = {"step": int(trainer.global_step), "loss": value if math.isfinite(value) else str(value),
                             "first_loss": self.first}
            raise TrainingDiverged(self.diverged)

    def state_dict(self) -> dict[str, Any]:
        """The first step's loss and the divergence found, saved in checkpoints."""
        return {"first": self.first, "diverged": self.diverged}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the first loss of the run (a resumed run compares with it)."""
        self.first = state_dict.get("first")
        self.diverged = state_dict.get("diverged")


class ClipBudget(L.Callback):
    """Ends training after ``steps`` optimisation steps, with a validation and a checkpoint at that very step.

    Lightning validates when ``should_stop`` is set, so a budget that ends inside an epoch still
    ends on a checkpoint. Validation otherwise runs at epoch ends only: checkpoints are never written
    inside an epoch, which is where a resumed run could not continue exactly as an uninterrupted one.
    """

    def __init__(self, steps: int):
        self.steps = int(steps)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        """Ask Lightning to stop once the budget's steps are done."""
        if trainer.global_step >= self.steps:
            trainer.should_stop = True


class EpochBar(RichProgressBar):
    """Lightning's rich progress bar, its epoch counter read for a step budget too.

    Lightning writes ``Epoch e/{max_epochs - 1}``; a clip budget runs with ``max_epochs=-1`` (no epoch
    limit, ``max_steps`` ends it), which it showed as ``Epoch 0/-2``. Here an unlimited epoch count
    shows ``Epoch e (budget: N steps)`` instead (or ``Epoch e`` when nothing bounds the run).
    """

    def _get_train_description(self, current_epoch: int) -> str:
        trainer = self.trainer
        text = f"Epoch {current_epoch}"
        if trainer.max_epochs is not None and trainer.max_epochs > 0:
            text += f"/{trainer.max_epochs - 1}"
        elif trainer.max_steps is not None and trainer.max_steps > 0:
            text += f" (budget: {trainer.max_steps} steps)"
        return f"{text:{len(self.validation_description)}}"     # padded as Lightning does (no flicker)


class PreciseBatchNorm(L.Callback):
    """Precise batch norm at a clip budget's last step, before Lightning's validation of that step.

    Lightning validates when the budget ends (:class:`ClipBudget`); recomputing the statistics here,
    first, makes that validation the one of the weights the run keeps, so the learning curve ends on
    them without a second validation of the same weights (a 30-s clip of PANNs costs about 3 s), and
    the last checkpoint, written after it, holds them. Registered after :class:`DivergenceGuard` and
    :class:`ClipBudget`: a diverged step raises before this runs. The batches are the first
    ``batches`` of the data module's own training loader (its class method, not the per-epoch
    reseeded one the fit uses), the same a recomputation after the fit would read.
    """

    def __init__(self, steps: int, batches: int, crop_frames: int | None, clock: TrainClock):
        self.steps, self.batches, self.crop_frames, self.clock = int(steps), int(batches), crop_frames, clock
        self.result: dict | None = None

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        """At the budget's last step, recompute the batch-norm statistics (once)."""
        if trainer.global_step < self.steps or self.result is not None:
            return
        datamodule = _datamodule(trainer)
        loader = type(datamodule).train_dataloader(datamodule)
        self.result = recompute_batchnorm(pl_module, loader, self.crop_frames, self.batches)
        self.clock.mark_precise_bn = bool(self.result["layers"])


def _net(pl_module: L.LightningModule) -> torch.nn.Module:
    """The network a SoundscapeModule wraps (``pl_module.net``)."""
    net = pl_module.net
    assert isinstance(net, torch.nn.Module), "a SoundscapeModule holds its network as .net"
    return net


class ValidationMemoryFormat(L.Callback):
    """The net's weights in ``memory_format`` while a fit validates, back to contiguous for training.

    The conversion copies values, so training is bit for bit the same; the validation (inference)
    runs in the format measured fastest for it (:func:`~soundaq.models_zoo.cpu_policy.choose_memory_format`),
    which gives the same bits with any thread count.
    """

    def __init__(self, memory_format: str):
        self.memory_format = memory_format

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Convert the net's weights to the validation's memory format (inside a fit only)."""
        if trainer.state.fn == "fit":
            apply_memory_format(_net(pl_module), self.memory_format)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Convert the weights back to contiguous for the training steps that follow."""
        if trainer.state.fn == "fit":
            apply_memory_format(_net(pl_module), "contiguous")


class EpochSeed(L.Callback):
    """Reseed every RNG from (seed, epoch) before each epoch's data order is drawn.

    So a run resumed from last.ckpt draws the same shuffles and dropout masks as an uninterrupted one.
    Reseeded: the global RNGs (``seed_everything``: dropout, loaders without a generator) and the
    ``torch.Generator`` a training loader or its sampler owns (SoundscapeDataModule gives its
    loader one, seeded when the loader is made; left alone, a resumed run would restart it).
    Under DDP, Lightning's DistributedSampler shuffles instead, from the run's seed and the epoch.
    Lightning draws the first epoch's order of a fit right after the data module makes the
    loader, before any training hook, so the data module's ``train_dataloader`` is wrapped for
    the duration of the fit to seed the new loader for the epoch the fit starts at (known from
    this callback's state in the checkpoint); later epochs draw their order after
    ``on_train_epoch_end``, which reseeds for the next one.
    """

    def __init__(self, seed: int):
        self.seed = int(seed)
        self.next_epoch = 0
        self.trainer: L.Trainer | None = None
        self._wrapped: L.LightningDataModule | None = None

    def _value(self, epoch: int) -> int:
        rank = self.trainer.global_rank if self.trainer is not None else 0
        return self.seed + 1000003 * epoch + 7919 * rank

    @staticmethod
    def _seed_loaders(loaders: Any, value: int) -> None:
        if isinstance(loaders, dict):
            loaders = list(loaders.values())
        elif not isinstance(loaders, (list, tuple)):
            loaders = [loaders]
        for loader in loaders:
            batch_sampler = getattr(loader, "batch_sampler", None)
            for owner in (loader, getattr(loader, "sampler", None), getattr(batch_sampler, "sampler", None)):
                generator = getattr(owner, "generator", None)
                if isinstance(generator, torch.Generator):
                    generator.manual_seed(value)

    def _reseed(self, epoch: int) -> None:
        value = self._value(epoch)
        L.seed_everything(value, workers=True, verbose=False)
        if self.trainer is not None and getattr(self.trainer, "train_dataloader", None) is not None:
            self._seed_loaders(self.trainer.train_dataloader, value)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        """Wrap the data module's ``train_dataloader`` for a fit, to seed the loader it makes first."""
        self.trainer = trainer
        datamodule = _datamodule(trainer)
        if stage == "fit" and datamodule is not None and self._wrapped is None:
            make = datamodule.train_dataloader

            def train_dataloader() -> Any:
                loaders = make()
                self._seed_loaders(loaders, self._value(self.next_epoch))
                # Under DDP Lightning now wraps the loader in a DistributedSampler seeded from
                # PL_GLOBAL_SEED (it adds the epoch itself): that seed must be the same in every
                # process and in a resumed fit, i.e. the run's seed, not the per-rank epoch seed.
                os.environ["PL_GLOBAL_SEED"] = str(self.seed)
                return loaders

            datamodule.train_dataloader = train_dataloader  # type: ignore[method-assign]  # undone in teardown
            self._wrapped = datamodule

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        """Give the data module its own ``train_dataloader`` back."""
        if self._wrapped is not None:
            self._wrapped.__dict__.pop("train_dataloader", None)  # the class's method again
            self._wrapped = None

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Reseed for the epoch the fit starts at (0, or the resumed checkpoint's next epoch)."""
        self._reseed(self.next_epoch)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Reseed for the next epoch, before Lightning draws its data order."""
        self.next_epoch = trainer.current_epoch + 1
        self._reseed(self.next_epoch)

    def state_dict(self) -> dict[str, Any]:
        """The epoch a run resumed from this checkpoint trains next, saved in checkpoints."""
        # Checkpoints are written at validation end, inside epoch e: training resumes at e + 1.
        current = self.trainer.current_epoch if self.trainer is not None else self.next_epoch - 1
        return {"next_epoch": int(current) + 1}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the epoch to seed for (a resumed run)."""
        self.next_epoch = int(state_dict.get("next_epoch", 0))


class RunCallbacks(NamedTuple):
    """The callbacks of a training run (:func:`make_callbacks`) and the ones the run reads back after the fit."""

    callbacks: list[L.Callback]
    clock: TrainClock
    checkpoints: ModelCheckpoint
    early_stopping: EarlyStopping | None
    guard: DivergenceGuard
    precise_bn: PreciseBatchNorm | None


def make_callbacks(seed: int, schedule: Schedule, ckpt_dir: Path, progress: bool, batch_size: int = 1,
                   monitor: str = MONITOR, crop_frames: int | None = None) -> RunCallbacks:
    """The callbacks of a training run.

    Epoch schedules keep the checkpoint with the lowest ``monitor`` (default ``val/isop_mse``, the
    paper's early-stopping metric; :func:`~soundaq.models_zoo.module.monitor_for` picks ``val/loss`` for
    data without quality labels) and stop after ``schedule.patience`` epochs without improvement; a clip
    budget keeps the last checkpoint (the budget is the budget) and has no early stopping; with
    ``schedule.precise_bn_batches`` it recomputes the batch-norm statistics at its last step
    (:class:`PreciseBatchNorm`, appended last).

    Args:
        seed: the run's seed (:class:`EpochSeed`).
        schedule: the run's schedule.
        ckpt_dir: the run folder's ``checkpoints`` folder.
        progress: add Rich's progress bar.
        batch_size: clips per step (a budget's steps are ``budget_clips // batch_size``).
        monitor: the metric the best checkpoint and early stopping watch.
        crop_frames: the training crop in frames, for precise batch norm (None: whole clips).

    Returns:
        A :class:`RunCallbacks`; its ``callbacks`` go to the trainer in this order.
    """
    clock = TrainClock()
    guard = DivergenceGuard(schedule.divergence_factor)
    precise: PreciseBatchNorm | None = None
    stop: EarlyStopping | None = None
    if schedule.budget_clips is None:
        best = ModelCheckpoint(dirpath=ckpt_dir, filename="best-{epoch:03d}", monitor=monitor, mode="min",
                               save_top_k=1, save_last=True, auto_insert_metric_name=False)
        stop = EarlyStopping(monitor=monitor, mode="min", patience=schedule.patience or PATIENCE, check_finite=True)
        callbacks: list[L.Callback] = [EpochSeed(seed), clock, guard, best, stop]
    else:   # a budget: the last checkpoint, written at epoch ends (and the budget's end) only
        best = ModelCheckpoint(dirpath=ckpt_dir, save_top_k=0, save_last=True, save_on_train_epoch_end=True)
        steps = max(1, schedule.budget_clips // max(1, batch_size))
        callbacks = [EpochSeed(seed), clock, guard, ClipBudget(steps), best]
        if schedule.precise_bn_batches:
            precise = PreciseBatchNorm(steps, schedule.precise_bn_batches, crop_frames, clock)
            callbacks.append(precise)
    if progress:
        callbacks.append(EpochBar(leave=True))
    return RunCallbacks(callbacks, clock, best, stop, guard, precise)
