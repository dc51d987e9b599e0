"""ARAUS from its components: the three tables, the stimulus of a response row, and the mixing.

ARAUS (Ooi et al. 2023, repository ``ntudsp/araus-dataset-baseline-models``) distributes no stimuli:
its download holds the 30-s binaural base recordings (``soundscapes/``, 44.1 kHz, 2 channels, the
USotW tracks cut in two halves), the mono maskers (``maskers/``, 44.1 kHz) and three tables in
``data/``:

* ``responses.csv``: one row per rating; ``participant`` (``ARAUS_00001``), ``fold_r``,
  ``soundscape`` and ``masker`` (file names), ``smr`` (signal-to-masker ratio, dB),
  ``stimulus_index`` and the 8 quality ratings (``pleasant`` ... ``monotonous``, 1-5);
* ``soundscapes.csv``: ``soundscape``, ``gain_s`` (the gain that plays it at its in-situ level),
  ``insitu_leq`` (that level, dB);
* ``maskers.csv``: ``masker`` and, per integer level L (46-83 dB), the calibration pair ``gain_<L>dB``
  (a gain) and ``leq_at_gain_<L>dB`` (the level measured with it).

The stimulus of a row is (ARAUS's ``make_augmented_soundscapes``, mode ``return``)::

    leq_m  = insitu_leq - smr                         # the masker's target level, dB
    L      = round(leq_m)                             # numpy's round: half to even
    gain_m = gain_<L>dB * 10 ** ((leq_m - leq_at_gain_<L>dB) / 20)
    x      = gain_s * soundscape + gain_m * masker     # masker duplicated to both channels

in float64, [1,323,000, 2], unclipped (files ARAUS writes are clipped and quantised by libsndfile
on writing). Its clip id is ``fold_<fold_r>_participant_<id:05>_stimulus_<index:02>``, the ids the
SoundSCaper label files use. :func:`stimulus_plan` resolves a row (one-line :class:`StimulusError` for a
bad one) and :func:`mix` makes the samples.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from soundaq.base.errors import UserError
from soundaq.base.vocab import QUALITIES

#: ARAUS's rate and stimulus length: 30 s at 44.1 kHz.
SAMPLE_RATE = 44100
STIMULUS_SAMPLES = 30 * SAMPLE_RATE
#: The sub-folders and tables of an ARAUS download.
SOUNDSCAPE_DIR, MASKER_DIR, DATA_DIR = "soundscapes", "maskers", "data"
RESPONSE_COLUMNS = ("participant", "fold_r", "soundscape", "masker", "smr", "stimulus_index", *QUALITIES)
SOUNDSCAPE_COLUMNS = ("soundscape", "gain_s", "insitu_leq")
MASKER_COLUMNS = ("masker",)


class StimulusError(UserError):
    """A responses row whose stimulus cannot be made: the message names the row, the file and the fix."""


@dataclass(frozen=True)
class StimulusPlan:
    """What one responses row mixes: ``x = gain_s * soundscape + gain_m * masker``."""

    clip: str
    row: int                 # 1-based data row of responses.csv (its line is row + 1)
    soundscape: Path
    masker: Path
    gain_s: float
    gain_m: float


def clip_id(participant: str, fold: int, stimulus_index: int) -> str:
    """``fold_<fold>_participant_<id:05>_stimulus_<index:02>``; ``id`` is the number after the last ``_``
    of ARAUS's participant code (``ARAUS_00042`` -> 42).

    Raises:
        ValueError: a participant code without a number after its last underscore.
    """
    number = int(str(participant).split("_")[-1])
    return f"fold_{int(fold)}_participant_{number:05d}_stimulus_{int(stimulus_index):02d}"


def _read_table(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    if not path.is_file():
        raise StimulusError(f"{path}: table not found; fix: unpack ARAUS's data.zip into {path.parent} "
                            "(`soundaq data download araus --to DIR` does it)")
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError, UnicodeDecodeError) as err:
        raise StimulusError(f"{path}: not a readable CSV ({str(err).splitlines()[0]}); fix: restore it from "
                            "ARAUS's data.zip") from None
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise StimulusError(f"{path}: no column {', '.join(missing)}; fix: restore the table from ARAUS's data.zip "
                            f"(it needs {', '.join(columns)})")
    return table


@dataclass
class ArausTables:
    """The three tables of an ARAUS download (:func:`read_tables`)."""

    root: Path
    responses: pd.DataFrame
    soundscapes: pd.DataFrame     # indexed by file name
    maskers: pd.DataFrame         # indexed by file name
    headers: dict = field(default_factory=dict)   # path -> (rate, frames, channels) or the read error, read once


def read_tables(root: Path | str) -> ArausTables:
    """``root/data/responses.csv``, ``soundscapes.csv`` and ``maskers.csv``.

    Raises:
        StimulusError: a missing or unreadable table, or one without the columns mixing needs (one line).
    """
    root = Path(root).expanduser()
    data = root / DATA_DIR
    responses = _read_table(data / "responses.csv", RESPONSE_COLUMNS)
    soundscapes = _read_table(data / "soundscapes.csv", SOUNDSCAPE_COLUMNS)
    maskers = _read_table(data / "maskers.csv", MASKER_COLUMNS)
    return ArausTables(root, responses.reset_index(drop=True),
                       soundscapes.drop_duplicates("soundscape").set_index("soundscape", drop=False),
                       maskers.drop_duplicates("masker").set_index("masker", drop=False))


def masker_gain(maskers: pd.DataFrame, masker: str, leq_m) -> float:
    """ARAUS's masker gain for a target level ``leq_m`` (dB), from its calibration at ``L = round(leq_m)``.

    Raises:
        KeyError: the masker has no row, or no ``gain_<L>dB``/``leq_at_gain_<L>dB`` column (the message
            names what is missing); ValueError: an empty (NaN) calibration cell.
    """
    level = int(np.round(leq_m, 0))
    columns = (f"gain_{level}dB", f"leq_at_gain_{level}dB")
    absent = [c for c in columns if c not in maskers.columns]
    if absent:
        raise KeyError(" and ".join(absent))
    gain_c: Any = maskers.at[masker, columns[0]]
    leq_c: Any = maskers.at[masker, columns[1]]
    if not (np.isfinite(gain_c) and np.isfinite(leq_c)):
        raise ValueError(f"{columns[0]}/{columns[1]} empty")
    return gain_c * (10 ** ((leq_m - leq_c) / 20))


def stimulus_plan(tables: ArausTables, row: int) -> StimulusPlan:
    """The files and gains of responses row ``row`` (0-based), with its files checked by their headers.

    Raises:
        StimulusError: a soundscape or masker missing from its table or folder, a masker without the
            calibration for the needed level, a component of the wrong length, rate or channel count
            (one line naming the row, the file and the fix).
    """
    r = tables.responses.iloc[row]
    where = f"{tables.root / DATA_DIR / 'responses.csv'} row {row + 1}"
    try:
        clip = clip_id(r["participant"], r["fold_r"], r["stimulus_index"])
    except (TypeError, ValueError):
        raise StimulusError(f"{where}: participant {r['participant']!r}, fold_r {r['fold_r']!r} or stimulus_index "
                            f"{r['stimulus_index']!r} do not make a clip id; fix: restore the row from ARAUS's "
                            "responses.csv") from None
    where = f"{where} ({clip})"
    soundscape, masker = str(r["soundscape"]), str(r["masker"])
    if soundscape not in tables.soundscapes.index:
        raise StimulusError(f"{where}: soundscape {soundscape} has no row in soundscapes.csv; fix: restore "
                            "soundscapes.csv from ARAUS's data.zip")
    if masker not in tables.maskers.index:
        raise StimulusError(f"{where}: masker {masker} has no row in maskers.csv; fix: restore maskers.csv from "
                            "ARAUS's data.zip (v2 maskers come from datav2.zip)")
    gain_s: Any = tables.soundscapes.at[soundscape, "gain_s"]
    leq_m = tables.soundscapes.at[soundscape, "insitu_leq"] - r["smr"]
    try:
        gain_m = masker_gain(tables.maskers, masker, leq_m)
    except KeyError as err:
        raise StimulusError(f"{where}: maskers.csv has no {str(err).strip(chr(39))} column for masker {masker} at "
                            f"{leq_m:.2f} dB; fix: restore maskers.csv from ARAUS's data.zip (calibrated levels "
                            "46-83 dB)") from None
    except ValueError as err:
        raise StimulusError(f"{where}: masker {masker}'s calibration at {leq_m:.2f} dB is {err} in maskers.csv; "
                            "fix: restore maskers.csv from ARAUS's data.zip") from None
    paths = (tables.root / SOUNDSCAPE_DIR / soundscape, tables.root / MASKER_DIR / masker)
    for path, channels in zip(paths, (2, 1)):
        _check_component(path, channels, where, tables.headers)
    return StimulusPlan(clip, row + 1, paths[0], paths[1], gain_s, gain_m)


def _header(path: Path):
    """``(rate, frames, channels)`` of an audio file, None when missing, or the read error's first line."""
    import soundfile as sf

    if not path.is_file():
        return None
    try:
        info = sf.info(str(path))
    except (RuntimeError, sf.LibsndfileError) as err:
        return str(err).splitlines()[0] if str(err) else type(err).__name__
    return info.samplerate, info.frames, info.channels


