"""``araus``: the paper's ARAUS split, a label folder plus either features or audio.

``labels_dir`` holds the paper's per-split text files (:mod:`soundaq.models_zoo.data.labels`; default
``<cache>/araus_labels``). Features come from ``features_dir`` in the original release's layout
(``Feature_log_mel/<clip>.npy`` [3001, 64], ``Feature_loudness_ISO532_1/<clip>.npy`` [15000, 1]) or are
computed from ``audio_dir`` (``<clip>.flac|.wav``) by :mod:`soundaq.models_zoo.features`, cached on disk by
content and parameters (``calibration`` maps sample values to pascals). With ``araus_dir`` (ARAUS's own
download) the stimuli are mixed from their components instead (:mod:`.araus_mixed`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from soundaq.base import paths
from soundaq.models_zoo.data.labels import SPLITS, check_label_folder, read_split, split_files
from soundaq.models_zoo.data.sources.base import DataSource
from soundaq.models_zoo.data.sources.readers import LOUDNESS_DIR, MEL_DIR, AudioFolder, DataError, FeatureFolder


class ArausSource(DataSource):
    """ARAUS labels with features (``features_dir``) or audio (``audio_dir``); one of the two.

    Raises:
        DataError: neither or both of ``audio_dir``/``features_dir``, or no label folder (one line).
    """

    name = "araus"
    paper_split = True
    description = "your ARAUS copy: --labels DIR with --audio DIR or --features DIR, or ARAUS's download --araus DIR"
    needs = ("audio_dir (--audio DIR) or features_dir (--features DIR), with labels_dir (--labels DIR; "
             "default <cache>/araus_labels); or araus_dir (--araus DIR, ARAUS's download)")

    def __new__(cls, *args, araus_dir=None, **kwargs):
        """With ``araus_dir`` (``--araus DIR``): ARAUS from its own download, stimuli mixed in memory, an
        :class:`~soundaq.models_zoo.data.sources.araus_mixed.ArausComponentsSource` (its constructor's checks).
        """
        if araus_dir is not None:
            from soundaq.models_zoo.data.sources.araus_mixed import ArausComponentsSource

            return ArausComponentsSource(*args, araus_dir=araus_dir, **kwargs)
        return super().__new__(cls)

    def __init__(self, labels_dir=None, audio_dir=None, features_dir=None, cache_dir=None, calibration=None,
                 progress: bool = False, araus_dir=None):
        if audio_dir is None and features_dir is None:
            raise DataError(f"source='araus' needs {self.needs}; fix: pass one of them ({MEL_DIR}/ and "
                            f"{LOUDNESS_DIR}/ for features, <clip>.flac|.wav for audio, soundscapes/, maskers/ and "
                            "data/ for --araus)")
        if audio_dir is not None and features_dir is not None:
            raise DataError("pass audio_dir or features_dir, not both; fix: keep the one you want features from")
        self.labels_dir = Path(labels_dir).expanduser() if labels_dir else paths.labels_cache_dir(cache_dir)
        check_label_folder(self.labels_dir)
        if not self.labels_dir.is_dir():
            raise DataError(f"{self.labels_dir}: label folder not found; fix: pass labels_dir (--labels DIR), or "
                            "fetch the labels with `soundaq data download --labels-to DIR`")
        self.audio_dir = Path(audio_dir).expanduser() if audio_dir else None
        self.features_dir = Path(features_dir).expanduser() if features_dir else None
        self.cache_dir = cache_dir
        self.calibration = calibration
        self._reader: Any = None

    def splits(self) -> tuple[str, ...]:
        """The splits whose clip-id file is present in the label folder."""
        return tuple(s for s in SPLITS if split_files(self.labels_dir, s).paths["ids"].exists())

    def labels(self, split: str):
        """The tidy label table of ``split``, read from the paper's label files.

        Raises:
            LabelError: a label file is missing or malformed (one line naming the file, the line and the fix).
        """
        return read_split(self.labels_dir, split)

    def reader(self):
        """The feature reader: the release-layout feature folder, or the audio folder (features cached)."""
        if self._reader is None:
            self._reader = (FeatureFolder(self.features_dir) if self.features_dir is not None
                            else AudioFolder(self.audio_dir, self.cache_dir, self.calibration))
        return self._reader

    def data_label(self) -> str:
        """The data column of tables made from this source: ``ARAUS (SoundSCaper split)``."""
        return "ARAUS (SoundSCaper split)"

    def identity(self) -> str:
        """The reader's identity (changes with the features or audio the clips are read from)."""
        return self.reader().identity()

    def describe(self) -> dict:
        """The label, feature and audio folders, for provenance."""
        return {"labels_dir": str(self.labels_dir),
                "features_dir": str(self.features_dir) if self.features_dir else None,
                "audio_dir": str(self.audio_dir) if self.audio_dir else None}

    def missing_split(self, split: str) -> DataError:
        """The one-line error for a split whose label files are missing, with the command that fetches them."""
        return DataError(f"{self.labels_dir}: the {split} split's files are missing; fix: "
                         "`soundaq data download --labels-to DIR` fetches all of them")
