"""Opening a workbook, and which jury workbook a file is.

:func:`open_workbook` is the one opener of every .xlsx soundaq reads (questionnaires, the published
jury workbook, the release's ``NLP_metrics.xlsx``): a file openpyxl cannot open is told apart by
its bytes (:func:`not_a_workbook`), so that the line names what it is and the fix that works for
it: a password-protected workbook (an OLE2 compound file holding ``EncryptionInfo`` and
``EncryptedPackage`` streams, what Excel's "Encrypt with Password" writes), a legacy Excel 97-2003
``.xls`` (OLE2 with a ``Workbook`` stream), an OpenDocument ``.ods``, a binary ``.xlsb``, a cut-short
zip, a CSV or HTML file with a workbook's name, an empty file.

:func:`workbook_kind` tells a filled questionnaire, the published per-clip averages and ``soundaq
jury``'s own results apart from the first rows of their sheets; :func:`check_jury_inputs` checks that
each goes where ``soundaq jury`` takes it."""
from __future__ import annotations

import zipfile
from pathlib import Path

from soundaq.base import filekinds
from soundaq.human_study.cells import CAPTION_LABEL
from soundaq.human_study.dimensions import RATED, dimension_of_header

filekinds.register("questionnaire", "a filled questionnaire workbook ('Caption 1'/'Caption 2' rows)",
                   "questionnaires go to `soundaq jury FILE... --key KEY.csv`")
filekinds.register("published-results", "the published per-clip averages workbook (Precision_Avg ... columns)",
                   "it goes to `soundaq jury --published FILE`")
filekinds.register("jury-results", "soundaq jury's own results workbook (jury_results.xlsx)",
                   "it is an output: pass the filled questionnaires, or the published workbook with --published")

#: Sheets of ``jury_results.xlsx`` (soundaq.human_study.report.write_xlsx).
_RESULT_SHEETS = {"ratings", "clip_scores", "summary", "tests"}
#: Rows of each sheet looked at: header rows sit near the top in both layouts.
SCAN_ROWS = 60

#: Kinds that ``soundaq jury`` recognises as belonging elsewhere (any other file goes to the
#: reader, which reports what it cannot read as an issue and carries on).
FOREIGN = ("published-results", "jury-results", "questionnaire", "torch", "npz", "npy", "pickle", "audio",
           "predictions-table", "jury-key", "label-file", "label-folder", "feature-folder", "audio-folder", "pdf",
           "png")


OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_SAVE_AS_XLSX = "open it in Excel (or LibreOffice) and save it as Excel Workbook (.xlsx)"


class WorkbookError(ValueError):
    """A file that cannot be opened as an .xlsx workbook. ``detail`` is what it is and the fix
    (without the file name); ``str()`` is ``"<path>: <detail>"``."""

    def __init__(self, path: Path | str, detail: str):
        self.path, self.detail = Path(path), detail
        super().__init__(f"{path}: {detail}")


def open_workbook(path: Path | str):
    """Open an .xlsx workbook for reading (openpyxl, ``read_only=True, data_only=True``: the values
    Excel stored, formulas' cached results).

    Raises:
        WorkbookError: the file is not an .xlsx workbook openpyxl can read; ``detail`` says what it
            is and the fix (:func:`not_a_workbook`).
    """
    import openpyxl

    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError as err:
        raise WorkbookError(path, f"cannot be read ({err.strerror}); fix: check the path and its permissions") from None
    if head[:4] == b"PK\x03\x04":
        try:
            return openpyxl.load_workbook(path, read_only=True, data_only=True)
        except Exception as err:  # noqa: BLE001 - told apart below, one line whatever openpyxl raised
            raise WorkbookError(path, not_a_workbook(path, err)) from None
    raise WorkbookError(path, not_a_workbook(path, None))


