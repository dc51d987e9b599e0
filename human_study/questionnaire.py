"""Filled questionnaires (one workbook per participant) and the key that un-blinds their captions.

A workbook is read by its content: in every sheet except ``Example*`` sheets, a *header row* is a
row naming at least three of the rating dimensions (``Precision ( [1, 5] )``, ``Fluency (negative)``
...); it fixes which column holds which rating, the record id (``Record ID``/``Audio ID``/``Clip``)
and the caption label (``Caption``). Below it, every row whose caption cell reads ``Caption N`` is
one caption rated by this participant. A row starting with ``Dataset ...`` opens a section. Header
rows, blank rows, notes and sections may sit anywhere; a ``Caption 2`` row without a record id (an empty or
merged record-id cell) belongs to the clip of the row above it.

The key (CSV: ``participant,dataset,clip,caption,system``) says which system wrote caption N of a
clip in a participant's workbook; a workbook belongs to the participant whose id equals its file
stem or is one of the stem's tokens (``P3`` matches ``P3_excel.xlsx``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from soundaq.base.errors import UserError
from soundaq.base.filekinds import sniff, wrong_kind
from soundaq.base.textio import TextFileError, clean_cell, csv_rows
from soundaq.human_study.cells import Sheet, clip_text, coord, read_sheets_logged, table_rows
from soundaq.human_study.dimensions import OVERALL, RATED, overall_score
from soundaq.human_study.issues import ERROR, WARNING, IssueLog

#: Columns of the tidy ratings table (``ratings.csv``).
TIDY_COLUMNS = ("source", "participant", "dataset", "clip", "system", "dimension", "score",
                "workbook", "sheet", "cell", "section", "caption")


class JuryKeyError(UserError, ValueError):
    """A jury key file (the un-blinding CSV) that cannot be used; the message names the file, the line and
    the fix. A :class:`~soundaq.base.errors.UserError` (exit code 2); also a ValueError, as before.
    """


@dataclass
class CaptionItem:
    """One caption row of one workbook: up to five ratings and where each came from."""

    workbook: str
    sheet: str
    section: str
    row: int
    clip: str
    clip_cell: str
    caption: int
    values: dict[str, float | None] = field(default_factory=dict)
    cells: dict[str, str] = field(default_factory=dict)

    def valid_count(self) -> int:
        """How many of the caption's ratings are usable."""
        return sum(v is not None for v in self.values.values())

    def exclude_all(self) -> int:
        """Drop every rating of the caption; returns how many usable ones were dropped."""
        n = self.valid_count()
        for dim in self.values:
            self.values[dim] = None
        return n


def read_workbook(path: Path, log: IssueLog) -> list[CaptionItem]:
    """All caption rows of one filled questionnaire; problems go to ``log`` (never raised)."""
    name = Path(path).name
    sheets = read_sheets_logged(path, log, "save it from Excel as .xlsx and run again")
    if sheets is None:
        return []
    items: list[CaptionItem] = []
    sheets_with_table = 0
    for ws in sheets:
        if ws.title.strip().lower().startswith("example"):
            continue
        found, sheet_items = _read_sheet(ws, name, log)
        sheets_with_table += found
        items.extend(sheet_items)
    if not sheets_with_table:
        log.add(name, "", "", "no_ratings",
                "no header row with the rating columns (Precision, Recall, Fluency, Conciseness, "
                "Irrelevance) in any sheet; fix: pass filled questionnaire workbooks (the published results "
                "workbook goes to --published)")
    _flag_duplicates(items, log)
    return items


