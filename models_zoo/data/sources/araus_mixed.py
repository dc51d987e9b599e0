"""``araus`` with ``araus_dir`` (``--data araus --araus DIR``): ARAUS from its own download, stimuli mixed in memory.

``DIR`` is ARAUS's layout (:mod:`soundaq.models_zoo.data.araus_components`): ``soundscapes/``, ``maskers/``
and ``data/responses.csv|soundscapes.csv|maskers.csv``. Each responses row of folds 0-5 (ARAUS's
cross-validation folds 1-5 and its test fold 0; the attention and practice rows, fold -1, and the
ARAUS v2 folds 6-7 are left out, as ARAUS's ``make_augmented_soundscapes.py`` does by default) is one
clip, ``fold_<fold_r>_participant_<id:05>_stimulus_<index:02>``. Its features are computed when first
asked for, from the stimulus mixed in memory (``gain_s * soundscape + gain_m * masker``, averaged to
mono), and kept in the feature cache under a key made of the components' content and the two gains: no
stimulus is written, memory holds one stimulus per worker.

The table keeps ARAUS's own columns (``participant``, ``fold_r``, ``fold``, ``soundscape``, ``masker``,
``smr``, ``stimulus_index``, the 8 ratings of the row and ISOP/ISOE from them), so folds come from
``fold_r`` (``--protocol araus``) and a split's overlap with training can be counted by base recording
and by masker. With ``labels_dir`` (the SoundSCaper label folder, ``soundaq data download --labels-to``)
the clips are the labelled ones, split as the label folder splits them, with its scene and events;
without it the clips are every valid row, with ratings only, split by ARAUS's folds: test fold 0,
validation fold 1, training folds 2-5.

A bad row (a soundscape or masker missing from its table or folder, a masker without the calibration
for the level the row needs, a component of the wrong length, rate or channel count) is left out with
one warning naming the row, the file and the fix; the other rows are served.
"""
from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from soundaq.base import paths
from soundaq.base.errors import SoundaqWarning
from soundaq.base.fileio import sha256_file
from soundaq.base.vocab import QUALITIES, iso_coordinates
from soundaq.models_zoo.data import araus_components as ac
from soundaq.models_zoo.data.sources.base import DataSource
from soundaq.models_zoo.data.sources.readers import LOUDNESS_SHAPE, MEL_SHAPE, DataError, feature_params_key

#: The responses folds served: ARAUS's test fold 0 and cross-validation folds 1-5.
SERVED_FOLDS = (0, 1, 2, 3, 4, 5)
#: Split of the clips by ARAUS fold when no label folder is given.
FOLD_SPLITS = {0: "test", 1: "validation", 2: "training", 3: "training", 4: "training", 5: "training"}
ARAUS_COLUMNS = ("participant", "fold_r", "fold", "soundscape", "masker", "smr", "stimulus_index")


class ArausRowWarning(SoundaqWarning):
    """A responses row left out (one line: the row, the file and the fix)."""


