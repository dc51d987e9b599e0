"""From network outputs to the predictions table and the ``soundaq predict`` JSON.

One row of the predictions table is one clip (columns :data:`soundaq.base.vocab.PREDICTION_COLUMNS`,
then :data:`soundaq.base.vocab.TRUTH_COLUMNS` when the labels are known): the predicted scene (the
most probable), the 3 scene probabilities (softmax of the scene logits), the 15 event
probabilities (sigmoid of the event logits), the 8 qualities, ISOP and ISOE. The leaderboard and
``soundaq predict`` both build their tables here.

Clips longer than 30 s arrive as several 30-s windows (the feature pipeline,
``soundaq.models_zoo.features.clip_features`` and ``soundaq features``, cuts consecutive windows of 3001
log-mel frames and 15000 loudness samples, the last one padded with silence as audio). A clip's
values are the means over its windows (probabilities averaged, then the scene is the most probable
of the averaged ones), and every window is listed too, with its start and end in seconds.
"""
from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from soundaq.base.errors import UserError, first_line
from soundaq.base.filekinds import sniff

from soundaq.base.vocab import (
    EVENT_COLUMNS, EVENT_PROB_COLUMNS, EVENTS, PREDICTION_COLUMNS, QUALITIES, SCENE_PROB_COLUMNS, SCENES,
    TRUE_EVENT_COLUMNS, TRUE_QUALITY_COLUMNS, TRUTH_COLUMNS,
)

#: Seconds per window (3001 log-mel frames at a 10-ms hop, 15000 loudness samples at 2 ms).
WINDOW_SECONDS = 30.0

#: Per-clip output arrays, as ``SoundscapeModule.predict_step`` returns them.
OUTPUT_KEYS = ("scene_probabilities", "event_probabilities", "qualities", "isop", "isoe")


def window_spans(count: int, duration_s: float | None = None) -> list[tuple[float, float]]:
    """``(start_s, end_s)`` of ``count`` consecutive 30-s windows; the last ends at ``duration_s``
    when the clip's duration is known (its padding is silence, not audio)."""
    spans = [(k * WINDOW_SECONDS, (k + 1) * WINDOW_SECONDS) for k in range(count)]
    if duration_s is not None and spans:
        start, _ = spans[-1]
        spans[-1] = (start, round(max(start, min(float(duration_s), start + WINDOW_SECONDS)), 3))
    return spans


def merge_outputs(outputs: Iterable[Mapping]) -> dict[str, np.ndarray | list]:
    """Concatenate per-batch ``predict_step`` dicts into one dict of numpy arrays (+ ``clip`` list)."""
    merged: dict[str, list] = {k: [] for k in OUTPUT_KEYS}
    clips: list[str] = []
    for out in outputs:
        for k in OUTPUT_KEYS:
            v = out[k]
            merged[k].append(v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v))
        clips.extend(out.get("clip") or [])
    result: dict = {k: (np.concatenate(v, axis=0) if v else np.zeros((0,))) for k, v in merged.items()}
    result["isop"] = result["isop"].reshape(-1)
    result["isoe"] = result["isoe"].reshape(-1)
    result["clip"] = clips
    return result


def average_windows(outputs: Mapping) -> dict[str, np.ndarray]:
    """Mean over the windows (rows) of one clip's outputs; keeps the row dimension (1 row)."""
    return {k: np.asarray(outputs[k], dtype=np.float64).mean(axis=0, keepdims=True) for k in OUTPUT_KEYS}


