"""``soundaq features`` as a library call: the features of many audio files, one ``.npz`` each.

:func:`extract_files` writes ``OUT/<stem>.npz`` (``mel`` float32 [windows, 3001, 64], ``loudness``
float32 [windows, 15000, 1]) per input through the feature cache the data module shares, in parallel
worker processes when asked, and ``OUT/manifest.json`` (parameters, versions, per-file status) and,
optionally, ``OUT/loudness_stats.csv``. A bad file is one failed entry with its one-line reason; the
others are still written.
"""
from __future__ import annotations

import csv
import datetime
import io
import platform
import time
import warnings
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from soundaq.base.engine import Engine, UnitFailed, open_engine
from soundaq.base.errors import UserError, first_line, one_line
from soundaq.base.fileio import atomic_path, atomic_write_json, atomic_write_text, output_folder

#: Suffixes taken from a folder given as an input.
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif", ".au", ".mp3", ".opus", ".w64", ".caf")


def expand_inputs(paths: list[Path], also: tuple[str, ...] = ()) -> list[Path]:
    """Audio files of the inputs: files as given, folders as their audio files (sorted; files with the
    suffixes ``also`` too, e.g. ``(".npz",)``); an empty folder stays in the list so that it is
    reported as a failure.
    """
    files: list[Path] = []
    suffixes = {*AUDIO_SUFFIXES, *also}
    for path in paths:
        if path.is_dir():
            found = sorted(q for q in path.iterdir() if q.is_file() and q.suffix.lower() in suffixes)
            files.extend(found if found else [path])  # an empty folder is reported as a failure
        else:
            files.append(path)
    return files


def _extract(path: str, out_file: str, cache_root: str | None, backend: str, pascal_per_unit: float,
             calibration_source: str, loudness_stats: bool = False, channels: str = "auto") -> dict:
    """Worker: features of one file written to ``out_file``; never raises."""
    import numpy as np

    from soundaq.models_zoo.features import Calibration, FeatureCache, window_loudness_statistics
    from soundaq.models_zoo.features.opener import AudioWarning

    t0 = time.perf_counter()
    entry: dict[str, Any] = {"input": path, "output": Path(out_file).name}
    try:
        cache = FeatureCache(cache_root, backend=backend,
                             calibration=Calibration(pascal_per_unit, source=calibration_source), channels=channels)
        with warnings.catch_warnings(record=True) as said:     # the opener's notes, into the manifest
            warnings.simplefilter("always", AudioWarning)
            feats = cache.get(path)
        with atomic_path(out_file) as tmp:
            with open(tmp, "wb") as fh:   # duration_s: where the last window's audio ends (predict's end_s)
                np.savez(fh, mel=feats.mel, loudness=feats.loudness, duration_s=np.float64(feats.seconds))
        entry.update(status="ok", source=feats.status, windows=int(feats.mel.shape[0]),
                     sample_rate=feats.sample_rate, seconds=round(feats.seconds, 6),
                     audio_sha256=feats.audio_sha256, cache_key=feats.key)
        if cache.write_errors:
            entry["cache_warning"] = cache.write_errors[0]
        notes = [str(w.message) for w in said if issubclass(w.category, AudioWarning)]
        if notes:
            entry["notes"] = notes
        if loudness_stats:
            entry["loudness_stats"] = window_loudness_statistics(feats.loudness, feats.seconds)
    except UserError as err:   # AudioError, a write that failed (disk full): already one line
        entry.update(status="failed", error=first_line(err))
    except MemoryError:
        entry.update(status="failed", error=f"{path}: out of memory; fix: split the recording into shorter files")
    except Exception as err:  # noqa: BLE001 - keep the batch going; the manifest records what happened
        entry.update(status="failed", error=f"{path}: internal error {one_line(err)}")
    entry["elapsed_s"] = round(time.perf_counter() - t0, 3)
    return entry


STATS_FILE = "loudness_stats.csv"
STATS_COLUMNS = ("file", "window", "start_s", "end_s", "N5", "N10", "Nmax", "Nmean")