def _read_sheet(ws: Sheet, name: str, log: IssueLog) -> tuple[bool, list[CaptionItem]]:
    """Whether the sheet holds a rating table (a header row), and its caption rows; problems go to ``log``."""
    found = False
    items: list[CaptionItem] = []
    for row in table_rows(ws.values):
        r, header = row.row, row.header
        if row.is_header:
            found = True
            for dim in RATED:
                if dim not in header.dims:
                    log.add(name, ws.title, coord(r, 1), "missing",
                            f"header row {r} has no {dim} column; every {dim} rating below it is missing; "
                            f"fix: add a column headed {dim.capitalize()}",
                            severity=WARNING)
            continue
        own = {dim: row.cells.get(col) for dim, col in header.dims.items()}
        filled = [dim for dim, v in own.items() if v is not None and not (isinstance(v, str) and not v.strip())]
        caption, clip = row.caption, row.clip
        if caption is None:
            if filled:
                log.add(name, ws.title, coord(r, header.dims[filled[0]]), "unlabelled_ratings",
                        f"row {r} has {len(filled)} rating(s) but no 'Caption N' label; "
                        "fix: label the row or delete the ratings", excluded=len(filled))
            continue
        if clip is None:
            log.add(name, ws.title, row.clip_cell or coord(r, 1), "unlabelled_ratings",
                    f"'Caption {caption}' row {r} has no record id (clip); fix: fill in the clip's file name",
                    excluded=len(filled))
            continue
        item = CaptionItem(name, ws.title, row.section, r, clip, row.clip_cell, caption)
        for dim in RATED:
            col = header.dims.get(dim)
            if col is None:
                item.values[dim] = None
                continue
            cell = coord(r, col)
            item.cells[dim] = cell
            parsed = ws.rating(r, col, dim)
            item.values[dim] = parsed.value
            if parsed.kind:
                ok = parsed.value is not None
                log.add(name, ws.title, cell, parsed.kind,
                        f"{dim} of {clip} caption {caption}: {parsed.detail}"
                        + ("" if ok else f"; no overall score for this caption; fix: {parsed.fix}"
                           if parsed.kind == "missing" else f"; rating excluded; fix: {parsed.fix}"),
                        severity=WARNING if ok else ERROR, excluded=0 if ok else int(parsed.kind != "missing"))
        items.append(item)
    return found, items


def _flag_duplicates(items: list[CaptionItem], log: IssueLog) -> None:
    """A clip rated twice (same caption number) in one workbook: all its ratings are excluded."""
    seen: dict[tuple[str, int], CaptionItem] = {}
    dup_clips: dict[str, list[CaptionItem]] = {}
    for it in items:
        k = (it.clip.casefold(), it.caption)
        if k in seen:
            dup_clips.setdefault(it.clip.casefold(), [seen[k]]).append(it)
        else:
            seen[k] = it
    for clip_cf, dups in dup_clips.items():
        affected = [it for it in items if it.clip.casefold() == clip_cf]
        n = sum(it.exclude_all() for it in affected)
        first, again = dups[0], dups[1]
        log.add(again.workbook, again.sheet, again.clip_cell or f"A{again.row}", "duplicate_clip",
                f"clip {again.clip} caption {again.caption} appears again (first at "
                f"{first.sheet}!{first.clip_cell or first.row}); all {n} ratings of this clip in the "
                "workbook are excluded; fix: delete the extra rows", excluded=n)


@dataclass
class Key:
    """The un-blinding key of a questionnaire (:func:`read_key`): which system wrote each caption of each participant's
    clips.
    """

    path: Path
    #: (participant, clip, caption) casefolded -> (participant, dataset, clip, system)
    entries: dict[tuple[str, str, int], tuple[str, str, str, str]]
    participants: list[str]
    #: clip casefolded -> how the pairing was recovered (the shipped public key's ``evidence``,
    #: :mod:`soundaq.human_study.public_key`); empty for a key CSV without an ``evidence`` column, whose
    #: pairings are its author's word
    evidence: dict[str, str] = field(default_factory=dict)

    def participant_for(self, workbook: Path) -> str | None:
        """The key's participant id for a workbook file (its stem, or one token of its stem)."""
        stem = Path(workbook).stem
        tokens = {t.casefold() for t in re.split(r"[^0-9A-Za-z]+", stem) if t}
        exact = [p for p in self.participants if p.casefold() in (stem.casefold(), Path(workbook).name.casefold())]
        if len(exact) == 1:
            return exact[0]
        hits = [p for p in self.participants if p.casefold() in tokens]
        return hits[0] if len(hits) == 1 else None

    def clips_of(self, participant: str) -> set[tuple[str, int]]:
        """The ``(clip, caption number)`` pairs the key lists for ``participant`` (casefolded clips)."""
        p = participant.casefold()
        return {(c, n) for (pp, c, n) in self.entries if pp == p}


