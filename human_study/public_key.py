"""The key of the public questionnaire, recovered from the release's text metrics.

The public questionnaire (``questionnaire_template_P1_excel.xlsx``, participant P1) shows each of
the 60 clips with two captions, the expert's and SoundSCaper's, as "Caption 1"/"Caption 2" in a
randomised order, and no key says which is which. The release's ``NLP_metrics.xlsx`` scores
SoundSCaper's caption of every clip against the expert's with asymmetric metrics (ROUGE-L recall
and precision swap, BLEU's brevity penalty and CIDEr's IDF depend on which text is the reference),
so the order can be recovered: for each clip both assignments are scored with the paper flavour
(:mod:`soundaq.evaluation.captions.paper`) and compared with the workbook's SoundSCaper row on
BLEU, ROUGE-L R/P/F1 and CIDEr (METEOR is left out: it needs WordNet, which may be absent):

- ``exact``: all five metrics agree to 1e-6 under one assignment;
- ``partial``: some agree under one assignment and fewer under the other (the texts of the
  questionnaire and the ones the release scored differ slightly);
- ``nearest``: none agree; the assignment with the smaller total absolute difference is taken
  (ambiguous: say so wherever the key is used).

The recovered key ships as ``human_study/data/public_questionnaire_key.csv`` in the key format of
:func:`soundaq.human_study.questionnaire.read_key` (participant,dataset,clip,caption,system), plus
``text_sha256`` (:func:`~soundaq.human_study.caption_texts.fingerprint` of the caption) and
``evidence``. Datasets and system names follow the published jury workbook (D1: the 30 ARAUS
clips, ``.flac``; D2: the 30 external clips, ``.wav``; ``SoundSCaper`` / ``human expert``).
"""
from __future__ import annotations

import csv
import io
from importlib import resources
from pathlib import Path

from soundaq.human_study.caption_texts import fingerprint, read_caption_texts

PUBLIC_PARTICIPANT = "P1"
KEY_COLUMNS = ("participant", "dataset", "clip", "caption", "system", "text_sha256", "evidence")
#: The metrics that decide the assignment (present without WordNet).
DECIDING = ("BLEU", "ROUGE-L Recall", "ROUGE-L Precision", "ROUGE-L F1", "CIDEr")
TOLERANCE = 1e-6


def public_key_path() -> Path:
    """Path of the packaged key CSV."""
    return Path(str(resources.files("soundaq.human_study") / "data" / "public_questionnaire_key.csv"))


