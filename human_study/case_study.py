"""The paper's case study: the clips where the jury's final scores of a system's caption and the expert
caption differ most, each way, with both captions (``case_study.csv`` and a section of ``report.md``).

The final score of a caption is the overall score per clip and system (:func:`soundaq.human_study.jury.clip_scores`:
the published per-clip average, or the mean over participants). For every source, dataset and system
other than the reference (by default the human expert captions), the gap of a clip is

    gap = overall(reference's caption) - overall(system's caption)

over the clips both were scored on; the ``n`` largest positive gaps (the reference scored higher) and the
``n`` most negative (the system scored higher) are listed, largest first, ties by clip name. A side with
fewer than ``n`` clips of that sign lists what there is.

The caption texts come from questionnaire workbooks (:func:`soundaq.human_study.caption_texts.read_caption_texts`,
un-blinded by their key): the filled questionnaires of the run, or ``--captions WORKBOOK`` (the blank public
questionnaire holds every caption of the paper's jury; its key ships with soundaq). The published
averages workbook holds no caption text.
"""
from __future__ import annotations

from pathlib import Path

from soundaq.human_study.dimensions import OVERALL

#: Columns of ``case_study.csv``.
COLUMNS = ("source", "dataset", "system", "reference", "higher", "rank", "clip", "system_score",
           "reference_score", "gap", "system_caption", "reference_caption", "key_pairing")
#: The mark of a row whose pairing the shipped public key does not know exactly (footnoted in report.md).
MARK = "†"
#: Clips listed per side by default.
DEFAULT_N = 3


def captions_from(workbooks: list[Path], key, skip_unreadable: bool = True) -> dict[tuple[str, str], str]:
    """Caption texts by ``(clip casefolded, system)`` from questionnaire workbooks un-blinded by ``key``
    (a :class:`~soundaq.human_study.questionnaire.Key`); the first workbook that has a text wins, and reading
    stops once every caption the key names has one.

    Raises:
        ValueError: (``skip_unreadable=False``) a workbook that cannot be read as a questionnaire (the
            message names it); by default such a workbook is skipped (the jury's reader reports it).
    """
    from soundaq.human_study.caption_texts import read_caption_texts

    out: dict[tuple[str, str], str] = {}
    wanted = {(entry[2].casefold(), entry[3]) for entry in key.entries.values()}
    for wb in workbooks:
        participant = key.participant_for(wb)
        if participant is None:
            continue
        if wanted <= set(out):
            break           # every caption of the key has its text: the other workbooks need not be opened
        try:
            texts = read_caption_texts(wb)
        except ValueError:
            if not skip_unreadable:
                raise
            continue
        for t in texts:
            entry = key.entries.get((participant.casefold(), t.clip.casefold(), t.caption))
            if entry is not None and t.text and t.text.strip():
                out.setdefault((entry[2].casefold(), entry[3]), t.text.strip())
    return out


def read_captions_arg(workbook: Path, key) -> tuple[dict[tuple[str, str], str], dict[str, str]]:
    """The texts of ``--captions WORKBOOK``, un-blinded by ``key`` when that key (a CSV path) has a participant
    for the workbook, else by the public questionnaire's shipped key; and that key's ``evidence`` per clip
    (:attr:`~soundaq.human_study.questionnaire.Key.evidence`: empty for a key CSV).

    Raises:
        UserError: a missing or unreadable workbook, a file of another kind (the published averages: WrongKind,
            pointing to the questionnaire), one that neither key fits, or one without caption texts.
    """
    from soundaq.base.errors import UserError
    from soundaq.human_study.caption_eval import resolve_key
    from soundaq.human_study.workbooks import check_caption_source

    workbook = Path(workbook)
    if not workbook.is_file():
        raise UserError(f"--captions {workbook}: no such file; fix: pass a questionnaire .xlsx (e.g. the public "
                        "questionnaire template)")
    check_caption_source(workbook, "--captions", "--published")
    the_key = None
    if key is not None and str(key) != "public" and Path(key).is_file():
        the_key, _ = resolve_key(workbook, key)
        if the_key.participant_for(workbook) is None:
            the_key = None
    if the_key is None:
        the_key, _ = resolve_key(workbook, None)
    try:
        texts = captions_from([workbook], the_key, skip_unreadable=False)
    except ValueError as err:
        raise UserError(f"--captions {err}") from None
    if not texts:
        raise UserError(f"--captions {workbook}: no caption text that the key un-blinds; fix: pass the "
                        "questionnaire whose captions the jury rated")
    return texts, dict(the_key.evidence)


