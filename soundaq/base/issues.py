"""The input problems of one run and their ``issues.csv``: the one log every batch command keeps.

A batch command (``soundaq jury``, ``soundaq caption-metrics``) never stops at a bad row, cell or file:
each problem becomes one record naming where it is, its kind, the one-line message with the fix and how
much it excluded, and the rest of the batch is processed. The records differ by what they point at
(a workbook cell: :class:`soundaq.human_study.issues.Issue`; a caption-table row:
:class:`soundaq.evaluation.captions.inputs.Issue`); the log, its table and its file are this module's.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

if TYPE_CHECKING:
    import pandas as pd

#: Severities: an error excludes something (and makes ``--strict`` stop); a warning only tells.
ERROR, WARNING = "error", "warning"

I = TypeVar("I")  # noqa: E741 - the record type of a log


@dataclass
class IssueLog(Generic[I]):
    """The input problems of one run, in the order they were found.

    Subclasses name their record type's ``issues.csv`` columns in :attr:`columns` (every record is a
    dataclass with an ``excluded`` count; records without a ``severity`` count as errors).
    """

    items: list[I] = field(default_factory=list)
    #: ``issues.csv``'s columns, in order (the record's field names).
    columns: ClassVar[tuple[str, ...]] = ()

    def append(self, issue: I) -> I:
        """Record ``issue`` and return it."""
        self.items.append(issue)
        return issue

    def extend(self, other: IssueLog[I]) -> None:
        """Append the issues of ``other``."""
        self.items.extend(other.items)

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[I]:
        return iter(self.items)

    @property
    def errors(self) -> list[I]:
        """The issues of severity error (any of them makes ``--strict`` stop, and a finished batch exit 1)."""
        return [i for i in self.items if getattr(i, "severity", ERROR) == ERROR]

    @property
    def excluded(self) -> int:
        """How much the problems left out in all (ratings or caption rows, as the records count)."""
        return sum(int(getattr(i, "excluded", 0)) for i in self.items)

    def records(self) -> list[dict[str, Any]]:
        """Every issue as a dict of its fields."""
        return [asdict(i) for i in self.items]  # type: ignore[call-overload]  # records are dataclasses

    def frame(self) -> pd.DataFrame:
        """Every issue as a DataFrame with ``issues.csv``'s columns (an empty log keeps them)."""
        import pandas as pd

        return pd.DataFrame(self.records(), columns=list(self.columns))

    def write(self, out: Path | str) -> Path:
        """Write ``<out>/issues.csv`` atomically (the folder is made); returns its path.

        Raises:
            UserError: ``out`` cannot be made a folder.
            OSError: the file cannot be written.
        """
        from soundaq.base.fileio import output_folder, write_csv

        return Path(write_csv(self.frame(), output_folder(out) / "issues.csv"))

    def keep(self, out: Path | str) -> str:
        """Write ``issues.csv`` to ``out`` when a run stops before its outputs, so the issues the terminal
        did not show can still be read.

        Returns:
            `` (all N in <path>)`` for the error line, or "" when there is none to keep or the folder
            cannot take it.
        """
        if not self.items:
            return ""
        from soundaq.base.errors import UserError

        try:
            target = self.write(out)
        except (UserError, OSError):
            return ""
        return f" (all {len(self)} in {target})"
