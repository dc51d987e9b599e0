"""``report.md`` of ``soundaq caption-metrics``."""
from __future__ import annotations

import math
from pathlib import Path

from soundaq.human_study.dimensions import LABELS, OVERALL
from soundaq.human_study.report import fmt_p, md_table

_ODDITIES = (
    "paper flavour = the release's `NLP_metrics.py` per clip: `BLEU` is BLEU-1 (nltk `sentence_bleu`, weights "
    "(1, 0, 0, 0), whitespace tokens, case and punctuation kept); ROUGE-L from the `rouge` package; METEOR from "
    "nltk; `CIDEr` is pycocoevalcap's CIDEr-D code on a two-document corpus (the clip and a dummy \"0\"), so "
    "its IDF is the same log 2 for every n-gram of the reference. standard flavour = COCO/DCASE: PTB tokens, "
    "corpus-level BLEU-1..4, METEOR 1.5, ROUGE-L, CIDEr-D (IDF over all scored clips).")


def _num(x, nd: int = 3) -> str:
    if x is None or not isinstance(x, (int, float)) or not math.isfinite(x):
        return "n/a"
    return f"{x:.{nd}f}"


def _ci(lo, hi, nd: int = 3) -> str:
    return f"[{_num(lo, nd)}, {_num(hi, nd)}]"


def _reproduction_section(reproduction) -> list[str]:
    """How many clips of each system and metric match the published per-clip scores (none: no section)."""
    lines: list[str] = []
    if reproduction is not None:
        lines += ["## Reproduction of the published per-clip scores", ""]
        if reproduction.empty:
            lines += ["No system of the candidates is in the published workbook (names are matched "
                      "case-insensitively).", ""]
        else:
            rows = []
            for (system, metric), g in reproduction.groupby(["system", "metric"], sort=False):
                bad = g[~g["match"]]
                rows.append([system, metric, f"{int(g['match'].sum())} / {len(g)}", f"{g['abs_diff'].max():.2e}",
                             ", ".join(bad["clip"]) or "-"])
            lines += [md_table(["system", "metric", "clips within 1e-6", "max abs diff", "clips that differ"], rows), ""]
    return lines


def _agreement_section(agreement, jury_issues: list[str]) -> list[str]:
    """Spearman and Kendall agreement of each metric with the jury, per source and system (none: no section)."""
    lines: list[str] = []
    if agreement is not None:
        lines += ["## Agreement with the jury (per clip)", ""]
        if agreement.empty:
            lines += ["No caption of the candidates has a jury score (clips and systems are matched by name).", ""]
        else:
            lines += ["Spearman's rho and Kendall's tau-b between each clip's metric value and the jury's score of "
                      "the same caption, with bootstrap 95% CIs; `agreement.csv` has every dimension.", ""]
            for (source, system), g in agreement.groupby(["source", "system"], sort=True):
                g = g[g["dimension"] == OVERALL] if (g["dimension"] == OVERALL).any() else g
                dim = LABELS.get(g["dimension"].iloc[0], g["dimension"].iloc[0]).lower()
                lines += [f"### {system} ({source} jury scores, {dim})", ""]
                rows = [[r.metric, str(r.n_clips), f"{_num(r.spearman_rho, 2)} {_ci(r.spearman_ci_low, r.spearman_ci_high, 2)}",
                         fmt_p(r.spearman_p), f"{_num(r.kendall_tau, 2)} {_ci(r.kendall_ci_low, r.kendall_ci_high, 2)}",
                         fmt_p(r.kendall_p)] for r in g.itertuples()]
                lines += [md_table(["metric", "clips", "Spearman rho [95% CI]", "p", "Kendall tau [95% CI]", "p"], rows), ""]
        for line in jury_issues[:10]:
            lines.append(f"- jury input: {line}")
        lines.append("")
    return lines


