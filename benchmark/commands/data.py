"""``soundaq data``: check, download and prepare datasets."""
from __future__ import annotations

import json
import sys
from pathlib import Path


def register(sub) -> None:
    """Add the ``data`` subcommand, its options and its handler to the CLI's subparsers ``sub``."""
    from soundaq.benchmark import options as o
    from soundaq.models_zoo.data.sources import source_names

    p = sub.add_parser("data", help="check label folders, download the ARAUS labels, prepare the embedded set")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION")
    c = dsub.add_parser("check", help="validate a label folder (or ARAUS's download) and print counts per split, "
                                      "scene and event, folds and recordings shared with training",
                        parents=[o.cache_options()])
    c.add_argument("--labels", type=Path, help="folder with the *_set_*.txt label files")
    c.add_argument("--araus", type=Path, metavar="DIR", help="ARAUS's own download (soundscapes/, maskers/, data/): "
                   "per split the clips that share a base recording or a masker with training")
    c.add_argument("--json", action="store_true", help="print the counts as JSON")
    c.set_defaults(handler=_check)
    d = dsub.add_parser("download", help="fetch the 16 ARAUS label files of the SoundSCaper release (sha256-pinned, resumable)",
                        parents=[o.progress_options()])
    d.add_argument("what", nargs="?", choices=("labels", "araus"), default="labels",
                   help="labels (default): the 16 SoundSCaper label files (--labels-to DIR); araus: ARAUS's own "
                        "download, verified, unpacked and split (--to DIR, about 3 GB)")
    d.add_argument("--labels-to", type=Path, metavar="DIR", help="destination folder of the label files")
    d.add_argument("--to", type=Path, metavar="DIR", help="destination folder of `data download araus`")
    d.add_argument("--base-url", default=None, metavar="URL",
                   help="mirror: http(s):// or file:// URL or a local folder (default: the release on GitHub)")
    d.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the server (default 60)")
    d.set_defaults(handler=_download)
    m = dsub.add_parser("araus-stimuli", help="write ARAUS's stimuli, mixed from its download, for other tools "
                                              "(16-bit WAV or FLAC, as ARAUS's own script writes them)")
    m.add_argument("--araus", required=True, type=Path, metavar="DIR", help="ARAUS's download (soundscapes/, "
                   "maskers/, data/)")
    m.add_argument("--out", required=True, type=Path, metavar="DIR", help="folder for <clip id>.wav|.flac")
    m.add_argument("--format", choices=("wav", "flac"), default="wav", help="wav (default) or flac")
    m.add_argument("--labels", type=Path, metavar="DIR", help="only the clips of this SoundSCaper label folder")
    m.set_defaults(handler=_stimuli)
    r = dsub.add_parser("prepare", help="generate the embedded synthetic set, or precompute ARAUS features and statistics",
                        parents=[o.cache_options(), o.workers_options(2, "processes generating the embedded set"),
                                 o.seed_options("the embedded set's generation"), o.progress_options()])
    what = r.add_mutually_exclusive_group(required=True)
    what.add_argument("--embedded", action="store_true", help="generate the embedded synthetic dataset (features included)")
    what.add_argument("--labels", type=Path, metavar="PATH",
                      help="ARAUS label folder (with --audio or --features), or with --data own the labels CSV")
    r.add_argument("--data", choices=tuple(n for n in source_names() if n != "embedded"), default="araus",
                   help="the source of --labels: araus (default) or own (--labels LABELS.csv --audio DIR)")
    r.add_argument("--audio", type=Path, metavar="DIR",
                   help="ARAUS clips <clip id>.flac|.wav, or the own data's audio (features go to the cache)")
    r.add_argument("--features", type=Path, metavar="DIR",
                   help="ARAUS features in the release layout (Feature_log_mel/, Feature_loudness_ISO532_1/)")
    r.add_argument("--calibration", type=Path, metavar="WAV",
                   help="calibration recording of the audio (60 dB SPL tone); default: the ARAUS calibration")
    r.add_argument("--clips", type=o.positive_int, default=None,
                   help="embedded set size (default 360; with --layout araus: responses, rounded to whole raters)")
    r.add_argument("--layout", choices=("features", "araus"), default="features",
                   help="with --embedded: features (default: the set the leaderboard uses by default) or araus "
                        "(ARAUS's component layout: recordings and maskers per fold 0-5, stimuli mixed from them; "
                        "run it with --data araus --araus DIR --labels DIR/labels)")
    r.add_argument("--recordings", type=o.positive_int, default=None,
                   help="with --layout araus: base recordings (and maskers) per fold (default 4)")
    r.add_argument("--with-audio", action="store_true", help="also write the embedded clips as 24-bit FLAC")
    r.add_argument("--force", action="store_true", help="regenerate the embedded set even if it is complete")
    r.add_argument("--json", action="store_true", help="print the data description as JSON")
    r.set_defaults(handler=_prepare)
    p.set_defaults(handler=lambda args: p.print_help() or 2)