_KEY_ALIASES = {
    "participant": ("participant", "participant_id", "rater", "expert"),
    "dataset": ("dataset",),
    "clip": ("clip", "record_id", "audio_id", "file"),
    "caption": ("caption", "caption_number", "caption_no"),
    "system": ("system", "source", "captioner"),
}


def read_key(path: Path) -> Key:  # noqa: C901  (one check per column, each with its own message)
    """Read the un-blinding key; raises :class:`JuryKeyError` naming the line to fix.

    An ``evidence`` column (the shipped public key's format, :mod:`soundaq.human_study.public_key`) is kept as
    :attr:`Key.evidence`, so that key keeps its caveats when it is given by path.
    """
    path = Path(path)
    if not path.is_file():
        raise JuryKeyError(f"{path}: key file not found; pass --key with the CSV that says which system "
                           "wrote each caption (participant,dataset,clip,caption,system)")
    if sniff(path) in ("xlsx", "questionnaire", "published-results"):
        raise JuryKeyError(str(wrong_kind(path, "xlsx", "a CSV key", fix="save the key sheet as CSV (UTF-8)")))
    try:
        reader = iter(csv_rows(path))
    except TextFileError as err:
        raise JuryKeyError(str(err)) from None
    try:
        header = [clean_cell(h).lower().replace(" ", "_") for h in next(reader)]
    except StopIteration:
        raise JuryKeyError(f"{path}: empty key file; it needs a header participant,dataset,clip,caption,system") from None
    cols: dict[str, int] = {}
    for name, aliases in _KEY_ALIASES.items():
        for a in aliases:
            if a in header:
                cols[name] = header.index(a)
                break
    missing = [n for n in _KEY_ALIASES if n not in cols]
    if missing:
        raise JuryKeyError(f"{path}:1: key header lacks column(s) {', '.join(missing)}; "
                           "expected participant,dataset,clip,caption,system")
    entries: dict[tuple[str, str, int], tuple[str, str, str, str]] = {}
    lines: dict[tuple[str, str, int], int] = {}
    datasets: dict[str, tuple[str, int]] = {}
    participants: list[str] = []
    ev_col = header.index("evidence") if "evidence" in header else None
    evidence: dict[str, str] = {}
    for lineno, row in enumerate(reader, start=2):
        if not any(clean_cell(cell) for cell in row):
            continue
        vals = {n: (clean_cell(row[i]) if i < len(row) else "") for n, i in cols.items()}
        empty = [n for n, v in vals.items() if not v]
        if empty:
            raise JuryKeyError(f"{path}:{lineno}: empty {', '.join(empty)}; every key row needs all five values")
        m = re.fullmatch(r"(?:caption\s*)?(\d+)", vals["caption"], re.IGNORECASE)
        if not m:
            raise JuryKeyError(f"{path}:{lineno}: caption {vals['caption']!r} is not a caption number (1, 2, ...)")
        caption = int(m.group(1))
        clip = clip_text(vals["clip"])
        assert clip is not None               # vals["clip"] is a non-empty cleaned cell
        k = (vals["participant"].casefold(), clip.casefold(), caption)
        if k in entries:
            raise JuryKeyError(f"{path}:{lineno}: participant {vals['participant']} clip {clip} caption {caption} "
                               f"already given on line {lines[k]}; keep one row")
        prev = datasets.get(clip.casefold())
        if prev and prev[0] != vals["dataset"]:
            raise JuryKeyError(f"{path}:{lineno}: clip {clip} is in dataset {vals['dataset']} here but "
                               f"{prev[0]} on line {prev[1]}; a clip belongs to one dataset")
        datasets.setdefault(clip.casefold(), (vals["dataset"], lineno))
        entries[k] = (vals["participant"], vals["dataset"], clip, vals["system"])
        lines[k] = lineno
        if ev_col is not None and ev_col < len(row) and clean_cell(row[ev_col]):
            evidence[clip.casefold()] = clean_cell(row[ev_col])
        if vals["participant"] not in participants:
            participants.append(vals["participant"])
    if not entries:
        raise JuryKeyError(f"{path}: the key has a header but no rows")
    by_clip: dict[tuple[str, str], dict[str, int]] = {}
    for (p, c, n), (_, _, _, system) in entries.items():
        systems = by_clip.setdefault((p, c), {})
        if system in systems:
            raise JuryKeyError(f"{path}:{lines[(p, c, n)]}: captions {systems[system]} and {n} of clip {c} for "
                               f"participant {entries[(p, c, n)][0]} both name system {system}; "
                               "each caption of a clip comes from a different system")
        systems[system] = n
    return Key(path, entries, participants, evidence=evidence)


