"""The leaderboard: train (or load) every chosen model, score it on the test split, rank, report.

One run folder (``--out results/RUN``) holds everything a run writes::

    run.json                     the arguments that define the run (soundaq.base.runs.RunFolder)
    models/<model>/train/        soundaq train's run folder (checkpoints, logs, train.json)
    models/<model>/done.json     written last for a finished model: its scores, CIs, timings, hashes
    models/<model>/failed.json   why a model failed (it is tried again on the next run)
    predictions/<model>.csv      per test clip: the predictions table, the labels and the data label
    leaderboard.csv|.md|.json    one row per model, ranked (see RANKING)
    leaderboard.png|.pdf         the headline metrics with their bootstrap 95% CIs
    comparisons.csv              paired bootstrap of the leader against every other model
    provenance.json              data source (synthetic or not), split sizes, seed, versions, hashes

Resuming: a model counts as finished only when its ``done.json`` exists (written atomically, after its
predictions), so a run that is interrupted (Ctrl-C, kill -9, power cut) and started again with the
same arguments skips the finished models; an unfinished model continues from its last checkpoint
(``soundaq train`` reseeds every epoch from (seed, epoch), so the result equals an uninterrupted run).
The tables are rebuilt from the ``done.json`` records and the predictions files every time, so the
final table does not depend on how often the run was interrupted.

A model that fails (out of memory, a bad checkpoint, a crash inside the net) gets a row with
``status = failed`` and the one-line reason; the others still run.
"""
from __future__ import annotations

import math
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from soundaq.base.errors import UserError, one_line
from soundaq.base.runs import RunFolder, package_versions
from soundaq.base.fileio import atomic_path, atomic_write_json, atomic_write_text, sha256_file
from soundaq.base.vocab import QUALITIES

#: The metrics that decide the rank: the paper's three headline scores (name, higher is better).
RANKING: tuple[tuple[str, bool], ...] = (("scene_acc", True), ("event_auc", True), ("aq_mse_mean", False))
RANKING_TEXT = ("models are ranked by their mean rank over scene_acc (higher is better), event_auc "
                "(higher is better) and aq_mse_mean (lower is better), the paper's three headline "
                "scores; ties are broken by the lower aq_mse_mean; failed models come last")

#: Metrics with a bootstrap CI in the table and the figure.
CI_METRICS: tuple[str, ...] = ("scene_acc", "event_auc", "event_auc_macro", "aq_mse_mean", "isop_mse", "isoe_mse")
#: Panels of the figure.
FIGURE_METRICS: tuple[str, ...] = ("scene_acc", "event_auc", "aq_mse_mean", "isop_mse", "isoe_mse")

#: Training schedule of the embedded default, per model: (epochs, training batches per epoch,
#: validation batches per epoch, batch size; None = all batches / the run's batch size). The
#: 15-minute CPU budget of the embedded default buys about one pass over the 240 training clips for
#: the small CNNs. Measured on 2 cores (docs/models.md): a training step at batch 8 costs 1.8-2.7 s for
#: the small CNNs, 4-6 s for YAMNet/MobileNetV2, 24 s for SoundAQnet (its loudness branch runs over
#: 15,000 frames) and 44 s for PANNs (80 M parameters); inference runs at 8-11 clips/s for the small
#: CNNs and 0.6-1 clip/s for PANNs/SoundAQnet. So the big nets see a few batches of 8 and validate on
#: one batch. docs/leaderboard.md has the measured run; --max-epochs/--train-batches replace the
#: schedule for every model (e.g. --max-epochs 30 for a real comparison on a GPU).
EMBEDDED_SCHEDULE: dict[str, tuple[int, int | None, int | None, int | None]] = {
    "AD_CNN": (1, None, None, None), "Baseline_CNN": (1, None, None, None),
    "Hierarchical_CNN": (1, None, None, None), "CNN_Transformer": (1, None, None, None),
    "YAMNet": (1, 3, None, None), "MobileNetV2": (1, 2, None, None),
    "SoundAQnet": (1, 3, 1, 8), "PANNs": (1, 1, 1, 8),
}
#: Epoch bound for ARAUS when --max-epochs is not given (the original loops; early stopping ends sooner).
ARAUS_MAX_EPOCHS = 100

BATCH_SIZE = 32
THROUGHPUT_BATCH = 8


class LeaderboardError(UserError):
    """Bad leaderboard arguments (one line, exit code 2)."""