def _check(args) -> int:
    from rich.table import Table

    from soundaq.base.errors import UserError
    from soundaq.base.vocab import EVENTS, SCENES
    from soundaq.benchmark.terminal import stdout_console
    from soundaq.models_zoo.data.labels import (
        SPLITS,
        check_label_folder,
        fold_breakdown,
        read_labels,
        split_files,
        summarise,
    )

    if args.araus is not None:
        return _check_components(args)
    if args.labels is None:
        raise UserError("data check needs --labels DIR (a label folder) or --araus DIR (ARAUS's download); "
                        "fix: pass one of them")
    check_label_folder(args.labels)
    if not args.labels.is_dir():
        raise UserError(f"{args.labels}: not a folder; pass the folder holding the label .txt files")
    present = [s for s in SPLITS if any(p.exists() for p in split_files(args.labels, s).paths.values())]
    if not present:
        raise UserError(f"{args.labels}: no label files found (expected e.g. test_set_audio_file_ids.txt); "
                        "get them with `soundaq data download --labels-to DIR`")
    frame = read_labels(args.labels, present)
    summary = summarise(frame)
    folds = fold_breakdown(frame)
    if folds is not None:
        summary["folds"] = folds
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    console = stdout_console()
    splits = list(summary["splits"])
    table = Table(title=f"{args.labels}: {summary['clips']} clips, labels OK")
    table.add_column("count")
    for s in splits:
        table.add_column(s, justify="right")
    table.add_row("clips", *(str(summary["splits"][s]["clips"]) for s in splits), end_section=True)
    for scene in SCENES:
        table.add_row(f"scene: {scene}", *(str(summary["splits"][s]["scenes"][scene]) for s in splits))
    table.rows[-1].end_section = True
    for event in EVENTS:
        table.add_row(f"event: {event}", *(str(summary["splits"][s]["events"][event]) for s in splits))
    console.print(table)
    if folds is not None:
        _print_folds(console, folds)
    return 0


def _check_components(args) -> int:
    """``data check --araus DIR [--labels DIR]``: folds and shared recordings/maskers per split."""
    from rich.table import Table

    from soundaq.benchmark.terminal import stdout_console
    from soundaq.models_zoo.data.araus_components import component_overlap
    from soundaq.models_zoo.data.labels import fold_breakdown
    from soundaq.models_zoo.data.sources import make_source

    source = make_source("araus", araus_dir=args.araus, labels_dir=args.labels, cache_dir=args.cache_dir)
    import pandas as pd

    frame = pd.concat([source.labels(s) for s in source.splits()], ignore_index=True)
    overlap, folds = component_overlap(frame), fold_breakdown(frame)
    left_out = len(getattr(source, "left_out", []))
    if args.json:
        print(json.dumps({"clips": len(frame), "left_out_rows": left_out, "data": source.data_label(),
                          "components": overlap, "folds": folds}, indent=2))
        return 1 if left_out else 0
    console = stdout_console()
    splits = list(overlap)
    table = Table(title=f"{args.araus}: {len(frame):,} responses (clips) ({source.data_label()}"
                        f"{f'; {left_out} rows left out, see above' if left_out else ''})")
    table.add_column("clips")
    for s in splits:
        table.add_column(s, justify="right")
    rows = [("clips", "clips"), ("base recordings used", "base_recordings"), ("maskers used", "maskers"),
            ("share a base recording with training", "shared_recording"),
            ("share a masker with training", "shared_masker"), ("share either", "shared_either"),
            ("share neither", "shared_neither")]
    for name, key in rows:
        table.add_row(name, *(f"{overlap[s][key]:,}" for s in splits), end_section=key == "maskers")
    console.print(table)
    if folds is not None:
        _print_folds(console, folds)
    for s in splits:
        if s != "training" and overlap[s]["shared_either"]:
            print(f"{s}: {overlap[s]['shared_either']:,} of {overlap[s]['clips']:,} clips are mixed from a base "
                  "recording or a masker that training clips also use; only the others test unseen recordings")
    return 1 if left_out else 0