def largest_gaps(clips, reference: str, captions: dict[tuple[str, str], str] | None = None, n: int = DEFAULT_N,
                 pairing: dict[str, str] | None = None):
    """The case-study table (:data:`COLUMNS`) from per-clip scores.

    Args:
        clips: :func:`~soundaq.human_study.jury.clip_scores`'s table (``source, dataset, clip, system,
            dimension, score``); only the ``overall`` rows are used.
        reference: the system the others are compared with (the experts' captions).
        captions: texts by ``(clip casefolded, system)`` (:func:`captions_from`); missing ones are empty.
        n: clips per side (at least 1).
        pairing: the shipped public key's ``evidence`` per casefolded clip, when that key un-blinded the captions
            or the ratings (:attr:`~soundaq.human_study.questionnaire.Key.evidence`); gives ``key_pairing``.

    Returns:
        a DataFrame, per source, dataset and system: first the ``n`` clips where ``reference`` scored
        higher (``higher`` = the reference), then the ``n`` where the system did; ``gap`` as in the module
        docstring (overall-score points, range -10 to 10); ``key_pairing`` ``exact``, ``partial`` or ``ambiguous``
        (:func:`~soundaq.human_study.public_key.pairing_grade`) for a clip the shipped key paired, else empty.
    """
    import pandas as pd

    from soundaq.human_study.public_key import pairing_grade

    captions = captions or {}
    pairing = pairing or {}
    rows = []
    overall = clips[clips["dimension"] == OVERALL]
    for (source, dataset), g in overall.groupby(["source", "dataset"], sort=True):
        wide = g.pivot_table(index="clip", columns="system", values="score", aggfunc="first")
        if reference not in wide.columns:
            continue
        for system in sorted(s for s in wide.columns if s != reference):
            pair = wide[[system, reference]].dropna()
            gap = pair[reference] - pair[system]
            for higher, picked in ((reference, gap[gap > 0]), (system, -gap[gap < 0])):
                order = sorted(picked.index, key=lambda c: (-picked[c], str(c)))[:n]
                for rank, clip in enumerate(order, 1):
                    rows.append({"source": source, "dataset": dataset, "system": system, "reference": reference,
                                 "higher": higher, "rank": rank, "clip": clip,
                                 "system_score": float(pair.loc[clip, system]),
                                 "reference_score": float(pair.loc[clip, reference]),
                                 "gap": round(float(gap[clip]), 9),     # no float noise (1.184375, not ...0002)
                                 "system_caption": captions.get((str(clip).casefold(), system), ""),
                                 "reference_caption": captions.get((str(clip).casefold(), reference), ""),
                                 "key_pairing": (pairing_grade(pairing[str(clip).casefold()])
                                                 if str(clip).casefold() in pairing else "")})
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _cell(text: str) -> str:
    """Caption text as one Markdown table cell (pipes escaped, line breaks as spaces)."""
    return " ".join(str(text).split()).replace("|", "\\|") or "(no text)"


def markdown_section(frame, n: int, captions_from_text: str | None,
                     pairing: dict[str, str] | None = None) -> list[str]:
    """``report.md``'s case-study section: one table per source, dataset and side.

    A clip whose captions the shipped public key paired only partially or ambiguously (``key_pairing``; its
    ``evidence`` in ``pairing``) is marked :data:`MARK` and footnoted under its table, as the key promises
    (:mod:`soundaq.human_study.public_key`); the ``key pairing`` column appears when the shipped key paired any row.
    """
    from soundaq.human_study.report import md_table

    pairing = pairing or {}
    parts = ["## Case study: the largest gaps in the overall score, each way (`case_study.csv`)", "",
             f"Per dataset, the {n} clips where the reference's caption scored most above the other system's, "
             "then the clips where it scored most below; gap = reference - system (overall score, -5 to 5 each). "
             + (f"Captions: {captions_from_text}." if captions_from_text else
                "Captions: none given (the published averages hold no text): pass `--captions` with a questionnaire "
                "workbook, e.g. the public questionnaire template, to show them."), ""]
    if frame is None or frame.empty:
        return [*parts, "No clip was scored for both the reference and another system.", ""]
    keyed = bool((frame["key_pairing"] != "").any()) if "key_pairing" in frame else False
    for (source, dataset, system), g in frame.groupby(["source", "dataset", "system"], sort=True):
        reference = g["reference"].iloc[0]
        for higher in (reference, system):
            side = g[g["higher"] == higher]
            parts += [f"**{dataset} ({source}): {higher}'s caption scored higher**", ""]
            if side.empty:
                parts += ["No clip.", ""]
                continue
            parts += [md_table(["rank", "clip", f"{reference}", f"{system}", "gap", f"{reference}'s caption",
                                f"{system}'s caption"] + (["key pairing"] if keyed else []),
                               [[r["rank"], f"{r['clip']} {MARK}" if _shaky(r) else r["clip"],
                                 f"{r['reference_score']:.3f}", f"{r['system_score']:.3f}",
                                 f"{r['gap']:+.3f}", _cell(r["reference_caption"]), _cell(r["system_caption"])]
                                + ([r["key_pairing"]] if keyed else []) for _, r in side.iterrows()]), ""]
            parts += _footnotes(side, pairing)
    return parts


def _shaky(row) -> bool:
    """Whether a case-study row rests on a partial or ambiguous pairing of the shipped key."""
    return str(row.get("key_pairing", "") or "") in ("partial", "ambiguous")


def _footnotes(side, pairing: dict[str, str]) -> list[str]:
    """One footnote line per marked clip of a table (the key's grade and evidence)."""
    from soundaq.human_study.public_key import evidence_detail

    notes = []
    for _, r in side.iterrows():
        if _shaky(r):
            evidence = evidence_detail(pairing.get(str(r["clip"]).casefold(), ""))
            notes += [f"{MARK} {r['clip']}: the shipped public questionnaire key's pairing of this clip's two "
                         f"captions is {r['key_pairing']} ({evidence}); which caption is {r['system']}'s, and so "
                         "which text (and, for questionnaires it un-blinded, which score) sits on which side, rests "
                         "on it (docs/caption_metrics.md).", ""]
    return notes
