"""``soundaq predict``: scene, events, the 8 affective qualities, ISOP and ISOE of audio clips.

Each INPUT is an audio file (any format libsndfile reads) or a features ``.npz`` written by
``soundaq features`` (``mel`` [windows, 3001, 64], ``loudness`` [windows, 15000, 1], un-normalised).
The checkpoint's own normalisation statistics are applied. A bad input is reported on one line and
skipped; the others are still predicted and written (exit code 1 when anything was skipped).
"""
from __future__ import annotations

import sys
from pathlib import Path

AUDIO_HELP = "audio files (wav, flac, ogg, ...) or features .npz files from `soundaq features`"


def register(sub) -> None:
    from soundaq.benchmark import options as o

    p = sub.add_parser("predict", help="predict scene, events, 8 qualities, ISOP/ISOE of clips with a checkpoint",
                       description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
                       parents=[o.calibration_options()])
    p.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help=AUDIO_HELP)
    p.add_argument("--checkpoint", required=True, type=Path,
                   help="a .ckpt from `soundaq train` or `soundaq import-original`")
    p.add_argument("--out", type=Path, default=None,
                   help="write FILE.json (list of clip objects) or FILE.csv (flat columns); default: JSON on stdout")
    p.add_argument("--batch-size", type=o.positive_int, default=8, help="windows per forward pass (default 8)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default cpu)")
    p.set_defaults(handler=_predict)


def _predict(args) -> int:
    from soundaq.base.errors import UserError
    from soundaq.base.fileio import atomic_write_json, atomic_path

    if args.out is not None and args.out.suffix.lower() not in (".json", ".csv"):
        raise UserError(f"{args.out}: unknown output type; fix: name the output FILE.json or FILE.csv")
    from soundaq.benchmark.options import calibration_from_args

    calibration = calibration_from_args(args)
    from soundaq.models_zoo.predict import predict_files

    results, failures = predict_files(
        args.inputs, args.checkpoint, calibration, args.batch_size, args.device,
        report=lambda msg: print(f"soundaq predict: skipped {msg}", file=sys.stderr))
    if not results:
        raise UserError(f"no input could be predicted ({len(failures)} skipped); see the messages above",
                        exit_code=1)
    if args.out is None:
        import json

        print(json.dumps(results, indent=2))
    elif args.out.suffix.lower() == ".json":
        atomic_write_json(args.out, results)
    else:
        from soundaq.models_zoo.predict import results_frame

        with atomic_path(args.out) as tmp:
            results_frame(results).to_csv(tmp, index=False)
    if args.out is not None:
        print(f"soundaq predict: {len(results)} clip(s) -> {args.out}"
              + (f"; {len(failures)} skipped" if failures else ""), file=sys.stderr)
    return 1 if failures else 0
