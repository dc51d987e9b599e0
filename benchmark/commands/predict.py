"""``soundaq predict``: scene, events, the 8 affective qualities, ISOP and ISOE of audio clips.

Each INPUT is an audio file (any format libsndfile reads) or a features ``.npz`` written by
``soundaq features`` (``mel`` [windows, 3001, 64], ``loudness`` [windows, 15000, 1], un-normalised).
The checkpoint's own normalisation statistics are applied. A bad input is reported on one line and
skipped; the others are still predicted and written (exit code 1 when anything was skipped).
"""
from __future__ import annotations

import sys
from pathlib import Path

from soundaq.base.errors import first_line

AUDIO_HELP = "audio files (wav, flac, ogg, ...) or features .npz files from `soundaq features`"


def register(sub) -> None:
    p = sub.add_parser("predict", help="predict scene, events, 8 qualities, ISOP/ISOE of clips with a checkpoint",
                       description=__doc__.split("\n\n", 1)[1] if __doc__ else None)
    p.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help=AUDIO_HELP)
    p.add_argument("--checkpoint", required=True, type=Path,
                   help="a .ckpt from `soundaq train` or `soundaq import-original`")
    p.add_argument("--out", type=Path, default=None,
                   help="write FILE.json (list of clip objects) or FILE.csv (flat columns); default: JSON on stdout")
    cal = p.add_mutually_exclusive_group()
    cal.add_argument("--calibration", type=Path, default=None,
                     help="recording of a calibration tone made with the same chain (see --calibration-db-spl)")
    cal.add_argument("--dbfs-offset", type=float, default=None,
                     help="dB SPL of a full-scale RMS of 1.0 (default: the ARAUS calibration, 103.03 dB)")
    p.add_argument("--calibration-db-spl", type=float, default=60.0,
                   help="level of the --calibration tone in dB SPL (default 60)")
    p.add_argument("--batch-size", type=int, default=8, help="windows per forward pass (default 8)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default cpu)")
    p.set_defaults(handler=_predict)


class _Skip(Exception):
    """One input cannot be predicted; the message says why (already one line)."""


def _load_npz(path: Path):
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as data:
            if "mel" not in data:
                raise _Skip(f"{path}: no 'mel' array; fix: make it with `soundaq features`")
            mel = np.asarray(data["mel"], dtype=np.float32)
            loud = np.asarray(data["loudness"], dtype=np.float32) if "loudness" in data else None
            duration = float(data["duration_s"]) if "duration_s" in data else None
    except (OSError, ValueError, EOFError) as err:
        raise _Skip(f"{path}: not a readable .npz ({first_line(err)[:120]}); "
                    "fix: make it again with `soundaq features`") from None
    if mel.ndim == 2:
        mel = mel[None]
    if loud is not None and loud.ndim == 2:
        loud = loud[None]
    if mel.ndim != 3 or mel.shape[1:] != (3001, 64):
        raise _Skip(f"{path}: mel has shape {mel.shape}, expected [windows, 3001, 64]; "
                    "fix: make it with `soundaq features`")
    if loud is not None and (loud.ndim != 3 or loud.shape[1:] != (15000, 1) or loud.shape[0] != mel.shape[0]):
        raise _Skip(f"{path}: loudness has shape {loud.shape}, expected [{mel.shape[0]}, 15000, 1]; "
                    "fix: make it with `soundaq features`")
    if not np.all(np.isfinite(mel)) or (loud is not None and not np.all(np.isfinite(loud))):
        raise _Skip(f"{path}: features hold NaN/Inf; fix: make them again with `soundaq features`")
    return mel, loud, duration


def _features(path: Path, calibration, need_loudness: bool = True):
    """``(mel, loudness or None, duration_s)`` of one input, un-normalised. Audio is cut into the
    feature pipeline's 30-s windows; the loudness (the slow part) is computed only for nets that use it."""
    import numpy as np

    from soundaq.base.errors import UserError

    if not path.exists():
        raise _Skip(f"{path}: no such file; fix: check the path")
    if path.suffix.lower() == ".npz":
        return _load_npz(path)
    from soundaq.models_zoo.features import Calibration, clip_features, load_audio, log_mel, split_windows

    try:
        samples, rate = load_audio(path)
        if need_loudness:
            mel, loud = clip_features(samples, rate, calibration or Calibration.default())
        else:
            mel, loud = np.stack([log_mel(w, rate) for w in split_windows(samples, rate)]).astype(np.float32), None
    except UserError as err:
        raise _Skip(str(err)) from None
    except ValueError as err:  # empty signal, a level outside the loudness model's range, ...
        raise _Skip(f"{path}: {first_line(err)}; "
                    "fix: pass a non-empty recording (check --calibration/--dbfs-offset for loudness)") from None
    return mel, loud, len(samples) / float(rate)


def predict_files(paths, checkpoint: Path, calibration=None, batch_size: int = 8, device: str = "cpu",
                  report=None):
    """Predict every input; returns ``(results, failures)`` (JSON objects, one-line messages).

    ``report(message)`` is called for each skipped input as it happens.
    """
    import numpy as np
    import torch

    from soundaq.models_zoo.checkpoints import load_checkpoint
    from soundaq.models_zoo.data.normalisation import Normaliser
    from soundaq.models_zoo.module import SoundscapeModule
    from soundaq.models_zoo.predict import clip_result, merge_outputs

    net, norm_stats, info = load_checkpoint(checkpoint)
    model = info["model"]
    module = SoundscapeModule(model, net=net, norm_stats=norm_stats).to(device).eval()
    normaliser = Normaliser(norm_stats)
    uses_loudness = module.uses_loudness
    results, failures = [], []
    for path in paths:
        path = Path(path)
        try:
            mel, loud, duration = _features(path, calibration, uses_loudness)
            if uses_loudness and loud is None:
                raise _Skip(f"{path}: {model} needs loudness but the .npz has none; "
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
        except _Skip as err:
            failures.append(str(err))
            if report:
                report(str(err))
    return results, failures


def _predict(args) -> int:
    from soundaq.base.errors import UserError
    from soundaq.base.fileio import atomic_write_json, atomic_path

    if args.out is not None and args.out.suffix.lower() not in (".json", ".csv"):
        raise UserError(f"{args.out}: unknown output type; fix: name the output FILE.json or FILE.csv")
    if args.batch_size < 1:
        raise UserError("--batch-size must be at least 1")
    calibration = None
    if args.calibration is not None or args.dbfs_offset is not None:
        from soundaq.models_zoo.features import Calibration

        calibration = (Calibration.from_recording(args.calibration, args.calibration_db_spl)
                       if args.calibration is not None else Calibration.from_dbfs_offset(args.dbfs_offset))
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
