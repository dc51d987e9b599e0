"""The embedded synthetic set written in ARAUS's own component layout, so both protocols run offline.

Nothing here is real data. The sound generators, calibration and rating rule are those of the
embedded set (:mod:`soundaq.models_zoo.data.synthetic_sounds`, :mod:`~.synthetic_rule`); what
changes is the structure, which follows ARAUS (Ooi et al. 2023, repository ``ntudsp/araus-dataset-baseline-models``):

* **base recordings** (``soundscapes/``, 30 s, 44.1 kHz, two channels, 16-bit WAV): per fold 0-5,
  ``recordings`` synthetic scenes (:func:`synthetic_mix.draw_mix` of their own indices), disjoint across
  folds; fold 0 holds recordings no other fold uses (ARAUS's independent test set). The second
  channel is the first delayed by 0-30 samples (up to 0.7 ms, an interaural delay) and 1.5 dB
  apart at most; each file is scaled to a peak of -6 dBFS and ``gain_s`` (``data/soundscapes.csv``)
  plays it back at its in-situ level ``insitu_leq`` (the generator's level of the scene, dB SPL)
  under ARAUS's calibration (RMS 1.0 = 103.033 dB SPL);
* **maskers** (``maskers/``, 30 s, mono): per fold ``recordings`` single-source sounds of ARAUS's
  masker classes the generators have (bird, traffic, water, wind), disjoint across folds, with
  ARAUS's calibration pair per level L = 46-83 dB (``gain_<L>dB`` and ``leq_at_gain_<L>dB``, the
  level the gain gives, computed on the written file) in ``data/maskers.csv``;
* **responses** (``data/responses.csv``): per fold ``participants`` raters
  (``ARAUS_<fold*1000 + p + 1>``), in groups of ``raters`` that rate the same ``stimuli`` stimuli, each
  a (recording, masker, signal-to-masker ratio) of that fold with the ratio drawn from ARAUS's
  -6, -3, 0, 3, 6 dB (those that keep the masker within its calibrated 46-83 dB). Each row's rating
  is :func:`synthetic_rule.aq_expectation` of the stimulus (the recording's sources plus the masker's
  source at its level; N5 from the stimulus' own loudness) plus the rater's bias (sd
  :data:`synthetic_rule.RATER_BIAS_SD`, fixed per rater) and per-item noise (sd
  :data:`synthetic_rule.RATER_NOISE_SD`), rounded to an integer 1-5;
* **labels** (``labels/``, the SoundSCaper label files the ``araus`` source joins with ``--labels``):
  the recording's scene, the events of its sources and of the masker's (the label hierarchy kept),
  split as the published SoundSCaper split is: fold 0 in test, and per fold 1-5 one rater of five in
  test, in fold 1 one of five in validation, the others in training (participants disjoint across
  splits, recordings and maskers not);
* ``manifest.json`` (written last: its presence means complete) with ``"synthetic": true``, the
  sizes, the seed and a SHA-256 digest of every file of the set.

The stimulus of each row is mixed by the ``araus`` components source exactly as ARAUS mixes real
ones (:mod:`soundaq.models_zoo.data.araus_components`); generation computes each distinct stimulus'
features once through the same feature cache, so a leaderboard run finds them there.
"""
from __future__ import annotations

import hashlib
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from soundaq.base.fileio import atomic_path, atomic_write_json, atomic_write_text
from soundaq.base.layout import Below
from soundaq.base.vocab import EVENTS, QUALITIES, iso_coordinates
from soundaq.models_zoo.data import araus_components as ac
from soundaq.models_zoo.data import synthetic as syn
from soundaq.models_zoo.data import synthetic_mix as mixes
from soundaq.models_zoo.data import synthetic_rule as rule
from soundaq.models_zoo.data import synthetic_sounds as sounds