def unblind(items: list[CaptionItem], key: Key, participant: str | None, workbook: Path,
            log: IssueLog) -> list[dict]:
    """Attach dataset and system to a workbook's caption rows; returns tidy rating records.

    The overall score is computed for a caption when all five of its ratings are usable.
    """
    name = Path(workbook).name
    if participant is None:
        n = sum(it.valid_count() for it in items)
        log.add(name, "", "", "unknown_participant",
                f"no participant of the key {key.path.name} matches this file name; {n} ratings excluded; fix: name "
                f"the file after the participant (e.g. {key.participants[0]}.xlsx) or add it to the key",
                excluded=n)
        return []
    records: list[dict] = []
    seen: set[tuple[str, int]] = set()
    for it in items:
        k = (participant.casefold(), it.clip.casefold(), it.caption)
        seen.add((it.clip.casefold(), it.caption))
        entry = key.entries.get(k)
        if entry is None:
            n = it.exclude_all()
            log.add(name, it.sheet, it.clip_cell or f"A{it.row}", "not_in_key",
                    f"clip {it.clip} caption {it.caption} of participant {participant} is not in the key "
                    f"{key.path.name}; {n} ratings excluded; fix: add it to the key", excluded=n)
            continue
        _, dataset, clip, system = entry
        base = {"source": "participants", "participant": participant, "dataset": dataset, "clip": clip,
                "system": system, "workbook": name, "sheet": it.sheet, "section": it.section,
                "caption": it.caption}
        for dim in RATED:
            if it.values.get(dim) is not None:
                records.append({**base, "dimension": dim, "score": it.values[dim], "cell": it.cells[dim]})
        if all(it.values.get(d) is not None for d in RATED):
            score = overall_score(*(it.values[d] for d in RATED))
            cells = f"{it.cells[RATED[0]]}:{it.cells[RATED[-1]]}"
            records.append({**base, "dimension": OVERALL, "score": float(score), "cell": cells})
    unrated = sorted(key.clips_of(participant) - seen)
    if unrated:
        shown = ", ".join(f"{c} caption {n}" for c, n in unrated[:4])
        log.add(name, "", "", "not_rated",
                f"{len(unrated)} caption(s) the key lists for participant {participant} have no row in the "
                f"workbook (e.g. {shown}); fix: add their rows, or leave them out of the key",
                severity=WARNING)
    return records


def read_questionnaires(paths: list[Path], key: Key, log: IssueLog) -> list[dict]:
    """Read and un-blind every workbook; one bad workbook never stops the others."""
    records: list[dict] = []
    owners: dict[str, str] = {}
    for path in paths:
        before = len(log.skipped_files())
        items = read_workbook(path, log)
        participant = key.participant_for(path)
        if len(log.skipped_files()) > before:   # reported as a whole (unreadable, no rating table)
            if participant is not None:
                owners.setdefault(participant, Path(path).name)
            continue
        if participant is not None and participant in owners:
            n = sum(it.valid_count() for it in items)
            log.add(Path(path).name, "", "", "duplicate_participant",
                    f"participant {participant} already read from {owners[participant]}; "
                    f"this second workbook ({n} ratings) is excluded; fix: remove one of the two files",
                    excluded=n)
            continue
        if participant is not None:
            owners[participant] = Path(path).name
        records.extend(unblind(items, key, participant, path, log))
    absent = [p for p in key.participants if p not in owners]
    if absent:
        log.add(key.path.name, "", "", "no_workbook",
                f"{len(absent)} participant(s) of the key have no workbook among the inputs: "
                f"{', '.join(absent[:8])}{' ...' if len(absent) > 8 else ''}; fix: pass their workbooks too, "
                "or leave them out of the key", severity=WARNING)
    return records

