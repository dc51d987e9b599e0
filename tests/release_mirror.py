"""A local mirror of the SoundSCaper release at the pinned commit, built in a temp folder for tests.

Weights: the three reference files in ../shared/reference/checkpoints (copied into the temp mirror
only). Normalisation files: written here in the release's own format from the statistics in
../shared/reference/sample_clip/original_normalisation_stats.json: a protocol-3 pickle of
``{"mean": ndarray, "std": ndarray}`` (float32 [64] for log-mel, float64 [1] for loudness) as numpy 1.x
wrote it (``numpy.core.multiarray._reconstruct`` and ``numpy.dtype(str, 0, 1)`` reductions). Written
this way the bytes are the release's own: their git blob ids equal the pins, which
``test_norm_pickles_rebuilt_from_the_json_match_the_pins`` checks.
"""
from __future__ import annotations

import io
import json
import pickle
import shutil
from pathlib import Path

import numpy as np

#: registry name -> file name in ../shared/reference/checkpoints
REFERENCE_WEIGHTS = {"AD_CNN": "AD_CNN_final_model.pth", "Baseline_CNN": "Baseline_CNN_final_model.pth",
                     "Hierarchical_CNN": "Hierarchical_CNN_final_model.pth"}


class _Numpy1Pickler(pickle.Pickler):
    """Reduces arrays and dtypes the way numpy 1.x did (the release was pickled under numpy 1)."""

    def reducer_override(self, obj):
        if isinstance(obj, np.dtype):
            return np.dtype, (obj.str[1:], 0, 1), obj.__reduce__()[2]
        if isinstance(obj, np.ndarray):
            try:
                from numpy._core.multiarray import _reconstruct
            except ImportError:  # numpy 1
                from numpy.core.multiarray import _reconstruct
            # a fresh (0,) tuple per array, as numpy 1 made one per call (pickle's memo sees new objects)
            return _reconstruct, (np.ndarray, tuple([0]), b"b"), (1, obj.shape, obj.dtype, False, obj.tobytes())
        return NotImplemented


def release_norm_pickle(mean, std, dtype) -> bytes:
    """The bytes of a release ``norm_*.pickle`` holding ``mean`` and ``std``."""
    buf = io.BytesIO()
    _Numpy1Pickler(buf, protocol=3).dump({"mean": np.asarray(mean, dtype=dtype), "std": np.asarray(std, dtype=dtype)})
    return buf.getvalue().replace(b"numpy._core.multiarray", b"numpy.core.multiarray")


def write_norm_pickles(stats_json: Path, folder: Path) -> tuple[Path, Path]:
    """``norm_log_mel.pickle`` and ``norm_loudness.pickle`` in ``folder`` from the reference JSON."""
    stats = json.loads(Path(stats_json).read_text())
    folder.mkdir(parents=True, exist_ok=True)
    mel = folder / "norm_log_mel.pickle"
    loud = folder / "norm_loudness.pickle"
    mel.write_bytes(release_norm_pickle(stats["log_mel"]["mean"], stats["log_mel"]["std"], np.float32))
    loud.write_bytes(release_norm_pickle(stats["loudness"]["mean"], stats["loudness"]["std"], np.float64))
    return mel, loud


def build_mirror(checkpoints_dir: Path, stats_json: Path, dest: Path, models=tuple(REFERENCE_WEIGHTS)) -> Path:
    """``dest`` laid out as the release repository's paths at the pinned commit (what a mirror is)."""
    from soundaq.models_zoo.pretrained_weights import NORM_FILES, released

    for model in models:
        target = dest / released(model).file.release_path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(checkpoints_dir / REFERENCE_WEIGHTS[model], target)
    made = write_norm_pickles(stats_json, dest / "_norm")
    for spec, path in zip(NORM_FILES, made):
        (dest / spec.release_path).parent.mkdir(parents=True, exist_ok=True)
        path.replace(dest / spec.release_path)
    (dest / "_norm").rmdir()
    return dest