def not_a_workbook(path: Path | str, err: BaseException | None) -> str:
    """What a file that is not a readable .xlsx is, and the fix, from its bytes (no file name).

    Args:
        path: the file.
        err: what openpyxl raised (None when the file was not even tried: not a zip).
    """
    from soundaq.base.errors import first_line

    path = Path(path)
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if not head:
        return "an empty file (0 bytes), not a workbook; fix: copy the workbook again from where it was saved"
    if head.startswith(OLE2_MAGIC):
        return _ole2_detail(path)
    if head[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(path) as zf:
                names = set(zf.namelist())
                mimetype = zf.read("mimetype").decode("ascii", "replace") if "mimetype" in names else ""
        except (zipfile.BadZipFile, OSError, ValueError) as zerr:
            return (f"a damaged or cut-short .xlsx ({type(zerr).__name__}: {first_line(zerr)}); fix: copy it again "
                    "from its source (or let Excel repair it) and save it as .xlsx")
        if "opendocument.spreadsheet" in mimetype:
            return f"an OpenDocument spreadsheet (.ods), not an .xlsx; fix: {_SAVE_AS_XLSX}"
        if "xl/workbook.bin" in names:
            return f"a binary Excel workbook (.xlsb), which openpyxl does not read; fix: {_SAVE_AS_XLSX}"
        if "word/document.xml" in names:
            return "a Word document (.docx), not a workbook; fix: pass the questionnaire workbook (.xlsx)"
        if "xl/workbook.xml" not in names:
            return "a zip archive that holds no workbook (no xl/workbook.xml); fix: pass the .xlsx workbook itself"
        why = f"{type(err).__name__}: {first_line(err)}"[:160] if err is not None else "openpyxl cannot read it"
        return f"cannot open as an .xlsx workbook ({why}); fix: {_SAVE_AS_XLSX} again"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<!doctype html", b"<html", b"<table", b"<?xml")):
        return ("an HTML or XML page with a workbook's name (a web export, or Excel's 'XML Spreadsheet 2003'), "
                f"not an .xlsx; fix: {_SAVE_AS_XLSX}")
    if b"\x00" not in head:
        return f"a text file (CSV?) with a workbook's name, not an .xlsx; fix: {_SAVE_AS_XLSX}"
    return f"not an .xlsx workbook (neither a zip nor an Office file); fix: {_SAVE_AS_XLSX}"


def _ole2_detail(path: Path) -> str:
    """An OLE2 compound file: encrypted OOXML ([MS-OFFCRYPTO]: EncryptionInfo + EncryptedPackage
    streams), a legacy .xls ([MS-XLS]: a Workbook or Book stream), or another Office document."""
    try:
        import olefile

        with olefile.OleFileIO(str(path)) as ole:
            streams = {"/".join(entry) for entry in ole.listdir(streams=True, storages=False)}
    except Exception:  # noqa: BLE001 - olefile absent or the container damaged: say both possibilities
        return ("an OLE2 compound file (d0 cf 11 e0), not an .xlsx: a password-protected workbook or a legacy "
                ".xls; fix: remove the password in Excel (File > Info > Protect Workbook) and save, or "
                f"{_SAVE_AS_XLSX}")
    if {"EncryptionInfo", "EncryptedPackage"} <= streams:
        return ("password-protected (encrypted) workbook; fix: remove the password in Excel (File > Info > "
                "Protect Workbook > Encrypt with Password, clear it; LibreOffice: File > Save As without 'Save "
                "with password') and save")
    if streams & {"Workbook", "Book"}:
        return f"a legacy Excel 97-2003 workbook (.xls), which soundaq does not read; fix: {_SAVE_AS_XLSX}"
    if "WordDocument" in streams:
        return "a Word 97-2003 document (.doc), not a workbook; fix: pass the questionnaire workbook (.xlsx)"
    return f"an OLE2 compound file holding no workbook (streams: {', '.join(sorted(streams)[:4])}); fix: {_SAVE_AS_XLSX}"


def workbook_kind(path: Path | str) -> str:
    """``"questionnaire"``, ``"published-results"``, ``"jury-results"``, ``"xlsx"`` (a workbook of
    neither kind, or an unreadable one), or the :func:`soundaq.base.filekinds.sniff` kind of a non-workbook."""
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
    that takes it) for a positional workbook or a ``--published`` file that is recognisably something else."""
    for path in workbooks:
        kind = workbook_kind(path)
        if kind in FOREIGN and kind != "questionnaire":
            raise filekinds.wrong_kind(path, kind, "a filled questionnaire workbook")
    if published is not None and published.is_file():
        kind = workbook_kind(published)
        if kind in FOREIGN and kind != "published-results":
            raise filekinds.wrong_kind(published, kind, "the published results workbook (--published)")
