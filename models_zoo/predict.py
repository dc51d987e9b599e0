"""From network outputs to the predictions table and the ``soundaq predict`` JSON.

One row of the predictions table is one clip (columns :data:`soundaq.base.vocab.PREDICTION_COLUMNS`,
then :data:`soundaq.base.vocab.TRUTH_COLUMNS` when the labels are known): the predicted scene (the
most probable), the 3 scene probabilities (softmax of the scene logits), the 15 event
probabilities (sigmoid of the event logits), the 8 qualities, ISOP and ISOE. The leaderboard and
``soundaq predict`` both build their tables here.

Clips longer than 30 s arrive as several 30-s windows (the feature pipeline,
``soundaq.models_zoo.features.clip_features`` and ``soundaq features``, cuts consecutive windows of 3001
log-mel frames and 15000 loudness samples, the last one padded with silence as audio). Audio is read
as a stream of windows (:mod:`soundaq.models_zoo.recording`), every 30 s by default or every
``hop_s`` seconds, so a recording of hours needs the memory of one window. A clip's values are the
means over its windows (probabilities averaged, then the scene is the most probable of the averaged
ones), and every window is listed too, with its start and end in seconds.

Ratings outside the scale are kept raw and listed, or clamped with ``clamp=True``
(:mod:`soundaq.models_zoo.rating_scale` says how).
"""
from __future__ import annotations

import zipfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from soundaq.base.errors import UserError, first_line
from soundaq.base.filekinds import sniff
from soundaq.base.vocab import (
    EVENT_COLUMNS,
    EVENT_PROB_COLUMNS,
    EVENTS,
    GROUP_COLUMNS,
    LABEL_GROUPS,
    PREDICTION_COLUMNS,
    QUALITIES,
    SCENE_PROB_COLUMNS,
    SCENES,
    TRUE_EVENT_COLUMNS,
    TRUE_QUALITY_COLUMNS,
    TRUTH_COLUMNS,
)
from soundaq.models_zoo.features.opener import parse_channels
from soundaq.models_zoo.outputs import LABELLED_KEY, OUTPUT_KEYS
from soundaq.models_zoo.rating_scale import CLAMPED, RAW, clamp_outputs, out_of_scale

#: Seconds per window (3001 log-mel frames at a 10-ms hop, 15000 loudness samples at 2 ms).
WINDOW_SECONDS = 30.0

def window_spans(count: int, duration_s: float | None = None) -> list[tuple[float, float]]:
    """``(start_s, end_s)`` of ``count`` consecutive 30-s windows; the last ends at ``duration_s``
    when the clip's duration is known (its padding is silence, not audio).
    """
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
    data: dict[str, Any] = {"clip": clips, "model": [model] * n, "scene": [SCENES[i] for i in scene_p.argmax(axis=1)]}
    data.update({c: scene_p[:, i] for i, c in enumerate(SCENE_PROB_COLUMNS)})
    data.update({c: event_p[:, i] for i, c in enumerate(EVENT_PROB_COLUMNS)})
    data.update({q: quals[:, i] for i, q in enumerate(QUALITIES)})
    data["isop"] = np.asarray(outputs["isop"], dtype=np.float64).reshape(-1)
    data["isoe"] = np.asarray(outputs["isoe"], dtype=np.float64).reshape(-1)
    return pd.DataFrame(data, columns=list(PREDICTION_COLUMNS))


def truth_frame(labels):
    """``TRUTH_COLUMNS`` (+ ``clip``) from a label table (``soundaq.models_zoo.data.labels.read_labels``).

    The columns of a label group the table lacks (absent or empty: a source without it) are left empty.
    """
    import pandas as pd

    out = pd.DataFrame({"clip": labels["clip"].astype(str).to_numpy()})
    have = {g: all(c in labels.columns for c in GROUP_COLUMNS[g]) and labels[list(GROUP_COLUMNS[g])].notna().all().all()
            for g in LABEL_GROUPS}
    out["true_scene"] = labels["scene"].to_numpy() if have["scene"] else None
    for src, dst in zip(EVENT_COLUMNS, TRUE_EVENT_COLUMNS):
        out[dst] = labels[src].astype(int).to_numpy() if have["events"] else np.nan
    for q, dst in zip(QUALITIES, TRUE_QUALITY_COLUMNS):
        out[dst] = labels[q].astype(float).to_numpy() if have["qualities"] else np.nan
    out["true_isop"] = labels["isop"].astype(float).to_numpy() if have["qualities"] else np.nan
    out["true_isoe"] = labels["isoe"].astype(float).to_numpy() if have["qualities"] else np.nan
    return out[["clip", *TRUTH_COLUMNS]]