def _stats_csv(entries: list[dict], stats: dict[str, list[dict]]) -> str:
    """loudness_stats.csv: one row per 30-s window and one ("all") per file, in the order of the inputs."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(STATS_COLUMNS)
    for entry in entries:
        for row in stats.get(entry["input"], []):
            writer.writerow([entry["input"], row["window"], f"{row['start_s']:g}", f"{row['end_s']:g}",
                             *(f"{row[k]:.6f}" for k in STATS_COLUMNS[4:])])
    return buf.getvalue()


def _versions() -> dict:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in ("soundaq", "numpy", "scipy", "soundfile", "soxr", "numba", "mosqito"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out




def extract_files(inputs: list[Path], out: Path, *, calibration=None, backend: str = "fast",
                  cache_root: Path | None = None, workers: int = 1, loudness_stats: bool = False,
                  progress: bool = True, channels: str | tuple[int, ...] = "auto", engine: str = "local",
                  address: str | None = None) -> dict:
    """Features of every audio input into ``out`` (see the module docstring); returns the manifest.

    Args:
        inputs: audio files (any rate, depth, channels, length) or folders of them.
        out: output folder (created).
        calibration: :class:`~soundaq.models_zoo.features.Calibration` of the audio (default: ARAUS).
        backend: ISO 532-1 loudness backend, ``fast`` or ``mosqito``.
        cache_root: the feature cache (None: none read or written).
        workers: parallel worker processes.
        loudness_stats: also write ``loudness_stats.csv`` (N5, N10, Nmax, mean N per window and file).
        progress: show a progress bar.
        channels: the channel policy (``auto``, ``mean``, ``1,2``;
            :func:`~soundaq.models_zoo.features.opener.parse_channels`); the opener's notes on a file
            (a repaired header, silent tracks left out) go to its manifest entry's ``notes``.
        engine: ``local`` (a pool of ``workers`` processes) or ``ray`` (one Ray task per file,
            :mod:`soundaq.base.engine`); the outputs are the same.
        address: with ``engine="ray"``, the cluster's ``HOST:PORT`` (None: a private one-machine Ray).

    Raises:
        UserError: ``out`` is a file or cannot be created, or the engine cannot start (Ray missing, no
        cluster at ``address``): one line, nothing written. Bad inputs do not raise: each is a failed
        entry of the manifest.
    """
    from soundaq.models_zoo.features import Calibration
    from soundaq.models_zoo.features.opener import parse_channels, policy_text

    policy = policy_text(parse_channels(channels))
    calibration = calibration or Calibration.default()
    with open_engine(engine, workers=workers, address=address) as runner:   # before anything is written
        return _extract_all(inputs, output_folder(out), runner, calibration, backend, cache_root,
                            loudness_stats, progress, policy)


def _extract_all(inputs, out: Path, engine: Engine, calibration, backend: str, cache_root, loudness_stats: bool,
                 progress: bool, policy: str) -> dict:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from soundaq.models_zoo.features import feature_parameters

    files = expand_inputs(inputs)
    jobs: list[tuple] = []
    entries: list[dict[str, Any]] = []
    seen: dict[str, Path] = {}
    for path in files:
        name = f"{path.stem}.npz"
        if name in seen:
            entries.append({"input": str(path), "output": name, "status": "failed",
                            "error": f"{path}: same name as {seen[name]} (both would write {name}); "
                                     "fix: rename one of them or run them into different --out folders"})
            continue
        seen[name] = path
        jobs.append((str(path), str(out / name), None if cache_root is None else str(cache_root),
                     backend, calibration.pascal_per_unit, calibration.source, loudness_stats, policy))

    console = Console(stderr=True)
    bar = Progress(TextColumn("features"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=console, transient=True, disable=not progress)
    with bar:
        task = bar.add_task("features", total=len(jobs))
        fix = "retry with --workers 1 or free memory" if engine.name == "local" else \
            "free memory on the Ray nodes, or run the same command again"
        for index, entry in engine.run(_extract, jobs):
            if isinstance(entry, UnitFailed):   # a worker died (killed, out of memory): report, keep going
                job_path, out_file = jobs[index][:2]
                entry = {"input": job_path, "output": Path(out_file).name, "status": "failed",
                         "error": f"{job_path}: {entry.why}; fix: {fix}"}
            entries.append(entry)
            bar.advance(task)

    order = {str(p): i for i, p in enumerate(files)}
    entries.sort(key=lambda e: order.get(e["input"], len(order)))
    failed = [e for e in entries if e["status"] != "ok"]
    stats = {e["input"]: e.pop("loudness_stats") for e in entries if "loudness_stats" in e}
    if loudness_stats:
        atomic_write_text(out / STATS_FILE, _stats_csv(entries, stats))
    manifest = {
        "command": "soundaq features",
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "parameters": {**feature_parameters(backend, calibration), "channels": policy},
        "calibration": {"pascal_per_unit": calibration.pascal_per_unit, "db_spl_at_rms_1": calibration.db_offset,
                        "source": calibration.source},
        "cache": None if cache_root is None else str(cache_root),
        "engine": engine.describe(),
        "versions": _versions(),
        "summary": {"files": len(entries), "ok": len(entries) - len(failed), "failed": len(failed)},
        "loudness_stats": STATS_FILE if loudness_stats else None,
        "files": entries,
    }
    atomic_write_json(out / "manifest.json", manifest)
    return manifest
