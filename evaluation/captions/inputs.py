r"""Reading caption tables: candidates (clip, system, caption) and references (clip, caption).

Files are read as UTF-8 with or without a byte-order mark and with any line ends (``\n``,
``\r\n``, ``\r``). Every caption text, whichever file or workbook it comes from, passes through
:func:`caption_text` before any tokenizer sees it: line and paragraph breaks inside a cell, tabs,
other control characters and invisible or no-break spaces read as one space (the COCO PTB tokenizer
takes each of them for the end of a caption and shifts every later caption onto the wrong clip);
otherwise the text is kept as written (the paper flavour is sensitive to trailing spaces, see
:mod:`.paper`). One rule for every flavour: a caption with no word (no letter or digit: ``...``,
``--``, an emoji) is excluded and listed as ``no_words``, whichever flavours are asked for. Bad rows
never stop a run: each becomes one :class:`Issue` naming the file and row, the row is excluded and
counted, the rest is scored.

``soundaq caption`` writes ``captions.csv`` with columns clip, window, ..., caption, captioner,
model; such a file is accepted as candidates: the system is the captioner, plus ``:`` and the
model when a model is named, and only whole-clip rows (window empty or ``all``) are used.
"""
from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from soundaq.base.errors import UserError
from soundaq.base.issues import IssueLog

if TYPE_CHECKING:
    pass

#: Kinds of input problems (issues.csv, report).
KINDS: dict[str, str] = {
    "empty_caption": "empty or whitespace-only caption",
    "no_reference": "candidate clip without any reference caption",
    "duplicate": "the same (clip, system) more than once",
    "not_utf8": "row that is not UTF-8 text",
    "missing_column": "row shorter than the header (a value is missing)",
    "missing_caption_cell": "questionnaire caption row with an empty caption cell",
    "no_words": "caption with no word (no letter or digit) once tokenised",
    "unscorable": "caption a metric cannot score",
}

#: Characters read as a space in a caption (a run of them as one space): C0 and C1 control characters
#: (CR, LF, tab, vertical tab, form feed, NEL U+0085, ...), the line and paragraph separators
#: U+2028/U+2029, no-break spaces (U+00A0, U+202F), the other Unicode spaces (U+1680, U+2000-U+200A,
#: U+205F, U+3000), zero-width and direction marks (U+200B-U+200F, U+2060, U+FEFF). A CR LF is one run.
_BREAK_CLASS = ("[\x00-\x1f\x7f-\x9f\u00a0\u1680\u2000-\u200f\u2028\u2029\u202f\u205f\u2060"
                "\u3000\ufeff]")
_BREAKS = re.compile(_BREAK_CLASS + "+")
_ENDS = re.compile(f"^{_BREAK_CLASS}+|{_BREAK_CLASS}+$")
_SOFT_HYPHEN = "\u00ad"


def caption_text(raw: str) -> str:
    r"""A caption cell as the metrics read it: breaks and invisible characters at either end dropped,
    each run of them inside the text one space, soft hyphens (U+00AD) dropped; ordinary spaces are
    kept as written (the release's ROUGE-L splits at full stops, so a space after the last one counts).

    >>> caption_text("People talking.\r\nIt feels\u00a0calm.\u200b\n")
    'People talking. It feels calm.'
    """
    return _BREAKS.sub(" ", _ENDS.sub("", raw.replace(_SOFT_HYPHEN, "")))


def has_word(text: str) -> bool:
    """Whether a caption holds a word once tokenised: any letter or digit (Unicode). Without one, the
    PTB tokenizer leaves nothing (the standard flavour would score 0) and the ``rouge`` package
    refuses the text (the paper flavour cannot score it); soundaq excludes such a caption from both.
    """
    return any(ch.isalnum() for ch in text)


def caption_problem(text: str) -> tuple[str, str] | None:
    """Why a caption (as :func:`caption_text` gives it) cannot be scored in any flavour, or None:
    ``(kind, phrase)`` with kind ``empty_caption`` or ``no_words`` (:data:`KINDS`) and a phrase for
    the issue line (``is empty``). One rule for every flavour, applied before any metric runs.
    """
    if not text.strip():
        return "empty_caption", "is empty"
    if not has_word(text):
        return "no_words", (f"has no word ({text[:40]!r}: no letter or digit, nothing is left once tokenised; "
                            "excluded from every flavour)")
    return None


@dataclass
class Issue:
    """One input problem: ``file:row: message`` and how many caption rows it excluded."""

    file: str
    row: str
    kind: str
    message: str
    excluded: int = 1

    def line(self) -> str:
        """The issue as one line: ``file:row: message`` (``file: message`` without a row)."""
        return f"{self.file}:{self.row}: {self.message}" if self.row else f"{self.file}: {self.message}"


