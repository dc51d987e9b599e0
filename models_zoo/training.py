"""Training one zoo net: run folders, resume, reproducible seeding, early stopping (``soundaq train``).

What a run folder holds::

    run.json                  the arguments that define the run (resuming with others is refused)
    checkpoints/last.ckpt     written after every validation: a killed run resumes from here
    checkpoints/best-EEE.ckpt the epoch with the lowest val/isop_mse (the paper's early-stopping metric;
                              val/loss when the data have no quality labels)
    logs/metrics.csv          every logged metric per epoch (torchmetrics objects, see soundaq.models_zoo.module)
    train.json                written last, atomically: best checkpoint, scores, epochs, seconds, provenance

:func:`train_model` is the entry point of ``soundaq train`` and of the leaderboard; it puts together
the pieces that have their own modules: the callbacks (:mod:`soundaq.models_zoo.callbacks`), the
atomic checkpoints and what a killed run resumes from (:mod:`soundaq.models_zoo.resume`), the CPU
precision and memory-format policy (:mod:`soundaq.models_zoo.cpu_policy`) and precise batch norm
(:mod:`soundaq.models_zoo.precise_bn`).
"""
from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.loggers import CSVLogger

from soundaq.base.artifacts import read_record, set_aside, zip_problem
from soundaq.base.errors import UserError
from soundaq.base.fileio import atomic_write_json, sha256_file
from soundaq.base.layout import Below
from soundaq.base.runs import RunFolder, package_versions
from soundaq.base.vocab import LABEL_GROUPS
from soundaq.models_zoo.callbacks import (
    RunCallbacks,
    TrainingDiverged,
    ValidationMemoryFormat,
    make_callbacks,
    validate_precise_bn_weights,
)
from soundaq.models_zoo.cpu_policy import apply_memory_format, choose_memory_format, choose_precision, runs_on_cpu
from soundaq.models_zoo.module import SoundscapeModule, monitor_for
from soundaq.models_zoo.precise_bn import recompute_batchnorm
from soundaq.models_zoo.registry import find_spec, with_backbone
from soundaq.models_zoo.resume import (
    AtomicCheckpointIO,
    checkpoint_to_resume,
    keep_earlier_metrics,
    progress_from_checkpoint,
    read_text_or_none,
    run_finished,
)
from soundaq.models_zoo.schedules import PAPER, Schedule, crop_frames_for


@dataclass(frozen=True)
class TrainSettings:
    """How :func:`train_model` trains; each field is also one of its keyword arguments.

    Attributes:
        schedule: :data:`~soundaq.models_zoo.schedules.PAPER` (default: epochs, early stopping on
            val/isop_mse, or val/loss when the data module's ``tasks`` lack the qualities; best checkpoint
            kept) or a clip budget such as ``EMBEDDED`` (fixed steps, one-cycle rate, crops, gradient
            clipping, last checkpoint kept).
        seed: seeds the weights, the data order and dropout (per epoch, so resuming changes nothing).
        max_epochs, lr, patience: override the schedule's values (None: the schedule's).
        uncertainty_weighting, loss_weights: how the twelve task losses add up (default: the plain sum;
            :func:`soundaq.models_zoo.losses.parse_loss_weighting` reads ``--loss-weighting``).
        accelerator, devices, strategy: Lightning's (``strategy`` may be a Strategy object).
        precision: Lightning's precision; None: chosen per net
            (:func:`~soundaq.models_zoo.cpu_policy.choose_precision`).
        pretrained: an AudioSet backbone's ``.pth`` file for the nets that have one.
        progress: show Rich's progress bar (never the model summary: soundaq prints the parameters).
        identity: what must match to resume (default: model, seed, schedule, data module class).
        provenance: merged into the checkpoints' provenance.
        run_test: test the kept checkpoint on the test split after training.
        net: a ready network (tests, user nets, head-initialised nets); default: the registry's.
        net_kwargs: arguments of the registry's net instead of a ready one.
        trainer_kwargs: extra ``lightning.Trainer`` arguments (e.g. ``limit_train_batches``).
    """

    schedule: Schedule = PAPER
    seed: int = 0
    max_epochs: int | None = None
    lr: float | None = None
    patience: int | None = None
    uncertainty_weighting: bool = False
    loss_weights: tuple[float, ...] | None = None
    accelerator: str = "auto"
    devices: int | str | list = 1
    strategy: Any = "auto"
    precision: str | int | None = None
    pretrained: Path | str | None = None
    progress: bool = True
    identity: dict | None = None
    provenance: dict | None = None
    run_test: bool = False
    net: torch.nn.Module | None = None
    net_kwargs: dict | None = None
    trainer_kwargs: dict | None = None


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


