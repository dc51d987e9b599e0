"""``report.md``, the CSV tables, one XLSX with every table, and the figures of ``soundaq jury``."""
from __future__ import annotations

import math
from pathlib import Path

from soundaq.base.fileio import atomic_path, atomic_write_json, atomic_write_text
from soundaq.human_study.dimensions import FORMULA_TEXT, LABELS, OVERALL

_SOURCE_LABEL = {"published": "published per-clip averages", "participants": "per-participant ratings"}


def fmt_p(p) -> str:
    """A p-value for the report: ``< 0.001``, three significant digits, or ``n/a`` (None, NaN, not a number)."""
    if p is None or not isinstance(p, (int, float)) or not math.isfinite(p):
        return "n/a"
    return "< 0.001" if p < 0.001 else f"{p:#.3g}"


def p_is(p) -> str:
    """``p`` with its relation: ``= 0.0644``, ``< 0.001``, ``= n/a``."""
    text = fmt_p(p)
    return text if text.startswith("<") else f"= {text}"


def _f(x, nd: int = 3) -> str:
    if x is None or not isinstance(x, (int, float)) or not math.isfinite(x):
        return "n/a"
    return f"{x:.{nd}f}"


def md_table(header: list[str], rows: list[list]) -> str:
    """A Markdown (GitHub) table: ``header`` then one line per row, cells as ``str()`` gives them."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def comparison_sentences(row, alpha: float, source_label: str) -> list[str]:
    """Plain-language statements about one paired comparison (one row of tests.csv)."""
    a, b, d = row["system_a"], row["system_b"], row["mean_diff"]
    dim = LABELS.get(row["dimension"], row["dimension"]).lower()
    where = "below" if d < 0 else "above"
    out = [f"On {row['dataset']} ({source_label}), {a}'s mean {dim} is {abs(d):.3f} {where} {b}'s "
           f"({_f(row['mean_a'])} vs {_f(row['mean_b'])}, n = {row['n']} clips; mean difference "
           f"{d:+.3f}, 95% CI [{_f(row['diff_ci_low'])}, {_f(row['diff_ci_high'])}] (t), "
           f"[{_f(row['diff_boot_low'])}, {_f(row['diff_boot_high'])}] (bootstrap)). "
           f"Paired t-test: t({row['df']}) = {_f(row['t'], 2)}, p {p_is(row['p_t'])}; "
           f"Wilcoxon signed-rank ({row['wilcoxon_method']}): W = {_f(row['w'], 1)}, "
           f"p {p_is(row['p_wilcoxon'])}."]
    sp = row["shapiro_p"]
    if row["primary_test"]:
        why = (f"Shapiro-Wilk p of the differences {p_is(sp)} "
               + (f">= {alpha:g}, so the paired t-test is primary" if row["primary_test"] == "paired t"
                  else f"< {alpha:g}, so the Wilcoxon test is primary"))
        sig = row["p_primary"] < alpha
        out.append(f"{why}: the difference is {'' if sig else 'not '}statistically significant at "
                   f"alpha = {alpha:g} (p {p_is(row['p_primary'])}; Holm-adjusted across dimensions "
                   f"p {p_is(row['p_holm'])}). Effect sizes: Cohen's d_z = {_f(row['cohens_dz'], 2)}, "
                   f"rank-biserial r = {_f(row['rank_biserial'], 2)}.")
    agree = row["tests_agree"]
    if agree is not None and not (isinstance(agree, float) and math.isnan(agree)) and not bool(agree):
        pt, pw = row["p_t"], row["p_wilcoxon"]
        out.append(f"**The tests disagree**: the paired t-test gives p {p_is(pt)} "
                   f"({'significant' if pt < alpha else 'not significant'}) while the Wilcoxon signed-rank "
                   f"test gives p {p_is(pw)} ({'significant' if pw < alpha else 'not significant'}) at "
                   f"alpha = {alpha:g}; the verdict depends on the test, so read this difference as borderline "
                   f"(the primary test, {row['primary_test']}, says "
                   f"{'significant' if row['p_primary'] < alpha else 'not significant'}).")
    return out


def _inputs_and_data(inputs: list[dict], tidy) -> list[str]:
    """The title, the inputs with their checksums, and what was rated by whom."""
    parts = ["# Expert-jury statistics (`soundaq jury`)", ""]
    parts += ["## Inputs", ""]
    parts += [f"- `{i['path']}` ({i['kind']}, sha256 {i['sha256'][:12]})"
              + (f". **Note**: {i['note']}" if i.get("note") else "") for i in inputs]
    parts += ["", "## Data", ""]
    rows = []
    for (source, dataset, system), g in tidy.groupby(["source", "dataset", "system"]):
        who = "published averages" if set(g["participant"]) == {"average"} else g["participant"].nunique()
        rows.append([source, dataset, system, g["clip"].nunique(), who,
                     int((g["dimension"] != OVERALL).sum())])
    parts.append(md_table(["source", "dataset", "system", "clips", "participants", "ratings (5 dimensions)"], rows))
    parts += ["", f"Overall score of one caption by one participant: `{FORMULA_TEXT}` (range -5 to 5); "
              "computed only when all five ratings of the caption are usable. Statistics use one score per "
              "clip and system: the mean over participants (the published file already holds these means).", ""]
    return parts


def _problems_section(issue_log) -> list[str]:
    """The input problems: counts per kind, the first twelve, and where the rest are."""
    parts = ["## Input problems", ""]
    counts = issue_log.counts()
    if counts:
        parts.append(md_table(["kind", "severity", "meaning", "issues", "ratings excluded"],
                              [[c["kind"], c["severity"], c["meaning"], c["issues"], c["excluded_ratings"]]
                               for c in counts]))
        n_missing = sum(c["issues"] for c in counts if c["kind"] == "missing")
        parts += ["", f"{sum(c['excluded_ratings'] for c in counts)} rating(s) excluded in total"
                  + (f"; {n_missing} rating cell(s) empty (nothing to exclude, but the caption gets no overall "
                     "score)" if n_missing else "") + ". Every issue, "
                  "with workbook, sheet and cell, is listed in `issues.csv`. Errors make `--strict` exit with code 2.",
                  ""]
        shown = issue_log.items[:12]
        parts += [f"- {i.line()}" for i in shown]
        if len(issue_log) > len(shown):
            parts.append(f"- ... and {len(issue_log) - len(shown)} more in `issues.csv`")
        parts.append("")
    else:
        parts += ["None: every rating cell was read and is within its scale.", ""]
    return parts


def _headline_section(tests, alpha: float) -> list[str]:
    """The overall score comparisons in words, and the other dimensions whose two tests disagree."""
    parts = ["## Headline: overall score", ""]
    if tests is not None and not tests.empty:
        for _, r in tests[tests["dimension"] == OVERALL].iterrows():
            parts += [" ".join(comparison_sentences(r, alpha, _SOURCE_LABEL.get(r["source"], r["source"]))), ""]
        others = tests[(tests["dimension"] != OVERALL) & (tests["tests_agree"] == False)]  # noqa: E712
        if not others.empty:
            parts += ["Other dimensions where the paired t-test and the Wilcoxon test disagree at "
                      f"alpha = {alpha:g}:", ""]
            parts += [f"- {r['dataset']} ({r['source']}), {LABELS.get(r['dimension'], r['dimension'])}, "
                      f"{r['system_a']} - {r['system_b']}: p_t = {fmt_p(r['p_t'])}, "
                      f"p_Wilcoxon = {fmt_p(r['p_wilcoxon'])}" for _, r in others.iterrows()]
            parts.append("")
    else:
        parts += ["No paired comparison possible (fewer than two systems rated on the same clips).", ""]
    return parts


def _summary_section(summary) -> list[str]:
    """``summary.csv`` as a table."""
    parts = ["## Summary per dataset, system and dimension (`summary.csv`)", ""]
    if summary is not None and not summary.empty:
        parts.append(md_table(
            ["source", "dataset", "dimension", "system", "n clips", "mean", "SD", "95% CI (t)", "95% CI (bootstrap)"],
            [[r["source"], r["dataset"], r["dimension"], r["system"], r["n"], _f(r["mean"]), _f(r["sd"]),
              f"[{_f(r['ci_low'])}, {_f(r['ci_high'])}]", f"[{_f(r['boot_ci_low'])}, {_f(r['boot_ci_high'])}]"]
             for _, r in summary.iterrows()]))
        parts.append("")
    return parts


def _tests_section(tests) -> list[str]:
    """``tests.csv`` as a table."""
    parts = ["## Paired tests, clips as the paired unit (`tests.csv`)", ""]
    if tests is not None and not tests.empty:
        parts.append(md_table(
            ["source", "dataset", "dimension", "A - B", "n", "mean diff [95% CI]", "t", "p (t)", "W", "p (Wilcoxon)",
             "Shapiro p", "primary", "d_z", "r_rb", "p Holm"],
            [[r["source"], r["dataset"], r["dimension"], f"{r['system_a']} - {r['system_b']}", r["n"],
              f"{r['mean_diff']:+.3f} [{_f(r['diff_ci_low'])}, {_f(r['diff_ci_high'])}]", _f(r["t"], 2),
              fmt_p(r["p_t"]), _f(r["w"], 1), fmt_p(r["p_wilcoxon"]), fmt_p(r["shapiro_p"]), r["primary_test"],
              _f(r["cohens_dz"], 2), _f(r["rank_biserial"], 2), fmt_p(r["p_holm"])]
             for _, r in tests.iterrows()]))
        parts.append("")
    return parts


def _friedman_section(friedman) -> list[str]:
    """``friedman.csv`` as a table (only when more than two systems were compared)."""
    parts: list[str] = []
    if friedman is not None and not friedman.empty:
        parts += ["## Friedman tests, more than two systems (`friedman.csv`)", "",
                  md_table(["source", "dataset", "dimension", "k", "n", "chi2", "p", "Kendall W"],
                           [[r["source"], r["dataset"], r["dimension"], r["k"], r["n"], _f(r["chi2"], 2),
                             fmt_p(r["p"]), _f(r["kendall_w"], 2)] for _, r in friedman.iterrows()]),
                  "", "Post-hoc: the pairwise rows of `tests.csv`, with `p_holm_pairs` adjusted across pairs.", ""]
    return parts


def _reliability_section(reliability) -> list[str]:
    """``reliability.csv`` pivoted to one column per measure, or why it was not computed."""
    parts = ["## Inter-rater reliability (`reliability.csv`)", ""]
    if reliability is not None and not reliability.empty:
        piv = reliability.pivot_table(index=["source", "dataset", "dimension", "system"], columns="measure",
                                      values="value", aggfunc="first")
        from soundaq.human_study.jury import dimension_order

        rank = {d: i for i, d in enumerate(dimension_order(reliability["dimension"].unique()))}
        piv = piv.loc[sorted(piv.index, key=lambda i: (i[0], i[1], rank[i[2]], i[3] == "all", i[3]))]
        measures = [m for m in ["ICC(A,1)", "ICC(A,k)", "ICC(C,1)", "ICC(C,k)", "Krippendorff alpha (interval)"]
                    if m in piv.columns]
        parts.append(md_table(["source", "dataset", "dimension", "system", *measures],
                              [[*idx, *(_f(piv.loc[idx, m]) for m in measures)] for idx in piv.index]))
        parts += ["", "ICCs from pingouin (two-way: A = absolute agreement, C = consistency; 1 = single rater, "
                  "k = mean of the raters) over the clips every rater rated; Krippendorff's alpha (interval "
                  "metric, the `krippendorff` package) uses every rating, missing ones allowed. "
                  "`system = all` treats every caption of "
                  "the dataset as one unit.", ""]
    else:
        parts += ["Not computed: needs per-participant workbooks (the published file holds only averages).", ""]
    return parts


def _figures_section(figures: list[Path], out_dir: Path) -> list[str]:
    """Links to the figures, relative to the output folder."""
    parts: list[str] = []
    if figures:
        parts += ["## Figures", ""]
        parts += [f"![{p.stem}]({p.relative_to(out_dir).as_posix()})" for p in figures]
        parts.append("")
    return parts


def _method_notes(alpha: float, n_boot: int, seed: int) -> list[str]:
    """The tests, intervals, effect sizes and corrections used, with their sources."""
    parts = ["## Method notes", "",
              f"- alpha = {alpha:g}; primary test per comparison: paired t-test when the Shapiro-Wilk p of "
              "the paired differences is >= alpha, else the Wilcoxon signed-rank test (scipy, zero "
              "differences dropped; the p-value method, given in each row, is the exact null distribution when "
              "there are no ties or zeros and n <= 50, all sign flips when there are and n <= 13, else the "
              "normal approximation without continuity correction).",
              "- mean_diff = system A minus system B, where B is the reference (`--reference`; by default the "
              "human/expert captions).",
              f"- Bootstrap: percentile intervals of the mean from {n_boot} resamples of clips, seed {seed} "
              "(the project's bootstrap, `soundaq.evaluation.bootstrap`; each group draws from its own stream, "
              "numpy `default_rng([seed, crc32(group labels)])`).",
              "- Cohen's d_z = mean difference / SD of the differences; rank-biserial r = (R+ - R-) / (R+ + R-).",
              "- Holm (`pingouin.multicomp`): `p_holm` adjusts the primary p across the dimensions of "
              "one dataset and pair of systems.",
              ""]
    return parts


def build_report(inputs: list[dict], tidy, summary, tests, friedman, reliability, issue_log, alpha: float,
                 n_boot: int, seed: int, figures: list[Path], out_dir: Path, case_study: list[str] | None = None) -> str:
    """The Markdown text of ``report.md``.

    Args:
        inputs: provenance of each input file (``path``, ``kind``, ``sha256``).
        tidy: the tidy ratings (``soundaq.human_study.questionnaire.TIDY_COLUMNS``).
        summary: ``summary.csv``'s table.
        tests: ``tests.csv``'s table (paired tests), possibly empty.
        friedman: ``friedman.csv``'s table, possibly empty.
        reliability: ``reliability.csv``'s table, possibly empty.
        issue_log: the input problems (an ``IssueLog``).
        alpha: significance level.
        n_boot: bootstrap resamples.
        seed: bootstrap seed.
        figures: the figure files written (PNG), linked relative to ``out_dir``.
        out_dir: the output folder.
        case_study: the case-study section's lines (``case_study.markdown_section``), if any.

    Returns:
        The report, sections separated by blank lines.
    """
    parts = _inputs_and_data(inputs, tidy)
    parts += _problems_section(issue_log)
    parts += _headline_section(tests, alpha)
    parts += case_study or []      # human_study.case_study.markdown_section: the largest gaps, each way
    parts += _summary_section(summary)
    parts += _tests_section(tests)
    parts += _friedman_section(friedman)
    parts += _reliability_section(reliability)
    parts += _figures_section(figures, out_dir)
    parts += _method_notes(alpha, n_boot, seed)
    return "\n".join(parts)


def write_xlsx(tables: dict, target: Path) -> Path:
    """Write every table (``{name: DataFrame or None}``) as one sheet of an .xlsx, atomically.

    Sheet names are the table names cut to Excel's 31 characters; None tables are left out.

    Returns:
        ``target``.
    """
    import pandas as pd

    with atomic_path(target) as tmp:
        with pd.ExcelWriter(tmp, engine="openpyxl") as xw:
            for name, frame in tables.items():
                if frame is None:
                    continue
                frame.to_excel(xw, sheet_name=name[:31], index=False)
    return target


def write_report(text: str, target: Path) -> Path:
    """Write ``report.md`` (``text`` plus a final newline) atomically; returns ``target``."""
    return atomic_write_text(target, text + "\n")


def write_provenance(obj: dict, target: Path) -> Path:
    """Write ``provenance.json`` (inputs, settings, versions, timing) atomically; returns ``target``."""
    return atomic_write_json(target, obj)