def add_truth(predictions, labels):
    """Predictions with the truth columns of the matching clips appended (NaN where unknown)."""
    truth = truth_frame(labels)
    merged = predictions.merge(truth, on="clip", how="left", validate="many_to_one")
    return merged[[*PREDICTION_COLUMNS, *TRUTH_COLUMNS, *[c for c in predictions.columns
                                                          if c not in PREDICTION_COLUMNS]]]


def batch_truth(batch: Mapping) -> dict[str, np.ndarray | list]:
    """Truth columns from one batch (``BATCH_KEYS``), for tables made straight from a data loader; a
    clip's columns of a group its ``labelled`` mask says it lacks are empty (None / NaN).
    """
    scene = np.asarray(batch["scene"]).reshape(-1)
    n = len(scene)
    mask = batch.get(LABELLED_KEY)
    mask = np.ones((n, len(LABEL_GROUPS)), dtype=bool) if mask is None else np.asarray(mask, dtype=bool).reshape(n, -1)
    has = {g: mask[:, k] for k, g in enumerate(LABEL_GROUPS)}
    events = np.asarray(batch["events"]).reshape(n, len(EVENTS))
    quals = np.asarray(batch["qualities"]).reshape(n, len(QUALITIES))
    out: dict = {"true_scene": [SCENES[int(i)] if ok else None for i, ok in zip(scene, has["scene"])]}
    if has["events"].all():
        out.update({c: (events[:, i] > 0.5).astype(int) for i, c in enumerate(TRUE_EVENT_COLUMNS)})
    else:
        out.update({c: np.where(has["events"], (events[:, i] > 0.5).astype(float), np.nan)
                    for i, c in enumerate(TRUE_EVENT_COLUMNS)})
    rated = has["qualities"]
    out.update({c: np.where(rated, quals[:, i].astype(float), np.nan) for i, c in enumerate(TRUE_QUALITY_COLUMNS)})
    out["true_isop"] = np.where(rated, np.asarray(batch["isop"], dtype=float).reshape(-1), np.nan)
    out["true_isoe"] = np.where(rated, np.asarray(batch["isoe"], dtype=float).reshape(-1), np.nan)
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
    table = predictions_frame(merged, str(model or getattr(module, "net_name", "model")))
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


def _raw(outputs: Mapping, row: int) -> dict:
    return {"qualities": _named(np.asarray(outputs["qualities"])[row], QUALITIES),
            "isop": float(np.asarray(outputs["isop"]).reshape(-1)[row]),
            "isoe": float(np.asarray(outputs["isoe"]).reshape(-1)[row])}


def _scaled_record(used: Mapping, raw: Mapping, row: int, clamp: bool) -> dict:
    record = {**_record(used, row), "out_of_scale": out_of_scale(raw, row)}
    if clamp:
        record["raw"] = _raw(raw, row)
    return record