def predictions_frame(outputs: Mapping, model: str, clips: Sequence[str] | None = None):
    """The predictions table (``PREDICTION_COLUMNS``) of merged outputs, one row per clip."""
    import pandas as pd

    clips = list(clips if clips is not None else outputs.get("clip", []))
    scene_p = np.asarray(outputs["scene_probabilities"], dtype=np.float64).reshape(-1, len(SCENES))
    n = scene_p.shape[0]
    if len(clips) != n:
        raise ValueError(f"{len(clips)} clip names for {n} rows of outputs")
    event_p = np.asarray(outputs["event_probabilities"], dtype=np.float64).reshape(n, len(EVENTS))
    quals = np.asarray(outputs["qualities"], dtype=np.float64).reshape(n, len(QUALITIES))
    data = {"clip": clips, "model": [model] * n, "scene": [SCENES[i] for i in scene_p.argmax(axis=1)]}
    data.update({c: scene_p[:, i] for i, c in enumerate(SCENE_PROB_COLUMNS)})
    data.update({c: event_p[:, i] for i, c in enumerate(EVENT_PROB_COLUMNS)})
    data.update({q: quals[:, i] for i, q in enumerate(QUALITIES)})
    data["isop"] = np.asarray(outputs["isop"], dtype=np.float64).reshape(-1)
    data["isoe"] = np.asarray(outputs["isoe"], dtype=np.float64).reshape(-1)
    return pd.DataFrame(data, columns=list(PREDICTION_COLUMNS))


def truth_frame(labels):
    """``TRUTH_COLUMNS`` (+ ``clip``) from a label table (``soundaq.models_zoo.data.labels.read_labels``)."""
    import pandas as pd

    out = pd.DataFrame({"clip": labels["clip"].astype(str).to_numpy(), "true_scene": labels["scene"].to_numpy()})
    for src, dst in zip(EVENT_COLUMNS, TRUE_EVENT_COLUMNS):
        out[dst] = labels[src].astype(int).to_numpy()
    for q, dst in zip(QUALITIES, TRUE_QUALITY_COLUMNS):
        out[dst] = labels[q].astype(float).to_numpy()
    out["true_isop"] = labels["isop"].astype(float).to_numpy()
    out["true_isoe"] = labels["isoe"].astype(float).to_numpy()
    return out[["clip", *TRUTH_COLUMNS]]


def add_truth(predictions, labels):
    """Predictions with the truth columns of the matching clips appended (NaN where unknown)."""
    truth = truth_frame(labels)
    merged = predictions.merge(truth, on="clip", how="left", validate="many_to_one")
    return merged[[*PREDICTION_COLUMNS, *TRUTH_COLUMNS, *[c for c in predictions.columns
                                                          if c not in PREDICTION_COLUMNS]]]


def batch_truth(batch: Mapping) -> dict[str, np.ndarray | list]:
    """Truth columns from one batch (``BATCH_KEYS``), for tables made straight from a data loader."""
    scene = np.asarray(batch["scene"]).reshape(-1)
    events = np.asarray(batch["events"]).reshape(len(scene), len(EVENTS))
    quals = np.asarray(batch["qualities"]).reshape(len(scene), len(QUALITIES))
    out: dict = {"true_scene": [SCENES[int(i)] for i in scene]}
    out.update({c: (events[:, i] > 0.5).astype(int) for i, c in enumerate(TRUE_EVENT_COLUMNS)})
    out.update({c: quals[:, i].astype(float) for i, c in enumerate(TRUE_QUALITY_COLUMNS)})
    out["true_isop"] = np.asarray(batch["isop"], dtype=float).reshape(-1)
    out["true_isoe"] = np.asarray(batch["isoe"], dtype=float).reshape(-1)
    return out


def predict_loader(module, loader, model: str | None = None, with_truth: bool = True):
    """Run ``module`` over a data loader of labelled batches; the predictions table (+ truth).

    Runs in eval mode without gradients on the module's device; the leaderboard's entry point.
    """
    import pandas as pd
    import torch

    was_training = module.training
    module.eval()
    device = next(module.parameters()).device
    outputs, truths = [], []
    try:
        with torch.no_grad():
            for i, batch in enumerate(loader):
                moved = {k: (v.to(device) if hasattr(v, "to") else v) for k, v in batch.items()}
                outputs.append(module.predict_step(moved, i))
                if with_truth:
                    truths.append(batch_truth({k: (v.cpu().numpy() if hasattr(v, "cpu") else v)
                                               for k, v in batch.items() if k != "clip"}))
    finally:
        module.train(was_training)
    merged = merge_outputs(outputs)
    table = predictions_frame(merged, model or getattr(module, "net_name", "model"))
    if with_truth and truths:
        truth = pd.DataFrame({c: np.concatenate([np.asarray(t[c]) for t in truths]) for c in TRUTH_COLUMNS})
        table = pd.concat([table, truth], axis=1)
    return table


