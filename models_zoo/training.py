"""Training one zoo net: run folders, resume, reproducible seeding, early stopping (``soundaq train``).

What a run folder holds::

    run.json                  the arguments that define the run (resuming with others is refused)
    checkpoints/last.ckpt     written after every validation: a killed run resumes from here
    checkpoints/best-EEE.ckpt the epoch with the lowest val/isop_mse (the paper's early-stopping metric;
                              val/loss when the data have no quality labels)
    logs/metrics.csv          every logged metric per epoch (torchmetrics objects, see soundaq.models_zoo.module)
    train.json                written last, atomically: best checkpoint, scores, epochs, seconds, provenance

Checkpoints are written atomically (:class:`AtomicCheckpointIO`) and checked when a run resumes
(:func:`checkpoint_to_resume`): a damaged one is set aside with one line and the run continues from
the newest whole checkpoint, or starts over when the best one is lost.

:func:`train_model` is the entry point of ``soundaq train`` and of the leaderboard. The callbacks are
module-level classes, so a trainer holding them can be pickled (``--strategy ddp_spawn``).
"""
from __future__ import annotations

import math
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint, RichProgressBar
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.plugins.io import TorchCheckpointIO

from soundaq.base.artifacts import damaged, read_record, set_aside, zip_problem
from soundaq.base.errors import UserError
from soundaq.base.fileio import atomic_path, atomic_write_json, sha256_file
from soundaq.base.runs import RunFolder, package_versions
from soundaq.base.vocab import LABEL_GROUPS
from soundaq.models_zoo.module import LOUDNESS_PER_FRAME, MONITOR, SoundscapeModule, monitor_for
from soundaq.models_zoo.registry import NETS, find_spec, with_backbone
from soundaq.models_zoo.schedules import PAPER, PATIENCE, Schedule


class TrainClock(L.Callback):
    """Seconds spent training (validation excluded) and the learning curve, kept across resumed sessions.

    At the end of every validation during a fit it records a point ``{"seconds", "step", "clips", <val
    metric>: value}`` (the headline metrics of soundaq.models_zoo.metrics). Its state travels in the
    checkpoints, so a resumed run has the points of the sessions before; points after the checkpoint it
    resumes from are made again by the resumed run, exactly as before.
    """

    def __init__(self):
        self.previous = 0.0
        self.started: float | None = None
        self.validating = 0.0
        self._val_started: float | None = None
        self.points: list[dict] = []
        self.mark_precise_bn = False   # the next point validates weights with precise batch norm

    def on_fit_start(self, trainer, pl_module):
        self.started = time.perf_counter()
        self.validating = 0.0

    def on_validation_start(self, trainer, pl_module):
        if trainer.state.fn == "fit":
            self._val_started = time.perf_counter()

    def on_validation_end(self, trainer, pl_module):
        if self._val_started is None:
            return
        if not trainer.sanity_checking:
            from soundaq.models_zoo.metrics import HEADLINE

            step = int(trainer.global_step)
            point = {"seconds": round(self.seconds(), 3), "step": step, "clips": step * _batch_size(trainer)}
            for name in HEADLINE:
                value = trainer.callback_metrics.get(f"val/{name}")
                point[name] = None if value is None or not math.isfinite(float(value)) else float(value)
            if self.mark_precise_bn:
                point["precise_bn"] = True
                self.mark_precise_bn = False
            self.points = [p for p in self.points if p["step"] < step] + [point]
        self.validating += time.perf_counter() - self._val_started
        self._val_started = None

    def seconds(self) -> float:
        if self.started is None:
            return self.previous
        running = self._val_started is not None
        now = time.perf_counter()
        current = now - self.started - self.validating - ((now - self._val_started) if running else 0.0)
        return self.previous + max(current, 0.0)

    def state_dict(self):
        return {"seconds": self.seconds(), "points": list(self.points)}

    def load_state_dict(self, state):
        self.previous = float(state.get("seconds", 0.0))
        self.points = list(state.get("points", []))


def _batch_size(trainer) -> int:
    datamodule = getattr(trainer, "datamodule", None)
    return int(getattr(datamodule, "batch_size", 0) or 0)


class TrainingDiverged(Exception):
    """Raised by :class:`DivergenceGuard` to end a fit at once (no validation, no checkpoint of the
    exploded weights); ``info`` holds the step and the losses.
    """

    def __init__(self, info: dict):
        super().__init__(f"training diverged at step {info['step']} (loss {info['loss']})")
        self.info = info


class DivergenceGuard(L.Callback):
    """Ends a run whose training loss is not finite or exceeds ``factor`` times its first step's loss.

    Gradient clipping (on in the embedded schedule) prevents most divergence; this guard catches what
    is left, so that a run never continues on exploded weights: it raises :class:`TrainingDiverged`,
    which ends the fit before any validation or checkpoint of those weights; :func:`train_model`
    records the step and the loss, and the last checkpoint written before stays the run's result
    (tables mark the model as diverged).
    """

    def __init__(self, factor: float = 100.0):
        self.factor = float(factor)
        self.first: float | None = None
        self.diverged: dict | None = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
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

    def state_dict(self):
        return {"first": self.first, "diverged": self.diverged}

    def load_state_dict(self, state):
        self.first = state.get("first")
        self.diverged = state.get("diverged")