def clip_result(clip: str, model: str, window_outputs: Mapping, duration_s: float | None = None,
                spans: Sequence[tuple[float, float]] | None = None, clamp: bool = False) -> dict:
    """The ``soundaq predict`` JSON object of one clip from the outputs of its windows (rows).

    Args:
        clip: the clip's name (the file's stem).
        model: registry name of the net.
        window_outputs: ``OUTPUT_KEYS`` arrays, one row per window (scene [W, 3], events [W, 15],
            qualities [W, 8], isop [W], isoe [W]).
        duration_s: the clip's length; the last consecutive window ends there (with ``spans`` None).
        spans: ``(start_s, end_s)`` of each window when they are not consecutive 30-s windows (a hop).
        clamp: clip qualities to [1, 5] and ISOP/ISOE to [-1, 1] before averaging; raw values kept.

    Returns:
        ``{"clip", "model", "scene", "scene_probabilities", "events", "qualities", "isop", "isoe",
        "out_of_scale", "ratings", ["raw"], "windows": [{"index", "start_s", "end_s", ...}]}``.
    """
    count = int(np.asarray(window_outputs["scene_probabilities"]).shape[0])
    raw = {k: np.asarray(window_outputs[k]) for k in OUTPUT_KEYS}
    used = clamp_outputs(raw) if clamp else raw
    mean = average_windows(used)
    result = {"clip": clip, "model": model, **_scaled_record(mean, average_windows(raw), 0, clamp)}
    result["ratings"] = CLAMPED if clamp else RAW
    result["windows"] = []
    spans = list(spans) if spans is not None else window_spans(count, duration_s)
    for i, (start, end) in enumerate(spans):
        result["windows"].append({"index": i, "start_s": start, "end_s": end,
                                  **_scaled_record(used, raw, i, clamp)})
    return result


#: Columns the flat tables add after the predictions: which ratings were used and what left the scale.
SCALE_COLUMNS = ("ratings", "out_of_scale")
#: Raw values beside clamped ones (present when a table holds clamped results).
RAW_COLUMNS = (*tuple(f"raw_{q}" for q in QUALITIES), "raw_isop", "raw_isoe")


def flat_record(r: Mapping, rec: Mapping, window, start, end) -> dict:
    """One row of a flat table from a clip object ``r`` and one of its records (mean or window)."""
    row = {"clip": r["clip"], "model": r["model"], "scene": rec["scene"]}
    row.update({c: rec["scene_probabilities"][s] for c, s in zip(SCENE_PROB_COLUMNS, SCENES)})
    row.update({c: rec["events"][e] for c, e in zip(EVENT_PROB_COLUMNS, EVENTS)})
    row.update({q: rec["qualities"][q] for q in QUALITIES})
    row.update({"isop": rec["isop"], "isoe": rec["isoe"], "window": window, "start_s": start, "end_s": end,
                "ratings": r.get("ratings", RAW), "out_of_scale": ";".join(rec.get("out_of_scale", []))})
    raw = rec.get("raw")
    if raw:
        row.update({f"raw_{q}": raw["qualities"][q] for q in QUALITIES})
        row.update({"raw_isop": raw["isop"], "raw_isoe": raw["isoe"]})
    return row


def table_columns(results: Sequence[Mapping]) -> list[str]:
    """Columns of a flat table: the predictions, then window, times, scale (and, when clamped, raw) columns."""
    raw = any(r.get("ratings") == CLAMPED for r in results)
    return [*PREDICTION_COLUMNS, "window", "start_s", "end_s", *SCALE_COLUMNS, *(RAW_COLUMNS if raw else ())]


def results_frame(results: Sequence[Mapping]):
    """Flat table of ``clip_result`` objects: ``PREDICTION_COLUMNS`` then ``window``, ``start_s``,
    ``end_s``, ``ratings``, ``out_of_scale`` (``;``-separated names) and, when clamped, ``RAW_COLUMNS``.
    One row per clip (``window`` = ``mean``, over the whole clip); clips with several windows add one
    row per window (``window`` = 0, 1, ...).
    """
    import pandas as pd

    rows = []
    for r in results:
        wins = r.get("windows") or []
        rows.append(flat_record(r, r, "mean", wins[0]["start_s"] if wins else 0.0, wins[-1]["end_s"] if wins else None))
        if len(wins) > 1:
            rows.extend(flat_record(r, w, str(w["index"]), w["start_s"], w["end_s"]) for w in wins)
    return pd.DataFrame(rows, columns=table_columns(results))


def write_predictions(results: Sequence[Mapping], out: Path) -> Path:
    """Write ``FILE.json`` (the list of clip objects) or ``FILE.csv`` (:func:`results_frame`) atomically."""
    from soundaq.base import predictions_table
    from soundaq.base.fileio import atomic_write_json

    out = Path(out)
    if out.suffix.lower() == ".json":
        return atomic_write_json(out, list(results))
    return predictions_table.write(results_frame(results), out)


class PredictSkip(Exception):
    """One input cannot be predicted; the message says why (already one line)."""