def _check_component(path: Path, channels: int, where: str, headers: dict) -> None:
    what = "soundscape" if channels == 2 else "masker"
    if path not in headers:
        headers[path] = _header(path)
    found = headers[path]
    if found is None:
        fix = ("unpack soundscapes.zip and split the USotW tracks (`soundaq data download araus --to DIR` does both)"
               if channels == 2 else "unpack maskers.zip and maskersv2.zip into maskers/")
        raise StimulusError(f"{where}: {what} file {path} is missing; fix: {fix}")
    if isinstance(found, str):
        raise StimulusError(f"{where}: {what} file {path} is unreadable ({found}); fix: restore it from ARAUS's "
                            "download")
    rate, frames, n = found
    if (rate, frames, n) != (SAMPLE_RATE, STIMULUS_SAMPLES, channels):
        raise StimulusError(f"{where}: {what} file {path} has {frames} samples x {n} channels at "
                            f"{rate} Hz, ARAUS mixes {STIMULUS_SAMPLES} x {channels} at {SAMPLE_RATE} Hz; "
                            "fix: restore it from ARAUS's download (soundscapes are the 30-s halves of the USotW "
                            "tracks resampled to 44.1 kHz)")


def mix(plan: StimulusPlan) -> np.ndarray:
    """The stimulus of ``plan``: float64 [1,323,000, 2] in full-scale units, ``gain_s * soundscape +
    gain_m * masker`` (the masker on both channels), unclipped, as ARAUS's ``make_augmented_soundscapes``
    returns it (equal sample for sample; tests/test_araus_components.py keeps a measured case).

    Raises:
        StimulusError: a component that does not read as the plan's check found it (changed since).
    """
    import soundfile as sf

    try:
        soundscape, _ = sf.read(str(plan.soundscape), dtype="float64", always_2d=True)
        masker, _ = sf.read(str(plan.masker), dtype="float64", always_2d=True)
    except (RuntimeError, sf.LibsndfileError) as err:
        raise StimulusError(f"{plan.clip}: {str(err).splitlines()[0]}; fix: restore the file from ARAUS's "
                            "download") from None
    if soundscape.shape != (STIMULUS_SAMPLES, 2) or masker.shape != (STIMULUS_SAMPLES, 1):
        raise StimulusError(f"{plan.clip}: {plan.soundscape.name} {soundscape.shape} / {plan.masker.name} "
                            f"{masker.shape}, expected ({STIMULUS_SAMPLES}, 2) / ({STIMULUS_SAMPLES}, 1); fix: "
                            "restore the files from ARAUS's download")
    # in place (the same products and sums as gain_s * soundscape + gain_m * masker, bit for bit): two
    # fewer 10-21 MB temporaries per stimulus, which made mixing cost more than decoding a FLAC stimulus
    soundscape *= plan.gain_s
    masker *= plan.gain_m
    soundscape += masker                 # [n, 1] broadcast over both channels: ARAUS's duplicated masker
    return soundscape