#: Bump when anything that changes the written files changes (part of the folder name).
LAYOUT_VERSION = 1
FOLDS = (0, 1, 2, 3, 4, 5)
#: ARAUS's signal-to-masker ratios (dB).
SMRS = (-6, -3, 0, 3, 6)
#: ARAUS's calibrated masker levels (dB).
CALIBRATED_LEVELS = range(46, 84)
#: ARAUS masker classes the generators can make -> the generator's source.
MASKER_SOURCES = {"bird": "birdsong", "traffic": "traffic", "water": "water", "wind": "wind"}
#: Level the masker's source is rendered at before scaling (dB SPL; the file is rescaled anyway).
MASKER_RENDER_DB = 65.0
FILE_PEAK = 0.5
#: Index offsets that keep each part's random streams apart from each other and from the default set.
_SCAPE, _MASKER, _COMBO, _RATER = 100_000, 200_000, 300_000, 400_000


class SyntheticArausError(syn.SyntheticError):
    """The ARAUS-layout synthetic set cannot be made (message names the folder and the fix)."""


@dataclass(frozen=True)
class LayoutSize:
    """Per fold: base recordings (and as many maskers), raters, stimuli each rater rates, raters per stimulus."""

    recordings: int = 4
    participants: int = 10
    stimuli: int = 6
    raters: int = 5

    def check(self) -> None:
        """Check the sizes.

        Raises:
            SyntheticArausError: a size is out of range, or fewer than 5 participants per fold.
        """
        if not (1 <= self.recordings < 1000 and 1 <= self.participants < 1000 and 1 <= self.stimuli < 100
                and 1 <= self.raters):
            raise SyntheticArausError(f"{self}: sizes out of range; fix: 1-999 recordings and participants per "
                                      "fold, 1-99 stimuli per participant, at least 1 rater per stimulus")
        if self.participants < 5:
            raise SyntheticArausError(f"{self.participants} participants per fold: the published-style split needs "
                                      "5 per fold (training, validation and test raters); fix: ask for at least 5")

    def key(self, seed: int) -> str:
        """Folder name of the set of these sizes and ``seed`` (layout version included)."""
        return (f"araus-v{LAYOUT_VERSION}-r{self.recordings}-p{self.participants}-s{self.stimuli}"
                f"-k{self.raters}-seed{seed}")


def _ppu() -> float:
    from soundaq.models_zoo.features import Calibration

    return Calibration.default().pascal_per_unit


def _level(x: np.ndarray, ppu: float) -> float:
    """Level (dB SPL) of full-scale samples under a calibration of ``ppu`` pascals per unit (mean square
    over every sample and channel).
    """
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    return 20.0 * math.log10(max(rms * ppu, 1e-12) / sounds.P_REF)


def scape_name(fold: int, j: int, size: LayoutSize) -> str:
    """File name of base recording ``j`` of ``fold``, in ARAUS's naming (``R0001_segment_binaural_44100_1.wav``)."""
    return f"R{fold * size.recordings + j + 1:04d}_segment_binaural_44100_1.wav"


def masker_class(fold: int, j: int, size: LayoutSize) -> str:
    """ARAUS masker class of masker ``j`` of ``fold`` (the classes of :data:`MASKER_SOURCES` in turn)."""
    return tuple(MASKER_SOURCES)[(fold * size.recordings + j) % len(MASKER_SOURCES)]


def masker_name(fold: int, j: int, size: LayoutSize) -> str:
    """File name of masker ``j`` of ``fold``, in ARAUS's naming (``<class>_<number>.wav``)."""
    return f"{masker_class(fold, j, size)}_{fold * size.recordings + j + 1:05d}.wav"


def scape_mix(seed: int, fold: int, j: int) -> mixes.Mix:
    """The synthetic scene of base recording ``j`` of ``fold`` (its own clip index range)."""
    return mixes.draw_mix(seed, _SCAPE + fold * 1000 + j)