def recover_key(template: Path | str, nlp_metrics: Path | str, published: Path | str,
                system: str = "SoundSCaper", expert: str = "human expert"):
    """Recover which caption of each clip of the public questionnaire is SoundSCaper's.

    Args:
        template: the public questionnaire workbook.
        nlp_metrics: the release's ``NLP_metrics.xlsx`` (its ``Soundscaper`` column is used).
        published: the published jury workbook (names each clip's dataset).
        system: the name written for SoundSCaper's captions (the published workbook's).
        expert: the name written for the human expert's captions (the published workbook's).

    Returns:
        DataFrame with :data:`KEY_COLUMNS`, two rows per clip (captions 1 and 2), clips in
        questionnaire order, plus the diagnostic columns ``n_match``, ``n_match_other``,
        ``abs_diff``, ``abs_diff_other``.

    Raises:
        ValueError: a clip of the template lacks a caption text or a row in NLP_metrics.xlsx, or the
            workbook has no SoundSCaper column.
    """
    import pandas as pd

    from soundaq.evaluation.captions.paper import PaperScorer
    from soundaq.evaluation.captions.published import clip_number, read_nlp_metrics
    from soundaq.human_study.issues import IssueLog
    from soundaq.human_study.published import read_published

    texts = read_caption_texts(template)
    by_clip: dict[str, dict[int, str]] = {}
    for t in texts:
        if t.text is None:
            raise ValueError(f"{Path(template).name} {t.sheet}!{t.cell}: caption {t.caption} of {t.clip} is empty")
        by_clip.setdefault(t.clip, {})[t.caption] = t.text
    metrics = read_nlp_metrics(nlp_metrics)
    sc = metrics[metrics["system"].str.casefold() == system.casefold()]
    if sc.empty:
        raise ValueError(f"{Path(nlp_metrics).name}: no {system} column (systems: {', '.join(metrics['system'].unique())})")
    pub = {(r.index, r.metric): r.value for r in sc.itertuples()}
    datasets = {}
    for rec in read_published(Path(published), IssueLog()):
        datasets[rec["clip"].casefold()] = rec["dataset"]
    scorer = PaperScorer()
    rows = []
    for clip, caps in by_clip.items():
        if sorted(caps) != [1, 2]:
            raise ValueError(f"{Path(template).name}: clip {clip} has captions {sorted(caps)}, expected 1 and 2")
        n = clip_number(clip)
        if n is None or (n, "BLEU") not in pub:
            raise ValueError(f"{Path(nlp_metrics).name}: no row for clip {clip}")
        fits = {}
        for cand in (1, 2):
            got = scorer.score(caps[cand], [caps[3 - cand]])
            diffs = {m: abs(got[m] - pub[(n, m)]) for m in DECIDING}
            fits[cand] = (sum(d <= TOLERANCE for d in diffs.values()), sum(diffs.values()), diffs)
        best = max((1, 2), key=lambda c: (fits[c][0], -fits[c][1]))
        other = 3 - best
        (nb, db, diffs), (no, do, _) = fits[best], fits[other]
        if nb == len(DECIDING) and no < nb:
            evidence = f"exact: all {nb} metrics agree to 1e-6 (the other order: {no})"
        elif nb > no:
            agree = ", ".join(m for m in DECIDING if diffs[m] <= TOLERANCE)
            evidence = (f"partial: {agree} agree ({nb} of {len(DECIDING)}; the other order: {no}); "
                        "the texts differ from the ones the release scored")
        else:
            evidence = (f"nearest: no order reproduces the metrics ({nb} vs {no} agree); total absolute "
                        f"difference {db:.3f} vs {do:.3f}; ambiguous")
        dataset = datasets.get(clip.casefold(), "")
        for cap in (1, 2):
            rows.append({"participant": PUBLIC_PARTICIPANT, "dataset": dataset, "clip": clip, "caption": cap,
                         "system": system if cap == best else expert, "text_sha256": fingerprint(caps[cap]),
                         "evidence": evidence, "n_match": fits[best][0] if cap == best else fits[other][0],
                         "n_match_other": fits[other][0] if cap == best else fits[best][0],
                         "abs_diff": db if cap == best else do, "abs_diff_other": do if cap == best else db})
    return pd.DataFrame(rows)


def key_csv_text(key) -> str:
    """The shipped CSV (the :data:`KEY_COLUMNS` of :func:`recover_key`'s table)."""
    buf = io.StringIO()
    key[list(KEY_COLUMNS)].to_csv(buf, index=False, lineterminator="\n")
    return buf.getvalue()