def _problems_section(issues) -> list[str]:
    """The input problems: how many, the rows excluded, the first thirty."""
    lines = ["## Input problems", ""]
    if not len(issues):
        lines += ["None.", ""]
    else:
        lines += [f"{len(issues)} problem(s); {issues.excluded} caption row(s) excluded (all in `issues.csv`).", ""]
        lines += [f"- {i.line()}" for i in issues.items[:30]]
        if len(issues) > 30:
            lines.append(f"- ... and {len(issues) - 30} more")
        lines.append("")
    return lines


def build_report(*, inputs, flavour, scores, summary, paired, reproduction, agreement, issues, jury_issues,
                 ref_system, key_used, n_resamples, seed, figures, out: Path) -> str:
    """The Markdown text of the caption-metrics ``report.md``.

    Args:
        inputs: provenance of each input file (``path``, ``kind``, ``sha256``).
        flavour: ``paper``, ``standard`` or ``both``.
        scores: the scored captions (``scoring.score_captions``: metrics, notes, unavailable metrics).
        summary: ``summary.csv``'s table (value and mean per clip with its CI, per metric and system).
        paired: ``paired.csv``'s table (paired bootstrap differences between systems).
        reproduction: ``reproduction.csv``'s table, or None without ``--compare``.
        agreement: ``agreement.csv``'s table, or None without ``--jury``.
        issues: the input problems (an ``IssueList``).
        jury_issues: one-line problems met reading the jury data (the first ten are listed).
        ref_system: the questionnaire system whose captions are the references, or None.
        key_used: where the questionnaire's key came from, or None.
        n_resamples: bootstrap resamples.
        seed: bootstrap seed.
        figures: the figure files written (PNG and PDF; the PNGs are listed relative to ``out``).
        out: the output folder.

    Returns:
        The report without a final newline.
    """
    lines = ["# Caption metrics", ""]
    lines += ["Inputs:", ""] + [f"- {i['kind']}: `{i['path']}`" + (f". **Note**: {i['note']}" if i.get("note") else "")
                                  for i in inputs] + [""]
    if ref_system:
        lines += [f"Questionnaire references: the captions of **{ref_system}** (key: {key_used}).", ""]
    lines += [f"Flavour: {flavour}. Clips are resampled {n_resamples} times (seed {seed}) for percentile 95% CIs.",
              "", _ODDITIES, ""]
    for what, detail in scores.notes.items():
        lines.append(f"- {what}: {detail}")
    for lab, why in scores.unavailable.items():
        lines.append(f"- **{lab} unavailable**: {why}")
    lines.append("")

    lines += ["## Scores", "",
              "`value` is what each convention reports: the mean over clips (paper) or the corpus-level score "
              "(standard; for BLEU and METEOR not the mean of per-clip values). The CI is that of the mean of "
              "per-clip values.", ""]
    rows = [[r.metric, r.system, _num(r.value, 4), f"{_num(r.mean, 4)} {_ci(r.ci_low, r.ci_high, 4)}", str(r.n_clips)]
            for r in summary.itertuples()]
    lines += [md_table(["metric", "system", "value", "mean per clip [95% CI]", "clips"], rows), ""]

    if len(paired):
        lines += ["## Paired comparisons (same clips, paired bootstrap)", ""]
        rows = [[r.metric, f"{r.system_a} - {r.system_b}", _num(r.diff, 4), _ci(r.ci_low, r.ci_high, 4),
                 fmt_p(r.p_value), str(r.n_clips)] for r in paired.itertuples()]
        lines += [md_table(["metric", "difference", "mean diff", "95% CI", "p", "clips"], rows), ""]

    lines += _reproduction_section(reproduction)
    lines += _agreement_section(agreement, jury_issues)
    if figures:
        lines += ["## Figures", ""] + [f"- `{Path(p).relative_to(out)}`" for p in figures if str(p).endswith(".png")] + [""]

    lines += _problems_section(issues)
    return "\n".join(lines).rstrip()
