"""``soundaq features``: log-mel and ISO 532-1 loudness of audio files, one ``.npz`` per file."""
from __future__ import annotations

from pathlib import Path

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif", ".au", ".mp3", ".opus", ".w64", ".caf")


def register(sub) -> None:
    p = sub.add_parser("features", help="extract log-mel and ISO 532-1 loudness features, one .npz per audio file",
                       description="Write OUT/<stem>.npz with mel float32 [windows, 3001, 64] and loudness "
                                   "float32 [windows, 15000, 1] per input (30-s windows, the last zero-padded), "
                                   "plus OUT/manifest.json (parameters, versions, per-file status) and, with "
                                   "--loudness-stats, OUT/loudness_stats.csv.")
    p.add_argument("audio", nargs="+", type=Path, metavar="AUDIO",
                   help="audio files (any rate, depth, channels, length) or folders of them")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--jobs", type=int, default=1, help="parallel worker processes (default 1)")
    p.add_argument("--loudness-backend", choices=("fast", "mosqito"), default="fast",
                   help="fast (default) or mosqito, the slow reference implementation")
    cal = p.add_mutually_exclusive_group()
    cal.add_argument("--calibration", type=Path, metavar="WAV",
                     help="calibration recording of known level (see --calibration-db)")
    cal.add_argument("--dbfs-offset", type=float, metavar="DB",
                     help="dB SPL of a signal with RMS 1.0 (default: the ARAUS calibration, 103.03)")
    p.add_argument("--calibration-db", type=float, default=60.0,
                   help="level of the calibration recording in dB SPL (default 60)")
    p.add_argument("--cache", type=Path, default=None,
                   help="feature cache folder, shared with the data module (default $SOUNDAQ_FEATURE_CACHE, "
                        "else $SOUNDAQ_CACHE/features, else ~/.cache/soundaq/features)")
    p.add_argument("--no-cache", action="store_true", help="compute everything, read and write no cache")
    p.add_argument("--loudness-stats", action="store_true",
                   help="also write OUT/loudness_stats.csv: N5, N10, Nmax and mean N (sone, ISO 532-1) of each "
                        "30-s window and of each file, over the frames that cover the audio")
    p.set_defaults(handler=_run)


def _expand(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(q for q in path.iterdir() if q.is_file() and q.suffix.lower() in AUDIO_SUFFIXES)
            files.extend(found if found else [path])  # an empty folder is reported as a failure
        else:
            files.append(path)
    return files


def _extract(path: str, out_file: str, cache_root: str | None, backend: str, pascal_per_unit: float,
             calibration_source: str, loudness_stats: bool = False) -> dict:
    """Worker: features of one file written to ``out_file``; never raises."""
    import time

    import numpy as np

    from soundaq.base.errors import UserError, first_line, one_line
    from soundaq.models_zoo.features import Calibration, FeatureCache, window_loudness_statistics
    from soundaq.base.fileio import atomic_path

    t0 = time.perf_counter()
    entry = {"input": path, "output": Path(out_file).name}
    try:
        cache = FeatureCache(cache_root, backend=backend,
                             calibration=Calibration(pascal_per_unit, source=calibration_source))
        feats = cache.get(path)
        with atomic_path(out_file) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, mel=feats.mel, loudness=feats.loudness)
        entry.update(status="ok", source=feats.status, windows=int(feats.mel.shape[0]),
                     sample_rate=feats.sample_rate, seconds=round(feats.seconds, 6),
                     audio_sha256=feats.audio_sha256, cache_key=feats.key)
        if cache.write_errors:
            entry["cache_warning"] = cache.write_errors[0]
        if loudness_stats:
            entry["loudness_stats"] = window_loudness_statistics(feats.loudness, feats.seconds)
    except UserError as err:   # AudioError, a write that failed (disk full): already one line
        entry.update(status="failed", error=first_line(err))
    except MemoryError:
        entry.update(status="failed", error=f"{path}: out of memory; fix: split the recording into shorter files")
    except Exception as err:  # keep the batch going; the manifest records what happened
        entry.update(status="failed", error=f"{path}: internal error {one_line(err)}")
    entry["elapsed_s"] = round(time.perf_counter() - t0, 3)
    return entry


STATS_FILE = "loudness_stats.csv"
STATS_COLUMNS = ("file", "window", "start_s", "end_s", "N5", "N10", "Nmax", "Nmean")


