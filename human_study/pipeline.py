"""The whole ``soundaq jury`` analysis as one library call: read, check, analyse, write.

:func:`run_jury` reads filled questionnaires (un-blinded with a key, or the public questionnaire's
shipped key) and/or the published per-clip averages into one tidy table, then writes the summary,
paired tests, Friedman tests, reliability, figures, ``report.md``, one XLSX and ``provenance.json``.
Problems in the inputs are collected (an :class:`~soundaq.human_study.issues.IssueLog`), reported as
one line each and left out; with ``strict`` any of them stops the run.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from soundaq.base.errors import UserError, first_line
from soundaq.base.fileio import output_folder, sha256_file, write_csv
from soundaq.base.runs import package_versions

if TYPE_CHECKING:
    from soundaq.human_study.issues import IssueLog

#: The packages the statistics depend on (provenance.json's versions; None: not installed).
STATISTICS_PACKAGES = ("numpy", "scipy", "pandas", "pingouin", "krippendorff", "openpyxl", "matplotlib")


def collect_workbooks(paths: list[Path]) -> list[Path]:
    """The workbooks of the inputs: files as given, folders as every ``.xlsx`` inside (Excel's ``~$`` lock
    files left out).

    Raises:
        UserError: a missing path or a folder without workbooks.
    """
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(q for q in p.glob("*.xlsx") if not q.name.startswith("~$"))
            if not found:
                raise UserError(f"{p}: folder holds no .xlsx workbooks; fix: pass the filled questionnaires")
            out.extend(found)
        elif p.is_file():
            out.append(p)
        else:
            raise UserError(f"{p}: no such file or folder; fix: pass filled questionnaire .xlsx files")
    return out


@dataclass
class JuryResult:
    """What :func:`run_jury` made: the tables, the figures and files written, the input problems."""

    tables: dict
    reference: str
    written: list[Path]
    log: IssueLog
    notes: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """1 when input errors were left out of the analysis (the batch went on), else 0."""
        return 1 if self.log.errors else 0


def _check_arguments(workbooks: list[Path], key: Path | str | None, published: Path | None,
                     case_n: int, say) -> tuple[bool, list[str]]:
    """Refuse unusable arguments; returns (use the shipped public key, notes said to the user).

    Raises:
        UserError: a file in the role of another, nothing to read, a key missing, a bad alpha or case count.
    """
    from soundaq.human_study.workbooks import check_jury_inputs

    check_jury_inputs(workbooks, published)   # a file given in the role of another: one line, exit 2
    if not workbooks and published is None:
        raise UserError("nothing to read: pass questionnaire workbooks (with --key) and/or --published FILE.xlsx")
    use_public = bool(workbooks) and key is not None and str(key) == "public" and not Path(key).is_file()
    notes = []
    if workbooks and key is None:
        from soundaq.human_study.public_key import layout_mismatch

        if any(layout_mismatch(w) is not None for w in workbooks):
            raise UserError("questionnaire workbooks need --key KEY.csv (participant,dataset,clip,caption,system) "
                            "to know which system wrote 'Caption 1' and 'Caption 2'")
        use_public = True
        from soundaq.human_study.public_key import pairing_evidence, pairing_grade, uncertain_pairings

        shaky = ", ".join(f"{c} {pairing_grade(e)}" for c, e in sorted(uncertain_pairings(pairing_evidence()).items()))
        notes.append("the workbooks are in the public questionnaire's layout: using the key shipped with "
                     "soundaq (recovered from the release's text metrics; docs/caption_metrics.md)"
                     + (f"; its pairing is not exact for {shaky} (key_pairing in the tables)" if shaky else ""))
        say(notes[-1])
    if published is not None and not Path(published).is_file():
        raise UserError(f"{published}: published workbook not found; fix: pass the results .xlsx")
    if case_n < 1:
        raise UserError(f"--case-study {case_n}: must be at least 1")
    return use_public, notes


def _read_key(workbooks: list[Path], key: Path | str | None, use_public: bool):
    """The un-blinding key: the shipped public one or the CSV ``key`` (UserError when unusable)."""
    from soundaq.human_study.public_key import public_key_for
    from soundaq.human_study.questionnaire import read_key

    if not use_public:
        assert key is not None
        return read_key(Path(key))          # JuryKeyError, a UserError, names the line to fix
    try:
        return public_key_for(workbooks)
    except ValueError as err:
        raise UserError(first_line(err)) from None


def _read_ratings(workbooks: list[Path], published: Path | None, the_key, use_public: bool,
                  log) -> tuple[list[dict], list[dict]]:
    """Tidy rating records of every input, and the inputs' provenance (path, kind, sha256)."""
    from soundaq.human_study.published import read_published
    from soundaq.human_study.questionnaire import read_questionnaires

    records: list[dict] = []
    sources: list[dict] = []
    if workbooks:
        sources.append(_key_source(the_key, "key (public questionnaire)" if use_public else "key"))
        records += read_questionnaires(workbooks, the_key, log)
        sources += [{"path": str(w), "kind": "questionnaire", "sha256": sha256_file(w) if w.is_file() else ""}
                    for w in workbooks]
    if published is not None:
        records += read_published(Path(published), log)
        sources.append({"path": str(published), "kind": "published averages", "sha256": sha256_file(published)})
    return records, sources


