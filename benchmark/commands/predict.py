"""``soundaq predict``: scene, events, the 8 affective qualities, ISOP and ISOE of clips and recordings.

Each INPUT is an audio file (any format libsndfile reads; read as a stream of 30-s windows, so a
recording of hours needs the memory of one window) or a features ``.npz`` written by ``soundaq
features`` (``mel`` [windows, 3001, 64], ``loudness`` [windows, 15000, 1], un-normalised). The model is
a checkpoint file or one of the paper's trained models by name (``--model``, downloaded on first
use). ``--hop`` sets the seconds between window starts. ``--out DIR`` writes the analysis of
recordings over time: a time series (CSV, and Parquet when pyarrow is installed), a report and
figures. ``--channels`` chooses how channels become mono (default ``auto``: the channels that carry
signal, digitally silent tracks left out and named). A bad input is reported on one line and skipped;
the others are still predicted and written (exit code 1 when anything was skipped; 2 when no input
could be predicted). Recordings read with a repair (a WAV header never finalised) or whose prediction
stands on weak ground (digital silence, under 1 s, clipping) get a ``warning:`` line each.
``--engine ray`` spreads the inputs over a Ray cluster (one part per CPU, the checkpoint loaded once
per part; docs/scaling.md) with the same outputs.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

AUDIO_HELP = ("audio files (wav, flac, ogg, ...), features .npz files from `soundaq features`, or folders of "
              "them")


def register(sub) -> None:
    """Add the ``predict`` subcommand, its options and its handler to the CLI's subparsers ``sub``."""
    from soundaq.benchmark import options as o

    p = sub.add_parser("predict", help="predict scene, events, 8 qualities, ISOP/ISOE of clips and long recordings",
                       description=o.help_text(__doc__),
                       parents=[o.checkpoint_options(), o.inference_options(), o.calibration_options(),
                                o.channels_options(), o.cache_options(), o.engine_options(local="this process"),
                                o.progress_options()])
    p.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help=AUDIO_HELP)
    p.add_argument("--out", type=Path, default=None,
                   help="FILE.json (list of clip objects), FILE.csv (flat columns) or a folder DIR (time series "
                        "CSV/Parquet, report.md, summary.json and figures); default: JSON on stdout")
    p.add_argument("--hop", type=float, default=30.0, metavar="SECONDS",
                   help="seconds between the starts of the 30-s windows in audio (default 30: consecutive windows; "
                        "10 gives overlapping windows every 10 s)")
    p.add_argument("--clamp", action="store_true",
                   help="clip the qualities to 1-5 and ISOP/ISOE to [-1, 1] (recorded as ratings=clamped; the raw "
                        "values stay in raw_* columns); default: raw values, out-of-scale ones flagged")
    p.set_defaults(handler=_predict)


def _predict(args) -> int:
    from soundaq.base.errors import UserError
    from soundaq.benchmark.options import calibration_from_args, channels_from_args, checkpoint_from_args
    from soundaq.models_zoo.predict import predict_files, write_predictions
    from soundaq.models_zoo.recording import MAX_HOP_S

    folder = args.out is not None and (args.out.is_dir() or args.out.suffix == "")
    if args.out is not None and not folder and args.out.suffix.lower() not in (".json", ".csv"):
        raise UserError(f"{args.out}: unknown output type; fix: name the output FILE.json, FILE.csv or a folder")
    if not 0 < args.hop <= MAX_HOP_S:
        raise UserError(f"--hop {args.hop:g}: must be in (0, {MAX_HOP_S:g}] seconds")
    channels = channels_from_args(args)
    calibration = calibration_from_args(args)
    engine = _open_engine(args)   # an unreachable cluster is said before anything is downloaded or written
    if args.out is not None:      # an unwritable destination is said before the predictions, not after
        from soundaq.base.fileio import check_output_folder

        check_output_folder(args.out if folder else args.out.parent)
    checkpoint = checkpoint_from_args(args, progress=not args.no_progress)
    report = lambda msg: print(f"soundaq predict: skipped {msg}", file=sys.stderr)  # noqa: E731
    if engine is None:
        results, failures = predict_files(
            args.inputs, checkpoint, calibration, args.batch_size, args.device, report=report,
            hop_s=args.hop, clamp=args.clamp, progress=not args.no_progress, channels=channels)
    else:
        with engine:
            results, failures = _predict_on_ray(args, engine, checkpoint, calibration, channels, report)
    if not results:   # nothing predicted: the command failed as a whole (docs/reliability.md: exit 2)
        raise UserError(f"no input could be predicted ({len(failures)} skipped); see the messages above")
    if folder:
        from soundaq.evaluation.recording_report import write_analysis

        written = write_analysis(results, args.out, checkpoint=checkpoint, hop_s=args.hop, clamp=args.clamp,
                                 calibration=calibration.source, skipped=failures)
        print(f"soundaq predict: {len(results)} recording(s) -> {args.out} ({written['windows']} windows; "
              f"report {written['report']}; {len(written['figures'])} figure(s))"
              + (f"; {len(failures)} skipped" if failures else ""), file=sys.stderr)
        for note in written["notes"]:
            print(f"soundaq predict: note: {note}", file=sys.stderr)
    elif args.out is None:
        import json

        print(json.dumps(results, indent=2))
    else:
        write_predictions(results, args.out)
        print(f"soundaq predict: {len(results)} clip(s) -> {args.out}"
              + (f"; {len(failures)} skipped" if failures else ""), file=sys.stderr)
    return 1 if failures else 0


def _open_engine(args):
    """None for ``--engine local`` (today's one-process run); else the connected Ray engine."""
    from soundaq.base.engine import open_engine

    if args.engine == "local":
        open_engine("local", address=args.address)   # refuses --address without --engine ray
        return None
    return open_engine("ray", workers=os.cpu_count() or 1, address=args.address,
                       gpus=0 if args.device == "cpu" else 1)


def _predict_on_ray(args, engine, checkpoint, calibration, channels, report):
    """The inputs in parts, one Ray task each (soundaq.models_zoo.predict_engine), with a bar over inputs."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from soundaq.models_zoo.predict_engine import predict_on_engine

    console = Console(stderr=True)
    with Progress(TextColumn("predict on Ray"), BarColumn(), MofNCompleteColumn(), TextColumn("inputs"),
                  TimeRemainingColumn(), console=console, transient=True,
                  disable=args.no_progress or not console.is_terminal) as bar:
        task = bar.add_task("predict", total=None)
        return predict_on_engine(args.inputs, checkpoint, engine, calibration=calibration,
                                 batch_size=args.batch_size, device=args.device, hop_s=args.hop, clamp=args.clamp,
                                 channels=channels, report=report, on_part=lambda n: bar.advance(task, n))