def _print_folds(console, folds: dict) -> None:
    """The ARAUS folds each split draws from and its clips from folds that also feed training."""
    from rich.table import Table

    splits = list(folds["splits"])
    every = sorted({int(k) for s in splits for k in folds["splits"][s]["folds"]})
    table = Table(title=f"ARAUS folds per split (from the clip ids); training draws from folds "
                        f"{', '.join(map(str, folds['training_folds']))}")
    table.add_column("fold")
    for s in splits:
        table.add_column(s, justify="right")
    for k in every:
        table.add_row(f"fold {k}", *(str(folds["splits"][s]["folds"].get(k, 0)) for s in splits))
    table.rows[-1].end_section = True
    table.add_row("in training folds", *(f"{folds['splits'][s]['in_training_folds']:,} of "
                                         f"{folds['splits'][s]['clips']:,}" for s in splits))
    console.print(table)
    for s in splits:
        part = folds["splits"][s]
        if s != "training" and part["in_training_folds"]:
            print(f"{s}: {part['in_training_folds']:,} of {part['clips']:,} clips come from folds that also feed "
                  "training (ARAUS mixes every clip of a fold from that fold's base recordings and maskers), "
                  f"{part['unseen_folds']:,} from unseen folds")


def _download(args) -> int:
    from soundaq.base.errors import UserError
    from soundaq.models_zoo.data.label_download import DEFAULT_BASE_URL, LABEL_FILES, download_labels

    if args.what == "araus":
        if args.to is None or args.labels_to is not None:
            raise UserError("data download araus needs --to DIR (and no --labels-to); fix: pass --to DIR")
        from soundaq.models_zoo.data.araus_download import download_araus

        results = download_araus(args.to, args.base_url, progress=not args.no_progress, timeout=args.timeout)
        fetched = sum(r.status in ("downloaded", "resumed") for r in results)
        print(f"{args.to}: {len(results)} ARAUS files verified ({fetched} fetched, {len(results) - fetched} already "
              "present), unpacked and split into soundscapes/ maskers/ data/")
        return 0
    if args.labels_to is None or args.to is not None:
        raise UserError("data download needs --labels-to DIR (or `data download araus --to DIR`); fix: pass it")

    results = download_labels(args.labels_to, args.base_url, progress=not args.no_progress, timeout=args.timeout)
    counts = {status: sum(r.status == status for r in results) for status in ("downloaded", "resumed", "present")}
    print(f"{args.labels_to}: {len(LABEL_FILES)} label files, sha256 verified "
          f"({counts['downloaded']} downloaded, {counts['resumed']} resumed, {counts['present']} already present) "
          f"from {args.base_url or DEFAULT_BASE_URL}")
    return 0


def _stimuli(args) -> int:
    from soundaq.models_zoo.data.sources.araus_mixed import write_stimuli

    written, kept, left_out = write_stimuli(args.araus, args.out, args.format, args.labels)
    print(f"{args.out}: {written + kept} stimuli ({written} written, {kept} already there)"
          + (f"; {len(left_out)} rows left out (see above)" if left_out else ""))
    return 1 if left_out else 0


