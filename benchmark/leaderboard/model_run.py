"""One model of a leaderboard run: train it (or load its checkpoint), predict the test split, score it.

:func:`run_model` returns the record that becomes ``models/<model>/done.json``: scores with bootstrap
CIs, timings, the training budget actually used, the learning curve, hashes of the checkpoint and
of ``predictions/<model>.csv``.
"""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any

from soundaq.base.fileio import sha256_file
from soundaq.base.runs import RunFolder
from soundaq.benchmark.leaderboard.settings import LeaderboardError, Settings, is_pretrained, make_datamodule
from soundaq.benchmark.leaderboard.table import number


def say(msg: str) -> None:
    """A progress line on stderr (the table itself goes to stdout)."""
    print(msg, file=sys.stderr, flush=True)


def find_checkpoint(folder: Path, model: str) -> Path | None:
    """``<folder>/<model>.ckpt``, else the only ``<folder>/<model>*.ckpt``."""
    exact = folder / f"{model}.ckpt"
    if exact.is_file():
        return exact
    found = sorted(p for p in folder.glob(f"{model}*.ckpt") if p.is_file())
    return found[0] if len(found) == 1 else None


def checkpoint_for(s: Settings, model: str) -> Path | None:
    """The checkpoint ``model`` is evaluated with: ``<folder>/<model>.ckpt``, or with ``--checkpoints
    pretrained`` the released weights (pinned download on first use, into ``--cache-dir``).
    """
    if is_pretrained(s.checkpoints):
        from soundaq.models_zoo.pretrained_weights import resolve_checkpoint

        return resolve_checkpoint(model, cache_dir=s.cache_dir, progress=s.progress)
    assert s.checkpoints is not None, "checkpoint_for is for runs with --checkpoints"
    return find_checkpoint(Path(s.checkpoints), model)


def _train(s: Settings, run: RunFolder, model: str, datamodule) -> tuple[Any, dict]:
    from soundaq.models_zoo.cpu_policy import apply_memory_format, choose_memory_format
    from soundaq.models_zoo.head_init import start_net
    from soundaq.models_zoo.registry import get_spec
    from soundaq.models_zoo.training import train_model

    spec = get_spec(model)
    schedule = s.training_schedule().with_overrides(**spec.schedule)   # a net's declared needs (lr, warm-up, clip)
    net = None
    if s.head_init:
        net = start_net(model, s.seed, datamodule.labels("training"))
    say(f"soundaq leaderboard: {s.unit_name(model)}: training ({schedule.describe()}; {spec.params:,} parameters)")
    folder = run.model_dir(model) / "train"
    from soundaq.benchmark.leaderboard.settings import loss_setting

    uncertainty, loss_weights = loss_setting(s)
    result = train_model(model, datamodule, out_dir=folder, schedule=schedule, seed=s.seed,
                         uncertainty_weighting=uncertainty, loss_weights=loss_weights,
                         accelerator=s.accelerator, devices=s.devices, strategy=s.strategy,
                         precision=s.precision, progress=s.progress, net=net,
                         identity={"leaderboard": str(run.root), "head_init": s.head_init},
                         provenance={"leaderboard_run": str(run.root)})
    best = Path(result.best_checkpoint)
    prov = result.record.get("provenance", {})
    # the test split's whole clips in the memory format measured fastest for this net's inference
    inference_format, inference_reason = choose_memory_format(model, schedule, s.accelerator, "inference")
    apply_memory_format(result.module.net, inference_format)
    record = {"checkpoint": str(best), "checkpoint_sha256": sha256_file(best) if best.exists() else None,
              "train_seconds": round(float(result.train_seconds), 2), "epochs": result.epochs,
              "steps": result.record.get("steps"), "clips_seen": result.record.get("clips_seen"),
              "batch_size": datamodule.batch_size, "crop_frames": prov.get("crop_frames"),
              "precision": prov.get("precision"), "precision_reason": prov.get("precision_reason"),
              "memory_format": {"training": prov.get("memory_format"), "inference": inference_format},
              "memory_format_reason": {"training": prov.get("memory_format_reason"), "inference": inference_reason},
              "schedule": schedule.as_dict(), "diverged": result.diverged,
              "best_val_isop_mse": result.best_score, "curve": result.record.get("curve") or [],
              "precise_bn": result.record.get("precise_bn"),
              "head_init": "training base rates" if s.head_init else "zero (original)",
              "params": result.module.count_parameters()}
    return result.module, record