class ClipBudget(L.Callback):
    """Ends training after ``steps`` optimisation steps with a validation and a checkpoint at that very
    step (Lightning validates when ``should_stop`` is set), so a budget that ends inside an epoch still
    ends on a checkpoint. Validation otherwise runs at epoch ends only: checkpoints are never written
    inside an epoch, which is where a resumed run could not continue exactly as an uninterrupted one.
    """

    def __init__(self, steps: int):
        self.steps = int(steps)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step >= self.steps:
            trainer.should_stop = True


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

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step < self.steps or self.result is not None:
            return
        datamodule = trainer.datamodule
        loader = type(datamodule).train_dataloader(datamodule)
        self.result = recompute_batchnorm(pl_module, loader, self.crop_frames, self.batches)
        self.clock.mark_precise_bn = bool(self.result["layers"])


class ValidationMemoryFormat(L.Callback):
    """The net's weights in ``memory_format`` while a fit validates, back to contiguous for training.

    The conversion copies values, so training is bit for bit the same; the validation (inference)
    runs in the format measured fastest for it (:func:`choose_memory_format`), which gives the same
    bits with any thread count.
    """

    def __init__(self, memory_format: str):
        self.memory_format = memory_format

    def on_validation_start(self, trainer, pl_module):
        if trainer.state.fn == "fit":
            apply_memory_format(pl_module.net, self.memory_format)

    def on_validation_end(self, trainer, pl_module):
        if trainer.state.fn == "fit":
            apply_memory_format(pl_module.net, "contiguous")