def is_rank_zero() -> bool:
    """True in the process that writes files: local rank 0 of node 0 (always, without DDP)."""
    return os.environ.get("LOCAL_RANK", "0") == "0" and os.environ.get("NODE_RANK", "0") == "0"


@dataclass
class _Run:
    """One call of :func:`train_model`: its arguments and what follows from them before any training."""

    model: str
    datamodule: Any
    out_dir: Path
    settings: TrainSettings
    schedule: Schedule
    batch_size: int
    pretrained: Path | None
    pretrained_sha: str | None
    identity: dict = field(default_factory=dict)

    @property
    def steps(self) -> int | None:
        """Optimisation steps of a clip budget at the data module's batch size (None: epochs)."""
        budget = self.schedule.budget_clips
        return None if budget is None else max(1, budget // self.batch_size)

    ckpt_dir = Below("out_dir", "checkpoints", "The run folder's checkpoints.")
    last = Below("ckpt_dir", "last.ckpt", "The checkpoint written after every validation.")
    record_path = Below("out_dir", "train.json", "``train.json``, written last.")


@dataclass
class _CpuSetup:
    """The run's numeric set-up: training crop, precision and memory formats, each with its reason."""

    crop: int | None
    precision: str
    precision_reason: str
    memory_format: str
    memory_format_reason: str
    validation_format: str


def train_model(model: str, datamodule: Any, *, out_dir: Path | str, settings: TrainSettings | None = None,
                **options: Any) -> TrainResult:
    """Train ``model`` on ``datamodule`` into ``out_dir``; resume if that folder holds an unfinished run.

    Args:
        model: registry name (or any name, with ``net`` given).
        datamodule: a LightningDataModule yielding ``BATCH_KEYS`` batches at its ``batch_size``; its
            ``norm_stats`` and ``describe()`` (when present) go into the checkpoints.
        out_dir: the run folder (see the module docstring).
        settings: how to train (default: ``TrainSettings()``, the paper's schedule).
        **options: fields of :class:`TrainSettings` replacing those of ``settings`` (``schedule=EMBEDDED,
            seed=1, progress=False``, ...).

    Returns:
        A :class:`TrainResult` whose module holds the kept checkpoint's weights. A run already finished
        (its ``train.json`` says so) is not trained again.

    Raises:
        UserError: bad arguments or a run folder made with other arguments (one line).
        TypeError: an option that is not a field of :class:`TrainSettings`.
    """
    run = _plan_run(model, datamodule, Path(out_dir), replace(settings or TrainSettings(), **options))
    if is_rank_zero():
        RunFolder(run.out_dir, run.identity).open()
    done = _finished_result(run)
    if done is not None:
        return done
    s = run.settings
    L.seed_everything(s.seed, workers=True, verbose=False)
    module, setup = _build_module(run)
    apply_memory_format(module.net, setup.memory_format)
    monitor = monitor_for(getattr(datamodule, "tasks", LABEL_GROUPS))
    callbacks = make_callbacks(s.seed, run.schedule, run.ckpt_dir, s.progress, run.batch_size, monitor,
                               crop_frames=setup.crop)
    if setup.validation_format != setup.memory_format:
        callbacks.callbacks.append(ValidationMemoryFormat(setup.validation_format))
    trainer = L.Trainer(**_trainer_options(run, callbacks, setup.precision))
    resumed = _fit(run, trainer, module)
    return _conclude(run, trainer, module, callbacks, setup.crop, monitor, resumed)


def _plan_run(model: str, datamodule: Any, out_dir: Path, s: TrainSettings) -> _Run:
    """Check the arguments and work out the schedule, the batch size and the run's identity."""
    schedule = s.schedule.with_overrides(max_epochs=s.max_epochs, lr=s.lr, patience=s.patience)
    if schedule.budget_clips is None and (schedule.max_epochs is None or schedule.max_epochs < 1):
        raise UserError("--max-epochs must be at least 1")
    batch_size = int(getattr(datamodule, "batch_size", 0) or schedule.batch_size)
    pretrained = Path(s.pretrained) if s.pretrained is not None else None
    pretrained_sha = None
    if pretrained is not None:
        if not pretrained.is_file():
            raise UserError(f"{pretrained}: pretrained weights file not found; fix: pass the path of the .pth file")
        pretrained_sha = sha256_file(pretrained)
    run = _Run(model, datamodule, out_dir, s, schedule, batch_size, pretrained, pretrained_sha)
    run.identity = _identity(run)
    return run


def _identity(run: _Run) -> dict:
    """What must match for a run folder to be continued (soundaq.base.runs.RunFolder)."""
    s, schedule = run.settings, run.schedule
    identity = s.identity if s.identity is not None else {"model": run.model, "data": type(run.datamodule).__name__}
    identity = {**identity, "model": run.model, "seed": int(s.seed), "lr": float(schedule.lr),
                "uncertainty_weighting": bool(s.uncertainty_weighting), "pretrained_sha256": run.pretrained_sha}
    if schedule.budget_clips is not None:   # paper-schedule run folders keep their old identity
        identity["schedule"] = schedule.as_dict()
    else:   # raising --max-epochs continues a paper run (the weights of training that long at once); patience is fixed
        identity["patience"] = schedule.patience
    if s.loss_weights is not None:            # runs with the plain sum keep their old identity
        identity["loss_weights"] = [float(w) for w in s.loss_weights]
    identity.update(_result_options(s.trainer_kwargs, s.precision, s.devices, s.strategy))
    return identity


def _result_options(trainer_kwargs: dict | None, precision: str | int | None, devices: Any, strategy: Any) -> dict:
    """The run identity's keys for the trainer options that change results (soundaq.base.runs.identity_problem).

    They are the batch limits, a precision asked for (None: chosen per net), the device count and the strategy.
    """
    limits = trainer_kwargs or {}
    return {"limit_train_batches": limits.get("limit_train_batches"), "limit_val_batches": limits.get("limit_val_batches"),
            "precision": None if precision is None else str(precision), "devices": devices,
            "strategy": strategy if isinstance(strategy, str) else type(strategy).__name__}


def _finished_result(run: _Run) -> TrainResult | None:
    """The result of a run the folder already holds finished; None when there is training to do.

    A finished run whose kept checkpoint is lost or damaged is set aside (with its checkpoints) and
    trained again from the start; a damaged ``train.json`` is set aside.
    """
    record, problem = read_record(run.record_path, required=("best_checkpoint", "epochs", "train_seconds"))
    if problem is not None and is_rank_zero():
        set_aside(run.record_path, problem, "it is written again when this run ends")
    if record is None or not run_finished(record, run.schedule):
        return None
    best_path = Path(record["best_checkpoint"])
    best_problem = zip_problem(best_path)
    if best_problem is None:
        module = SoundscapeModule.load_from_checkpoint(best_path, map_location="cpu", net=run.settings.net)
        return TrainResult(best_path, Path(record["last_checkpoint"]) if record.get("last_checkpoint") else None,
                           float(record["train_seconds"]), module, record.get("best_score"),
                           int(record["epochs"]), bool(record.get("stopped_early")),
                           record.get("metrics", {}), already_done=True, record=record,
                           diverged=record.get("diverged"))
    # the finished run's kept weights are gone: rebuild them by training again from the start
    if is_rank_zero():
        set_aside(run.record_path, f"its kept checkpoint {best_path.name} is {best_problem}",
                  "the run is trained again from the start (same seed: same result)")
        for p in sorted(run.ckpt_dir.glob("*.ckpt")) if run.ckpt_dir.is_dir() else []:
            set_aside(p, zip_problem(p) or f"belongs with the lost {best_path.name}",
                      "training starts over (same seed: same result)")
    return None


def _build_module(run: _Run) -> tuple[SoundscapeModule, _CpuSetup]:
    """The SoundscapeModule to train (pretrained backbone loaded) and the CPU set-up chosen for it."""
    s, model, schedule = run.settings, run.model, run.schedule
    net = s.net
    if net is None and s.net_kwargs is None:
        from soundaq.models_zoo.registry import build_net

        net = build_net(model)
    precision, precision_reason = choose_precision(model, schedule, s.accelerator, s.precision)
    memory_format, memory_format_reason = choose_memory_format(model, schedule, s.accelerator, "training")
    setup = _CpuSetup(crop_frames_for(net, schedule) if net is not None else None, precision, precision_reason,
                      memory_format, memory_format_reason,
                      choose_memory_format(model, schedule, s.accelerator, "inference")[0])
    prov = {"model": model, "seed": int(s.seed), "lr": float(schedule.lr), "batch_size": run.batch_size,
            "uncertainty_weighting": bool(s.uncertainty_weighting), "schedule": schedule.as_dict(),
            "steps": run.steps, "crop_frames": setup.crop, "precision": precision,
            "precision_reason": precision_reason, "memory_format": memory_format,
            "memory_format_reason": memory_format_reason, "validation_memory_format": setup.validation_format,
            "strategy": str(s.strategy), "devices": str(s.devices),
            "versions": package_versions(), **(s.provenance or {})}
    if s.loss_weights is not None:
        prov["loss_weights"] = [float(w) for w in s.loss_weights]
    module = SoundscapeModule(model, lr=schedule.lr, uncertainty_weighting=s.uncertainty_weighting,
                              norm_stats=getattr(run.datamodule, "norm_stats", None), provenance=prov,
                              net_kwargs=s.net_kwargs, net=net, lr_schedule=schedule.lr_schedule,
                              warmup_fraction=schedule.warmup_fraction, crop_frames=setup.crop, seed=s.seed,
                              head_lr_width=schedule.head_lr_width, loss_weights=s.loss_weights)
    if run.pretrained is not None:
        _load_pretrained(run, module, run.pretrained)
    return module, setup


def _load_pretrained(run: _Run, module: SoundscapeModule, pretrained: Path) -> None:
    """Load the AudioSet backbone weights of ``pretrained`` into the module's net and record them."""
    from soundaq.models_zoo.nets.pretrained import PretrainedWeightsError, load_pretrained_backbone

    backbone = getattr(find_spec(run.model), "backbone", None)
    if backbone is None:
        raise PretrainedWeightsError(f"{run.model} has no pretrained AudioSet backbone; only "
                                     f"{', '.join(with_backbone())} accept one (drop the pretrained-weights option)")
    report = load_pretrained_backbone(module.net, pretrained, backbone, model=run.model)
    module.provenance["pretrained"] = {"file": pretrained.name, "sha256": run.pretrained_sha,
                                       "report": getattr(report, "__dict__", str(report))}


def _trainer_options(run: _Run, callbacks: RunCallbacks, precision: str) -> dict[str, Any]:
    """The ``lightning.Trainer`` arguments of the run (the settings' ``trainer_kwargs`` last)."""
    s, schedule, out_dir = run.settings, run.schedule, run.out_dir
    # no Lightning model summary: soundaq says the parameters itself, and the summary's "FLOPs 0" and its
    # bf16 warning landed in the middle of the leaderboard's table (new-user trial)
    kwargs: dict[str, Any] = dict(
        accelerator=s.accelerator, devices=s.devices, strategy=s.strategy,
        deterministic=True if runs_on_cpu(s.accelerator) else "warn", callbacks=callbacks.callbacks,
        logger=CSVLogger(save_dir=str(out_dir), name="logs", version=""),
        default_root_dir=str(out_dir), enable_progress_bar=s.progress, enable_model_summary=False,
        log_every_n_steps=10, gradient_clip_val=schedule.grad_clip)
    if run.steps is None:
        kwargs["max_epochs"] = int(schedule.max_epochs or 1)
    else:
        # validation every 1/val_per_epoch epoch and at the budget's last step (ClipBudget) on the first
        # val_clips clips; the checkpoint at epoch ends and at the last step (resumable exactly)
        kwargs.update(max_steps=run.steps, max_epochs=-1, num_sanity_val_steps=0, log_every_n_steps=1,
                      val_check_interval=1.0 / max(1, schedule.val_per_epoch))
        if schedule.val_clips:
            kwargs["limit_val_batches"] = max(1, -(-schedule.val_clips // run.batch_size))
    kwargs["precision"] = precision
    kwargs.update(s.trainer_kwargs or {})
    kwargs.setdefault("plugins", [AtomicCheckpointIO()])
    return kwargs


def _fit(run: _Run, trainer: L.Trainer, module: SoundscapeModule) -> bool:
    """Fit, resuming from the newest whole checkpoint; True when the fit resumed one.

    Raises:
        UserError: the run diverged before its first checkpoint.
        KeyboardInterrupt: Ctrl-C (Lightning stopped gracefully; the caller says how to resume).
    """
    resume_from = checkpoint_to_resume(run.ckpt_dir, act=is_rank_zero())
    resumed = resume_from is not None
    metrics_csv = run.out_dir / "logs" / "metrics.csv"
    earlier_metrics = read_text_or_none(metrics_csv) if resumed and is_rank_zero() else None
    try:
        with warnings.catch_warnings():
            # Lightning's CSV logger starts metrics.csv afresh; the earlier sessions' rows are put back below
            warnings.filterwarnings("ignore", message=r"Experiment logs directory .* exists and is not empty")
            trainer.fit(module, datamodule=run.datamodule, ckpt_path=str(resume_from) if resumed else None)
    except TrainingDiverged as stop:       # the guard's ``diverged`` holds the step and the losses
        if not run.last.exists():
            raise UserError(f"{run.model}: {stop} before its first checkpoint; fix: lower the learning rate "
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
    return resumed


def _kept_checkpoint(run: _Run, trainer: L.Trainer, module: SoundscapeModule, callbacks: RunCallbacks,
                     crop: int | None) -> tuple[Path, dict | None]:
    """The checkpoint the run keeps and the precise batch norm done for it (None: none asked for)."""
    best_cb = callbacks.checkpoints
    best_path = Path(best_cb.best_model_path) if run.steps is None and best_cb.best_model_path else run.last
    precise = callbacks.precise_bn.result if callbacks.precise_bn is not None else None
    batches = run.schedule.precise_bn_batches
    if not batches or callbacks.guard.diverged is not None or not run.last.exists():
        return best_path, precise
    if precise is None:
        # not done during this fit (a spawned fit, or a run resumed at its last step): the same
        # statistics from the same batches (see recompute_batchnorm); the fitted module holds
        # exactly last.ckpt's weights (saved at the budget's last step)
        precise = recompute_batchnorm(module, run.datamodule.train_dataloader(), crop, batches)
        clock = callbacks.clock
        if precise["layers"] and not (clock.points and clock.points[-1].get("precise_bn")):
            validate_precise_bn_weights(trainer, module, run.datamodule, clock)
    if precise["layers"]:
        best_path = run.ckpt_dir / "final.ckpt"
        trainer.save_checkpoint(best_path, weights_only=False)   # a full checkpoint, as last.ckpt; atomic (checkpoint io)
    return best_path, precise


def _conclude(run: _Run, trainer: L.Trainer, module: SoundscapeModule, callbacks: RunCallbacks,
              crop: int | None, monitor: str, resumed: bool) -> TrainResult:
    """After the fit: keep a checkpoint, test it if asked, write ``train.json`` and return the result."""
    metrics = _floats(trainer.callback_metrics)
    epochs_done, steps_done = int(trainer.current_epoch), int(trainer.global_step)
    clock, guard, last = callbacks.clock, callbacks.guard, run.last
    if steps_done == 0 and last.exists():
        # a spawned fit (ddp_spawn) ran in child processes: this process's loops never advanced, so the
        # progress and the learning curve come from the last checkpoint they wrote
        epochs_done, steps_done, clock_state = progress_from_checkpoint(last)
        if clock_state:
            clock.load_state_dict(clock_state)
            clock.started = None
    best_path, precise = _kept_checkpoint(run, trainer, module, callbacks, crop)
    best_cb, stop_cb = callbacks.checkpoints, callbacks.early_stopping
    best_score = float(best_cb.best_model_score) if best_cb.best_model_score is not None else None
    stopped_early = bool(stop_cb is not None and stop_cb.stopped_epoch > 0)
    seconds = clock.seconds()
    if run.settings.run_test and best_path.exists():
        tested = trainer.test(module, datamodule=run.datamodule, ckpt_path=str(best_path), verbose=False)
        metrics.update(_floats(tested[0] if tested else {}))
    if trainer.is_global_zero and best_path.exists():
        module = SoundscapeModule.load_from_checkpoint(best_path, map_location="cpu", net=run.settings.net)
    kept = clock.points if run.steps is not None else ([{monitor: best_score}] if best_score is not None else [])
    diverged = guard.diverged or _validation_diverged(metrics if run.steps is not None else {}, kept, steps_done)
    record = {"model": run.model, "best_checkpoint": str(best_path), "last_checkpoint": str(last),
              "best_score": best_score, "monitor": monitor,
              "tasks": list(getattr(run.datamodule, "tasks", LABEL_GROUPS)), "epochs": epochs_done,
              "steps": steps_done, "clips_seen": steps_done * run.batch_size,
              "stopped_early": stopped_early, "diverged": diverged, "precise_bn": precise,
              "curve": clock.points,
              "train_seconds": round(seconds, 3), "resumed": resumed,
              "params": module.count_parameters(), "identity": run.identity, "metrics": metrics,
              "provenance": module.provenance,
              "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    if trainer.is_global_zero:
        atomic_write_json(run.record_path, record)
    return TrainResult(best_path, last if last.exists() else None, seconds, module, best_score,
                       epochs_done, stopped_early, metrics, resumed=resumed, record=record,
                       diverged=diverged)


def _validation_diverged(metrics: dict, curve: list[dict], step: int) -> dict | None:
    """``train.json``'s ``diverged`` for a run whose validation loss exploded while its training loss
    stayed under the :class:`DivergenceGuard` (SoundAQnet_AFF's on a small budget, docs/ablations.md):
    the kept weights' validation (a budget's last curve point and logged ``val/`` metrics; the paper
    schedule's best score) has an error beyond any prediction within the rating scale
    (:func:`soundaq.models_zoo.rating_scale.exploded_validation`). None when it has not.
    """
    from soundaq.models_zoo.rating_scale import exploded_validation

    scores = {k: v for k, v in metrics.items() if k.startswith("val/")}
    if curve:
        scores.update({k: v for k, v in curve[-1].items() if isinstance(v, (int, float))})
    found = exploded_validation(scores)
    if found is None:
        return None
    return {"step": step, "loss": f"validation {found['metric']} {found['value']:.6g}", "first_loss": None,
            "validation": found}


def _floats(metrics: Any) -> dict[str, float]:
    """The values of ``metrics`` that convert to float, sorted by name."""
    out = {}
    for k, v in metrics.items():
        try:
            out[k] = float(v)
        except (TypeError, ValueError):
            continue
    return dict(sorted(out.items()))
