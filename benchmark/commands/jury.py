"""``soundaq jury``: expert-jury questionnaires -> tidy ratings, statistics, reliability, report
(:func:`soundaq.human_study.pipeline.run_jury`).
"""
from __future__ import annotations

import sys
from pathlib import Path


def register(sub) -> None:
    """Add the ``jury`` subcommand, its options and its handler to the CLI's subparsers ``sub``."""
    from soundaq.benchmark import options as o

    p = sub.add_parser(
        "jury", help="expert-jury questionnaires -> paired tests, reliability, figures, report",
        description="Normalise filled questionnaire workbooks (un-blinded with --key) and/or the published "
                    "per-clip averages workbook into one tidy table, then write summary, paired tests, "
                    "reliability, figures, report.md and one XLSX to --out.",
        parents=[o.output_options(), o.bootstrap_options(10_000), o.seed_options("the bootstrap")])
    p.add_argument("workbooks", nargs="*", type=Path, metavar="WORKBOOK",
                   help="filled questionnaire .xlsx files, one per participant (folders: every .xlsx inside)")
    p.add_argument("--key", type=Path, help="CSV participant,dataset,clip,caption,system that un-blinds "
                                            "'Caption 1'/'Caption 2' of each workbook; 'public': the key of the "
                                            "public questionnaire shipped with soundaq (also used when no key is "
                                            "given and every workbook is in the public questionnaire's layout)")
    p.add_argument("--published", type=Path, help="published per-clip averages workbook (one sheet per dataset)")
    p.add_argument("--strict", action="store_true", help="any input problem is an error: print them, exit 2")
    p.add_argument("--reference", help="system the others are compared against (default: the human/expert one)")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    p.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    p.add_argument("--captions", type=Path, default=None, metavar="WORKBOOK",
                   help="questionnaire workbook whose caption texts the case study shows (default: those of the "
                        "WORKBOOKs); the public questionnaire template holds every caption of the paper's jury")
    p.add_argument("--case-study", type=o.positive_int, default=3, metavar="N",
                   help="clips per dataset and side in the case study: largest gaps between the reference's and "
                        "each system's overall score, each way (default 3; case_study.csv)")
    p.set_defaults(handler=_run)


def _p(p) -> str:
    from soundaq.human_study.report import fmt_p

    text = fmt_p(p)
    return text.replace(" ", "") if text.startswith("<") else f"={text}"


def _run(args) -> int:
    from soundaq.human_study.pipeline import run_jury

    result = run_jury(args.workbooks, args.out, key=args.key, published=args.published, strict=args.strict,
                      reference=args.reference, alpha=args.alpha, resamples=args.resamples, seed=args.seed,
                      figures=not args.no_figures, captions=args.captions, case_n=args.case_study)
    tidy, tests, log = result.tables["ratings"], result.tables["tests"], result.log
    n_rated = int((tidy["dimension"] != "overall").sum())
    print(f"read {n_rated} ratings ({tidy['participant'].nunique()} participant(s) incl. averages), "
          f"{len(log)} issue(s), {sum(i.excluded for i in log.items)} rating(s) excluded")
    ov = tests[tests["dimension"] == "overall"] if not tests.empty else tests
    for _, r in ov.iterrows():
        print(f"  {r['source']} {r['dataset']} overall: {r['system_a']} - {r['system_b']} = {r['mean_diff']:+.3f} "
              f"(n={r['n']}), paired t p{_p(r['p_t'])}, Wilcoxon p{_p(r['p_wilcoxon'])}"
              + ("  <- tests disagree" if r["tests_agree"] is not None and not bool(r["tests_agree"]) else ""))
    cases = result.tables.get("case_study")
    if cases is not None and not cases.empty:
        for (source, dataset, _system), g in cases[cases["rank"] == 1].groupby(["source", "dataset", "system"]):
            print(f"  case study, {source} {dataset}: largest gaps " + ", ".join(
                f"{r['clip']} {r['gap']:+.3f} ({r['higher']} higher"
                + (f"; the shipped key's pairing of its captions is {r['key_pairing']}"
                   if r["key_pairing"] in ("partial", "ambiguous") else "") + ")" for _, r in g.iterrows()))
    print(f"wrote {len(result.written)} files to {args.out} (report.md, summary.csv, tests.csv, jury_results.xlsx, ...)")
    if result.exit_code:   # the batch went on past bad cells or files (--strict makes them fatal, exit 2)
        print(f"soundaq jury: {len(log.errors)} input error(s), listed above and in issues.csv; "
              f"{len(log.skipped_files())} input file(s) left out; the analysis is of the rest", file=sys.stderr)
    return result.exit_code