def masker_mix(seed: int, fold: int, j: int, size: LayoutSize) -> mixes.Mix:
    """The single-source mix of masker ``j`` of ``fold``, rendered at ``MASKER_RENDER_DB`` without gaps."""
    src = MASKER_SOURCES[masker_class(fold, j, size)]
    index = _MASKER + fold * 1000 + j
    return mixes.Mix(index, seed, masker_name(fold, j, size), "park", "training", {src: MASKER_RENDER_DB}, (),
                     MASKER_RENDER_DB)


def _write_wav(path: Path, samples: np.ndarray) -> np.ndarray:
    """Write 16-bit WAV atomically; returns the samples as read back (float64 [n, channels])."""
    import soundfile as sf

    with atomic_path(path, suffix=".wav") as tmp:
        sf.write(str(tmp), samples, mixes.SAMPLE_RATE, subtype="PCM_16", format="WAV")
    return sf.read(str(path), dtype="float64", always_2d=True)[0]


def _read_if_complete(path: Path, channels: int) -> np.ndarray | None:
    import soundfile as sf

    try:
        data = sf.read(str(path), dtype="float64", always_2d=True)[0]
    except (OSError, RuntimeError, sf.LibsndfileError):
        return None
    return data if data.shape == (ac.STIMULUS_SAMPLES, channels) else None


def make_soundscape(root: Path, seed: int, fold: int, j: int, size: LayoutSize, ppu: float, reuse: bool = True) -> dict:
    """Render (or reuse) one base recording; its soundscapes.csv row (``gain_s``, ``insitu_leq``, scene)."""
    mix = scape_mix(seed, fold, j)
    path = root / ac.SOUNDSCAPE_DIR / scape_name(fold, j, size)
    x = sounds.render(mix).astype(np.float64)
    insitu = round(sounds.level_db_spl(x), 2)
    data = _read_if_complete(path, 2) if reuse else None
    if data is None:
        rng = mixes.clip_rng(seed, mix.index, 5)
        right = np.roll(x, int(rng.integers(0, 31))) * 10 ** (float(rng.uniform(-1.5, 1.5)) / 20.0)
        stereo = np.stack([x, right], axis=1)
        data = _write_wav(path, stereo * (FILE_PEAK / float(np.max(np.abs(stereo)))))
    gain_s = 10 ** ((insitu - _level(data, ppu)) / 20.0)
    return {"soundscape": path.name, "gain_s": gain_s, "insitu_leq": insitu, "fold": fold, "scene": mix.scene,
            "mix": mix, "data": syn.SYNTHETIC_LABEL}


def make_masker(root: Path, seed: int, fold: int, j: int, size: LayoutSize, ppu: float, reuse: bool = True) -> dict:
    """Render (or reuse) one masker; its maskers.csv row with the calibration pair per level 46-83 dB."""
    mix = masker_mix(seed, fold, j, size)
    path = root / ac.MASKER_DIR / mix.clip
    data = _read_if_complete(path, 1) if reuse else None
    if data is None:
        x = sounds.render(mix).astype(np.float64)
        data = _write_wav(path, x * (FILE_PEAK / float(np.max(np.abs(x)))))
    file_db = _level(data, ppu)
    row: dict = {"masker": path.name, "class": masker_class(fold, j, size), "fold": fold,
                 "source": next(iter(mix.levels)), "data": syn.SYNTHETIC_LABEL, "mix": mix}
    for level in CALIBRATED_LEVELS:
        gain = 10 ** ((level - file_db) / 20.0)
        row[f"gain_{level}dB"] = gain
        row[f"leq_at_gain_{level}dB"] = _level(gain * data, ppu)
    return row