def _load(s: Settings, model: str) -> tuple[Any, dict, Any]:
    from soundaq.models_zoo.checkpoints import load_checkpoint
    from soundaq.models_zoo.module import SoundscapeModule

    path = checkpoint_for(s, model)
    if path is None:
        assert s.checkpoints is not None      # checkpoint_for has checked it
        raise LeaderboardError(f"no checkpoint {Path(s.checkpoints) / (model + '.ckpt')}; fix: train it with "
                               "`soundaq train` or import release weights with `soundaq import-original`")
    net, norm_stats, info = load_checkpoint(path)
    if info["model"] != model:
        raise LeaderboardError(f"{path} holds a {info['model']} checkpoint, not {model}; fix: rename the file")
    module = SoundscapeModule(model, norm_stats=norm_stats, net=net)
    dm = make_datamodule(s, norm_stats=norm_stats)   # the checkpoint's normalisation, not the run's
    dm.prepare_data()
    dm.setup("test")
    record = {"checkpoint": str(path), "checkpoint_sha256": info["sha256"], "train_seconds": None,
              "epochs": None, "params": info["params"]}
    return module, record, dm


def run_model(s: Settings, run: RunFolder, model: str, datamodule, data_label: str) -> dict:
    """Train (or load) ``model``, predict the test split, score it; the record for ``done.json``.

    The test split is always predicted on whole clips, whatever crops training used. Raises on any
    failure (the caller turns it into a failed row).
    """
    from soundaq.base import predictions_table
    from soundaq.evaluation.bootstrap import bootstrap_ci
    from soundaq.models_zoo.metrics import metrics_for, score_table
    from soundaq.models_zoo.predict import predict_loader
    from soundaq.models_zoo.registry import get_spec

    record: dict[str, Any] = {"model": model, "status": "ok", "params": get_spec(model).params}
    if s.checkpoints is not None:
        module, extra, dm = _load(s, model)
    else:
        module, extra = _train(s, run, model, datamodule)
        dm = datamodule
    record.update(extra)
    module = module.cpu() if s.accelerator == "cpu" else module
    say(f"soundaq leaderboard: {s.unit_name(model)}: predicting the {len(dm.labels('test'))} test clips")
    started = time.perf_counter()
    table = predict_loader(module, dm.test_dataloader(), model=model)
    seconds = time.perf_counter() - started
    if len(table) == 0:
        raise LeaderboardError("the test split gave no clips; fix: check the data folder")
    record["clips_per_second"] = round(len(table) / max(seconds, 1e-9), 3)
    table["data"] = data_label
    pred_path = predictions_table.write(table, run.root / "predictions" / f"{model}.csv",
                                        float_format=predictions_table.LEADERBOARD_FLOATS)
    # score what the file holds, so anyone re-scoring predictions/<model>.csv gets the table's numbers
    table = predictions_table.read(pred_path)
    scores = score_table(table, source=str(pred_path))
    record["scores"] = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in scores.items()}
    ci = bootstrap_ci(table, metrics=metrics_for(dm.tasks), n_resamples=s.n_resamples, seed=s.seed,
                      source=str(pred_path))   # the headline metrics the data have labels for
    record["ci"] = {r.metric: [number(r.ci_low), number(r.ci_high)] for r in ci.itertuples()}
    record["test_clips"] = len(table)
    record["predictions"] = str(pred_path.relative_to(run.root))
    record["predictions_sha256"] = sha256_file(pred_path)
    record["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    return record