def _named(values, names) -> dict[str, float]:
    return {n: float(v) for n, v in zip(names, np.asarray(values).reshape(-1))}


def _record(outputs: Mapping, row: int) -> dict:
    scene_p = np.asarray(outputs["scene_probabilities"])[row]
    return {
        "scene": SCENES[int(np.argmax(scene_p))],
        "scene_probabilities": _named(scene_p, SCENES),
        "events": _named(np.asarray(outputs["event_probabilities"])[row], EVENTS),
        "qualities": _named(np.asarray(outputs["qualities"])[row], QUALITIES),
        "isop": float(np.asarray(outputs["isop"]).reshape(-1)[row]),
        "isoe": float(np.asarray(outputs["isoe"]).reshape(-1)[row]),
    }


def clip_result(clip: str, model: str, window_outputs: Mapping, duration_s: float | None = None) -> dict:
    """The ``soundaq predict`` JSON object of one clip from the outputs of its windows (rows)."""
    count = int(np.asarray(window_outputs["scene_probabilities"]).shape[0])
    mean = average_windows(window_outputs)
    result = {"clip": clip, "model": model, **_record(mean, 0), "windows": []}
    for i, (start, end) in enumerate(window_spans(count, duration_s)):
        result["windows"].append({"index": i, "start_s": start, "end_s": end, **_record(window_outputs, i)})
    return result


def results_frame(results: Sequence[Mapping]):
    """Flat table of ``clip_result`` objects: ``PREDICTION_COLUMNS`` then ``window``, ``start_s``,
    ``end_s``. One row per clip (``window`` = ``mean``, over the whole clip); clips with several
    windows add one row per window (``window`` = 0, 1, ...)."""
    import pandas as pd

    rows = []
    for r in results:
        def flat(rec, window, start, end):
            row = {"clip": r["clip"], "model": r["model"], "scene": rec["scene"]}
            row.update({c: rec["scene_probabilities"][s] for c, s in zip(SCENE_PROB_COLUMNS, SCENES)})
            row.update({c: rec["events"][e] for c, e in zip(EVENT_PROB_COLUMNS, EVENTS)})
            row.update({q: rec["qualities"][q] for q in QUALITIES})
            row.update({"isop": rec["isop"], "isoe": rec["isoe"], "window": window, "start_s": start,
                        "end_s": end})
            return row

        wins = r.get("windows") or []
        rows.append(flat(r, "mean", wins[0]["start_s"] if wins else 0.0, wins[-1]["end_s"] if wins else None))
        if len(wins) > 1:
            rows.extend(flat(w, str(w["index"]), w["start_s"], w["end_s"]) for w in wins)
    return pd.DataFrame(rows, columns=[*PREDICTION_COLUMNS, "window", "start_s", "end_s"])


class PredictSkip(Exception):
    """One input cannot be predicted; the message says why (already one line)."""


def load_features_npz(path: Path):
    try:
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as data:   # fh: closed even if np.load fails
            if "mel" not in data:
                raise PredictSkip(f"{path}: no 'mel' array; fix: make it with `soundaq features`")
            mel = np.asarray(data["mel"], dtype=np.float32)
            loud = np.asarray(data["loudness"], dtype=np.float32) if "loudness" in data else None
            duration = float(data["duration_s"]) if "duration_s" in data else None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:   # cut short, corrupted, not a zip
        raise PredictSkip(f"{path}: not a readable .npz ({first_line(err)[:120]}); "
                    "fix: make it again with `soundaq features`") from None
    if mel.ndim == 2:
        mel = mel[None]
    if loud is not None and loud.ndim == 2:
        loud = loud[None]
    if mel.ndim != 3 or mel.shape[1:] != (3001, 64):
        raise PredictSkip(f"{path}: mel has shape {mel.shape}, expected [windows, 3001, 64]; "
                    "fix: make it with `soundaq features`")
    if loud is not None and (loud.ndim != 3 or loud.shape[1:] != (15000, 1) or loud.shape[0] != mel.shape[0]):
        raise PredictSkip(f"{path}: loudness has shape {loud.shape}, expected [{mel.shape[0]}, 15000, 1]; "
                    "fix: make it with `soundaq features`")
    if not np.all(np.isfinite(mel)) or (loud is not None and not np.all(np.isfinite(loud))):
        raise PredictSkip(f"{path}: features hold NaN/Inf; fix: make them again with `soundaq features`")
    return mel, loud, duration


