"""``soundaq predict --engine ray``: one predict batch spread over a Ray cluster.

The inputs (files, folders expanded) are cut into as many contiguous parts as the engine has CPUs
(at most one part per input); each part is one unit of :mod:`soundaq.base.engine`, which loads the
checkpoint once and predicts its inputs with :func:`~soundaq.models_zoo.predict.predict_files`. The
recording ids are computed over the whole batch first, so a part gives every input the id the one-process
run gives it; the parts' results are joined in input order, so the JSON, CSV and analysis folder are
those of ``--engine local``. A bad input is one line, as ever; a part whose worker died more often than
Ray retries it makes each of its inputs one line naming why, and the other parts complete.

The audio warnings a part's worker raises (repaired headers, silent tracks, clipping) come back with its
results and are said here, in input order, as ``--engine local`` says them.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

from soundaq.base.engine import Engine, UnitFailed
from soundaq.models_zoo.features.opener import AudioWarning


def predict_part(paths: Sequence[Path], ids: Sequence[str], checkpoint: Path, calibration, batch_size: int,
                 device: str, hop_s: float, clamp: bool, channels) -> tuple[list, list[str], list[str]]:
    """One unit: predict ``paths`` (files) under their batch-wide ``ids``.

    Args:
        paths: the part's input files, in batch order.
        ids: their recording ids, computed over the whole batch.
        checkpoint: the checkpoint file (readable on this worker).
        calibration: the audio's calibration (:class:`~soundaq.models_zoo.features.Calibration`, or None).
        batch_size: 30-s windows per forward pass.
        device: the torch device.
        hop_s: seconds between window starts.
        clamp: clip the ratings to their scales (raw values kept).
        channels: the channel policy (parsed or as typed).

    Returns:
        ``(results, failures, warnings)``: the predicted inputs' objects, the skipped inputs' one-line
        messages, and the audio warnings raised while reading them (one line each).

    Raises:
        CheckpointError: the checkpoint cannot be read on this worker (the unit fails with its line).
    """
    from soundaq.models_zoo.predict import predict_files

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", AudioWarning)
        results, failures = predict_files(list(paths), checkpoint, calibration, batch_size, device, hop_s=hop_s,
                                          clamp=clamp, progress=False, channels=channels, ids=list(ids))
    said = [str(w.message) for w in caught if issubclass(w.category, AudioWarning)]
    return results, failures, said


def parts(count: int, cpus: int) -> list[slice]:
    """Contiguous slices cutting ``count`` inputs into at most ``cpus`` parts of nearly equal size."""
    if count == 0:
        return []
    size = math.ceil(count / max(1, min(cpus, count)))
    return [slice(i, min(i + size, count)) for i in range(0, count, size)]


def predict_on_engine(paths: Sequence[Path], checkpoint: Path, engine: Engine, *, calibration=None,
                      batch_size: int = 8, device: str = "cpu", hop_s: float = 30.0, clamp: bool = False,
                      channels="auto", report: Callable[[str], None] | None = None,
                      on_part: Callable[[int], None] | None = None) -> tuple[list, list[str]]:
    """Predict every input on ``engine``'s workers: ``predict_files``' results, in its order.

    Args:
        paths: audio files, features ``.npz`` files or folders of them.
        checkpoint: a checkpoint file every worker can read (a shared filesystem path on a cluster).
        engine: an open engine (:func:`soundaq.base.engine.open_engine`).
        calibration: the audio's calibration (default: ARAUS's).
        batch_size: 30-s windows per forward pass.
        device: the torch device of every worker (a GPU each when not ``cpu``).
        hop_s: seconds between window starts in audio.
        clamp: clip the ratings to their scales (raw values kept).
        channels: the channel policy of audio inputs.
        report: called with each skipped input's one-line message, in input order, once all parts are in.
        on_part: called with the number of inputs of each part as it finishes (a progress bar).

    Returns:
        ``(results, failures)`` as :func:`~soundaq.models_zoo.predict.predict_files` returns them.
    """
    from soundaq.models_zoo.features.batch import expand_inputs
    from soundaq.models_zoo.recording import recording_ids

    files = expand_inputs([Path(p) for p in paths], also=(".npz",))
    ids = recording_ids(files)
    cpus = int(engine.describe().get("cpus") or engine.workers or 1)
    cuts = parts(len(files), cpus)
    units = [(files[c], ids[c], checkpoint, calibration, batch_size, device, hop_s, clamp, channels) for c in cuts]
    done: dict[int, tuple[list, list[str], list[str]]] = {}
    for index, out in engine.run(predict_part, units, start_method="spawn"):
        if isinstance(out, UnitFailed):
            done[index] = ([], [f"{path}: not predicted ({out.why})" for path in units[index][0]], [])
        else:
            done[index] = out
        if on_part:
            on_part(len(units[index][0]))
    results: list = []
    failures: list[str] = []
    for index in range(len(units)):
        part_results, part_failures, said = done[index]
        results += part_results
        failures += part_failures
        for line in said:
            warnings.warn(line, AudioWarning, stacklevel=2)
        for line in part_failures:
            if report:
                report(line)
    return results, failures