def _prepare(args) -> int:
    import time

    from soundaq.base.errors import UserError

    started = time.perf_counter()
    if args.embedded:
        if args.audio or args.features or args.calibration:
            raise UserError("--audio/--features/--calibration go with --labels (ARAUS); "
                            "fix: leave them out for --embedded")
        if args.layout == "araus":
            return _prepare_araus_layout(args, started)
        if args.recordings is not None:
            raise UserError("--recordings goes with --layout araus; fix: add --layout araus or leave it out")
        from soundaq.models_zoo.data import synthetic

        n_clips = args.clips if args.clips is not None else synthetic.DEFAULT_CLIPS
        es = synthetic.prepare_embedded(args.cache_dir, n_clips=n_clips, seed=args.seed, workers=args.workers,
                                        with_audio=args.with_audio, progress=not args.no_progress, force=args.force)
        info = dict(es.manifest)
        if args.json:
            print(json.dumps(info, indent=2))
            return 0
        sizes = ", ".join(f"{k} {v}" for k, v in info["split_sizes"].items())
        print(f"{info['data']}: {sizes} clips in {es.root} ({time.perf_counter() - started:.1f} s; "
              f"{info['generated_clips']} clips generated when first made, in {info['seconds']} s)")
        return 0
    if args.clips is not None or args.with_audio or args.force or args.recordings or args.layout != "features":
        raise UserError("--clips/--with-audio/--force/--layout/--recordings go with --embedded")
    from soundaq.models_zoo.data.datamodule import SoundscapeDataModule, prepare_features

    calibration = None
    if args.calibration is not None:
        from soundaq.models_zoo.features import Calibration

        calibration = Calibration.from_recording(args.calibration)
    dm = SoundscapeDataModule(args.data, labels_dir=args.labels, audio_dir=args.audio, features_dir=args.features,
                              cache_dir=args.cache_dir, calibration=calibration, progress=not args.no_progress)
    failures, skipped = prepare_features(dm, progress=not args.no_progress)
    info = dm.describe()
    info["failed"] = failures
    if args.json:
        print(json.dumps(info, indent=2, default=str))
    else:
        sizes = ", ".join(f"{k} {v}" for k, v in info["split_sizes"].items())
        print(f"{info['data']}: {sizes} clips ready; normalisation statistics {info['norm_stats_origin']} "
              f"({time.perf_counter() - started:.1f} s)")
        for line in (skipped + failures)[:10]:
            print(f"soundaq data prepare: skipped {line}", file=sys.stderr)
        if len(skipped) + len(failures) > 10:
            print(f"soundaq data prepare: ... and {len(skipped) + len(failures) - 10} more skipped", file=sys.stderr)
    return 1 if failures or skipped else 0   # a batch that went on past bad clips


def _prepare_araus_layout(args, started: float) -> int:
    """``data prepare --embedded --layout araus``: the synthetic set in ARAUS's component layout."""
    import time

    from soundaq.base.errors import UserError
    from soundaq.models_zoo.data import synthetic_araus as sa

    if args.with_audio:
        raise UserError("--with-audio: the ARAUS layout is audio (its components); fix: leave --with-audio out")
    base = sa.LayoutSize()
    participants = base.participants if args.clips is None else max(5, -(-args.clips // (6 * base.stimuli)))
    size = sa.LayoutSize(recordings=args.recordings or base.recordings, participants=participants)
    es = sa.prepare_araus_layout(args.cache_dir, size, seed=args.seed, progress=not args.no_progress,
                                 force=args.force)
    if args.json:
        print(json.dumps(es.manifest, indent=2))
        return 0
    m = es.manifest
    sizes = ", ".join(f"{k} {v}" for k, v in m["split_sizes"].items())
    print(f"{m['data']}: {m['responses']} responses ({sizes}) of {m['stimuli']} stimuli mixed from "
          f"{m['base_recordings']} base recordings and {m['maskers']} maskers in {es.root} "
          f"({time.perf_counter() - started:.1f} s; sha256 {m['sha256'][:16]})")
    if args.clips is not None and m["responses"] != args.clips:
        print(f"note: --clips {args.clips} gave {m['responses']} responses: each of the 6 folds needs at least 5 "
              f"raters (training, validation and test raters) of {base.stimuli} stimuli each, so the set is made in "
              f"whole rater groups")
    print(f"run it: soundaq leaderboard --data araus --araus {es.root} --labels {es.labels_dir} "
          "[--protocol araus]")
    return 0