def input_features(path: Path, calibration, need_loudness: bool = True):
    """``(mel, loudness or None, duration_s)`` of one input, un-normalised. Audio is cut into the
    feature pipeline's 30-s windows; the loudness (the slow part) is computed only for nets that use it."""

    if not path.exists():
        raise PredictSkip(f"{path}: no such file; fix: check the path")
    kind = sniff(path)   # by content: a features .npz renamed, or audio named .npz, still goes the right way
    if kind == "npz" or (path.suffix.lower() == ".npz" and kind != "audio"):
        return load_features_npz(path)
    from soundaq.models_zoo.features import Calibration, clip_features, load_audio, log_mel, split_windows

    try:
        samples, rate = load_audio(path)
        if need_loudness:
            mel, loud = clip_features(samples, rate, calibration or Calibration.default())
        else:
            mel, loud = np.stack([log_mel(w, rate) for w in split_windows(samples, rate)]).astype(np.float32), None
    except UserError as err:
        raise PredictSkip(first_line(err)) from None
    except ValueError as err:  # empty signal, a level outside the loudness model's range, ...
        raise PredictSkip(f"{path}: {first_line(err)}; "
                    "fix: pass a non-empty recording (check --calibration/--dbfs-offset for loudness)") from None
    return mel, loud, len(samples) / float(rate)


def predict_files(paths, checkpoint: Path, calibration=None, batch_size: int = 8, device: str = "cpu",
                  report=None):
    """Predict every input with a checkpoint: the library call behind ``soundaq predict``.

    Args:
        paths: audio files (any format libsndfile reads) or features ``.npz`` files from ``soundaq features``
            (``mel`` [windows, 3001, 64], ``loudness`` [windows, 15000, 1], un-normalised).
        checkpoint: a ``.ckpt`` from ``soundaq train`` or ``soundaq import-original``; its own
            normalisation statistics are applied.
        calibration: :class:`~soundaq.models_zoo.features.Calibration` of the audio (default: ARAUS).
        batch_size: 30-s windows per forward pass.
        report: called with the one-line message of each skipped input, as it happens.

    Returns:
        ``(results, failures)``: one JSON-ready object per predicted input (see :func:`clip_result`)
        and the one-line messages of the skipped ones.

    Raises:
        CheckpointError: the checkpoint cannot be read (one line naming it and the fix).
    """
    import torch

    from soundaq.models_zoo.checkpoints import load_checkpoint
    from soundaq.models_zoo.data.normalisation import Normaliser
    from soundaq.models_zoo.module import SoundscapeModule

    net, norm_stats, info = load_checkpoint(checkpoint)
    model = info["model"]
    module = SoundscapeModule(model, net=net, norm_stats=norm_stats).to(device).eval()
    normaliser = Normaliser(norm_stats)
    uses_loudness = module.uses_loudness
    results, failures = [], []
    for path in paths:
        path = Path(path)
        try:
            mel, loud, duration = input_features(path, calibration, uses_loudness)
            if uses_loudness and loud is None:
                raise PredictSkip(f"{path}: {model} needs loudness but the .npz has none; "
                            "fix: make the features with `soundaq features`")
            mel_n = normaliser.mel(mel)
            loud_n = normaliser.loudness(loud) if uses_loudness else None
            outs = []
            with torch.no_grad():
                for start in range(0, mel_n.shape[0], batch_size):
                    batch = {"mel": torch.from_numpy(np.ascontiguousarray(mel_n[start:start + batch_size])).to(device)}
                    if loud_n is not None:
                        batch["loudness"] = torch.from_numpy(
                            np.ascontiguousarray(loud_n[start:start + batch_size])).to(device)
                    outs.append(module.predict_step(batch, start))
            results.append(clip_result(path.stem, model, merge_outputs(outs), duration))
        except PredictSkip as err:
            failures.append(first_line(err))
            if report:
                report(first_line(err))
    return results, failures