class MixedStimuli:
    """Feature reader of stimuli mixed from ARAUS's components (``load``, ``missing``, ``identity``).

    ``plans`` maps clip ids to :class:`~soundaq.models_zoo.data.araus_components.StimulusPlan`.
    """

    kind = "audio"

    def __init__(self, root: Path, plans: dict, cache_dir=None, calibration=None):
        self.root = root
        self.plans = plans
        self.cache_root = paths.features_cache_dir(cache_dir)
        self.calibration = calibration
        self._cache: Any = None
        self._sha: dict[Path, str] = {}

    def _content(self, plan) -> str:
        """A digest of what the stimulus is made of: both components' bytes and both gains."""
        for p in (plan.soundscape, plan.masker):
            if p not in self._sha:
                self._sha[p] = sha256_file(p)
        text = f"araus-stimulus\n{self._sha[plan.soundscape]}\n{self._sha[plan.masker]}\n" \
               f"{float(plan.gain_s)!r}\n{float(plan.gain_m)!r}"
        return hashlib.sha256(text.encode()).hexdigest()

    def missing(self, clip: str) -> str | None:
        """What stops ``clip`` being mixed: its missing component file, the responses table when it has no valid row, or None."""
        plan = self.plans.get(clip)
        if plan is None:
            return f"{self.root / ac.DATA_DIR / 'responses.csv'} (no valid row for {clip})"
        for p in (plan.soundscape, plan.masker):
            if not p.is_file():
                return str(p)
        return None

    def load(self, clip: str) -> tuple[np.ndarray, np.ndarray]:
        """Features of the clip's stimulus, ``(mel [3001, 64], loudness [15000, 1])`` float32.

        Raises:
            KeyError: no plan for ``clip``; StimulusError / AudioError (UserErrors): a component that
                cannot be read or mixed, a stimulus too loud for the calibration (one line).
        """
        from soundaq.models_zoo.features.opener import downmix

        plan = self.plans[clip]
        if self._cache is None:
            from soundaq.models_zoo.features import FeatureCache

            self._cache = FeatureCache(self.cache_root, calibration=self.calibration)

        def make():
            return downmix(ac.mix(plan)), ac.SAMPLE_RATE

        feats = self._cache.get_signal(self._content(plan), make, name=f"{self.root} stimulus {clip}")
        mel, loud = feats.mel[0], feats.loudness[0]
        if mel.shape != MEL_SHAPE or loud.shape != LOUDNESS_SHAPE:
            raise ValueError(f"{clip}: features of shape {mel.shape}, {loud.shape}")
        return mel, loud

    def identity(self) -> str:
        """The reader's identity: the ARAUS folder and the feature parameters (the cache key covers the content)."""
        return f"araus-components:{self.root.resolve()}:{feature_params_key(self.calibration)}"

    def fingerprint(self, clips) -> list[str]:
        """Nothing to add: the cache key covers the components' content and gains."""
        return []

    def __getstate__(self):   # the cache object is rebuilt in each worker
        state = dict(self.__dict__)
        state["_cache"] = None
        return state


def _rating_ok(value) -> bool:
    try:
        return 1.0 <= float(value) <= 5.0
    except (TypeError, ValueError):
        return False


def _stimulus_table(tables: ac.ArausTables, warn) -> tuple:
    """``(table, plans)``: one row per valid response of the served folds, bad rows passed to ``warn``."""
    import pandas as pd

    responses = tables.responses
    folds = pd.to_numeric(responses["fold_r"], errors="coerce")
    rows: list[int] = []
    plans: dict = {}
    for i in np.flatnonzero(folds.isin(SERVED_FOLDS).to_numpy()):
        try:
            plan = ac.stimulus_plan(tables, int(i))
        except ac.StimulusError as err:
            warn(str(err))
            continue
        bad = [q for q in QUALITIES if not _rating_ok(responses.at[i, q])]
        if bad:
            warn(f"{tables.root / ac.DATA_DIR / 'responses.csv'} row {i + 1} ({plan.clip}): rating "
                 f"{', '.join(bad)} is not a number 1-5; fix: restore the row from ARAUS's responses.csv")
            continue
        if plan.clip in plans:
            warn(f"{tables.root / ac.DATA_DIR / 'responses.csv'} row {i + 1}: clip {plan.clip} repeats row "
                 f"{plans[plan.clip].row}; fix: keep one row per (participant, stimulus_index)")
            continue
        plans[plan.clip] = plan
        rows.append(i)
    kept = responses.iloc[rows].reset_index(drop=True)
    table = pd.DataFrame({"clip": list(plans), **{c: kept[c].to_numpy() for c in ARAUS_COLUMNS if c != "fold"}})
    table["fold_r"] = table["fold_r"].astype(int)
    table["fold"] = table["fold_r"]
    ratings = kept[list(QUALITIES)].apply(pd.to_numeric, errors="coerce")
    for q in QUALITIES:
        table[q] = ratings[q].to_numpy(dtype=float)
    table["isop"], table["isoe"] = iso_coordinates(*(table[q].to_numpy() for q in QUALITIES))
    return table, plans


def _generated_manifest(root: Path) -> dict | None:
    """The manifest of a folder soundaq generated in ARAUS's layout (:mod:`soundaq.models_zoo.data.synthetic_araus`),
    or None for real ARAUS (no manifest, or one that does not say synthetic).
    """
    from soundaq.base.artifacts import read_record

    path = root / "manifest.json"
    if not path.is_file():
        return None
    record, _problem = read_record(path)
    return record if record is not None and record.get("synthetic") is True else None


