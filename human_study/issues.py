"""Problems found in input files. Every issue names the file, the sheet and the cell, and says how
many ratings it excluded; ``--strict`` turns any issue of severity ``error`` into exit code 2.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

ERROR, WARNING = "error", "warning"

#: Kinds of issues and what they mean (used in the report).
KINDS: dict[str, str] = {
    "out_of_range": "rating outside its scale",
    "not_a_number": "text or another non-number in a rating cell",
    "number_as_text": "a number typed as text (accepted)",
    "missing": "empty rating cell",
    "formula_without_value": "formula whose workbook stores no result (saved by a program that does not calculate)",
    "formula_error": "formula whose result is an error (#DIV/0!, #REF!, ...)",
    "date": "rating the spreadsheet turned into a date or time",
    "boolean": "TRUE/FALSE cell where a rating belongs",
    "merged_cells": "rating cell inside a merged range (one value for several ratings)",
    "duplicate_clip": "clip rated more than once in one workbook or sheet",
    "duplicate_participant": "two workbooks for one participant",
    "not_in_key": "clip/caption missing from the key",
    "unknown_participant": "workbook that matches no participant of the key",
    "unreadable": "file that cannot be read as a workbook",
    "no_ratings": "workbook or sheet without any rating table",
    "unlabelled_ratings": "ratings in a row without a 'Caption N' label or clip id",
    "unpaired": "clip rated for only one system",
    "formula_mismatch": "published overall score differs from the formula",
    "not_rated": "key entries with no row in the workbook",
    "no_workbook": "participants of the key without a workbook",
}


#: Issue kinds that leave a whole input file out.
WHOLE_FILE_KINDS = ("unreadable", "no_ratings", "unknown_participant", "duplicate_participant")


@dataclass
class Issue:
    """One input problem: where it is (workbook, sheet, cell), its kind, the one-line message with the fix, its
    severity and how many ratings it excluded.
    """

    workbook: str
    sheet: str
    cell: str
    kind: str
    message: str
    severity: str = ERROR
    excluded: int = 0

    def line(self) -> str:
        """The issue as one line: ``error: WORKBOOK SHEET!CELL: message``."""
        where = f"{self.workbook}"
        if self.sheet:
            where += f" {self.sheet}!{self.cell}" if self.cell else f" sheet {self.sheet}"
        return f"{self.severity}: {where}: {self.message}"


def keep_issues(frame, out) -> str:
    """Write an issue table (``IssueLog.frame()``, ``IssueList.frame()``) to ``<out>/issues.csv`` when a run
    stops before its outputs, so the issues the terminal did not show can still be read; returns
    " (all N in <path>)" for the error line, or "" when there is none to keep or the folder cannot take it.
    """
    if frame is None or frame.empty:
        return ""
    from pathlib import Path

    from soundaq.base.errors import UserError
    from soundaq.base.fileio import output_folder, write_csv

    try:
        target = write_csv(frame, output_folder(out) / "issues.csv")   # as the finished runs write it
    except (UserError, OSError):
        return ""
    return f" (all {len(frame)} in {Path(target)})"


@dataclass
class IssueLog:
    """The input problems of one run, in the order they were found."""

    items: list[Issue] = field(default_factory=list)

    def add(self, *args, **kwargs) -> Issue:
        """Record an :class:`Issue` (the arguments are its fields) and return it."""
        issue = Issue(*args, **kwargs)
        self.items.append(issue)
        return issue

    def extend(self, other: IssueLog) -> None:
        """Append the issues of ``other``."""
        self.items.extend(other.items)

    @property
    def errors(self) -> list[Issue]:
        """The issues of severity error (any of them makes ``--strict`` stop, and a finished batch exit 1)."""
        return [i for i in self.items if i.severity == ERROR]

    def skipped_files(self) -> list[str]:
        """Input files left out as a whole (unreadable, no rating table, no participant of the key,
        a second workbook of one participant): a batch that completed without them exits 1.
        """
        return list(dict.fromkeys(i.workbook for i in self.items
                                  if i.severity == ERROR and not i.sheet and i.kind in WHOLE_FILE_KINDS))

    def __len__(self) -> int:
        return len(self.items)

    def records(self) -> list[dict]:
        """Every issue as a dict of its fields."""
        return [asdict(i) for i in self.items]

    def frame(self):
        """Every issue as a DataFrame, ``issues.csv``'s columns (an empty frame keeps them)."""
        import pandas as pd

        cols = ["workbook", "sheet", "cell", "kind", "severity", "excluded", "message"]
        return pd.DataFrame(self.records(), columns=cols)

    def counts(self) -> list[dict]:
        """Per kind and severity: number of issues and of excluded ratings."""
        out: dict[tuple[str, str], dict] = {}
        for i in self.items:
            row = out.setdefault((i.kind, i.severity), {"kind": i.kind, "severity": i.severity,
                                                        "meaning": KINDS.get(i.kind, i.kind),
                                                        "issues": 0, "excluded_ratings": 0})
            row["issues"] += 1
            row["excluded_ratings"] += i.excluded
        return sorted(out.values(), key=lambda r: (r["severity"], r["kind"]))