def load_features_npz(path: Path) -> tuple[np.ndarray, np.ndarray | None, float | None]:
    """Read and check a features ``.npz`` of ``soundaq features`` (un-normalised).

    Args:
        path: the file; ``mel`` [windows, 3001, 64] (or one window [3001, 64]), optionally ``loudness``
            [windows, 15000, 1] and ``duration_s`` (seconds of audio the windows cover).

    Returns:
        ``(mel [W, 3001, 64] float32, loudness [W, 15000, 1] float32 or None, duration_s or None)``.

    Raises:
        PredictSkip: the file is unreadable, lacks ``mel``, has other shapes or holds NaN/Inf (one line
            naming it and the fix).
    """
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


def _predict_batches(module, device: str, batch_size: int, items):
    """Forward passes over ``(mel_n, loud_n or None)`` windows, ``batch_size`` at a time; merged outputs."""
    import torch

    outs: list[dict[str, Any]] = []
    mels: list[np.ndarray] = []
    louds: list[np.ndarray] = []

    def flush():
        batch = {"mel": torch.from_numpy(np.ascontiguousarray(np.stack(mels))).to(device)}
        if louds:
            batch["loudness"] = torch.from_numpy(np.ascontiguousarray(np.stack(louds))).to(device)
        with torch.no_grad():
            outs.append(module.predict_step(batch, len(outs)))
        mels.clear()
        louds.clear()

    for mel_n, loud_n in items:
        mels.append(mel_n)
        if loud_n is not None:
            louds.append(loud_n)
        if len(mels) == batch_size:
            flush()
    if mels:
        flush()
    return merge_outputs(outs)


def _npz_windows(path: Path, normaliser, uses_loudness: bool, model: str, hop_s: float):
    if hop_s != WINDOW_SECONDS:
        raise PredictSkip(f"{path}: features .npz hold consecutive 30-s windows, --hop {hop_s:g} needs the audio; "
                          "fix: pass the audio file, or leave out --hop")
    mel, loud, duration = load_features_npz(path)
    if uses_loudness and loud is None:
        raise PredictSkip(f"{path}: {model} needs loudness but the .npz has none; "
                          "fix: make the features with `soundaq features`")
    mel_n = normaliser.mel(mel)
    loud_n = normaliser.loudness(loud) if uses_loudness else None
    items = ((mel_n[i], loud_n[i] if loud_n is not None else None) for i in range(mel_n.shape[0]))
    return items, window_spans(mel_n.shape[0], duration)


def _audio_windows(head, normaliser, uses_loudness: bool, calibration, hop_s: float, spans: list, stats,
                   advance=None):
    """Normalised features of each streamed window of the opened recording ``head`` (appending its span
    to ``spans`` and its samples' peak and clipping to ``stats``, a ``SignalStats``, as it goes).
    """
    from soundaq.models_zoo.recording import stream_windows, window_features

    for window in stream_windows(head, hop_s):
        try:
            mel, loud = window_features(window, head.rate, calibration, uses_loudness)
        except ValueError as err:  # a level outside the loudness model's range, ...
            raise PredictSkip(f"{head.path}: window at {window.start_s:g} s: {first_line(err)}; "
                              "fix: check --calibration/--dbfs-offset (the loudness needs absolute levels)") from None
        spans.append((window.start_s, window.end_s))
        stats.add(window, head.rate)
        if advance:
            advance()
        yield normaliser.mel(mel[None])[0], (normaliser.loudness(loud[None])[0] if loud is not None else None)


def _load_predictor(checkpoint: Path, device: str):
    """``(module in eval mode on device, its Normaliser, model name)`` of a checkpoint file."""
    from soundaq.models_zoo.checkpoints import load_checkpoint
    from soundaq.models_zoo.data.normalisation import Normaliser
    from soundaq.models_zoo.module import SoundscapeModule

    net, norm_stats, info = load_checkpoint(checkpoint)
    model = info["model"]
    return SoundscapeModule(model, net=net, norm_stats=norm_stats).to(device).eval(), Normaliser(norm_stats), model