class EpochSeed(L.Callback):
    """Reseed every RNG from (seed, epoch) before each epoch's data order is drawn, so that a run
    resumed from last.ckpt draws the same shuffles and dropout masks as an uninterrupted one.

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
        self.trainer = None
        self._wrapped = None

    def _value(self, epoch: int) -> int:
        rank = self.trainer.global_rank if self.trainer is not None else 0
        return self.seed + 1000003 * epoch + 7919 * rank

    @staticmethod
    def _seed_loaders(loaders, value: int) -> None:
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

    def setup(self, trainer, pl_module, stage):
        self.trainer = trainer
        datamodule = trainer.datamodule
        if stage == "fit" and datamodule is not None and self._wrapped is None:
            make = datamodule.train_dataloader

            def train_dataloader():
                loaders = make()
                self._seed_loaders(loaders, self._value(self.next_epoch))
                # Under DDP Lightning now wraps the loader in a DistributedSampler seeded from
                # PL_GLOBAL_SEED (it adds the epoch itself): that seed must be the same in every
                # process and in a resumed fit, i.e. the run's seed, not the per-rank epoch seed.
                os.environ["PL_GLOBAL_SEED"] = str(self.seed)
                return loaders

            datamodule.train_dataloader = train_dataloader
            self._wrapped = datamodule

    def teardown(self, trainer, pl_module, stage):
        if self._wrapped is not None:
            self._wrapped.__dict__.pop("train_dataloader", None)  # the class's method again
            self._wrapped = None

    def on_fit_start(self, trainer, pl_module):
        self._reseed(self.next_epoch)

    def on_train_epoch_end(self, trainer, pl_module):
        self.next_epoch = trainer.current_epoch + 1
        self._reseed(self.next_epoch)

    def state_dict(self):
        # Checkpoints are written at validation end, inside epoch e: training resumes at e + 1.
        current = self.trainer.current_epoch if self.trainer is not None else self.next_epoch - 1
        return {"next_epoch": int(current) + 1}

    def load_state_dict(self, state):
        self.next_epoch = int(state.get("next_epoch", 0))



class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint io with soundaq's guarantees: a checkpoint is written to a temporary
    file, flushed to disk and renamed over the old one (:func:`soundaq.base.fileio.atomic_path`), so a
    kill leaves the previous checkpoint whole; one that is damaged anyway (full disk, power cut, a
    cut-short copy) is refused on loading with one line naming it, never torch's zip-reader traceback.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO takes no storage_options")
        with atomic_path(path) as tmp:
            torch.save(checkpoint, tmp)

    def load_checkpoint(self, path, map_location: Any = lambda storage, loc: storage,
                        weights_only: bool | None = None) -> dict[str, Any]:
        problem = zip_problem(path)
        if problem is not None:
            raise damaged(path, problem, "delete it and run the same command again (training resumes from "
                                         "the newest whole checkpoint, or starts over)")
        return super().load_checkpoint(path, map_location=map_location, weights_only=weights_only)


def checkpoint_to_resume(ckpt_dir: Path | str, act: bool = True) -> Path | None:
    """The checkpoint an interrupted run continues from: the newest whole one of ``ckpt_dir``.

    Damaged files are set aside as ``<name>.damaged`` with one line each (:class:`~soundaq.base.artifacts.RebuiltWarning`).
    A damaged ``best-*.ckpt`` cannot be rebuilt from a later checkpoint (the weights of its epoch are
    gone), so then every checkpoint is set aside and training starts over; with the same seed it
    reproduces the same epochs (see :class:`EpochSeed`). Returns None when training starts from scratch.
    ``act=False`` (the other processes of a DDP run) makes the same choice without touching files.
    """
    ckpt_dir = Path(ckpt_dir)
    files = sorted(p for p in ckpt_dir.glob("*.ckpt") if p.is_file()) if ckpt_dir.is_dir() else []
    problems = {p: zip_problem(p) for p in files}
    whole = sorted((p for p in files if problems[p] is None),
                   key=lambda p: (p.stat().st_mtime_ns, p.name == "last.ckpt"), reverse=True)
    bad_best = [p for p in files if problems[p] is not None and p.name.startswith("best-")]
    over = "training starts over (same seed: same result)"
    if bad_best:
        for p in files if act else []:
            set_aside(p, problems[p] or f"refers to the damaged {bad_best[0].name}", over)
        return None
    chosen = whole[0] if whole else None
    for p in files if act else []:
        if problems[p] is not None:
            set_aside(p, problems[p], f"resuming from {chosen.name}" if chosen else f"no whole checkpoint is left: {over}")
    return chosen


def make_callbacks(seed: int, schedule: Schedule, ckpt_dir: Path, progress: bool, batch_size: int = 1,
                   monitor: str = MONITOR, crop_frames: int | None = None):
    """The callbacks of a training run: ``(callbacks, clock, checkpoints, early_stopping, guard)``.

    Epoch schedules keep the checkpoint with the lowest ``monitor`` (default ``val/isop_mse``, the
    paper's early-stopping metric; :func:`~soundaq.models_zoo.module.monitor_for` picks ``val/loss`` for
    data without quality labels) and stop after ``schedule.patience`` epochs without improvement; a clip
    budget keeps the last checkpoint (the budget is the budget) and has no early stopping; with
    ``schedule.precise_bn_batches`` it recomputes the batch-norm statistics at its last step
    (:class:`PreciseBatchNorm`, appended last).
    """
    clock = TrainClock()
    guard = DivergenceGuard(schedule.divergence_factor)
    if schedule.budget_clips is None:
        best = ModelCheckpoint(dirpath=ckpt_dir, filename="best-{epoch:03d}", monitor=monitor, mode="min",
                               save_top_k=1, save_last=True, auto_insert_metric_name=False)
        stop = EarlyStopping(monitor=monitor, mode="min", patience=schedule.patience or PATIENCE, check_finite=True)
        callbacks = [EpochSeed(seed), clock, guard, best, stop]
    else:   # a budget: the last checkpoint, written at epoch ends (and the budget's end) only
        best = ModelCheckpoint(dirpath=ckpt_dir, save_top_k=0, save_last=True, save_on_train_epoch_end=True)
        stop = None
        steps = max(1, schedule.budget_clips // max(1, batch_size))
        callbacks = [EpochSeed(seed), clock, guard, ClipBudget(steps), best]
        if schedule.precise_bn_batches:
            callbacks.append(PreciseBatchNorm(steps, schedule.precise_bn_batches, crop_frames, clock))
    if progress:
        callbacks.append(RichProgressBar(leave=True))
    return callbacks, clock, best, stop, guard


@dataclass
class TrainResult:
    """What :func:`train_model` returns."""

    best_checkpoint: Path
    last_checkpoint: Path | None
    train_seconds: float
    module: Any                      # the SoundscapeModule, holding the best checkpoint's weights
    best_score: float | None         # the monitored metric (val/isop_mse, else val/loss) of the best checkpoint
    epochs: int
    stopped_early: bool
    metrics: dict = field(default_factory=dict)   # last validation (and test, if run) metrics
    diverged: dict | None = None     # {"step", "loss", "first_loss"} when the divergence guard stopped the run
    resumed: bool = False            # continued from an interrupted run's last.ckpt
    already_done: bool = False       # the folder held a finished run: nothing was trained
    record: dict = field(default_factory=dict)    # the content of train.json


def _progress_from_checkpoint(path: Path, clock: TrainClock) -> tuple[int, int]:
    """(epochs trained, optimisation steps) recorded in a Lightning checkpoint, and the training
    clock's state (seconds, learning-curve points) restored into ``clock``.
    """
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)   # our own file, just written
    state = (checkpoint.get("callbacks") or {}).get("TrainClock")
    if state:
        clock.load_state_dict(state)
        clock.started = None
    progress = checkpoint.get("loops", {}).get("fit_loop", {}).get("epoch_progress", {}).get("current", {})
    return int(progress.get("processed", checkpoint.get("epoch", 0))), int(checkpoint.get("global_step", 0))


def _curve_after_precise_bn(trainer, module, datamodule, clock: TrainClock) -> None:
    """Validate the final weights once more (same validation clips) and add the learning curve's
    last point, marked ``precise_bn``: the point validated at the budget's last step still used the
    stale running statistics, so without this the curve would end far from the test scores.
    """
    from soundaq.models_zoo.metrics import HEADLINE

    if not clock.points:
        return
    results = trainer.validate(module, datamodule=datamodule, verbose=False)
    values = results[0] if results else {}
    last = dict(clock.points[-1])
    for name in HEADLINE:
        value = values.get(f"val/{name}")
        last[name] = None if value is None or not math.isfinite(float(value)) else float(value)
    last["precise_bn"] = True
    clock.points = [*clock.points, last]


def recompute_batchnorm(module, loader, crop_frames: int | None, max_batches: int) -> dict:
    """Batch-norm running statistics recomputed for the final weights ("precise BN").

    The running means and variances a net evaluates with are exponential averages (momentum 0.1) of
    the batches seen while its weights moved. After a short, fast-changing run they describe weights
    that are gone: YAMNet's 14 batch norms, for one, then squash every test clip to one output (its
    embedding's spread over clips fell from 0.57 in training mode to 0.0009 in evaluation mode). This
    resets them and averages, with equal weights, over the first ``max_batches`` batches of
    ``loader`` in training mode without gradients, on the same inputs as training (a centre crop of
    ``crop_frames`` frames when the run trained on crops). Deterministic: the loader's first batches,
    no dropout effect on the statistics of the layers before the dropout.

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
                mel = batch["mel"]
                loud = batch.get("loudness")
                if crop_frames and mel.shape[1] > crop_frames:
                    start = (mel.shape[1] - crop_frames) // 2
                    mel = mel[:, start:start + crop_frames]
                    if loud is not None:
                        span = LOUDNESS_PER_FRAME * crop_frames
                        first = min(LOUDNESS_PER_FRAME * start, loud.shape[1] - span)
                        loud = loud[:, first:first + span]
                module(mel, loud)
                batches += 1
                clips += int(mel.shape[0])
                if batches >= max_batches:
                    break
    finally:
        for m, momentum in zip(norms, saved):
            m.momentum = momentum
        module.train(was_training)
    return {"layers": len(norms), "batches": batches, "clips": clips}