def _key_source(the_key, kind: str) -> dict:
    """The provenance of a key; for the shipped public key with a partial or ambiguous pairing, a ``note`` saying
    which clips rest on it (report.md's inputs list and provenance.json carry it; the key's docstring promises it).
    """
    from soundaq.human_study.public_key import caveat_note

    source = {"path": str(the_key.path), "kind": kind, "sha256": sha256_file(the_key.path)}
    note = caveat_note(the_key.evidence)
    if note:
        source["note"] = note
    return source


def _report_problems(log, say, strict: bool, out: Path) -> None:
    """Say the first 20 input problems; with ``strict``, any error stops the run (UserError, exit 2)."""
    for issue in log.items[:20]:
        say(issue.line())
    if len(log) > 20:
        say(f"... and {len(log) - 20} more issues " + ("(--strict writes nothing: run without it for issues.csv)"
                                                     if strict and log.errors else f"(issues.csv in {out})"))
    if strict and log.errors:
        raise UserError(f"{len(log.errors)} input error(s) (listed above); fix them or run without --strict "
                        "to exclude the affected ratings", exit_code=2)


def _figures(clips, tests, folder: Path, reference: str, alpha: float) -> list[Path]:
    """One ratings figure per source and dataset, one paired-difference figure per source."""
    from soundaq.human_study import figures as figs

    paths: list[Path] = []
    for (source, dataset), _ in clips.groupby(["source", "dataset"]):
        paths.append(figs.ratings_figure(clips, source, dataset, folder / f"ratings_{source}_{dataset}.png", reference))
    if not tests.empty:
        for source in sorted(tests["source"].unique()):
            paths.append(figs.paired_figure(tests, source, folder / f"paired_{source}.png", alpha))
    return paths


def _analyse(tidy, reference: str | None, alpha: float, resamples: int, seed: int) -> dict:
    """The statistics of the tidy ratings: per-clip scores, summary, paired and Friedman tests, reliability."""
    from soundaq.human_study import jury
    from soundaq.human_study.reliability import reliability_table

    systems = set(tidy["system"])
    if reference is not None and reference.casefold() not in {s.casefold() for s in systems}:
        raise UserError(f"--reference {reference}: not a system of the inputs ({', '.join(sorted(systems))})")
    reference = jury.pick_reference(systems, reference)
    clips = jury.clip_scores(tidy)
    return {"reference": reference, "clips": clips, "summary": jury.summarise(clips, resamples, seed),
            "tests": jury.paired_tests(clips, reference, alpha, resamples, seed),
            "friedman": jury.friedman_tests(clips), "reliability": reliability_table(tidy)}


def _tidy(records: list[dict], log: IssueLog, out: Path):
    """The ratings as one tidy DataFrame (``TIDY_COLUMNS``); UserError when none is usable."""
    import pandas as pd

    from soundaq.human_study.questionnaire import TIDY_COLUMNS

    tidy = pd.DataFrame(records, columns=list(TIDY_COLUMNS))
    if tidy.empty:
        raise UserError(f"no usable rating in the inputs (see the messages above{log.keep(out)}); "
                        "fix: check the workbooks")
    return tidy


def _case_study(clips, reference: str, case_n: int, captions_arg, captions: Path | None, workbooks: list[Path],
                the_key, sources: list[dict]):
    """The case study's clips (largest gaps each way), where its caption texts come from (None: nowhere) and the
    shipped public key's evidence per clip wherever that key paired the texts or the ratings (else empty).

    The texts are those of ``--captions`` (``captions_arg``: texts and their key's evidence; then added to
    ``sources``), else those of the questionnaires.
    """
    from soundaq.human_study import case_study
    from soundaq.human_study.public_key import caveat_note

    texts_from = None       # where the case study's caption texts come from
    pairing = dict(the_key.evidence) if the_key is not None else {}     # the ratings' un-blinding
    caption_texts = None
    if captions_arg is not None:
        assert captions is not None           # captions_arg comes from --captions
        caption_texts, evidence = captions_arg
        pairing.update(evidence)
        source = {"path": str(captions), "kind": "captions (questionnaire)", "sha256": sha256_file(captions)}
        note = caveat_note(evidence, "caption")
        if note:
            source["note"] = "un-blinded by the shipped public key; " + note
        sources.append(source)
        texts_from = f"`{captions}`"
    elif workbooks:
        caption_texts = case_study.captions_from(workbooks, the_key)
        texts_from = "the questionnaire workbooks" if caption_texts else None
    cases = case_study.largest_gaps(clips, reference, caption_texts, case_n, pairing)
    return cases, texts_from, pairing