def fold_stimuli(seed: int, fold: int, size: LayoutSize, scapes: list[dict]) -> list[tuple[int, int, int]]:
    """The fold's distinct stimuli, ``(recording j, masker j, smr)``: one list of ``stimuli`` per group of
    ``raters`` participants; recordings and maskers cycle so that every pair turns up, and each pair's
    repeats take its ratios in a random order without replacement (stimuli repeat only once a pair has
    used every ratio that keeps its masker within the calibrated levels).
    """
    groups = -(-size.participants // size.raters)
    order: dict[tuple[int, int], list[int]] = {}
    seen: dict[tuple[int, int], int] = {}
    out = []
    for c in range(groups * size.stimuli):
        pair = (c % size.recordings, (c + c // size.recordings) % size.recordings)
        if pair not in order:
            leq = scapes[pair[0]]["insitu_leq"]
            allowed = [s for s in SMRS if round(leq - s) in CALIBRATED_LEVELS]
            rng = mixes.clip_rng(seed, _COMBO + fold * 1000 + pair[0] * 100 + pair[1], 4)
            order[pair] = [int(v) for v in rng.permutation(allowed)]
        n = seen.get(pair, 0)
        seen[pair] = n + 1
        out.append((*pair, order[pair][n % len(order[pair])]))
    return out


def published_split(fold: int, p: int) -> str:
    """The SoundSCaper-style split of participant ``p`` of ``fold`` (fold 0 all test; see the module docstring)."""
    if fold == 0 or p % 5 == 3:
        return "test"
    return "validation" if fold == 1 and p % 5 == 1 else "training"


def stimulus_events(scape: mixes.Mix, masker: mixes.Mix) -> tuple[str, ...]:
    """Events of a stimulus: the recording's (silence gaps are filled by the masker) and the masker's."""
    present = {e for src in (*scape.levels, *masker.levels) for e in mixes.SOURCE_EVENTS[src]}
    return tuple(e for e in EVENTS if e in present)


def stimulus_levels(scape: mixes.Mix, masker: mixes.Mix, masker_db: float) -> dict[str, float]:
    """The rule's source levels of a stimulus: the recording's, with the masker's source at its level
    (summed energetically with the recording's own source of that kind).
    """
    levels = dict(scape.levels)
    src = next(iter(masker.levels))
    levels[src] = mixes.energy_sum([masker_db, *([levels[src]] if src in levels else [])])
    return levels


def _responses(seed: int, size: LayoutSize, scapes: dict, maskers: dict) -> list[dict]:
    """One row per (participant, stimulus), ratings still empty."""
    rows = []
    for fold in FOLDS:
        combos = fold_stimuli(seed, fold, size, scapes[fold])
        for p in range(size.participants):
            pid = fold * 1000 + p + 1
            group = p // size.raters
            for s in range(size.stimuli):
                rec, msk, smr = combos[group * size.stimuli + s]
                rows.append({"participant": f"ARAUS_{pid:05d}", "fold_r": fold,
                             "soundscape": scapes[fold][rec]["soundscape"], "masker": maskers[fold][msk]["masker"],
                             "smr": smr, "stimulus_index": s + 1, "split": published_split(fold, p),
                             "scape": scapes[fold][rec], "masker_row": maskers[fold][msk],
                             "stimulus": f"{fold}:{group * size.stimuli + s}",
                             "clip": ac.clip_id(f"ARAUS_{pid:05d}", fold, s + 1)})
    return rows


def _rate(seed: int, row: dict, expected: dict[str, float]) -> dict[str, int]:
    """One rater's integer 1-5 ratings: the rule's expectation + the rater's bias + per-item noise."""
    pid = int(row["participant"].split("_")[-1])
    bias = mixes.clip_rng(seed, _RATER + pid, 2).normal(0.0, rule.RATER_BIAS_SD)
    noise = mixes.clip_rng(seed, _RATER + pid, 3, int(row["stimulus_index"])).normal(0.0, rule.RATER_NOISE_SD, len(QUALITIES))
    mu = np.array([expected[q] for q in QUALITIES])
    return {q: int(v) for q, v in zip(QUALITIES, np.clip(np.rint(mu + bias + noise), 1, 5))}


def _stimulus_n5(root: Path, rows: list[dict], cache_dir, bar, task) -> dict:
    """N5 (sone) of each distinct stimulus, from its features computed through the components source's own
    reading of the tables (gains parsed from the written CSVs, so the cache keys are the ones a later run
    makes), its mixing and its feature cache: a later run on the set finds them cached.
    """
    from soundaq.models_zoo.data.sources.araus_mixed import MixedStimuli

    tables = ac.read_tables(root)
    first: dict[str, int] = {}
    for i, r in enumerate(rows):
        first.setdefault(r["stimulus"], i)
    plans = {}
    for i in first.values():
        plan = ac.stimulus_plan(tables, i)
        plans[plan.clip] = (rows[i]["stimulus"], plan, float(rows[i]["scape"]["insitu_leq"] - rows[i]["smr"]))
    reader = MixedStimuli(root, {c: p for c, (_, p, _) in plans.items()}, cache_dir, None)
    out = {}
    for clip, (stimulus, _, masker_db) in plans.items():
        _, loud = reader.load(clip)
        out[stimulus] = (rule.n5(loud), masker_db)
        bar.advance(task)
    return out


def _label_files(folder: Path, rows: list[dict]) -> None:
    for split in ("training", "validation", "test"):
        part = [r for r in rows if r["split"] == split]
        files = {
            "audio_file_ids": [r["clip"] for r in part],
            "acoustic_scene_labels": [r["scape"]["scene"] for r in part],
            "audio_event_labels": ["\t".join(r["events"]) for r in part],
            "PAQ_8D_AQs": [" ".join(str(r[q]) for q in QUALITIES) for r in part],
            "ISOP_ISOE": [" ".join(repr(float(v)) for v in iso_coordinates(*(r[q] for q in QUALITIES)))
                          for r in part],
        }
        for role, lines in files.items():
            atomic_write_text(folder / f"{split}_set_{role}.txt", "\n".join(lines) + "\n")


def set_digest(root: Path | str) -> str:
    """SHA-256 over the names and bytes of every file of the set but its manifest and files set aside as
    ``.damaged`` (sorted by path).
    """
    root = Path(root)
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("manifest.json")
                       and not p.name.endswith(".damaged")):
        h.update(str(path.relative_to(root)).encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def data_label(size: LayoutSize, seed: int) -> str:
    """What tables made from the set write in their data column."""
    return (f"synthetic (soundaq embedded set in ARAUS's layout v{LAYOUT_VERSION}, {size.recordings} recordings and "
            f"maskers per fold, {size.participants} raters per fold, seed {seed})")


@dataclass
class ArausLayoutSet:
    """A prepared ARAUS-layout synthetic set: ``root`` (``--araus``) and ``root/labels`` (``--labels``)."""

    root: Path
    manifest: dict

    labels_dir = Below("root", "labels", "The SoundSCaper label files of the set (what ``--labels`` takes).")


def _tables(root: Path, rows: list[dict], scapes: list[dict], maskers: list[dict]) -> None:
    import pandas as pd

    data = root / ac.DATA_DIR
    for name, frame in (("soundscapes", pd.DataFrame(scapes).drop(columns="mix")),
                        ("maskers", pd.DataFrame(maskers).drop(columns="mix")),
                        ("responses", pd.DataFrame([{**{k: r[k] for k in ac.RESPONSE_COLUMNS},
                                                     "data": syn.SYNTHETIC_LABEL} for r in rows]))):
        atomic_write_text(data / f"{name}.csv", frame.to_csv(index=False, lineterminator="\n"))


def prepare_araus_layout(cache_dir: Path | str | None = None, size: LayoutSize | None = None,
                         seed: int = syn.DEFAULT_SEED, progress: bool = True, force: bool = False) -> ArausLayoutSet:
    """Write the set into ``<cache>/embedded/<size.key(seed)>`` unless it is complete there (its manifest).

    Resumable: components already written are read back, distinct stimuli whose features are in the
    feature cache are not computed again; the manifest is written last. A complete set is reused when
    its files still match the SHA-256 digest its manifest records; a damaged manifest or a changed file
    sets the manifest aside (one warning) and the set is generated again from scratch, as ``force`` does.

    Raises:
        SyntheticArausError: sizes out of range, an unwritable cache folder (one line).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from soundaq.base.artifacts import read_record, set_aside
    from soundaq.base.paths import embedded_root

    size = size or LayoutSize()
    size.check()
    root = embedded_root(cache_dir) / size.key(seed)
    manifest_path = root / "manifest.json"
    if manifest_path.is_file() and not force:
        manifest, problem = read_record(manifest_path)
        if manifest is not None and manifest.get("complete"):
            if manifest.get("sha256") == set_digest(root):
                return ArausLayoutSet(root, manifest)
            problem = "its files no longer match the digest it records"
        if problem is not None:
            set_aside(manifest_path, problem, "the set is generated again")
            force = True
    try:
        for d in (ac.SOUNDSCAPE_DIR, ac.MASKER_DIR, ac.DATA_DIR, "labels"):
            (root / d).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SyntheticArausError(f"{root}: cannot create the folder ({exc.strerror}); fix: set SOUNDAQ_CACHE or "
                                  "--cache-dir to a writable folder") from None
    if force:
        manifest_path.unlink(missing_ok=True)
    started, ppu = time.perf_counter(), _ppu()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, disable=not progress) as bar:
        task = bar.add_task("ARAUS-layout set (synthetic): components", total=2 * len(FOLDS) * size.recordings)
        scapes, maskers = {}, {}
        for fold in FOLDS:
            scapes[fold] = [make_soundscape(root, seed, fold, j, size, ppu, not force) for j in range(size.recordings)]
            maskers[fold] = [make_masker(root, seed, fold, j, size, ppu, not force) for j in range(size.recordings)]
            bar.advance(task, 2 * size.recordings)
        rows = _responses(seed, size, scapes, maskers)
        flat_s = [r for f in FOLDS for r in scapes[f]]
        flat_m = [r for f in FOLDS for r in maskers[f]]
        stim = bar.add_task("ARAUS-layout set (synthetic): stimuli", total=len({r["stimulus"] for r in rows}))
        for r in rows:                   # provisional ratings: responses.csv is written again below
            r.update({q: 3 for q in QUALITIES})
        _tables(root, rows, flat_s, flat_m)
        n5s = _stimulus_n5(root, rows, cache_dir, bar, stim)
    for r in rows:
        clip_n5, masker_db = n5s[r["stimulus"]]
        scape, masker = r["scape"]["mix"], r["masker_row"]["mix"]
        r.update(_rate(seed, r, rule.aq_expectation(stimulus_levels(scape, masker, masker_db), False, clip_n5)))
        r["events"] = stimulus_events(scape, masker)
    _tables(root, rows, flat_s, flat_m)
    _label_files(root / "labels", rows)
    manifest = {"data": data_label(size, seed), "synthetic": True, "complete": True, "layout": "araus",
                "layout_version": LAYOUT_VERSION, "generator_version": syn.GENERATOR_VERSION, "seed": seed,
                "size": asdict(size), "root": str(root), "responses": len(rows),
                "stimuli": len(n5s), "base_recordings": len(flat_s), "maskers": len(flat_m),
                "split_sizes": {s: sum(r["split"] == s for r in rows) for s in ("training", "validation", "test")},
                "calibration": "ARAUS's (RMS 1.0 = 103.033 dB SPL)", "sha256": set_digest(root),
                "seconds": round(time.perf_counter() - started, 1),
                "what": "procedurally generated recordings, maskers and rule-based ratings in ARAUS's component "
                        "layout; not recordings, not human ratings"}
    atomic_write_json(manifest_path, manifest)
    return ArausLayoutSet(root, manifest)