def predict_files(paths, checkpoint: Path, calibration=None, batch_size: int = 8, device: str = "cpu",
                  report=None, hop_s: float = WINDOW_SECONDS, clamp: bool = False, progress: bool = False,
                  channels: str | tuple[int, ...] = "auto", ids: Sequence[str] | None = None):
    """Predict every input with a checkpoint: the library call behind ``soundaq predict``.

    Args:
        paths: audio files (any format libsndfile reads; streamed window by window) or features ``.npz``
            files from ``soundaq features`` (``mel`` [windows, 3001, 64], ``loudness`` [windows, 15000, 1],
            un-normalised).
        checkpoint: a ``.ckpt`` from ``soundaq train``, ``soundaq import-original`` or ``soundaq models
            download``; its own normalisation statistics are applied.
        calibration: :class:`~soundaq.models_zoo.features.Calibration` of the audio (default: ARAUS).
        batch_size: 30-s windows per forward pass.
        device: the torch device the net runs on ("cpu", "cuda", "cuda:1", ...).
        report: called with the one-line message of each skipped input, as it happens.
        hop_s: seconds between window starts in audio (default 30: consecutive windows).
        clamp: clip the ratings to their scales (see the module docstring); the raw values are kept.
        progress: a rich progress bar (stderr) over the windows of each input.
        channels: the channel policy of audio inputs (``auto``, ``mean``, ``1,2``: see
            :func:`~soundaq.models_zoo.features.opener.parse_channels`).
        ids: the recording id of each of ``paths`` (files, not folders), when a caller that split one
            batch into parts computed them over the whole batch; default
            :func:`~soundaq.models_zoo.recording.recording_ids` of the expanded ``paths``.

    A repaired header, silent tracks left out, digital silence, under 1 s or clipping: predicted, and
    said in one :class:`~soundaq.models_zoo.features.opener.AudioWarning` line each.

    Returns:
        ``(results, failures)``: one JSON-ready object per predicted input (see :func:`clip_result`)
        and the one-line messages of the skipped ones.

    Raises:
        CheckpointError: the checkpoint cannot be read (one line naming it and the fix).
        ValueError: ``hop_s`` outside (0, 3600]; UserError: a malformed channel policy.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from soundaq.models_zoo.recording import MAX_HOP_S, SignalStats, recording_ids, recording_info, window_count

    if not (0 < hop_s <= MAX_HOP_S):
        raise ValueError(f"hop_s must be in (0, {MAX_HOP_S:g}] seconds, got {hop_s}")
    channels = parse_channels(channels)
    module, normaliser, model = _load_predictor(checkpoint, device)
    uses_loudness = module.uses_loudness
    results, failures = [], []
    columns = (TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(), TextColumn("windows"),
               TimeRemainingColumn())
    console = Console(stderr=True)
    from soundaq.models_zoo.features.batch import expand_inputs

    paths = expand_inputs([Path(p) for p in paths], also=(".npz",))   # a folder: its audio and .npz files
    ids = list(ids) if ids is not None else recording_ids(paths)
    with Progress(*columns, console=console, disable=not (progress and console.is_terminal), transient=True) as bar:
        for path, clip_id in zip(paths, ids):
            stats = SignalStats()
            try:
                if not path.exists():
                    raise PredictSkip(f"{path}: no such file; fix: check the path")
                kind = sniff(path)   # by content: a features .npz renamed, or audio named .npz, goes the right way
                if kind == "npz" or (path.suffix.lower() == ".npz" and kind != "audio"):
                    items, spans = _npz_windows(path, normaliser, uses_loudness, model, hop_s)
                else:
                    head = recording_info(path, channels)
                    task = bar.add_task(path.name, total=window_count(head.frames, head.rate, hop_s))
                    spans = []
                    items = _audio_windows(head, normaliser, uses_loudness, calibration, hop_s, spans, stats,
                                           lambda task=task: bar.advance(task))
                outputs = _predict_batches(module, device, batch_size, items)
                if stats.windows:
                    stats.warn(head.path, head.duration_s)
                results.append(clip_result(clip_id, model, outputs, spans=spans, clamp=clamp))
            except (UserError, PredictSkip) as err:
                failures.append(first_line(err))
                if report:
                    report(first_line(err))
    return results, failures
