"""``soundaq features``: log-mel and ISO 532-1 loudness of audio files, one ``.npz`` per file
(:func:`soundaq.models_zoo.features.batch.extract_files`).
"""
from __future__ import annotations

import sys
from pathlib import Path


def register(sub) -> None:
    """Add the ``features`` subcommand, its options and its handler to the CLI's subparsers ``sub``."""
    from soundaq.benchmark import options as o

    p = sub.add_parser("features", help="extract log-mel and ISO 532-1 loudness features, one .npz per audio file",
                       description="Write OUT/<stem>.npz with mel float32 [windows, 3001, 64] and loudness "
                                   "float32 [windows, 15000, 1] and duration_s (seconds of audio) per input "
                                   "(30-s windows, the last zero-padded), "
                                   "plus OUT/manifest.json (parameters, versions, per-file status) and, with "
                                   "--loudness-stats, OUT/loudness_stats.csv.",
                       parents=[o.output_options(), o.workers_options(1, "parallel worker processes"),
                                o.engine_options(), o.calibration_options(), o.channels_options(),
                                o.progress_options()])
    p.add_argument("audio", nargs="+", type=Path, metavar="AUDIO",
                   help="audio files (any rate, depth, channels, length) or folders of them")
    p.add_argument("--loudness-backend", choices=("fast", "mosqito"), default="fast",
                   help="fast (default) or mosqito, the slow reference implementation")
    p.add_argument("--cache-dir", type=Path, default=None, metavar="DIR",
                   help="feature cache folder, shared with the data module (default $SOUNDAQ_FEATURE_CACHE, "
                        "else $SOUNDAQ_CACHE/features, else ~/.cache/soundaq/features)")
    o.add_renamed(p, "--cache", "--cache-dir", "cache_dir", type=Path)
    p.add_argument("--no-cache", action="store_true", help="compute everything, read and write no cache")
    p.add_argument("--loudness-stats", action="store_true",
                   help="also write OUT/loudness_stats.csv: N5, N10, Nmax and mean N (sone, ISO 532-1) of each "
                        "30-s window and of each file, over the frames that cover the audio")
    p.set_defaults(handler=_run)


def _run(args) -> int:
    from soundaq.benchmark.options import calibration_from_args, channels_from_args
    from soundaq.models_zoo.features import default_cache_dir
    from soundaq.models_zoo.features.batch import extract_files

    channels = channels_from_args(args)
    cache_root = None if args.no_cache else (args.cache_dir or default_cache_dir())
    manifest = extract_files(args.audio, args.out, calibration=calibration_from_args(args),
                             backend=args.loudness_backend, cache_root=cache_root, workers=args.workers,
                             loudness_stats=args.loudness_stats, progress=not args.no_progress, channels=channels,
                             engine=args.engine, address=args.address)
    failed = [e for e in manifest["files"] if e["status"] != "ok"]
    for entry in manifest["files"]:     # said in the worker (maybe another process): said here, once each
        for note in entry.get("notes", []):
            print(f"warning: {note}", file=sys.stderr)
    for entry in failed:
        print(f"soundaq features: {entry['error']}", file=sys.stderr)
    summary = manifest["summary"]
    print(f"soundaq features: {summary['ok']} of {summary['files']} files written to {args.out}"
          + (f", {len(failed)} failed (see above and {args.out / 'manifest.json'})" if failed else ""))
    if failed and not summary["ok"]:     # nothing written: the command failed as a whole (docs/reliability.md)
        return 2
    return 1 if failed else 0