def _floats(metrics: dict) -> dict[str, float]:
    out = {}
    for k, v in metrics.items():
        try:
            out[k] = float(v)
        except (TypeError, ValueError):
            continue
    return dict(sorted(out.items()))


def is_rank_zero() -> bool:
    """True in the process that writes files: local rank 0 of node 0 (always, without DDP)."""
    return os.environ.get("LOCAL_RANK", "0") == "0" and os.environ.get("NODE_RANK", "0") == "0"


#: Nets whose CPU training step bf16 autocast (with channels-last) sped up 1.6-2.5x on a CPU with native bf16
#: (AMX), outputs within 1e-2 (3e-2 MobileNetV2), as measured for issue 11; no gain for SoundAQnet and 2x
#: slower PANNs. On CPUs without native bf16 (AVX2 only) bf16 is emulated and slower for every net.
#: A view of the registry entries' ``cpu_bf16`` (the paper's eight).
BF16_CPU_NETS = tuple(name for name, spec in NETS.items() if spec.cpu_bf16)


def cpu_has_native_bf16() -> bool:
    """True when oneDNN has native bf16 kernels on this CPU (AVX512-BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


#: CPU speed-up of the channels-last memory format over contiguous tensors, 32-bit, one thread, batch 8:
#: (training step on the embedded schedule's input, i.e. 4-s crops and whole clips for AD_CNN and
#: CNN-Transformer; inference on whole 30-s clips), as ``benchmark/perf/memory_format.py`` measured
#: them side by side on a 2-core AMD EPYC (AVX2, no native bf16). oneDNN's convolutions read
#: channels-last (NHWC) activations without reordering them. PANNs and SoundAQnet from a second run
#: (their first: training 0.94x and 0.98x, inference 1.05x and 1.41x; timings of these large nets vary
#: by about 15 % between runs on this shared machine).
#: A view of the registry entries' ``channels_last_cpu_gain`` (the paper's eight).
CHANNELS_LAST_CPU_GAIN: dict[str, tuple[float, float]] = {
    name: spec.channels_last_cpu_gain for name, spec in NETS.items() if spec.channels_last_cpu_gain}
#: Inference switches to channels-last only where it measured at least this much faster (the training
#: gains are kept for the record: training stays contiguous, see :func:`choose_memory_format`).
CHANNELS_LAST_MIN_GAIN = 1.1


def choose_memory_format(model: str, schedule: Schedule, accelerator: str, phase: str) -> tuple[str, str]:
    """``(memory format, reason)`` of ``model``'s weights for ``phase`` ("training" or "inference").

    ``channels_last`` for inference under a clip-budget schedule (the embedded preset) on a CPU where the
    net's registry entry (``channels_last_cpu_gain``) measured it at least :data:`CHANNELS_LAST_MIN_GAIN`
    times faster;
    ``contiguous`` otherwise: the paper's schedule, GPUs, nets not measured (plug-ins), and training:
    channels-last training steps gave different weights with one and with two threads (oneDNN splits
    the weight-gradient sums by thread), which would make the table depend on ``--workers``, while its
    inference, like contiguous training and inference, gave the same bits with one or two threads
    (tested). Inference outputs move by float rounding only (at most 2.6e-6 in the measured run). The
    reason goes into the run's provenance.
    """
    if phase not in ("training", "inference"):
        raise ValueError(f"phase must be 'training' or 'inference', got {phase!r}")
    on_cpu = str(accelerator) == "cpu" or (str(accelerator) == "auto" and not torch.cuda.is_available())
    if schedule.budget_clips is None:
        return "contiguous", "the paper's schedule"
    if not on_cpu:
        return "contiguous", "not a CPU run"
    if phase == "training":
        return "contiguous", "channels-last training depends on the thread count (results must not)"
    spec = find_spec(model)
    gains = spec.channels_last_cpu_gain if spec is not None else None
    if gains is None:
        return "contiguous", f"channels-last not measured for {model}"
    gain = gains[1]
    if gain < CHANNELS_LAST_MIN_GAIN:
        return "contiguous", f"channels-last measured {gain:.2f}x for {model} inference (below {CHANNELS_LAST_MIN_GAIN}x)"
    return "channels_last", f"channels-last measured {gain:.2f}x faster for {model} inference on CPU"


def apply_memory_format(net: torch.nn.Module, memory_format: str) -> torch.nn.Module:
    """``net`` with its 4-D weights in ``memory_format`` ("contiguous" or "channels_last"), in place."""
    fmt = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}.get(memory_format)
    if fmt is None:
        raise ValueError(f"memory format must be 'contiguous' or 'channels_last', got {memory_format!r}")
    return net.to(memory_format=fmt)


def choose_precision(model: str, schedule: Schedule, accelerator: str, requested=None) -> tuple[str, str]:
    """``(precision, reason)`` for Lightning: what was asked for; else, for the embedded schedule on a CPU
    with native bf16, ``bf16-mixed`` for the nets where it was measured faster (their registry entry's
    ``cpu_bf16``);
    else full precision (the paper's schedule always trains in 32-bit, as the original). The reason
    goes into the run's provenance.
    """
    if requested is not None:
        return str(requested), "asked for"
    on_cpu = str(accelerator) == "cpu" or (str(accelerator) == "auto" and not torch.cuda.is_available())
    if schedule.budget_clips is None or not on_cpu:
        return "32-true", "the paper's precision"
    spec = find_spec(model)
    if spec is None or not spec.cpu_bf16:
        return "32-true", f"bf16 measured no faster for {model}"
    if not cpu_has_native_bf16():
        return "32-true", f"this CPU ({torch.backends.cpu.get_cpu_capability()}) has no native bf16"
    return "bf16-mixed", "native bf16 on this CPU, measured 1.6-2.5x faster for this net"


def crop_frames_for(net, schedule: Schedule) -> int | None:
    """Log-mel frames of the schedule's training crops for ``net`` (an instance or class), or None when
    the schedule asks for whole clips or the architecture has a fixed input length (``max_frames``)
    or needs more frames than the crop holds (``min_frames``).
    """
    if not schedule.crop_seconds:
        return None
    frames = int(round(schedule.crop_seconds * 100)) + 1          # 10-ms hop, centred frames
    if getattr(net, "max_frames", None) is not None or frames < int(getattr(net, "min_frames", 1)):
        return None
    if getattr(net, "uses_loudness", False) and 5 * frames < int(getattr(net, "min_loudness_samples", 1)):
        return None
    return frames


def _finished(record: dict | None, schedule: Schedule) -> bool:
    if not record:
        return False
    if record.get("diverged"):
        return True
    if schedule.steps is not None:
        return int(record.get("steps", 0)) >= schedule.steps
    return bool(record.get("stopped_early")) or int(record.get("epochs", 0)) >= int(schedule.max_epochs or 1)


def _read_text_or_none(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8") if path.is_file() else None
    except (OSError, UnicodeDecodeError):
        return None


def keep_earlier_metrics(path: Path, earlier: str) -> None:
    """Put the rows of earlier sessions back into a resumed run's ``logs/metrics.csv``.

    Lightning's CSV logger rewrites the file with the rows of the current session only, so a run resumed
    after a kill lost its first epochs' metrics. The earlier rows logged before the first step of this
    session are kept (later ones were logged after the checkpoint this session resumed from, and this
    session logs those steps again), then this session's rows; columns are the union. A file that
    cannot be read as a table is left as Lightning wrote it.
    """
    import io

    import pandas as pd

    try:
        old = pd.read_csv(io.StringIO(earlier))
        new = pd.read_csv(path) if path.is_file() and path.stat().st_size else old.iloc[:0]
    except (OSError, ValueError, pd.errors.ParserError):
        return
    if len(new) and "step" in new.columns and "step" in old.columns:
        old = old[old["step"] < new["step"].min()]
    if old.empty:
        return
    merged = pd.concat([old, new], ignore_index=True, sort=False)
    with atomic_path(path) as tmp:
        merged.to_csv(tmp, index=False)


def _result_options(trainer_kwargs: dict | None, precision, devices, strategy) -> dict:
    """The run identity's keys for the trainer options that change results (soundaq.base.runs.identity_problem):
    the batch limits, a precision asked for (None: chosen per net), the device count and the strategy.
    """
    limits = trainer_kwargs or {}
    return {"limit_train_batches": limits.get("limit_train_batches"), "limit_val_batches": limits.get("limit_val_batches"),
            "precision": None if precision is None else str(precision), "devices": devices,
            "strategy": strategy if isinstance(strategy, str) else type(strategy).__name__}


def train_model(model: str, datamodule, *, out_dir: Path | str, schedule: Schedule = PAPER, seed: int = 0,  # noqa: C901  (Lightning's set-up, resume and record in order)
                max_epochs: int | None = None, lr: float | None = None, patience: int | None = None,
                uncertainty_weighting: bool = False, loss_weights: tuple[float, ...] | None = None,
                accelerator: str = "auto", devices: int | str | list = 1, strategy: str = "auto",
                precision: str | int | None = None, pretrained: Path | str | None = None,
                progress: bool = True, identity: dict | None = None, provenance: dict | None = None,
                run_test: bool = False, net=None, net_kwargs: dict | None = None,
                trainer_kwargs: dict | None = None) -> TrainResult:
    """Train ``model`` on ``datamodule`` into ``out_dir``; resume if that folder holds an unfinished run.

    Args:
        model: registry name (or any name, with ``net`` given).
        datamodule: a LightningDataModule yielding ``BATCH_KEYS`` batches at its ``batch_size``; its
            ``norm_stats`` and ``describe()`` (when present) go into the checkpoints.
        out_dir: the run folder (see the module docstring).
        schedule: :data:`~soundaq.models_zoo.schedules.PAPER` (default: epochs, early stopping on
            val/isop_mse, or val/loss when the data module's ``tasks`` lack the qualities; best checkpoint kept)
            or a clip budget such as ``EMBEDDED`` (fixed steps,
            one-cycle rate, crops, gradient clipping, last checkpoint kept). ``max_epochs``, ``lr``
            and ``patience`` override the schedule's values.
        uncertainty_weighting, loss_weights: how the twelve task losses add up (default: the plain sum;
            :func:`soundaq.models_zoo.losses.parse_loss_weighting` reads ``--loss-weighting``).
        identity: what must match to resume (default: model, seed, schedule, data module class).
        net: a ready network (tests, user nets, head-initialised nets); default: the registry's.
        trainer_kwargs: extra ``lightning.Trainer`` arguments (e.g. ``limit_train_batches``).

    Returns:
        A :class:`TrainResult` whose module holds the kept checkpoint's weights. A run already finished
        (its ``train.json`` says so) is not trained again.

    Raises:
        UserError: bad arguments or a run folder made with other arguments (one line).
    """
    out_dir = Path(out_dir)
    schedule = schedule.with_overrides(max_epochs=max_epochs, lr=lr, patience=patience)
    if schedule.budget_clips is None and (schedule.max_epochs is None or schedule.max_epochs < 1):
        raise UserError("--max-epochs must be at least 1")
    batch_size = int(getattr(datamodule, "batch_size", 0) or schedule.batch_size)
    steps = None if schedule.budget_clips is None else max(1, schedule.budget_clips // batch_size)
    pretrained = Path(pretrained) if pretrained is not None else None
    pretrained_sha = None
    if pretrained is not None:
        if not pretrained.is_file():
            raise UserError(f"{pretrained}: pretrained weights file not found; fix: pass the path of the .pth file")
        pretrained_sha = sha256_file(pretrained)
    if identity is None:
        identity = {"model": model, "data": type(datamodule).__name__}
    identity = {**identity, "model": model, "seed": int(seed), "lr": float(schedule.lr),
                "uncertainty_weighting": bool(uncertainty_weighting), "pretrained_sha256": pretrained_sha}
    if schedule.budget_clips is not None:   # paper-schedule run folders keep their old identity
        identity["schedule"] = schedule.as_dict()
    else:   # raising --max-epochs continues a paper run (the weights of training that long at once); patience is fixed
        identity["patience"] = schedule.patience
    if loss_weights is not None:            # runs with the plain sum keep their old identity
        identity["loss_weights"] = [float(w) for w in loss_weights]
    identity.update(_result_options(trainer_kwargs, precision, devices, strategy))
    if is_rank_zero():
        RunFolder(out_dir, identity).open()
    ckpt_dir = out_dir / "checkpoints"
    last = ckpt_dir / "last.ckpt"
    record_path = out_dir / "train.json"

    record, problem = read_record(record_path, required=("best_checkpoint", "epochs", "train_seconds"))
    if problem is not None and is_rank_zero():
        set_aside(record_path, problem, "it is written again when this run ends")
    if _finished(record, schedule):
        best_path = Path(record["best_checkpoint"])
        best_problem = zip_problem(best_path)
        if best_problem is None:
            module = SoundscapeModule.load_from_checkpoint(best_path, map_location="cpu", net=net)
            return TrainResult(best_path, Path(record["last_checkpoint"]) if record.get("last_checkpoint") else None,
                               float(record["train_seconds"]), module, record.get("best_score"),
                               int(record["epochs"]), bool(record.get("stopped_early")),
                               record.get("metrics", {}), already_done=True, record=record,
                               diverged=record.get("diverged"))
        # the finished run's kept weights are gone: rebuild them by training again from the start
        if is_rank_zero():
            set_aside(record_path, f"its kept checkpoint {best_path.name} is {best_problem}",
                      "the run is trained again from the start (same seed: same result)")
            for p in sorted(ckpt_dir.glob("*.ckpt")) if ckpt_dir.is_dir() else []:
                set_aside(p, zip_problem(p) or f"belongs with the lost {best_path.name}",
                          "training starts over (same seed: same result)")

    L.seed_everything(seed, workers=True, verbose=False)
    if net is None and net_kwargs is None:
        from soundaq.models_zoo.registry import build_net

        net = build_net(model)
    crop = crop_frames_for(net, schedule) if net is not None else None
    precision, precision_reason = choose_precision(model, schedule, accelerator, precision)
    memory_format, memory_format_reason = choose_memory_format(model, schedule, accelerator, "training")
    validation_format = choose_memory_format(model, schedule, accelerator, "inference")[0]
    prov = {"model": model, "seed": int(seed), "lr": float(schedule.lr), "batch_size": batch_size,
            "uncertainty_weighting": bool(uncertainty_weighting), "schedule": schedule.as_dict(),
            "steps": steps, "crop_frames": crop, "precision": precision, "precision_reason": precision_reason,
            "memory_format": memory_format, "memory_format_reason": memory_format_reason,
            "validation_memory_format": validation_format,
            "strategy": str(strategy), "devices": str(devices),
            "versions": package_versions(), **(provenance or {})}
    if loss_weights is not None:
        prov["loss_weights"] = [float(w) for w in loss_weights]
    module = SoundscapeModule(model, lr=schedule.lr, uncertainty_weighting=uncertainty_weighting,
                              norm_stats=getattr(datamodule, "norm_stats", None), provenance=prov,
                              net_kwargs=net_kwargs, net=net, lr_schedule=schedule.lr_schedule,
                              warmup_fraction=schedule.warmup_fraction, crop_frames=crop, seed=seed,
                              head_lr_width=schedule.head_lr_width, loss_weights=loss_weights)
    if pretrained is not None:
        from soundaq.models_zoo.nets.pretrained import PretrainedWeightsError, load_pretrained_backbone

        backbone = getattr(find_spec(model), "backbone", None)
        if backbone is None:
            raise PretrainedWeightsError(f"{model} has no pretrained AudioSet backbone; only "
                                         f"{', '.join(with_backbone())} accept one (drop the pretrained-weights option)")
        report = load_pretrained_backbone(module.net, pretrained, backbone, model=model)
        module.provenance["pretrained"] = {"file": pretrained.name, "sha256": pretrained_sha,
                                           "report": getattr(report, "__dict__", str(report))}

    apply_memory_format(module.net, memory_format)
    monitor = monitor_for(getattr(datamodule, "tasks", LABEL_GROUPS))
    callbacks, clock, best_cb, stop_cb, guard = make_callbacks(seed, schedule, ckpt_dir, progress, batch_size, monitor,
                                                               crop_frames=crop)
    in_fit_bn = next((c for c in callbacks if isinstance(c, PreciseBatchNorm)), None)
    if validation_format != memory_format:
        callbacks.append(ValidationMemoryFormat(validation_format))
    on_cpu = str(accelerator) == "cpu" or (str(accelerator) == "auto" and not torch.cuda.is_available())
    kwargs = dict(accelerator=accelerator, devices=devices, strategy=strategy,
                  deterministic=True if on_cpu else "warn", callbacks=callbacks,
                  logger=CSVLogger(save_dir=str(out_dir), name="logs", version=""),
                  default_root_dir=str(out_dir), enable_progress_bar=progress, enable_model_summary=progress,
                  log_every_n_steps=10, gradient_clip_val=schedule.grad_clip)
    if steps is None:
        kwargs["max_epochs"] = int(schedule.max_epochs)
    else:
        # validation every 1/val_per_epoch epoch and at the budget's last step (ClipBudget) on the first
        # val_clips clips; the checkpoint at epoch ends and at the last step (resumable exactly)
        kwargs.update(max_steps=steps, max_epochs=-1, num_sanity_val_steps=0, log_every_n_steps=1,
                      val_check_interval=1.0 / max(1, schedule.val_per_epoch))
        if schedule.val_clips:
            kwargs["limit_val_batches"] = max(1, -(-schedule.val_clips // batch_size))
    kwargs["precision"] = precision
    kwargs.update(trainer_kwargs or {})
    kwargs.setdefault("plugins", [AtomicCheckpointIO()])
    trainer = L.Trainer(**kwargs)
    resume_from = checkpoint_to_resume(ckpt_dir, act=is_rank_zero())
    resumed = resume_from is not None
    metrics_csv = out_dir / "logs" / "metrics.csv"
    earlier_metrics = _read_text_or_none(metrics_csv) if resumed and is_rank_zero() else None
    try:
        with warnings.catch_warnings():
            # Lightning's CSV logger starts metrics.csv afresh; the earlier sessions' rows are put back below
            warnings.filterwarnings("ignore", message=r"Experiment logs directory .* exists and is not empty")
            trainer.fit(module, datamodule=datamodule, ckpt_path=str(resume_from) if resumed else None)
    except TrainingDiverged as stop:       # guard.diverged holds the step and the losses
        if not last.exists():
            raise UserError(f"{model}: {stop} before its first checkpoint; fix: lower the learning rate "
                            "(--lr) or keep gradient clipping on") from None
    except SystemExit:
        if not trainer.interrupted:
            raise
        # Ctrl-C: Lightning shut down gracefully, then called sys.exit(1) and left SIGINT ignored; give the
        # interrupt back to the caller (the CLI says "run the same command again to resume", exit 130)
        import signal

        signal.signal(signal.SIGINT, signal.default_int_handler)
        raise KeyboardInterrupt from None
    finally:
        if earlier_metrics is not None:
            keep_earlier_metrics(metrics_csv, earlier_metrics)

    metrics = _floats(trainer.callback_metrics)
    epochs_done, steps_done = int(trainer.current_epoch), int(trainer.global_step)
    if steps_done == 0 and last.exists():
        # a spawned fit (ddp_spawn) ran in child processes: this process's loops never advanced, so the
        # progress and the learning curve come from the last checkpoint they wrote
        epochs_done, steps_done = _progress_from_checkpoint(last, clock)
    if steps is None and best_cb.best_model_path:
        best_path = Path(best_cb.best_model_path)
    else:
        best_path = last
    precise = in_fit_bn.result if in_fit_bn is not None else None
    if schedule.precise_bn_batches and guard.diverged is None and last.exists():
        if precise is None:
            # not done during this fit (a spawned fit, or a run resumed at its last step): the same
            # statistics from the same batches (see recompute_batchnorm); the fitted module holds
            # exactly last.ckpt's weights (saved at the budget's last step)
            precise = recompute_batchnorm(module, datamodule.train_dataloader(), crop, schedule.precise_bn_batches)
            if precise["layers"] and not (clock.points and clock.points[-1].get("precise_bn")):
                _curve_after_precise_bn(trainer, module, datamodule, clock)
        if precise["layers"]:
            best_path = ckpt_dir / "final.ckpt"
            trainer.save_checkpoint(best_path, weights_only=False)   # a full checkpoint, as last.ckpt; atomic (checkpoint io)
    best_score = float(best_cb.best_model_score) if best_cb.best_model_score is not None else None
    stopped_early = bool(stop_cb is not None and stop_cb.stopped_epoch > 0)
    seconds = clock.seconds()
    if run_test and best_path.exists():
        tested = trainer.test(module, datamodule=datamodule, ckpt_path=str(best_path), verbose=False)
        metrics.update(_floats(tested[0] if tested else {}))
    if trainer.is_global_zero and best_path.exists():
        module = SoundscapeModule.load_from_checkpoint(best_path, map_location="cpu", net=net)
    record = {"model": model, "best_checkpoint": str(best_path), "last_checkpoint": str(last),
              "best_score": best_score, "monitor": monitor,
              "tasks": list(getattr(datamodule, "tasks", LABEL_GROUPS)), "epochs": epochs_done,
              "steps": steps_done, "clips_seen": steps_done * batch_size,
              "stopped_early": stopped_early, "diverged": guard.diverged, "precise_bn": precise,
              "curve": clock.points,
              "train_seconds": round(seconds, 3), "resumed": resumed,
              "params": module.count_parameters(), "identity": identity, "metrics": metrics,
              "provenance": module.provenance,
              "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    if trainer.is_global_zero:
        atomic_write_json(record_path, record)
    return TrainResult(best_path, last if last.exists() else None, seconds, module, best_score,
                       epochs_done, stopped_early, metrics, resumed=resumed, record=record,
                       diverged=guard.diverged)
