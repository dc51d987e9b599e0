"""Training one zoo net: run folders, resume, reproducible seeding, early stopping (``soundaq train``).

What a run folder holds::

    run.json                  the arguments that define the run (resuming with others is refused)
    checkpoints/last.ckpt     written after every validation: a killed run resumes from here
    checkpoints/best-EEE.ckpt the epoch with the lowest val/isop_mse (the paper's early-stopping metric)
    logs/metrics.csv          every logged metric per epoch (torchmetrics objects, see soundaq.models_zoo.module)
    train.json                written last, atomically: best checkpoint, scores, epochs, seconds, provenance

Checkpoints are written atomically (:class:`AtomicCheckpointIO`) and checked when a run resumes
(:func:`checkpoint_to_resume`): a damaged one is set aside with one line and the run continues from
the newest whole checkpoint, or starts over when the best one is lost.

:func:`train_model` is the entry point of ``soundaq train`` and of the leaderboard. The callbacks are
module-level classes, so a trainer holding them can be pickled (``--strategy ddp_spawn``).
"""
from __future__ import annotations

import os
import time
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
from soundaq.models_zoo.module import MONITOR, SoundscapeModule
from soundaq.models_zoo.schedules import PAPER_LR, PAPER_MAX_EPOCHS, PATIENCE



class TrainClock(L.Callback):
    """Wall-clock seconds of fitting, summed over resumed sessions (saved in checkpoints)."""

    def __init__(self):
        self.previous = 0.0
        self.started: float | None = None

    def on_fit_start(self, trainer, pl_module):
        self.started = time.perf_counter()

    def seconds(self) -> float:
        return self.previous + (time.perf_counter() - self.started if self.started is not None else 0.0)

    def state_dict(self):
        return {"seconds": self.seconds()}

    def load_state_dict(self, state):
        self.previous = float(state.get("seconds", 0.0))



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
    cut-short copy) is refused on loading with one line naming it, never torch's zip-reader traceback."""

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


def make_callbacks(seed: int, patience: int, ckpt_dir: Path, progress: bool):
    """The callbacks of a training run: ``(callbacks, clock, best_checkpoint, early_stopping)``."""
    clock = TrainClock()
    best = ModelCheckpoint(dirpath=ckpt_dir, filename="best-{epoch:03d}", monitor=MONITOR, mode="min",
                           save_top_k=1, save_last=True, auto_insert_metric_name=False)
    stop = EarlyStopping(monitor=MONITOR, mode="min", patience=patience, check_finite=True)
    callbacks = [EpochSeed(seed), clock, best, stop]
    if progress:
        callbacks.append(RichProgressBar(leave=True))
    return callbacks, clock, best, stop


@dataclass
class TrainResult:
    """What :func:`train_model` returns."""

    best_checkpoint: Path
    last_checkpoint: Path | None
    train_seconds: float
    module: Any                      # the SoundscapeModule, holding the best checkpoint's weights
    best_score: float | None         # val/isop_mse of the best checkpoint
    epochs: int
    stopped_early: bool
    metrics: dict = field(default_factory=dict)   # last validation (and test, if run) metrics
    resumed: bool = False            # continued from an interrupted run's last.ckpt
    already_done: bool = False       # the folder held a finished run: nothing was trained
    record: dict = field(default_factory=dict)    # the content of train.json


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