@dataclass
class Settings:
    """What defines a leaderboard run (everything in ``identity()`` must match to resume)."""

    out: Path
    data: str = "embedded"
    labels: Path | None = None
    audio: Path | None = None
    features: Path | None = None
    models: list[str] = field(default_factory=list)
    max_epochs: int | None = None          # None: the schedule (embedded) or ARAUS_MAX_EPOCHS
    train_batches: int | None = None       # None: the schedule (embedded) or all batches
    checkpoints: Path | None = None
    seed: int = 0
    batch_size: int = BATCH_SIZE
    n_resamples: int = 1000
    cache_dir: Path | None = None
    embedded_clips: int | None = None
    num_workers: int = 0
    accelerator: str = "auto"
    devices: Any = 1
    strategy: str = "auto"
    progress: bool = True
    head_init: bool = True                 # start the head biases at the training base rates (soundaq.models_zoo.head_init)
    correlate: bool = True                 # Spearman analysis + figures of the leader's predictions

    def schedule(self, model: str) -> tuple[int, int | None, int | None, int]:
        """(max epochs, training batches per epoch, validation batches, batch size) of ``model``;
        None = all batches.

        --max-epochs or --train-batches replace the embedded schedule for every model (then every
        validation batch is used, at the run's batch size)."""
        if self.data == "embedded" and self.max_epochs is None and self.train_batches is None:
            epochs, train, val, batch = EMBEDDED_SCHEDULE.get(model, (1, None, None, None))
            return epochs, train, val, batch or self.batch_size
        epochs = self.max_epochs if self.max_epochs is not None else (
            ARAUS_MAX_EPOCHS if self.data == "araus" else 1)
        return epochs, self.train_batches, None, self.batch_size

    def identity(self) -> dict:
        return {"data": self.data, "labels": _str(self.labels), "audio": _str(self.audio),
                "features": _str(self.features), "models": list(self.models),
                "schedule": {m: list(self.schedule(m)) for m in self.models} if self.checkpoints is None else None,
                "checkpoints": _str(self.checkpoints), "seed": self.seed, "batch_size": self.batch_size,
                "n_resamples": self.n_resamples, "embedded_clips": self.embedded_clips,
                "head_init": self.head_init if self.checkpoints is None else None}


def _str(p) -> str | None:
    return str(Path(p).expanduser().resolve()) if p is not None else None


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _one_line(err: BaseException) -> str:
    """A failure reason for the table: the message's first line, prefixed by the type unless it is a UserError."""
    return one_line(err)


# --------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------
def make_datamodule(s: Settings, norm_stats=None):
    from soundaq.models_zoo.data.datamodule import SoundscapeDataModule

    if s.data == "araus":
        if s.labels is None or (s.audio is None and s.features is None):
            raise LeaderboardError("--data araus needs --labels DIR and --audio DIR (or --features DIR)")
        return SoundscapeDataModule(source="araus", labels_dir=s.labels, audio_dir=s.audio, features_dir=s.features,
                                    cache_dir=s.cache_dir, batch_size=s.batch_size, num_workers=s.num_workers,
                                    norm_stats=norm_stats, seed=s.seed)
    if s.data != "embedded":
        raise LeaderboardError(f"unknown --data {s.data!r}; fix: use embedded or araus")
    if s.labels or s.audio or s.features:
        raise LeaderboardError("--labels/--audio/--features go with --data araus; the embedded set needs none")
    return SoundscapeDataModule(source="embedded", cache_dir=s.cache_dir, batch_size=s.batch_size,
                                num_workers=s.num_workers, norm_stats=norm_stats, seed=s.seed,
                                embedded_clips=s.embedded_clips, progress=s.progress)


def find_checkpoint(folder: Path, model: str) -> Path | None:
    """``<folder>/<model>.ckpt``, else the only ``<folder>/<model>*.ckpt``."""
    exact = folder / f"{model}.ckpt"
    if exact.is_file():
        return exact
    found = sorted(p for p in folder.glob(f"{model}*.ckpt") if p.is_file())
    return found[0] if len(found) == 1 else None


# --------------------------------------------------------------------------------------------------
# One model
# --------------------------------------------------------------------------------------------------
def measure_throughput(module, batch: dict, min_seconds: float = 2.0, max_reps: int = 20) -> float:
    """Clips per second of an eval-mode forward under ``torch.inference_mode`` on one prepared batch
    (features already on the device: no loading or feature work is timed)."""
    import torch

    device = next(module.parameters()).device
    mel = batch["mel"][:THROUGHPUT_BATCH].to(device)
    loud = batch["loudness"][:THROUGHPUT_BATCH].to(device) if module.uses_loudness else None
    was_training = module.training
    module.eval()
    try:
        with torch.inference_mode():
            module(mel, loud)  # warm-up
            reps, start = 0, time.perf_counter()
            while True:
                module(mel, loud)
                reps += 1
                elapsed = time.perf_counter() - start
                if elapsed >= min_seconds or reps >= max_reps:
                    break
    finally:
        module.train(was_training)
    return reps * mel.shape[0] / elapsed