def read_public_key_rows() -> list[dict]:
    """The packaged key's rows as dicts (the columns of :data:`KEY_COLUMNS`)."""
    with open(public_key_path(), encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def layout_mismatch(workbook: Path | str, rows: list[dict] | None = None) -> str | None:
    """None when the workbook shows the public questionnaire's captions in the public order, else
    one line saying where it differs (the first clip/caption whose text is not the key's).
    """
    rows = rows if rows is not None else read_public_key_rows()
    want = {(r["clip"].casefold(), int(r["caption"])): r["text_sha256"] for r in rows}
    try:
        texts = read_caption_texts(workbook)
    except ValueError as err:
        return str(err)
    seen = set()
    for t in texts:
        k = (t.clip.casefold(), t.caption)
        seen.add(k)
        if k not in want:
            return (f"{Path(workbook).name} {t.sheet}!{t.cell}: clip {t.clip} caption {t.caption} "
                    "is not in the public questionnaire")
        if t.text is None or fingerprint(t.text) != want[k]:
            return (f"{Path(workbook).name} {t.sheet}!{t.cell}: caption {t.caption} of {t.clip} is not the public "
                    "questionnaire's text in that place (another participant's order?)")
    missing = sorted(set(want) - seen)
    if missing:
        return f"{Path(workbook).name}: {len(missing)} caption(s) of the public questionnaire are absent (e.g. {missing[0][0]})"
    return None


def public_key_for(workbooks: list[Path]):
    """A :class:`~soundaq.human_study.questionnaire.Key` un-blinding workbooks in the public layout.

    Each workbook whose captions are the public questionnaire's, in its order (checked by
    :func:`layout_mismatch`), gets the public key's assignments under its own participant id: its
    file stem, or P1 for a stem that contains the token P1.

    Raises:
        ValueError: one line naming the first workbook that is not in the public layout.
    """
    import re

    from soundaq.human_study.questionnaire import Key

    rows = read_public_key_rows()
    entries = {}
    participants = []
    for wb in workbooks:
        why = layout_mismatch(wb, rows)
        if why is not None:
            raise ValueError(why + "; the public key fits only workbooks in the public questionnaire's layout: "
                             "pass that participant's key with --key KEY.csv")
        stem = Path(wb).stem
        tokens = {t.casefold() for t in re.split(r"[^0-9A-Za-z]+", stem) if t}
        participant = PUBLIC_PARTICIPANT if PUBLIC_PARTICIPANT.casefold() in tokens else stem
        if participant not in participants:
            participants.append(participant)
        for r in rows:
            entries[(participant.casefold(), r["clip"].casefold(), int(r["caption"]))] = (
                participant, r["dataset"], r["clip"], r["system"])
    return Key(public_key_path(), entries, participants, evidence=pairing_evidence(rows))


#: The grade of a clip's pairing by the first word of its ``evidence`` (``nearest`` is the ambiguous one).
GRADES = {"exact": "exact", "partial": "partial", "nearest": "ambiguous"}


def pairing_evidence(rows: list[dict] | None = None) -> dict[str, str]:
    """The shipped key's ``evidence`` per clip (casefolded clip name -> text, e.g. ``"nearest: ...; ambiguous"``)."""
    rows = rows if rows is not None else read_public_key_rows()
    return {r["clip"].casefold(): r["evidence"] for r in rows}


def pairing_grade(evidence: str) -> str:
    """``exact``, ``partial`` or ``ambiguous`` (``nearest``) from an ``evidence`` text; an unknown word is
    ``ambiguous``, the cautious reading.
    """
    return GRADES.get(str(evidence).split(":", 1)[0].strip().casefold(), "ambiguous")


def evidence_detail(evidence: str) -> str:
    """An ``evidence`` text without its leading grade word (``"partial: X agree ..."`` -> ``"X agree ..."``)."""
    head, sep, rest = str(evidence).partition(":")
    return rest.strip() if sep and head.strip().casefold() in GRADES else str(evidence)


def uncertain_pairings(evidence: dict[str, str]) -> dict[str, str]:
    """The clips of ``evidence`` (clip -> evidence) whose pairing is not ``exact`` (partial or ambiguous)."""
    return {clip: text for clip, text in evidence.items() if pairing_grade(text) != "exact"}


def with_key_pairing(frame, evidence: dict[str, str], rows=None):
    """``frame`` (a DataFrame with a ``clip`` column) with a last column ``key_pairing``: the
    :func:`pairing_grade` of each clip the shipped key paired (``evidence``: clip casefolded -> evidence), empty
    for other clips and for rows outside the boolean mask ``rows``; ``frame`` unchanged when ``evidence`` is
    empty (no shipped key was used: a key CSV's pairings are its author's word).
    """
    if not evidence or frame is None:
        return frame
    keep = [True] * len(frame) if rows is None else list(rows)
    grades = [pairing_grade(evidence[c]) if k and c in evidence else ""
              for c, k in zip(frame["clip"].astype(str).str.casefold(), keep)]
    return frame.assign(key_pairing=grades)


def caveat_note(evidence: dict[str, str], what: str = "caption (and which rating)") -> str | None:
    """One sentence naming the clips whose pairing the shipped key marks partial or ambiguous (with its evidence),
    for wherever the key un-blinds ratings or captions; None when every pairing is exact or no shipped key was used.
    """
    shaky = uncertain_pairings(evidence)
    if not shaky:
        return None
    said = "; ".join(f"{clip} {pairing_grade(text)} ({evidence_detail(text)})" for clip, text in sorted(shaky.items()))
    return (f"the shipped key's pairing of {len(shaky)} clip(s) is not exact, so which {what} "
            f"is whose rests on an uncertain recovery there: {said} (docs/caption_metrics.md)")