class IssueList(IssueLog[Issue]):
    """The input problems of one caption run, in the order found (:class:`soundaq.base.issues.IssueLog`
    of caption-row :class:`Issue`; ``issues.csv`` columns file, row, kind, message, excluded).
    """

    columns = ("file", "row", "kind", "message", "excluded")

    def add(self, file: object, row: object, kind: str, message: str, excluded: int = 1) -> Issue:
        """Record one problem.

        Args:
            file: the file it is in.
            row: its row (or sheet cell; "" when it concerns the whole file).
            kind: what kind of problem (:data:`KINDS`).
            message: the one line that names it and the fix.
            excluded: how many caption rows it left out.

        Returns:
            The :class:`Issue` added.
        """
        return self.append(Issue(str(file), str(row), kind, message, excluded))


@dataclass
class Caption:
    """One caption row: where it came from (file, row) and its text."""

    clip: str
    system: str
    text: str
    file: str
    row: str


_SURROGATE = re.compile(r"[\udc80-\udcff]")


def read_rows(path: Path | str, required: tuple[str, ...], issues: IssueList,
              aliases: dict[str, tuple[str, ...]] | None = None) -> tuple[list[str], list[tuple[int, dict]]]:
    """The header and ``(line number, {column: value})`` rows of a CSV file.

    Columns are matched case-insensitively (``aliases`` maps a column to accepted names). A row that
    is not UTF-8 text is one issue and is left out.

    Raises:
        UserError: file missing or unreadable, empty, or a required column absent from the header.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file; pass a CSV file")
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise UserError(f"{path}: cannot read ({err.strerror}); check the path and permissions") from None
    text = raw.decode("utf-8", errors="surrogateescape")
    if text.startswith("\ufeff"):
        text = text[1:]
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise UserError(f"{path}: empty file; it needs a header row ({', '.join(required)})") from None
    except csv.Error as err:
        raise UserError(f"{path}:1: not a CSV header ({err}); save the table as CSV") from None
    names = [_SURROGATE.sub("?", h).strip().lower().replace(" ", "_") for h in header]
    aliases = aliases or {}
    cols: dict[str, int] = {}
    for i, n in enumerate(names):
        for want in {*required, *aliases}:
            if want not in cols and (n == want or n in aliases.get(want, ())):
                cols[want] = i
    missing = [c for c in required if c not in cols]
    if missing:
        raise UserError(f"{path}:1: header lacks column(s) {', '.join(missing)} (found: {', '.join(names)}); "
                        f"expected {', '.join(required)}")
    rows: list[tuple[int, dict]] = []
    last = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as err:
            issues.add(path.name, reader.line_num, "not_utf8", f"row {reader.line_num} is not valid CSV ({err}); "
                       "row excluded; fix: quote fields that hold commas or line breaks")
            continue
        lineno = last + 1
        last = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        bad = [names[i] if i < len(names) else f"column {i + 1}" for i, cell in enumerate(row) if _SURROGATE.search(cell)]
        if bad:
            found = _SURROGATE.search(next(c for c in row if _SURROGATE.search(c)))
            assert found is not None            # the cell was picked because it has one
            byte = found.group(0)
            issues.add(path.name, lineno, "not_utf8",
                       f"row {lineno} is not UTF-8 text (byte 0x{ord(byte) - 0xDC00:02X} in {bad[0]}); row excluded; "
                       "fix: save the file as UTF-8")
            continue
        rows.append((lineno, {c: (row[i] if i < len(row) else None) for c, i in cols.items()}))
    return names, rows


def read_candidates(path: Path | str, issues: IssueList) -> list[Caption]:
    """Candidate captions of one or more systems (``clip,system,caption`` or ``captions.csv`` of
    ``soundaq caption``). Empty captions and duplicate (clip, system) rows become issues.

    Raises:
        UserError: the file cannot be read or lacks the columns of either layout.
    """
    path = Path(path)
    names, _ = read_rows(path, ("clip", "caption"), IssueList())
    if "system" in names:
        _, rows = read_rows(path, ("clip", "system", "caption"), issues)
        items = [(n, r["clip"], r["system"], r["caption"]) for n, r in rows]
    elif "captioner" in names:
        _, rows = read_rows(path, ("clip", "caption", "captioner"), issues, {"window": ("window",), "model": ("model",)})
        items = []
        for n, r in rows:
            window = (r.get("window") or "").strip()
            if window and window.casefold() != "all":
                continue                        # a per-window caption: the whole-clip row scores the clip
            system = (r.get("captioner") or "").strip()
            model = (r.get("model") or "").strip()
            items.append((n, r["clip"], f"{system}:{model}" if model else system, r["caption"]))
    else:
        raise UserError(f"{path}:1: header lacks a system column; expected clip,system,caption (or the "
                        "captions.csv of soundaq caption, with a captioner column)")
    out: list[Caption] = []
    for n, clip, system, caption in items:
        clip, system = (clip or "").strip(), (system or "").strip()
        if not clip or not system:
            issues.add(path.name, n, "missing_column", f"row {n} has no {'clip' if not clip else 'system'}; row excluded; "
                       "fix: fill in the cell")
            continue
        text = caption_text(caption or "")
        problem = caption_problem(text)
        if problem:
            issues.add(path.name, n, problem[0], f"row {n}: caption of {clip} ({system}) {problem[1]}; row excluded; "
                       "fix: write the caption or drop the row")
            continue
        out.append(Caption(clip, system, text, path.name, str(n)))
    return drop_duplicates(out, issues)


def drop_duplicates(captions: list[Caption], issues: IssueList) -> list[Caption]:
    """Every row of a (clip, system) that occurs more than once is excluded (one issue per extra row):
    which of the rows is meant cannot be told.
    """
    groups: dict[tuple[str, str], list[Caption]] = {}
    for c in captions:
        groups.setdefault((c.clip.casefold(), c.system.casefold()), []).append(c)
    out = []
    for group in groups.values():
        if len(group) == 1:
            out.append(group[0])
            continue
        first = group[0]
        for i, c in enumerate(group):
            where = f"row {first.row}" if i else f"row {group[1].row}"
            issues.add(c.file, c.row, "duplicate",
                       f"row {c.row}: {c.clip} ({c.system}) appears more than once (also {where}); all its rows are "
                       "excluded; fix: keep one")
    order = {id(c): i for i, c in enumerate(captions)}
    return sorted(out, key=lambda c: order[id(c)])


def read_references(path: Path | str, issues: IssueList) -> dict[str, list[Caption]]:
    """Reference captions ``clip,caption`` (one or more rows per clip) -> ``{clip: [Caption]}``.

    Raises:
        UserError: the file cannot be read or lacks the columns.
    """
    path = Path(path)
    _, rows = read_rows(path, ("clip", "caption"), issues)
    refs: dict[str, list[Caption]] = {}
    for n, r in rows:
        clip = (r["clip"] or "").strip()
        if not clip:
            issues.add(path.name, n, "missing_column", f"row {n} has no clip; row excluded; fix: fill in the clip id")
            continue
        text = caption_text(r["caption"] or "")
        problem = caption_problem(text)
        if problem:
            issues.add(path.name, n, problem[0], f"row {n}: reference caption of {clip} {problem[1]}; row excluded; "
                       "fix: write the caption or drop the row")
            continue
        refs.setdefault(clip, []).append(Caption(clip, "reference", text, path.name, str(n)))
    return refs


def clip_matcher(ref_clips: Iterable[str]) -> Callable[[str], str | None]:
    """A function mapping a candidate's clip id to a reference clip id (or None): the same text
    (case-insensitive), else the same file stem when that is unambiguous (``audio/3.wav`` -> ``3.wav``).
    """
    ref_clips = list(ref_clips)
    exact = {c.casefold(): c for c in ref_clips}
    stems: dict[str, list[str]] = {}
    for c in ref_clips:
        stems.setdefault(Path(c).stem.casefold(), []).append(c)

    def match(clip: str) -> str | None:
        hit = exact.get(clip.casefold())
        if hit is not None:
            return hit
        cands = stems.get(Path(clip).stem.casefold(), [])
        return cands[0] if len(cands) == 1 else None

    return match


def pair_with_references(candidates: list[Caption], refs: dict[str, list[Caption]], refs_file: str,
                         issues: IssueList) -> list[tuple[Caption, str, list[str]]]:
    """``(candidate, reference clip, reference texts)`` for every candidate with a reference; the
    others are issues (``no_reference``).
    """
    match = clip_matcher(list(refs))
    out = []
    for c in candidates:
        clip = match(c.clip)
        if clip is None:
            issues.add(c.file, c.row, "no_reference",
                       f"row {c.row}: clip {c.clip} ({c.system}) has no reference caption in {refs_file}; row excluded; "
                       "fix: add its reference or check the clip id")
            continue
        out.append((c, clip, [r.text for r in refs[clip]]))
    return out