def _stats_csv(entries: list[dict], stats: dict[str, list[dict]]) -> str:
    """loudness_stats.csv: one row per 30-s window and one ("all") per file, in the order of the inputs."""
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(STATS_COLUMNS)
    for entry in entries:
        for row in stats.get(entry["input"], []):
            writer.writerow([entry["input"], row["window"], f"{row['start_s']:g}", f"{row['end_s']:g}",
                             *(f"{row[k]:.6f}" for k in STATS_COLUMNS[4:])])
    return buf.getvalue()


def _versions() -> dict:
    import platform
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("soundaq", "numpy", "scipy", "soundfile", "soxr", "numba", "mosqito"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def _run(args) -> int:
    import datetime
    import sys
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from soundaq.base.errors import UserError
    from soundaq.models_zoo.features import Calibration, default_cache_dir, feature_parameters
    from soundaq.base.fileio import atomic_write_json, atomic_write_text

    if args.jobs < 1:
        raise UserError(f"--jobs {args.jobs}: must be at least 1")
    if args.out.exists() and not args.out.is_dir():
        raise UserError(f"--out {args.out}: exists and is not a folder; pass a folder path")
    if args.calibration is not None:
        calibration = Calibration.from_recording(args.calibration, args.calibration_db)
    elif args.dbfs_offset is not None:
        calibration = Calibration.from_dbfs_offset(args.dbfs_offset)
    else:
        calibration = Calibration.default()
    cache_root = None if args.no_cache else (args.cache or default_cache_dir())
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"--out {args.out}: cannot create the folder ({err.strerror})") from None

    files = _expand(args.audio)
    jobs, entries, seen = [], [], {}
    for path in files:
        name = f"{path.stem}.npz"
        if name in seen:
            entries.append({"input": str(path), "output": name, "status": "failed",
                            "error": f"{path}: same name as {seen[name]} (both would write {name}); "
                                     "fix: rename one of them or run them into different --out folders"})
            continue
        seen[name] = path
        jobs.append((str(path), str(args.out / name), None if cache_root is None else str(cache_root),
                     args.loudness_backend, calibration.pascal_per_unit, calibration.source, args.loudness_stats))

    console = Console(stderr=True)
    progress = Progress(TextColumn("features"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                        console=console, transient=True)
    with progress:
        task = progress.add_task("features", total=len(jobs))
        if args.jobs == 1 or len(jobs) <= 1:
            for job in jobs:
                entries.append(_extract(*job))
                progress.advance(task)
        else:
            with ProcessPoolExecutor(max_workers=min(args.jobs, len(jobs))) as pool:
                futures = {pool.submit(_extract, *job): job for job in jobs}
                for fut in as_completed(futures):
                    try:
                        entries.append(fut.result())
                    except Exception as err:  # a worker died (killed, out of memory): report, keep going
                        path, out_file = futures[fut][:2]
                        entries.append({"input": path, "output": Path(out_file).name, "status": "failed",
                                        "error": f"{path}: worker process failed ({type(err).__name__}); "
                                                 "fix: retry with --jobs 1 or free memory"})
                    progress.advance(task)

    order = {str(p): i for i, p in enumerate(files)}
    entries.sort(key=lambda e: order.get(e["input"], len(order)))
    failed = [e for e in entries if e["status"] != "ok"]
    stats = {e["input"]: e.pop("loudness_stats") for e in entries if "loudness_stats" in e}
    if args.loudness_stats:
        atomic_write_text(args.out / STATS_FILE, _stats_csv(entries, stats))
    manifest = {
        "command": "soundaq features",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "parameters": feature_parameters(args.loudness_backend, calibration),
        "calibration": {"pascal_per_unit": calibration.pascal_per_unit, "db_spl_at_rms_1": calibration.db_offset,
                        "source": calibration.source},
        "cache": None if cache_root is None else str(cache_root),
        "versions": _versions(),
        "summary": {"files": len(entries), "ok": len(entries) - len(failed), "failed": len(failed)},
        "loudness_stats": STATS_FILE if args.loudness_stats else None,
        "files": entries,
    }
    atomic_write_json(args.out / "manifest.json", manifest)
    for entry in failed:
        print(f"soundaq features: {entry['error']}", file=sys.stderr)
    ok = len(entries) - len(failed)
    print(f"soundaq features: {ok} of {len(entries)} files written to {args.out}"
          + (f", {len(failed)} failed (see above and {args.out / 'manifest.json'})" if failed else ""))
    return 1 if failed else 0