def train_model(model: str, datamodule, *, out_dir: Path | str, max_epochs: int = PAPER_MAX_EPOCHS, seed: int = 0,
                lr: float = PAPER_LR, uncertainty_weighting: bool = False, patience: int = PATIENCE,
                accelerator: str = "auto", devices: int | str | list = 1, strategy: str = "auto",
                precision: str | int | None = None, pretrained: Path | str | None = None,
                progress: bool = True, identity: dict | None = None, provenance: dict | None = None,
                run_test: bool = False, net=None, net_kwargs: dict | None = None,
                trainer_kwargs: dict | None = None) -> TrainResult:
    """Train ``model`` on ``datamodule`` into ``out_dir``; resume if that folder holds an unfinished run.

    ``datamodule`` is a LightningDataModule yielding ``BATCH_KEYS`` batches; its ``norm_stats``
    and ``describe()`` (when present) go into the checkpoints. ``identity`` is what must match to
    resume (default: model, seed, lr, uncertainty weighting, pretrained file, data module class).
    Returns a :class:`TrainResult` whose module holds the best (lowest val/isop_mse) weights.
    A run already finished with at least ``max_epochs`` (or stopped early) is not trained again.
    """



    out_dir = Path(out_dir)
    if max_epochs < 1:
        raise UserError("--max-epochs must be at least 1")
    pretrained = Path(pretrained) if pretrained is not None else None
    pretrained_sha = None
    if pretrained is not None:
        if not pretrained.is_file():
            raise UserError(f"{pretrained}: pretrained weights file not found; fix: pass the path of the .pth file")
        pretrained_sha = sha256_file(pretrained)
    if identity is None:
        identity = {"model": model, "data": type(datamodule).__name__}
    identity = {**identity, "model": model, "seed": int(seed), "lr": float(lr),
                "uncertainty_weighting": bool(uncertainty_weighting), "pretrained_sha256": pretrained_sha}
    if is_rank_zero():
        RunFolder(out_dir, identity).open()
    ckpt_dir = out_dir / "checkpoints"
    last = ckpt_dir / "last.ckpt"
    record_path = out_dir / "train.json"

    record, problem = read_record(record_path, required=("best_checkpoint", "epochs", "train_seconds"))
    if problem is not None and is_rank_zero():
        set_aside(record_path, problem, "it is written again when this run ends")
    if record and (record.get("stopped_early") or record.get("epochs", 0) >= max_epochs):
        best_path = Path(record["best_checkpoint"])
        best_problem = zip_problem(best_path)
        if best_problem is None:
            module = SoundscapeModule.load_from_checkpoint(best_path, map_location="cpu", net=net)
            return TrainResult(best_path, Path(record["last_checkpoint"]) if record.get("last_checkpoint") else None,
                               float(record["train_seconds"]), module, record.get("best_score"),
                               int(record["epochs"]), bool(record.get("stopped_early")),
                               record.get("metrics", {}), already_done=True, record=record)
        # the finished run's best weights are gone: rebuild them by training again from the start
        if is_rank_zero():
            set_aside(record_path, f"its best checkpoint {best_path.name} is {best_problem}",
                      "the run is trained again from the start (same seed: same result)")
            for p in sorted(ckpt_dir.glob("*.ckpt")) if ckpt_dir.is_dir() else []:
                set_aside(p, zip_problem(p) or f"belongs with the lost {best_path.name}",
                          "training starts over (same seed: same result)")

    L.seed_everything(seed, workers=True, verbose=False)
    prov = {"model": model, "seed": int(seed), "lr": float(lr), "batch_size": getattr(datamodule, "batch_size", None),
            "uncertainty_weighting": bool(uncertainty_weighting), "max_epochs": int(max_epochs),
            "patience": int(patience), "strategy": str(strategy), "devices": str(devices),
            "versions": package_versions(), **(provenance or {})}
    module = SoundscapeModule(model, lr=lr, uncertainty_weighting=uncertainty_weighting,
                              norm_stats=getattr(datamodule, "norm_stats", None), provenance=prov,
                              net_kwargs=net_kwargs, net=net)
    if pretrained is not None:
        from soundaq.models_zoo.nets.pretrained import load_pretrained_backbone

        report = load_pretrained_backbone(module.net, pretrained, model=model)
        module.provenance["pretrained"] = {"file": pretrained.name, "sha256": pretrained_sha,
                                           "report": getattr(report, "__dict__", str(report))}

    callbacks, clock, best_cb, stop_cb = make_callbacks(seed, patience, ckpt_dir, progress)
    on_cpu = str(accelerator) == "cpu" or (str(accelerator) == "auto" and not torch.cuda.is_available())
    kwargs = dict(max_epochs=max_epochs, accelerator=accelerator, devices=devices, strategy=strategy,
                  deterministic=True if on_cpu else "warn", callbacks=callbacks,
                  logger=CSVLogger(save_dir=str(out_dir), name="logs", version=""),
                  default_root_dir=str(out_dir), enable_progress_bar=progress, enable_model_summary=progress,
                  log_every_n_steps=10)
    if precision is not None:
        kwargs["precision"] = precision
    kwargs.update(trainer_kwargs or {})
    kwargs.setdefault("plugins", [AtomicCheckpointIO()])
    trainer = L.Trainer(**kwargs)
    resume_from = checkpoint_to_resume(ckpt_dir, act=is_rank_zero())
    resumed = resume_from is not None
    trainer.fit(module, datamodule=datamodule, ckpt_path=str(resume_from) if resumed else None)

    metrics = _floats(trainer.callback_metrics)
    best_path = Path(best_cb.best_model_path) if best_cb.best_model_path else last
    best_score = float(best_cb.best_model_score) if best_cb.best_model_score is not None else None
    stopped_early = bool(stop_cb.stopped_epoch > 0)
    seconds = clock.seconds()
    if run_test:
        tested = trainer.test(module, datamodule=datamodule, ckpt_path=str(best_path), verbose=False)
        metrics.update(_floats(tested[0] if tested else {}))
    if trainer.is_global_zero and best_path.exists():
        module = SoundscapeModule.load_from_checkpoint(best_path, map_location="cpu", net=net)
    record = {"model": model, "best_checkpoint": str(best_path), "last_checkpoint": str(last),
              "best_score": best_score, "monitor": MONITOR, "epochs": int(trainer.current_epoch),
              "stopped_early": stopped_early, "train_seconds": round(seconds, 3), "resumed": resumed,
              "params": module.count_parameters(), "identity": identity, "metrics": metrics,
              "provenance": module.provenance,
              "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    if trainer.is_global_zero:
        atomic_write_json(record_path, record)
    return TrainResult(best_path, last if last.exists() else None, seconds, module, best_score,
                       int(trainer.current_epoch), stopped_early, metrics, resumed=resumed, record=record)