class ArausComponentsSource(DataSource):
    """ARAUS from its download (see the module docstring); what ``ArausSource(araus_dir=...)`` (``--data araus
    --araus DIR``) builds.

    Raises:
        DataError: ``audio_dir``/``features_dir`` given as well, a missing folder (one line).
    """

    name = "araus"
    description = "ARAUS's own download (--araus DIR): stimuli mixed in memory"
    needs = "araus_dir (--araus DIR, ARAUS's download), optionally labels_dir (--labels DIR)"
    in_memory = True      # the data module keeps a split in memory only when it fits (ClipDataset.preload)

    def __init__(self, labels_dir=None, audio_dir=None, features_dir=None, araus_dir=None, cache_dir=None,
                 calibration=None, progress: bool = False):
        if audio_dir is not None or features_dir is not None:
            raise DataError("--araus mixes the stimuli from ARAUS's components; --audio/--features are the other "
                            "ways to give ARAUS; fix: pass --araus DIR alone (with --labels DIR for scenes and events)")
        self.root = Path(araus_dir).expanduser()
        if not self.root.is_dir():
            raise DataError(f"{self.root}: ARAUS folder not found; fix: pass the folder holding soundscapes/, "
                            "maskers/ and data/ (`soundaq data download araus --to DIR` makes it)")
        self.labels_dir = Path(labels_dir).expanduser() if labels_dir is not None else None
        if self.labels_dir is not None:
            from soundaq.models_zoo.data.labels import check_label_folder

            check_label_folder(self.labels_dir)
        self.cache_dir, self.calibration, self.progress = cache_dir, calibration, progress
        self.generated = _generated_manifest(self.root)
        self._table = None
        self._plans: dict = {}
        self._reader: Any = None
        self.left_out: list[str] = []

    @property
    def paper_split(self) -> bool:  # type: ignore[override]
        """True when the SoundSCaper labels are joined to a real ARAUS download (the paper's test split)."""
        return self.labels_dir is not None and self.generated is None

    @property
    def synthetic(self) -> bool:  # type: ignore[override]
        """True for a folder soundaq generated (its manifest.json says ``"synthetic": true``)."""
        return self.generated is not None

    @property
    def tasks(self) -> tuple[str, ...]:
        """Every label group with SoundSCaper labels joined; only the qualities (from the responses) without."""
        return ("scene", "events", "qualities") if self.labels_dir is not None else ("qualities",)

    def _warn(self, line: str) -> None:
        self.left_out.append(line)
        warnings.warn(line, ArausRowWarning, stacklevel=3)

    def prepare(self) -> None:
        """Read the tables, check every row's components (headers only) and join the labels (once).

        Raises:
            StimulusError: a missing or unreadable table; LabelError: a bad label folder (one line).
        """
        if self._table is not None:
            return
        table, plans = _stimulus_table(ac.read_tables(self.root), self._warn)
        if self.labels_dir is None:
            table.insert(1, "split", table["fold_r"].map(FOLD_SPLITS))
        else:
            table = self._join_labels(table)
        self._plans = {c: plans[c] for c in table["clip"]}
        self._table = table

    def _join_labels(self, table):
        from soundaq.models_zoo.data.labels import SPLITS, read_labels, split_files

        present = [s for s in SPLITS if split_files(self.labels_dir, s).paths["ids"].exists()]
        if not present:
            raise self.missing_split("training")
        labels = read_labels(self.labels_dir, present)
        ours = table.drop(columns=["isop", "isoe", *QUALITIES])
        joined = labels[["clip", "split", *[c for c in labels.columns if c not in ("clip", "split", "isop", "isoe")
                                             and c not in QUALITIES]]].merge(ours, on="clip", how="inner")
        joined = joined.merge(table[["clip", *QUALITIES, "isop", "isoe"]], on="clip", how="left")
        unlabelled = len(table) - len(joined)
        if unlabelled:
            self._warn(f"{self.root / ac.DATA_DIR / 'responses.csv'}: {unlabelled} of {len(table)} stimuli have no "
                       f"label in {self.labels_dir} and are left out; fix: none needed (the SoundSCaper labels cover "
                       "the stimuli it annotated)")
        unmixed = len(labels) - len(joined)
        if unmixed:
            self._warn(f"{self.labels_dir}: {unmixed} labelled clips have no valid responses row in {self.root} and "
                       "are left out (see the rows above); fix: complete the ARAUS download")
        return joined

    def splits(self) -> tuple[str, ...]:
        """The splits that have at least one stimulus (the tables are read on first use)."""
        self.prepare()
        assert self._table is not None
        return tuple(s for s in ("training", "validation", "test") if (self._table["split"] == s).any())

    def labels(self, split: str):
        """The tidy table of ``split``: one row per stimulus, labels joined when a label folder was given.

        Raises:
            StimulusError: a missing or unreadable table; LabelError: a bad label folder (one line).
        """
        self.prepare()
        assert self._table is not None
        return self._table[self._table["split"] == split].reset_index(drop=True)

    def reader(self) -> MixedStimuli:
        """The reader that mixes each stimulus from its components and caches its features."""
        if self._reader is None:
            self.prepare()
            self._reader = MixedStimuli(self.root, self._plans, self.cache_dir, self.calibration)
        return self._reader

    def data_label(self) -> str:
        """The data column: ARAUS (or the generated set's label) and which split protocol."""
        split = "SoundSCaper split" if self.labels_dir is not None else "ARAUS folds: test 0, validation 1"
        if self.generated is not None:
            split = "SoundSCaper-style split" if self.labels_dir is not None else split
            return f"{self.generated.get('data', 'synthetic')} ({split})"
        return f"ARAUS from its components ({split})"

    def identity(self) -> str:
        """The reader's identity, digests of the three tables and the label folder."""
        tables = "|".join(sha256_file(self.root / ac.DATA_DIR / f"{t}.csv")[:16]
                          for t in ("responses", "soundscapes", "maskers"))
        labels = str(self.labels_dir.resolve()) if self.labels_dir is not None else "-"
        return f"{self.reader().identity()}|{tables}|labels:{labels}"

    def describe(self) -> dict:
        """The ARAUS and label folders and how many response rows were left out, for provenance."""
        return {"labels_dir": str(self.labels_dir) if self.labels_dir else None, "features_dir": None,
                "audio_dir": None, "araus_dir": str(self.root), "left_out_rows": len(self.left_out)}

    def missing_split(self, split: str) -> DataError:
        """The one-line error for a split no stimulus falls in, naming the label folder or the responses table."""
        where = self.labels_dir if self.labels_dir is not None else self.root / ac.DATA_DIR / "responses.csv"
        return DataError(f"{where}: no {split} clip among the stimuli; fix: check the label folder "
                         "(`soundaq data download --labels-to DIR`) and the ARAUS download")