def _tables(tidy, stats: dict, cases, log, the_key) -> dict:
    """The tables written as CSV and XLSX sheets (None: left out). When the shipped public key un-blinded the
    questionnaires, their rows in ``ratings`` and ``clip_scores`` get ``key_pairing`` (the key's promise).
    """
    from soundaq.human_study.public_key import with_key_pairing

    keyed = the_key.evidence if the_key is not None else {}
    clips, friedman, reliability = stats["clips"], stats["friedman"], stats["reliability"]
    return {"ratings": with_key_pairing(tidy, keyed, tidy["source"] == "participants"),
            "clip_scores": with_key_pairing(clips, keyed, clips["source"] == "participants"),
            "summary": stats["summary"], "tests": stats["tests"],
            "friedman": friedman if not friedman.empty else None,
            "reliability": reliability if not reliability.empty else None, "case_study": cases,
            "issues": log.frame()}


def run_jury(inputs: list[Path], out: Path, *, key: Path | str | None = None, published: Path | None = None,
             strict: bool = False, reference: str | None = None, alpha: float = 0.05, resamples: int = 10_000,
             seed: int = 0, figures: bool = True, report_line=None, captions: Path | None = None,
             case_n: int = 3) -> JuryResult:
    """The whole jury analysis (see the module docstring).

    Args:
        inputs: filled questionnaire workbooks or folders of them.
        out: output folder (created).
        key: the un-blinding key CSV, ``"public"`` for the shipped key of the public questionnaire, or None
            (the shipped key when every workbook is in the public questionnaire's layout).
        published: the published per-clip averages workbook.
        strict: any input problem is an error (UserError, exit 2) instead of being left out.
        reference: the system the others are compared with (default: the human/expert one).
        alpha: significance level.
        resamples: bootstrap resamples (0: no bootstrap intervals).
        seed: bootstrap seed.
        figures: write figures/ (PNG + PDF).
        report_line: called with each one-line message (default: print to stderr).
        captions: a questionnaire workbook whose caption texts the case study shows (default: those of the
            questionnaire workbooks, if any).
        case_n: clips per side of the case study (:mod:`soundaq.human_study.case_study`).

    Returns:
        The tables, the reference system, the files written and the input problems.

    Raises:
        UserError: bad arguments, a file in the role of another, nothing usable, or (``strict``) any
            input problem; one line each.
    """
    say = report_line or (lambda msg: print(f"soundaq jury: {msg}", file=sys.stderr))
    if not 0 < alpha < 1:
        raise UserError(f"--alpha {alpha}: must be between 0 and 1")
    workbooks = collect_workbooks(inputs)
    use_public, notes = _check_arguments(workbooks, key, published, case_n, say)
    from soundaq.human_study import case_study

    captions_arg = case_study.read_captions_arg(Path(captions), key) if captions is not None else None
    out = output_folder(out, create=False)

    from soundaq.human_study import report
    from soundaq.human_study.issues import IssueLog

    started = time.time()
    log = IssueLog()
    the_key = _read_key(workbooks, key, use_public) if workbooks else None
    records, sources = _read_ratings(workbooks, published, the_key, use_public, log)
    _report_problems(log, say, strict, out)
    tidy = _tidy(records, log, out)
    stats = _analyse(tidy, reference, alpha, resamples, seed)
    reference, clips, tests = stats["reference"], stats["clips"], stats["tests"]
    cases, texts_from, pairing = _case_study(clips, reference, case_n, captions_arg, captions, workbooks, the_key,
                                             sources)

    out = output_folder(out)
    friedman, reliability = stats["friedman"], stats["reliability"]
    tables = _tables(tidy, stats, cases, log, the_key)
    written = [write_csv(frame, out / f"{name}.csv") for name, frame in tables.items() if frame is not None]
    figure_paths = _figures(clips, tests, out / "figures", reference, alpha) if figures else []
    written += figure_paths
    written.append(report.write_xlsx(tables, out / "jury_results.xlsx"))
    text = report.build_report(sources, tidy, stats["summary"], tests, friedman, reliability, log, alpha, resamples,
                               seed, figure_paths, out, case_study.markdown_section(cases, case_n, texts_from, pairing))
    written.append(report.write_report(text, out / "report.md"))
    written.append(report.write_provenance({
        "command": "soundaq jury", "argv": sys.argv[1:], "inputs": sources, "alpha": alpha,
        "resamples": resamples, "seed": seed, "reference": reference, "strict": strict,
        "issues": len(log), "excluded_ratings": log.excluded,
        "versions": package_versions(STATISTICS_PACKAGES, missing=None, python=False),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seconds": round(time.time() - started, 2)}, out / "provenance.json"))
    return JuryResult(tables, reference, written, log, notes)