def component_overlap(frame: pd.DataFrame) -> dict:
    """Per split how many clips share a base recording or a masker with the training split.

    ``frame``: stacked clip tables with ``split``, ``soundscape`` and ``masker`` (the components source's
    labels). A clip that shares a component with training is not an unseen-recording test of a model:
    ARAUS's folds share neither (Ooi et al. 2023), the SoundSCaper split does. Returns ``{split: {"clips",
    "base_recordings", "maskers", "shared_recording", "shared_masker", "shared_either", "shared_neither"}}``
    (counts of clips, and of distinct recordings and maskers the split uses).
    """
    train = frame[frame["split"] == "training"]
    seen_s, seen_m = set(train["soundscape"]), set(train["masker"])
    out = {}
    for split in frame["split"].drop_duplicates():
        part = frame[frame["split"] == split]
        rec, msk = part["soundscape"].isin(seen_s), part["masker"].isin(seen_m)
        out[str(split)] = {"clips": len(part), "base_recordings": int(part["soundscape"].nunique()),
                           "maskers": int(part["masker"].nunique()), "shared_recording": int(rec.sum()),
                           "shared_masker": int(msk.sum()), "shared_either": int((rec | msk).sum()),
                           "shared_neither": int((~(rec | msk)).sum())}
    return out
