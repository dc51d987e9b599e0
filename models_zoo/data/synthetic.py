"""The embedded default dataset: deterministic synthetic 30-s soundscapes with ARAUS-style labels, on disk.

Nothing here is real data. Every clip is a mix of procedurally made sources (traffic, vehicle
pass-bys, birdsong, other animals, speech-like babble with footsteps, music-like tones, water,
wind, rural rustle, urban background noise, silence gaps), drawn per acoustic scene, mixed at
calibrated sound pressure levels (50-80 dB SPL), labelled with the 15 events the sources stand
for (keeping the label hierarchy of the real annotation) and rated on the 8 affective qualities
by a documented rule of the mix plus simulated rater noise (see docs/data.md). The jobs live in
their own modules: the mix sampler in :mod:`.synthetic_mix`, the sound generators in
:mod:`.synthetic_sounds`, the rating rule in :mod:`.synthetic_rule`; this module writes the set
into the cache and finds it there again.

Everything is a function of ``(seed, clip index)``: the mix parameters, the audio and the rater
noise each come from their own ``numpy.random.SeedSequence`` branch, so clips can be generated in
any order, in parallel, or resumed, and always come out bit-identical.

Layout of a prepared set (``prepare_embedded``)::

    <cache>/embedded/<key>/
        manifest.json                  provenance; written last (its presence = complete)
        labels/<split>_set_*.txt       the 15 ARAUS-style label files (read by labels.read_split)
        features/Feature_log_mel/<clip>.npy            float32 [3001, 64]
        features/Feature_loudness_ISO532_1/<clip>.npy  float32 [15000, 1] (sone)
        mixes.csv                      per clip: scene, split, source levels, LAeq, N5, rule output
        norm_stats.json                normalisation statistics of the training split
        audio/<clip>.flac              only with ``with_audio=True``
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from soundaq.base.artifacts import read_record, set_aside
from soundaq.base.errors import UserError, first_line
from soundaq.base.fileio import atomic_path, atomic_write_json, atomic_write_text
from soundaq.base.layout import Below
from soundaq.base.vocab import QUALITIES, iso_coordinates
from soundaq.models_zoo.data.synthetic_mix import DURATION_S, SAMPLE_RATE, SOURCES, Mix, check_hierarchy, draw_mix
from soundaq.models_zoo.data.synthetic_rule import RATERS, aq_expectation, latent_pe, n5, simulate_ratings
from soundaq.models_zoo.data.synthetic_sounds import PASCAL_PER_UNIT, level_db_spl, render

if TYPE_CHECKING:
    import pandas as pd
    from rich.progress import Progress, TaskID

    from soundaq.models_zoo.features import Calibration

#: Bump when anything that changes the generated clips or labels changes (part of the cache key).
GENERATOR_VERSION = 1
DEFAULT_CLIPS = 360
#: Fewest clips that give every scene a training, validation and test clip.
MIN_CLIPS = 12
DEFAULT_SEED = 0
FEATURE_SUBDIRS = ("Feature_log_mel", "Feature_loudness_ISO532_1")
SYNTHETIC_LABEL = "synthetic"
_SPLITS = ("training", "validation", "test")


class SyntheticError(UserError):
    """The embedded set cannot be prepared (message names the folder and the fix)."""


def calibration() -> Calibration:
    """The calibration the loudness feature uses for synthetic audio (RMS 1.0 = 100 dB SPL)."""
    from soundaq.models_zoo.features import Calibration

    return Calibration(PASCAL_PER_UNIT, source="soundaq synthetic audio (RMS 1.0 = 100 dB SPL)")


def data_label(n_clips: int = DEFAULT_CLIPS, seed: int = DEFAULT_SEED) -> str:
    """What every table, figure and report made from the embedded set writes in its data column."""
    return f"synthetic (soundaq embedded set v{GENERATOR_VERSION}, {n_clips} clips, seed {seed})"


def embedded_key(n_clips: int, seed: int) -> str:
    """Folder name of a prepared set: generator version, size, seed and a digest of the feature parameters."""
    import hashlib

    from soundaq.models_zoo.features import feature_parameters

    params = json.dumps(feature_parameters(backend="fast", calibration=calibration()), sort_keys=True)
    digest = hashlib.sha256(params.encode()).hexdigest()[:10]
    return f"v{GENERATOR_VERSION}-n{n_clips}-seed{seed}-f{digest}"


@dataclass
class EmbeddedSet:
    """A prepared embedded set on disk: its folder and its manifest (see the module's layout)."""

    root: Path
    manifest: dict[str, Any] = field(default_factory=dict)

    labels_dir = Below("root", "labels", "The folder of the 15 ARAUS-style label files.")
    features_dir = Below("root", "features", "The folder holding one subfolder per feature (:data:`FEATURE_SUBDIRS`).")
    norm_stats_path = Below("root", "norm_stats.json", "The normalisation statistics of the training split (JSON).")
    mixes_path = Below("root", "mixes.csv", "The per-clip table of the mix, its measured N5 and the rule's output (CSV).")
    audio_dir = Below("root", "audio", "The folder of the clips' FLAC audio (present when prepared ``with_audio``).")

    def mixes(self) -> pd.DataFrame:
        """The table of :attr:`mixes_path`, one row per clip."""
        import pandas as pd

        return pd.read_csv(self.mixes_path)


def _feature_paths(root: Path, clip: str) -> tuple[Path, Path]:
    return (root / "features" / FEATURE_SUBDIRS[0] / f"{clip}.npy",
            root / "features" / FEATURE_SUBDIRS[1] / f"{clip}.npy")


def _features_ok(root: Path, clip: str) -> bool:
    """Both feature files exist with the right shape and size (a truncated file fails)."""
    for path, shape in zip(_feature_paths(root, clip), ((3001, 64), (15000, 1))):
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return False
        if tuple(arr.shape) != shape or arr.dtype != np.float32:
            return False
    return True


def _derived_files_problem(root: Path) -> tuple[Path, str] | None:
    """A damaged file among those a complete set derives from its clips: ``(path, why)``, or None.

    The files are the statistics, the label files and the mixes table; the per-clip features are
    checked when generation resumes.
    """
    from soundaq.models_zoo.data.normalisation import load_norm_stats

    stats = root / "norm_stats.json"
    try:
        load_norm_stats(stats)
    except UserError as err:
        return stats, first_line(err)
    for split in _SPLITS:
        path = root / "labels" / f"{split}_set_audio_file_ids.txt"
        if not path.is_file() or path.stat().st_size == 0:
            return path, "missing or empty"
    mixes = root / "mixes.csv"
    if not mixes.is_file() or mixes.stat().st_size == 0:
        return mixes, "missing or empty"
    return None


def _save_npy(path: Path, arr: np.ndarray) -> None:
    with atomic_path(path, suffix=".npy") as tmp, open(tmp, "wb") as fh:
        np.save(fh, np.ascontiguousarray(arr, dtype=np.float32))


def make_clip(root: Path | str, mix: Mix, with_audio: bool = False) -> dict[str, Any]:
    """Render one clip, compute its features and write them (and optionally its audio) atomically.

    Args:
        root: the set's folder (``<cache>/embedded/<key>``).
        mix: the clip's mix (:func:`~.synthetic_mix.draw_mix`).
        with_audio: also write ``audio/<clip>.flac``.

    Returns:
        ``{"clip": id, "n5": N5 in sone, "laeq_measured": unweighted level in dB SPL}``.

    Raises:
        SyntheticError: the mix clips at full scale (see :func:`write_audio`).
    """
    from soundaq.models_zoo.features import clip_features

    root = Path(root)
    samples = render(mix)
    mel, loud = clip_features(samples, SAMPLE_RATE, calibration())
    mel_path, loud_path = _feature_paths(root, mix.clip)
    _save_npy(mel_path, mel[0])
    _save_npy(loud_path, loud[0])
    if with_audio:
        write_audio(root / "audio" / f"{mix.clip}.flac", samples)
    return {"clip": mix.clip, "n5": n5(loud[0]), "laeq_measured": level_db_spl(samples)}


def write_audio(path: Path, samples: np.ndarray) -> None:
    """Write 24-bit FLAC at :data:`SAMPLE_RATE` (the calibration above applies to it), atomically.

    Args:
        path: the FLAC file to write.
        samples: mono float samples ``[n]`` in units where RMS 1.0 is 100 dB SPL.

    Raises:
        SyntheticError: a sample reaches full scale (a generator bug: the file would clip).
    """
    import soundfile as sf

    if float(np.max(np.abs(samples))) >= 1.0:
        raise SyntheticError(f"{path}: synthetic mix clips at full scale; fix: report this as a generator bug")
    with atomic_path(path, suffix=".flac") as tmp:
        sf.write(str(tmp), samples, SAMPLE_RATE, subtype="PCM_24", format="FLAC")


def _make_clip_job(job: tuple[str, Mix, bool]) -> dict[str, Any]:
    root, mix, with_audio = job
    return make_clip(root, mix, with_audio)


def _fmt(v: float) -> str:
    return repr(float(v))


def write_label_files(folder: Path, mixes: list[Mix], ratings: dict[str, dict[str, float]]) -> None:
    """Write the 15 ARAUS-style label files (five per split), one line per clip in index order.

    Args:
        folder: where the files go (``<split>_set_<role>.txt``).
        mixes: every clip's mix, in index order.
        ratings: per clip id, the mean rating of each quality (1-5).
    """
    for split in _SPLITS:
        part = [m for m in mixes if m.split == split]
        if not part:
            continue
        files = {
            "audio_file_ids": [m.clip for m in part],
            "acoustic_scene_labels": [m.scene for m in part],
            "audio_event_labels": ["\t".join(m.events()) for m in part],
            "PAQ_8D_AQs": [" ".join(_fmt(ratings[m.clip][q]) for q in QUALITIES) for m in part],
            "ISOP_ISOE": [" ".join(_fmt(v) for v in iso_coordinates(*(ratings[m.clip][q] for q in QUALITIES)))
                          for m in part],
        }
        for role, lines in files.items():
            atomic_write_text(folder / f"{split}_set_{role}.txt", "\n".join(lines) + "\n")


def _reuse(root: Path, with_audio: bool) -> EmbeddedSet | None:
    """The set at ``root`` when it is complete and whole; damaged files are set aside (then None)."""
    manifest_path = root / "manifest.json"
    if not manifest_path.is_file():
        return None
    manifest, problem = read_record(manifest_path)
    if problem is not None:
        set_aside(manifest_path, problem, "the set is completed again (generated clips are kept)")
    elif manifest is not None and manifest.get("complete") and (not with_audio or manifest.get("with_audio")):
        damaged = _derived_files_problem(root)
        if damaged is None:
            return EmbeddedSet(root, manifest)
        set_aside(damaged[0], damaged[1], "the set's labels and statistics are written again")
    return None


def _generate(jobs: list[tuple[str, Mix, bool]], workers: int, bar: Progress, task: TaskID) -> dict[str, dict]:
    """Make the clips of ``jobs``, in a pool of ``workers`` spawned processes when there are several."""
    measured: dict[str, dict] = {}
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            res = _make_clip_job(job)
            measured[res["clip"]] = res
            bar.advance(task)
        return measured
    from soundaq.base.engine import Engine, UnitFailed

    # the shared local pool: spawned workers with one BLAS thread that end with this process, and a
    # Ctrl-C that starts no new clip (finished clips are kept; a rerun completes the set)
    for index, res in Engine("local", workers=workers).run(_make_clip_job, [(job,) for job in jobs],
                                                           start_method="spawn"):
        if isinstance(res, UnitFailed):
            raise SyntheticError(f"clip {jobs[index][1].clip}: {res.why}")
        measured[res["clip"]] = res
        bar.advance(task)
    return measured


def _rate(root: Path, mixes: list[Mix], measured: dict[str, dict]) -> tuple[list[dict], dict[str, dict[str, float]]]:
    """The rows of ``mixes.csv`` and the simulated ratings of every clip (N5 from the written features)."""
    rows, ratings = [], {}
    for m in mixes:
        if m.clip in measured:
            clip_n5 = measured[m.clip]["n5"]
        else:
            clip_n5 = n5(np.load(_feature_paths(root, m.clip)[1], mmap_mode="r"))
        expected = aq_expectation(m.levels, m.silence, clip_n5)
        ratings[m.clip] = simulate_ratings(m, expected)
        p, e = latent_pe(m.levels, m.silence, clip_n5)
        exp_isop, exp_isoe = iso_coordinates(*(expected[q] for q in QUALITIES))
        row = {"clip": m.clip, "split": m.split, "scene": m.scene, "data": SYNTHETIC_LABEL,
               **{f"level_{s}": m.levels.get(s, float("nan")) for s in SOURCES},
               "silence_gaps": ";".join(f"{a:g}-{b:g}" for a, b in m.gaps), "mix_db": m.mix_db, "n5": clip_n5,
               "rule_p": p, "rule_e": e, **{f"rule_{q}": expected[q] for q in QUALITIES},
               "rule_isop": float(exp_isop), "rule_isoe": float(exp_isoe)}
        rows.append(row)
    return rows, ratings


def _write_derived(es: EmbeddedSet, mixes: list[Mix], measured: dict[str, dict]) -> None:
    """Write the label files, the mixes table and the training split's normalisation statistics."""
    from soundaq.models_zoo.data.normalisation import compute_norm_stats, save_norm_stats

    rows, ratings = _rate(es.root, mixes, measured)
    write_label_files(es.labels_dir, mixes, ratings)
    _write_csv(es.mixes_path, rows)
    train = [m.clip for m in mixes if m.split == "training"]
    stats = compute_norm_stats((np.load(a, mmap_mode="r"), np.load(b, mmap_mode="r"))
                               for a, b in (_feature_paths(es.root, c) for c in train))
    save_norm_stats(es.norm_stats_path, stats, origin=f"training split of the embedded set ({len(train)} clips)")


def prepare_embedded(cache_dir: Path | str | None = None, n_clips: int = DEFAULT_CLIPS, seed: int = DEFAULT_SEED,
                     workers: int = 2, with_audio: bool = False, progress: bool = True,
                     force: bool = False) -> EmbeddedSet:
    """Generate the embedded set into ``<cache>/embedded/<key>`` unless it is already complete there.

    Resumable: clips whose features are already on disk are not generated again. The manifest is
    written last, so an interrupted run is finished by the next call.

    Args:
        cache_dir: the cache folder (None: ``$SOUNDAQ_CACHE`` or the default).
        n_clips: clips in the set (at least :data:`MIN_CLIPS`).
        seed: the seed every clip's randomness branches from.
        workers: processes that generate clips (1: in this process).
        with_audio: also write each clip's FLAC audio.
        progress: show a progress bar.
        force: generate every clip again, even when the set is complete.

    Returns:
        The prepared set, its manifest loaded.

    Raises:
        SyntheticError: too few clips, or the cache folder cannot be created.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from soundaq.base.paths import embedded_root

    if n_clips < MIN_CLIPS:
        raise SyntheticError(f"{n_clips} clips is too few for a training/validation/test split of every scene; "
                             f"fix: ask for at least {MIN_CLIPS} clips")
    check_hierarchy()
    root = embedded_root(cache_dir) / embedded_key(n_clips, seed)
    manifest_path = root / "manifest.json"
    reused = None if force else _reuse(root, with_audio)
    if reused is not None:
        return reused
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SyntheticError(f"{root}: cannot create the cache folder ({exc.strerror}); "
                             "fix: set SOUNDAQ_CACHE or --cache-dir to a writable folder") from None
    if force and manifest_path.exists():
        manifest_path.unlink()
    started = time.perf_counter()
    mixes = [draw_mix(seed, i) for i in range(n_clips)]
    todo = [m for m in mixes if force or not _features_ok(root, m.clip)
            or (with_audio and not (root / "audio" / f"{m.clip}.flac").is_file())]
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, disable=not progress, transient=False) as bar:
        task = bar.add_task("embedded set (synthetic)", total=n_clips, completed=n_clips - len(todo))
        measured = _generate([(str(root), m, with_audio) for m in todo], workers, bar, task)
    generated_s = time.perf_counter() - started
    es = EmbeddedSet(root)
    _write_derived(es, mixes, measured)
    es.manifest = _manifest(root, mixes, seed, with_audio, generated=len(todo), seconds=generated_s, workers=workers)
    atomic_write_json(manifest_path, es.manifest)
    return es


def _manifest(root: Path, mixes: list[Mix], seed: int, with_audio: bool, *, generated: int, seconds: float,
              workers: int) -> dict[str, Any]:
    """The provenance record of a complete set (``manifest.json``)."""
    return {
        "data": data_label(len(mixes), seed), "synthetic": True, "complete": True,
        "generator_version": GENERATOR_VERSION, "seed": seed, "n_clips": len(mixes), "key": root.name,
        "root": str(root), "sample_rate": SAMPLE_RATE, "duration_s": DURATION_S,
        "calibration": {"pascal_per_unit": PASCAL_PER_UNIT, "db_spl_at_rms_1": 100.0},
        "split_sizes": {s: sum(m.split == s for m in mixes) for s in _SPLITS},
        "raters": RATERS, "with_audio": bool(with_audio),
        "generated_clips": generated, "seconds": round(seconds, 1), "workers": workers,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "what": "procedurally generated soundscapes with rule-based ratings; not recordings, not human ratings",
    }


def _write_csv(path: Path, rows: list[dict]) -> None:
    import csv
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) and math.isfinite(v) else
                             "" if isinstance(v, float) else v) for k, v in row.items()})
    atomic_write_text(path, buf.getvalue())
