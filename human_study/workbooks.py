"""Which jury workbook a file is (workbooks are opened by :func:`soundaq.base.xlsx.open_workbook`,
the one opener of every .xlsx soundaq reads, re-exported here).

:func:`workbook_kind` tells a filled questionnaire, the published per-clip averages and ``soundaq
jury``'s own results apart from the first rows of their sheets; :func:`check_jury_inputs` checks that
each goes where ``soundaq jury`` takes it.
"""
from __future__ import annotations

from pathlib import Path

from soundaq.base import filekinds
from soundaq.base.xlsx import OLE2_MAGIC, WorkbookError, not_a_workbook, open_workbook
from soundaq.human_study.cells import CAPTION_LABEL
from soundaq.human_study.dimensions import RATED, dimension_of_header

__all__ = ["OLE2_MAGIC", "WorkbookError", "check_caption_source", "check_jury_inputs", "not_a_workbook", "open_workbook",
           "workbook_kind"]

#: Sheets of ``jury_results.xlsx`` (soundaq.human_study.report.write_xlsx).
_RESULT_SHEETS = {"ratings", "clip_scores", "summary", "tests"}
#: Rows of each sheet looked at: header rows sit near the top in both layouts.
SCAN_ROWS = 60

#: Kinds that ``soundaq jury`` recognises as belonging elsewhere (any other file goes to the
#: reader, which reports what it cannot read as an issue and carries on).
FOREIGN = ("published-results", "jury-results", "questionnaire", "torch", "npz", "npy", "pickle", "audio",
           "predictions-table", "jury-key", "label-file", "label-folder", "feature-folder", "audio-folder", "pdf",
           "png")


def workbook_kind(path: Path | str) -> str:
    """``"questionnaire"``, ``"published-results"``, ``"jury-results"``, ``"xlsx"`` (a workbook of
    neither kind, or an unreadable one), or the :func:`soundaq.base.filekinds.sniff` kind of a non-workbook.
    """
    kind = filekinds.sniff(path)
    if kind != "xlsx":
        return kind
    try:
        wb = open_workbook(path)
    except WorkbookError:                     # a damaged workbook is the reader's to report
        return "xlsx"
    try:
        if _RESULT_SHEETS <= {ws.title.lower() for ws in wb.worksheets}:
            return "jury-results"
        found = "xlsx"
        for ws in wb.worksheets:
            headers, labels = False, False
            for row in ws.iter_rows(max_row=SCAN_ROWS, values_only=True):
                dims = [str(v) for v in row if dimension_of_header(v) in RATED]
                if len(dims) >= 3:
                    if sum("avg" in d.lower() for d in dims) >= 3:
                        return "published-results"
                    headers = True
                labels = labels or any(isinstance(v, str) and CAPTION_LABEL.match(v) for v in row)
            if headers and labels:
                found = "questionnaire"
        return found
    finally:
        wb.close()


def check_jury_inputs(workbooks: list[Path], published: Path | None) -> None:
    """Raise :class:`~soundaq.base.filekinds.WrongKind` (one line: what the file looks like and the option
    that takes it) for a positional workbook or a ``--published`` file that is recognisably something else.
    """
    for path in workbooks:
        kind = workbook_kind(path)
        if kind in FOREIGN and kind != "questionnaire":
            raise filekinds.wrong_kind(path, kind, "a filled questionnaire workbook")
    if published is not None and published.is_file():
        kind = workbook_kind(published)
        if kind in FOREIGN and kind != "published-results":
            raise filekinds.wrong_kind(published, kind, "the published results workbook (--published)")


def check_caption_source(path: Path, option: str, published_goes_to: str) -> None:
    """Refuse, for an option that reads caption texts from a questionnaire (``jury --captions``, ``caption-metrics
    --questionnaire``), a file that is recognisably another jury file (the published averages, soundaq jury's own
    results, a key, audio ...): none holds caption texts, so the fix is the questionnaire, not a key;
    ``published_goes_to`` names the option of the same command that takes the published averages.

    Raises:
        WrongKind: (a UserError, exit 2) one line: the option and file, what it looks like, what to pass instead.
    """
    kind = workbook_kind(path)
    if kind in FOREIGN and kind != "questionnaire":
        raise filekinds.wrong_kind(
            f"{option} {path}", kind, "a questionnaire workbook with caption texts",
            "it holds no caption texts; pass the questionnaire the jury rated (the public questionnaire template, "
            "questionnaire_template_P1_excel.xlsx, holds every caption of the paper's jury)"
            + (f", and give this file to {published_goes_to}" if kind == "published-results" else ""))
