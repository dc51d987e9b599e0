"""The .xlsx workbook format: the one opener of every workbook soundaq reads.

:func:`open_workbook` opens questionnaires, the published jury workbook and the release's
``NLP_metrics.xlsx`` alike; a file openpyxl cannot open is told apart by its bytes
(:func:`not_a_workbook`), so that the line names what it is and the fix that works for it: a
password-protected workbook (an OLE2 compound file holding ``EncryptionInfo`` and
``EncryptedPackage`` streams, what Excel's "Encrypt with Password" writes; [MS-OFFCRYPTO]), a legacy
Excel 97-2003 ``.xls`` (OLE2 with a ``Workbook`` stream; [MS-XLS]), an OpenDocument ``.ods``, a
binary ``.xlsb``, a cut-short zip, a CSV or HTML file with a workbook's name, an empty file.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

from soundaq.base.errors import UserError

OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_SAVE_AS_XLSX = "open it in Excel (or LibreOffice) and save it as Excel Workbook (.xlsx)"


class WorkbookError(UserError, ValueError):
    """A file that cannot be opened as an .xlsx workbook. ``detail`` is what it is and the fix
    (without the file name); ``str()`` is ``"<path>: <detail>"``.
    """

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
    streams), a legacy .xls ([MS-XLS]: a Workbook or Book stream), or another Office document.
    """
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