def write_stimuli(araus_dir, out, fmt: str = "wav", labels_dir=None, progress: bool = False) -> tuple[int, int, list]:
    """Write every served stimulus as ``out/<clip>.<fmt>`` for other tools: 16-bit, clipped to full scale by
    libsndfile, as ARAUS's ``make_augmented_soundscapes`` (mode ``file``) writes them. Each file is written
    atomically; files already complete are kept, so an interrupted run resumes.

    Returns:
        ``(written, kept, left_out)``: counts of files written and kept, and the one-line reasons of
        rows left out.

    Raises:
        DataError / StimulusError: a bad folder, table or format (one line).
    """
    import soundfile as sf

    from soundaq.base.fileio import atomic_path, output_folder

    if fmt not in ("wav", "flac"):
        raise DataError(f"--format {fmt}: not a stimulus format; fix: use wav or flac")
    source = ArausComponentsSource(araus_dir=araus_dir, labels_dir=labels_dir)
    source.prepare()
    folder = output_folder(out, "--out", DataError)
    written = kept = 0
    for clip, plan in source._plans.items():
        path = folder / f"{clip}.{fmt}"
        try:
            if path.is_file() and sf.info(str(path)).frames == ac.STIMULUS_SAMPLES:
                kept += 1
                continue
        except (RuntimeError, sf.LibsndfileError):
            pass                                 # unreadable: written again
        with atomic_path(path) as tmp:
            sf.write(str(tmp), ac.mix(plan), ac.SAMPLE_RATE, format=fmt.upper(), subtype="PCM_16")
        written += 1
    return written, kept, list(source.left_out)
