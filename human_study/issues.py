"""Problems found in input files. Every issue names the file, the sheet and the cell, and says how
many ratings it excluded; ``--strict`` turns any issue of severity ``error`` into exit code 2.
"""
from __future__ import annotations

from dataclasses import dataclass

from soundaq.base.issues import ERROR, WARNING
from soundaq.base.issues import IssueLog as _Log

__all__ = ["ERROR", "KINDS", "WARNING", "WHOLE_FILE_KINDS", "Issue", "IssueLog"]

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


class IssueLog(_Log[Issue]):
    """The input problems of one jury run (:class:`soundaq.base.issues.IssueLog` of workbook :class:`Issue`)."""

    columns = ("workbook", "sheet", "cell", "kind", "severity", "excluded", "message")

    def add(self, *args, **kwargs) -> Issue:
        """Record an :class:`Issue` (the arguments are its fields) and return it."""
        return self.append(Issue(*args, **kwargs))

    def skipped_files(self) -> list[str]:
        """Input files left out as a whole (unreadable, no rating table, no participant of the key,
        a second workbook of one participant): a batch that completed without them exits 1.
        """
        return list(dict.fromkeys(i.workbook for i in self.items
                                  if i.severity == ERROR and not i.sheet and i.kind in WHOLE_FILE_KINDS))

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
