"""The data-source protocol: what the shared data module needs to know about a set of labelled clips.

A source is one class (a subclass of :class:`DataSource`) plus one registry entry
(:mod:`soundaq.models_zoo.data.sources`). It says

* ``name`` (its registry name, ``--data NAME``), ``synthetic`` (tables and figures flag synthetic data),
  ``description`` and ``needs`` (one line each: what it is, which options it needs);
* :meth:`~DataSource.prepare` (generate or check; idempotent), :meth:`~DataSource.splits` (which of
  training/validation/test it has), :meth:`~DataSource.labels` (the tidy table of a split),
  :meth:`~DataSource.reader` (a :class:`~soundaq.models_zoo.data.sources.readers.FeatureFolder` or
  :class:`~soundaq.models_zoo.data.sources.readers.AudioFolder`);
* :meth:`~DataSource.data_label` (what tables write in their data column), :meth:`~DataSource.identity`
  (a string that changes whenever the clips or their features would: caches and provenance),
  :meth:`~DataSource.norm_stats` (its own normalisation statistics, if it has any) and
  :meth:`~DataSource.describe` (folders and files, for provenance);
* :attr:`~DataSource.tasks`: which label groups (:data:`soundaq.base.vocab.LABEL_GROUPS`: scene, events,
  qualities) it labels. Training, metrics and reports use only those (docs/data.md, "Your own data").

The constructor takes the source's options as keyword arguments named as the data module's
(``labels_dir``, ``audio_dir``, ``features_dir``, ``embedded_clips``, ... and the shared ``cache_dir``,
``calibration``, ``progress``): the registry passes a source only the options its constructor names,
and refuses the others in one line. The constructor checks its own arguments and raises
:class:`DataError` saying, in one line, what it needs.
"""
from __future__ import annotations

import abc
from typing import ClassVar

from soundaq.base.vocab import LABEL_GROUPS
from soundaq.models_zoo.data.sources.readers import DataError

#: Options every source may receive and ignore when it has no use for them.
CONTEXT_OPTIONS = ("cache_dir", "calibration", "progress")
#: The command line's spelling of each data-module option (for one-line messages that serve both).
OPTION_FLAGS = {"labels_dir": "--labels", "audio_dir": "--audio", "features_dir": "--features",
                "embedded_clips": "--embedded-clips", "embedded_seed": "--embedded-seed",
                "embedded_workers": "--workers", "cache_dir": "--cache-dir", "calibration": "--calibration",
                "araus_dir": "--araus"}


class DataSource(abc.ABC):
    """A set of labelled clips the shared data module can serve (see the module docstring).

    Subclasses set the class attributes and implement the abstract methods; ``tasks`` defaults to every
    label group, ``prepare`` to nothing, ``norm_stats`` to None (computed on the training split).
    """

    #: Registry name (``--data NAME``).
    name: ClassVar[str] = ""
    #: True for generated data: every table and figure made from it says so.
    synthetic: ClassVar[bool] = False
    #: One line: what the source is (``--help``).
    description: ClassVar[str] = ""
    #: One line: the options it needs, in both spellings (errors say it).
    needs: ClassVar[str] = "nothing"
    #: The leaderboard's default training schedule on this source (soundaq.models_zoo.schedules).
    schedule: ClassVar[str] = "paper"
    #: Small enough for the leaderboard to keep each split's features in memory.
    in_memory: ClassVar[bool] = False
    #: Its test split is the paper's (ARAUS): scores can be set beside the paper's published ones.
    paper_split: ClassVar[bool] = False

    def prepare(self) -> None:  # noqa: B027  (optional hook, not abstract: most sources need nothing)
        """Generate, download or check what the source needs (idempotent; no-op by default)."""

    @property
    def tasks(self) -> tuple[str, ...]:
        """The label groups this source labels, in :data:`~soundaq.base.vocab.LABEL_GROUPS` order."""
        return LABEL_GROUPS

    @abc.abstractmethod
    def splits(self) -> tuple[str, ...]:
        """The splits (of training, validation, test) this source has clips for."""

    @abc.abstractmethod
    def labels(self, split: str):
        """The tidy label table of ``split`` (a pandas DataFrame, one row per clip): ``clip``, ``split``
        and the columns of each labelled group (``scene``; the 15 ``vocab.EVENT_COLUMNS`` 0/1; the 8
        qualities 1-5 with ``isop``/``isoe``). Columns of unlabelled groups may be absent.

        Raises:
            DataError (or another UserError): unreadable labels, one line naming the file and the fix.
        """

    @abc.abstractmethod
    def reader(self):
        """The feature reader serving this source's clips (``load``, ``missing``, ``identity``, ``fingerprint``)."""

    @abc.abstractmethod
    def data_label(self) -> str:
        """What tables and figures write in their data column or caption."""

    @abc.abstractmethod
    def identity(self) -> str:
        """A string that changes whenever the clips or their features would (caches, provenance)."""

    def norm_stats(self) -> tuple[dict, str] | None:
        """``(statistics, origin)`` of the source's own normalisation statistics, or None to compute them
        on the training split (the default).
        """
        return None

    def describe(self) -> dict:
        """Folders and files of the source for provenance (``labels_dir``, ``features_dir``, ``audio_dir``)."""
        return {}

    def missing_split(self, split: str) -> DataError:
        """The one-line error for a stage that needs ``split`` when the source has no such clips."""
        return DataError(f"{self.data_label()}: has no {split} split; fix: give the source {split} clips")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}: {self.data_label()}>"