def run_model(s: Settings, run: RunFolder, model: str, datamodule, data_label: str) -> dict:
    """Train (or load) ``model``, predict the test split, score it; the record for ``done.json``."""
    import pandas as pd

    from soundaq.models_zoo.training import train_model
    from soundaq.evaluation.bootstrap import bootstrap_ci
    from soundaq.evaluation.metrics import score_table
    from soundaq.models_zoo.module import SoundscapeModule
    from soundaq.models_zoo.predict import predict_loader
    from soundaq.models_zoo.registry import get_spec

    spec = get_spec(model)
    record: dict[str, Any] = {"model": model, "status": "ok", "params": spec.params}
    if s.checkpoints is not None:
        from soundaq.models_zoo.checkpoints import load_checkpoint

        path = find_checkpoint(Path(s.checkpoints), model)
        if path is None:
            raise LeaderboardError(f"no checkpoint {Path(s.checkpoints) / (model + '.ckpt')}; fix: train it with "
                                   "`soundaq train` or import release weights with `soundaq import-original`")
        net, norm_stats, info = load_checkpoint(path)
        if info["model"] != model:
            raise LeaderboardError(f"{path} holds a {info['model']} checkpoint, not {model}; fix: rename the file")
        module = SoundscapeModule(model, norm_stats=norm_stats, net=net)
        dm = make_datamodule(s, norm_stats=norm_stats)   # the checkpoint's normalisation, not ours
        dm.prepare_data()
        dm.setup("test")
        record.update({"checkpoint": str(path), "checkpoint_sha256": info["sha256"], "train_seconds": None,
                       "epochs": None, "train_batches_per_epoch": None, "params": info["params"]})
    else:
        epochs, batches, val_batches, batch_size = s.schedule(model)
        dm = datamodule
        dm.batch_size = batch_size             # restored by run_leaderboard after this model
        trainer_kwargs = {"limit_train_batches": batches} if batches else {}
        if val_batches:
            trainer_kwargs["limit_val_batches"] = val_batches
        net = None
        if s.head_init:
            import torch

            from soundaq.models_zoo.head_init import init_heads_from_labels
            from soundaq.models_zoo.registry import build_net

            torch.manual_seed(s.seed)          # the same initial weights in every session
            net = build_net(model)
            init_heads_from_labels(net, dm.labels("training"))
        _say(f"soundaq leaderboard: {model}: training up to {epochs} epoch(s)"
             + (f" of {batches} batches" if batches else "")
             + (f", validating on {val_batches} batch(es)" if val_batches else "")
             + f" at batch {batch_size} ({spec.params:,} parameters)")
        result = train_model(model, dm, out_dir=run.model_dir(model) / "train", max_epochs=epochs, seed=s.seed,
                             accelerator=s.accelerator, devices=s.devices, strategy=s.strategy,
                             progress=s.progress, trainer_kwargs=trainer_kwargs, net=net,
                             identity={"leaderboard": str(run.root), "batches_per_epoch": batches,
                                       "val_batches": val_batches, "batch_size": batch_size,
                                       "head_init": s.head_init},
                             provenance={"leaderboard_run": str(run.root)})
        module = result.module
        best = Path(result.best_checkpoint)
        record.update({"checkpoint": str(best), "checkpoint_sha256": sha256_file(best) if best.exists() else None,
                       "train_seconds": round(float(result.train_seconds), 2), "epochs": result.epochs,
                       "train_batches_per_epoch": batches, "val_batches": val_batches, "batch_size": batch_size,
                       "best_val_isop_mse": result.best_score,
                       "head_init": "training base rates" if s.head_init else "zero (original)",
                       "params": module.count_parameters()})
    module = module.cpu() if s.accelerator == "cpu" else module
    _say(f"soundaq leaderboard: {model}: predicting the test split")
    table = predict_loader(module, dm.test_dataloader(), model=model)
    if len(table) == 0:
        raise LeaderboardError("the test split gave no clips; fix: check the data folder")
    first = next(iter(dm.test_dataloader()))
    record["clips_per_second"] = round(measure_throughput(module, first), 3)
    table["data"] = data_label
    pred_path = run.root / "predictions" / f"{model}.csv"
    pred_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(pred_path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    # score what the file holds, so anyone re-scoring predictions/<model>.csv gets the table's numbers
    table = pd.read_csv(pred_path, float_precision="round_trip")
    scores = score_table(table, source=str(pred_path))
    record["scores"] = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in scores.items()}
    ci = bootstrap_ci(table, metrics=list(CI_METRICS), n_resamples=s.n_resamples, seed=s.seed,
                      source=str(pred_path))
    record["ci"] = {r.metric: [_num(r.ci_low), _num(r.ci_high)] for r in ci.itertuples()}
    record["test_clips"] = int(len(table))
    record["predictions"] = str(pred_path.relative_to(run.root))
    record["predictions_sha256"] = sha256_file(pred_path)
    record["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    return record


def _num(x) -> float | None:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(x) else x


#: The reference row: what a model must beat to have learnt anything from the clips.
REFERENCE = "training-mean predictor"
REFERENCE_TEXT = ("predicts, for every test clip, the training split's scene frequencies, event frequencies, "
                  "mean quality ratings and mean ISOP/ISOE; not a model, not ranked")


def reference_scores(datamodule, n_resamples: int, seed: int) -> dict:
    """Scores (with CIs) of :data:`REFERENCE` on the test split: a record shaped like a model's."""
    import numpy as np

    from soundaq.evaluation.bootstrap import bootstrap_ci
    from soundaq.evaluation.metrics import score_table
    from soundaq.models_zoo.head_init import base_rates
    from soundaq.models_zoo.predict import add_truth, predictions_frame

    rates = base_rates(datamodule.labels("training"))   # the same rates the head initialisation uses
    test = datamodule.labels("test")
    n = len(test)
    outputs = {"scene_probabilities": np.tile(rates["scene"], (n, 1)),
               "event_probabilities": np.tile(rates["events"], (n, 1)),
               "qualities": np.tile(rates["qualities"], (n, 1)),
               "isop": np.full(n, rates["isop"]), "isoe": np.full(n, rates["isoe"])}
    table = add_truth(predictions_frame(outputs, REFERENCE, test["clip"].astype(str).tolist()), test)
    ci = bootstrap_ci(table, metrics=list(CI_METRICS), n_resamples=n_resamples, seed=seed)
    return {"scores": {k: _num(v) if isinstance(v, float) else v for k, v in score_table(table).items()},
            "ci": {r.metric: [_num(r.ci_low), _num(r.ci_high)] for r in ci.itertuples()}, "test_clips": n,
            "params": 0}


# --------------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------------
def rank_rows(rows: list[dict]) -> list[dict]:
    """Sort rows by RANKING and give each a ``rank`` (failed rows last, unranked)."""
    import pandas as pd

    ok = [r for r in rows if r["status"] == "ok"]
    failed = [r for r in rows if r["status"] == "failed"]
    reference = [r for r in rows if r["status"] == "reference"]
    if ok:
        frame = pd.DataFrame([{m: r.get(m) for m, _ in RANKING} for r in ok], dtype=float)
        ranks = [frame[m].rank(ascending=not hi, method="average", na_option="bottom") for m, hi in RANKING]
        mean_rank = sum(ranks) / len(ranks)
        for r, mr in zip(ok, mean_rank):
            r["mean_rank"] = round(float(mr), 4)
        ok.sort(key=lambda r: (r["mean_rank"], _sortable(r.get("aq_mse_mean")), r["model"]))
        for i, r in enumerate(ok, start=1):
            r["rank"] = i
    for r in failed + reference:
        r["rank"] = None
        r["mean_rank"] = None
    return ok + reference + failed


def _sortable(x) -> float:
    return float("inf") if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def table_row(model: str, record: dict | None, failure: str | None, data_label: str, synthetic: bool) -> dict:
    """One flat leaderboard row (the CSV's columns) from a done.json record or a failure reason."""
    from soundaq.evaluation.metrics import METRICS
    from soundaq.models_zoo.registry import NetSpec, get_spec

    if model == REFERENCE:
        spec = NetSpec(REFERENCE, "", (), 0, None, None, None, None)
        status = "reference"
    else:
        spec = get_spec(model)
        status = "ok" if failure is None else "failed"
    row: dict[str, Any] = {"rank": None, "model": model, "status": status, "params": spec.params}
    scores = (record or {}).get("scores", {})
    ci = (record or {}).get("ci", {})
    for name in METRICS:
        row[name] = scores.get(name)
        if name in CI_METRICS:
            lo, hi = ci.get(name, [None, None])
            row[f"{name}_ci_low"], row[f"{name}_ci_high"] = lo, hi
    if record:
        row["params"] = record.get("params", spec.params)
    row.update({
        "test_clips": (record or {}).get("test_clips"),
        "train_seconds": (record or {}).get("train_seconds"),
        "epochs": (record or {}).get("epochs"),
        "train_batches_per_epoch": (record or {}).get("train_batches_per_epoch"),
        "batch_size": (record or {}).get("batch_size"),
        "clips_per_second": (record or {}).get("clips_per_second"),
        "data": data_label,
        "synthetic": synthetic,
        "paper_scene_acc": spec.paper_scene_acc / 100.0 if spec.paper_scene_acc is not None else None,
        "paper_event_auc": spec.paper_event_auc,
        "paper_aq_mse_mean": spec.paper_paq_mse,
        "paper_comparable": (None if status == "reference" else False if synthetic
                             else "same test split; the paper's own training"),
        "checkpoint_sha256": (record or {}).get("checkpoint_sha256"),
        "reason": failure or (REFERENCE_TEXT if status == "reference" else ""),
    })
    return row


#: Headline metrics compared with the reference row (``beats_reference``).
VERSUS_REFERENCE: tuple[str, ...] = ("scene_acc", "event_auc", "aq_mse_mean", "isop_mse", "isoe_mse")


def mark_beats_reference(rows: list[dict]) -> None:
    """Give each model row ``beats_reference``: the headline metrics on which its estimate is better than
    the training-mean predictor's (a model that beats it nowhere has learnt nothing usable yet)."""
    from soundaq.evaluation.metrics import METRICS

    ref = next((r for r in rows if r["status"] == "reference"), None)
    for r in rows:
        if r["status"] != "ok" or ref is None:
            r["beats_reference"] = None
            continue
        better = []
        for name in VERSUS_REFERENCE:
            a, b = r.get(name), ref.get(name)
            if a is None or b is None:
                continue
            if (a > b) if METRICS[name].maximize else (a < b):
                better.append(name)
        r["beats_reference"] = ",".join(better) if better else "none"


def leaderboard_columns() -> list[str]:
    from soundaq.evaluation.metrics import METRICS

    cols = ["rank", "model", "status", "mean_rank", "params"]
    for name in METRICS:
        cols.append(name)
        if name in CI_METRICS:
            cols += [f"{name}_ci_low", f"{name}_ci_high"]
    cols += ["beats_reference", "test_clips", "train_seconds", "epochs", "train_batches_per_epoch", "batch_size",
             "clips_per_second", "data",
             "synthetic", "paper_scene_acc", "paper_event_auc", "paper_aq_mse_mean", "paper_comparable",
             "checkpoint_sha256", "reason"]
    return cols


def _fmt(x, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def _with_ci(row: dict, name: str, digits: int = 3) -> str:
    v = row.get(name)
    if v is None:
        return "–"
    lo, hi = row.get(f"{name}_ci_low"), row.get(f"{name}_ci_high")
    if lo is None or hi is None:
        return _fmt(v, digits)
    return f"{v:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def markdown(rows: list[dict], comparisons, prov: dict, figure: str | None) -> str:
    from soundaq.evaluation.metrics import METRICS

    data_label = prov["data"]["data"]
    synthetic = prov["data"]["synthetic"]
    lines = [f"# soundaq leaderboard: {data_label}", ""]
    if synthetic:
        lines += ["> **Synthetic data.** These scores come from the embedded synthetic soundscapes, not from "
                  "ARAUS. They show that the pipeline works and how the models compare on that set; they are "
                  "not comparable with the paper's published scores (shown for reference only).", ""]
    sizes = prov["data"].get("split_sizes", {})
    lines += [f"Test split: {sizes.get('test', '?')} clips (training {sizes.get('training', '?')}, "
              f"validation {sizes.get('validation', '?')}); seed {prov['seed']}; 95% CIs from "
              f"{prov['n_resamples']} bootstrap resamples of the test clips.", "",
              f"Ranking: {RANKING_TEXT}.", ""]
    head = ["rank", "model", "params", "scene_acc (paper def.)", "event_auc (paper def.)", "event_auc_macro",
            "aq_mse_mean", "isop_mse", "isoe_mse", "beats reference on", "train s", "clips/s"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        if r["status"] == "failed":
            lines.append(f"| – | {r['model']} | {r['params']:,} | failed: {r['reason']} |" + " |" * (len(head) - 4))
            continue
        name = f"*{r['model']}* (reference)" if r["status"] == "reference" else r["model"]
        lines.append("| " + " | ".join([
            _fmt(r["rank"]), name, f"{r['params']:,}", _with_ci(r, "scene_acc"), _with_ci(r, "event_auc"),
            _with_ci(r, "event_auc_macro"), _with_ci(r, "aq_mse_mean"), _with_ci(r, "isop_mse"),
            _with_ci(r, "isoe_mse"), _fmt(r.get("beats_reference")), _fmt(r["train_seconds"], 1),
            _fmt(r["clips_per_second"], 2)]) + " |")
    lines += ["", "## Per-quality MSE", ""]
    qhead = ["model", *QUALITIES]
    lines += ["| " + " | ".join(qhead) + " |", "|" + "---|" * len(qhead)]
    for r in rows:
        if r["status"] != "failed":
            lines.append("| " + " | ".join([r["model"], *[_fmt(r.get(f"mse_{q}")) for q in QUALITIES]]) + " |")
    if comparisons is not None and len(comparisons):
        leader = comparisons["model_a"].iloc[0]
        lines += ["", f"## Leader ({leader}) against each model: paired bootstrap", "",
                  "Difference = leader minus the other model, on the same resampled clips; p two-sided.", "",
                  "| model | metric | difference [95% CI] | p | better |", "|---|---|---|---|---|"]
        for c in comparisons.itertuples():
            lines.append(f"| {c.model_b} | {c.metric} | {c.diff:+.3f} [{c.ci_low:+.3f}, {c.ci_high:+.3f}] | "
                         f"{c.p_value:.3f} | {c.better}{' (significant)' if c.significant else ''} |")
    lines += ["", "## The paper's published scores (ARAUS test split, 3,576 clips)", "",
              ("Not comparable with this table: the data differ (synthetic set)." if synthetic else
               "Same test split, but the paper's own training runs; differences include training noise."), "",
              "| model | scene_acc | event_auc | aq_mse_mean |", "|---|---|---|---|"]
    for r in rows:
        if r["status"] == "reference":
            continue
        lines.append(f"| {r['model']} | {_fmt(r['paper_scene_acc'], 4)} | {_fmt(r['paper_event_auc'], 2)} | "
                     f"{_fmt(r['paper_aq_mse_mean'], 3)} |")
    lines += ["", "## Column definitions", "",
              "`paper` = the original SoundSCaper code's definition; `standard` = the usual one.", ""]
    for name in ("scene_acc", "scene_acc_plain", "scene_f1_macro", "event_auc", "event_auc_macro", "event_map",
                 "aq_mse_mean", "isop_mse", "isoe_mse"):
        m = METRICS[name]
        lines.append(f"- `{name}` ({m.definition}, {'higher' if m.maximize else 'lower'} is better): {m.description}")
    lines += [f"- *{REFERENCE}*: {REFERENCE_TEXT}. A model scoring worse than it has not learnt that task; "
              f"`beats reference on` lists the headline metrics ({', '.join(VERSUS_REFERENCE)}) where a model's "
              "estimate is better than the reference's (point estimates; see the CIs).",
              "- `train s`: wall-clock seconds of training (all resumed sessions); `clips/s`: eval-mode forward "
              f"throughput at batch {THROUGHPUT_BATCH} under torch.inference_mode on {prov['device']}.", ""]
    if figure:
        lines += [f"![leaderboard]({figure})", ""]
    if prov.get("correlation"):
        lines += [f"The leader's events x qualities Spearman analysis (same code as `soundaq correlate`): "
                  f"[{prov['correlation']}/report.md]({prov['correlation']}/report.md).", ""]
    lines += [f"Files: leaderboard.csv, leaderboard.json, comparisons.csv, predictions/<model>.csv, provenance.json. "
              f"Made by soundaq {prov['versions'].get('soundaq', '?')} on {prov['created']}.", ""]
    return "\n".join(lines)


def figure(rows: list[dict], path_png: Path, title: str) -> None:
    """Headline metrics with CI error bars, one panel per metric, models in rank order."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from soundaq.evaluation.metrics import METRICS

    ok = [r for r in rows if r["status"] == "ok"]
    ref = next((r for r in rows if r["status"] == "reference"), None)
    n = max(len(ok), 1)
    fig, axes = plt.subplots(1, len(FIGURE_METRICS), figsize=(3.1 * len(FIGURE_METRICS), 0.45 * n + 1.9),
                             sharey=True)
    ys = list(range(len(ok)))[::-1]
    for ax, name in zip(axes, FIGURE_METRICS):
        m = METRICS[name]
        for y, r in zip(ys, ok):
            v = r.get(name)
            if v is None:
                continue
            lo, hi = r.get(f"{name}_ci_low"), r.get(f"{name}_ci_high")
            err = [[v - lo], [hi - v]] if lo is not None and hi is not None else None
            colour = "tab:blue" if r["rank"] == 1 else "0.35"
            ax.errorbar([v], [y], xerr=err, fmt="o", color=colour, ecolor=colour, capsize=3, ms=5)
        if ref is not None and ref.get(name) is not None:
            ax.axvline(ref[name], color="tab:red", ls="--", lw=1, label=REFERENCE)
        values = [r.get(name) for r in ok if r.get(name) is not None] + ([ref[name]] if ref and ref.get(name) else [])
        if not m.maximize and values and min(values) > 0 and max(values) / min(values) > 10:
            ax.set_xscale("log")       # one diverged model must not flatten the others
        ax.set_title(f"{name}\n({m.definition} def., {'higher' if m.maximize else 'lower'} is better)", fontsize=9)
        ax.grid(axis="x", alpha=0.3)
        ax.tick_params(labelsize=8)
    axes[0].set_yticks(ys)
    axes[0].set_yticklabels([f"{r['rank']}. {r['model']}" for r in ok], fontsize=9)
    failed = [r["model"] for r in rows if r["status"] == "failed"]
    caption = "points: test-split estimate; bars: 95% bootstrap CI"
    if ref is not None:
        caption += f"; red dashed line: {REFERENCE} (what a model must beat)"
    if failed:
        caption += f"; failed: {', '.join(failed)}"
    fig.suptitle(title, fontsize=10)
    fig.text(0.5, 0.01, caption, ha="center", fontsize=8)
    fig.tight_layout(rect=(0, 0.04, 1, 0.95))
    for path in (path_png, path_png.with_suffix(".pdf")):
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=150, format=path.suffix[1:])
    plt.close(fig)


def _beats(text: str | None) -> str:
    if not text:
        return "–"
    return f"{0 if text == 'none' else len(text.split(','))}/{len(VERSUS_REFERENCE)}"


def print_table(rows: list[dict], data_label: str) -> None:
    """The ranked table on stdout (rich when available)."""
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # pragma: no cover - rich comes with lightning's progress bar
        for r in rows:
            print(r["rank"], r["model"], r["status"], r.get("scene_acc"), r.get("event_auc"), r.get("aq_mse_mean"))
        return
    t = Table(title=f"soundaq leaderboard: {data_label}")
    for col in ("rank", "model", "scene_acc", "event_auc", "aq_mse_mean", "isop_mse", "isoe_mse", "beats ref.",
                "train s", "clips/s", "status"):
        t.add_column(col, justify="left" if col in ("model", "status") else "right")
    for r in rows:
        t.add_row(_fmt(r["rank"]), r["model"], _fmt(r.get("scene_acc")), _fmt(r.get("event_auc")),
                  _fmt(r.get("aq_mse_mean")), _fmt(r.get("isop_mse")), _fmt(r.get("isoe_mse")),
                  _beats(r.get("beats_reference")), _fmt(r.get("train_seconds"), 1), _fmt(r.get("clips_per_second"), 2),
                  r["status"] if r["status"] != "failed" else f"failed: {r['reason']}")
    Console(width=160).print(t)


# --------------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------------
@dataclass
class Outcome:
    rows: list[dict]
    out: Path
    figure: Path | None
    failed: list[str]
    correlation: Path | None = None


def _device_text(s: Settings) -> str:
    import os
    import platform

    import torch

    if s.accelerator not in ("cpu",) and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads)"


def run_leaderboard(s: Settings, *, model_runner: Callable = run_model) -> Outcome:
    """Run (or resume) the leaderboard of ``s``; writes everything into ``s.out`` and returns the rows."""
    import pandas as pd

    from soundaq.models_zoo.registry import list_nets

    if not s.models:
        raise LeaderboardError("no models chosen; fix: pass --models all or a comma-separated list")
    unknown = [m for m in s.models if m not in list_nets()]
    if unknown:
        raise LeaderboardError(f"unknown model(s) {', '.join(unknown)}; fix: choose from {', '.join(list_nets())}")
    if s.n_resamples < 1:
        raise LeaderboardError("--resamples must be at least 1")
    if s.checkpoints is not None and not Path(s.checkpoints).is_dir():
        raise LeaderboardError(f"{s.checkpoints}: checkpoint folder not found; fix: pass the folder holding <MODEL>.ckpt files")
    out = Path(s.out)
    started = time.perf_counter()
    datamodule = make_datamodule(s)
    datamodule.prepare_data()
    datamodule.setup("fit" if s.checkpoints is None else "test")
    data_label = datamodule.data_label()
    synthetic = bool(datamodule.synthetic)
    run = RunFolder(out, s.identity()).open()

    failures: dict[str, str] = {}
    for i, model in enumerate(s.models, start=1):
        if run.finished(model, {f"predictions/{model}.csv": "predictions_sha256"}) is not None:
            _say(f"soundaq leaderboard: [{i}/{len(s.models)}] {model}: finished in an earlier session, kept")
            continue
        _say(f"soundaq leaderboard: [{i}/{len(s.models)}] {model}")
        try:
            record = model_runner(s, run, model, datamodule, data_label)
        except KeyboardInterrupt:
            raise
        except Exception as err:  # noqa: BLE001 - one model's failure must not stop the others
            datamodule.batch_size = s.batch_size
            reason = _one_line(err)
            failures[model] = reason
            atomic_write_json(run.model_dir(model) / "failed.json",
                              {"model": model, "reason": reason, "traceback": traceback.format_exc(),
                               "when": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
            _say(f"soundaq leaderboard: {model}: failed: {reason}")
            continue
        datamodule.batch_size = s.batch_size
        failed_file = run.model_dir(model) / "failed.json"
        if failed_file.exists():
            failed_file.unlink()
        run.mark_done(model, record)

    records = {m: run.done(m) for m in s.models}
    rows = [table_row(m, records[m] if m not in failures else None, failures.get(m), data_label, synthetic)
            for m in s.models]
    rows.append(table_row(REFERENCE, reference_scores(datamodule, s.n_resamples, s.seed), None, data_label,
                          synthetic))
    mark_beats_reference(rows)
    rows = rank_rows(rows)
    columns = leaderboard_columns()

    comparisons = None
    ok = [r["model"] for r in rows if r["status"] == "ok"]
    if len(ok) >= 2:
        from soundaq.evaluation.bootstrap import compare_to_leader

        tables = {m: pd.read_csv(out / "predictions" / f"{m}.csv", float_precision="round_trip") for m in ok}
        comparisons = compare_to_leader(tables, ok[0], metrics=list(CI_METRICS), n_resamples=s.n_resamples,
                                        seed=s.seed)
        with atomic_path(out / "comparisons.csv") as tmp:
            comparisons.to_csv(tmp, index=False, float_format="%.6g")

    correlation = None
    if s.correlate and ok:
        correlation = correlate_leader(out, ok[0], synthetic)

    desc = datamodule.describe()
    prov = {"created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": " ".join(sys.argv),
            "data": desc, "synthetic": synthetic, "seed": s.seed, "n_resamples": s.n_resamples,
            "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(s).items()},
            "ranking": RANKING_TEXT, "device": _device_text(s), "versions": package_versions(),
            "models": {m: ({k: records[m].get(k) for k in ("checkpoint", "checkpoint_sha256", "predictions",
                                                            "predictions_sha256", "epochs", "train_seconds",
                                                            "train_batches_per_epoch")}
                           if records[m] and m not in failures else {"failed": failures.get(m, "not run")})
                       for m in s.models},
            "correlation": correlation.name if correlation else None,
            "session_seconds": round(time.perf_counter() - started, 1)}
    frame = pd.DataFrame(rows, columns=columns)
    with atomic_path(out / "leaderboard.csv") as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")
    fig_path = out / "leaderboard.png"
    title = f"soundaq leaderboard: {data_label}" + (
        " (SYNTHETIC data)" if synthetic and "synthetic" not in data_label.lower() else "")
    if ok:
        figure(rows, fig_path, title)
    else:
        fig_path = None
    atomic_write_json(out / "leaderboard.json", {
        "data": data_label, "synthetic": synthetic, "ranking": RANKING_TEXT,
        "definitions": _definitions(), "columns": columns,
        "rows": [{c: _json_value(r.get(c)) for c in columns} for r in rows],
        "comparisons": [] if comparisons is None else
        [{k: _json_value(v) for k, v in c.items()} for c in comparisons.to_dict(orient="records")]})
    atomic_write_text(out / "leaderboard.md", markdown(rows, comparisons, prov, fig_path.name if fig_path else None))
    atomic_write_json(out / "provenance.json", prov)
    return Outcome(rows, out, fig_path, sorted(failures), correlation)


def correlate_leader(out: Path, leader: str, synthetic: bool) -> Path | None:
    """Spearman event x quality analysis of the leader's test predictions into ``out/correlation``
    (soundaq.evaluation.correlation, the code behind ``soundaq correlate``). A problem here is reported, not fatal."""
    from soundaq.evaluation.correlation import correlate_predictions

    folder = out / "correlation"
    try:
        correlate_predictions(out / "predictions" / f"{leader}.csv", folder, synthetic=synthetic)
    except Exception as err:  # noqa: BLE001 - the leaderboard itself is complete without it
        _say(f"soundaq leaderboard: correlation analysis of {leader} skipped: {_one_line(err)}")
        return None
    return folder


def _definitions() -> dict:
    from soundaq.evaluation.metrics import METRICS

    return {n: {"definition": m.definition, "higher_is_better": m.maximize, "description": m.description}
            for n, m in METRICS.items()}


def _json_value(v):
    if v is None:
        return None
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    return v
