"""``soundaq jury``: expert-jury questionnaires -> tidy ratings, statistics, reliability, report."""
from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser(
        "jury", help="expert-jury questionnaires -> paired tests, reliability, figures, report",
        description="Normalise filled questionnaire workbooks (un-blinded with --key) and/or the published "
                    "per-clip averages workbook into one tidy table, then write summary, paired tests, "
                    "reliability, figures, report.md and one XLSX to --out.")
    p.add_argument("workbooks", nargs="*", type=Path, metavar="WORKBOOK",
                   help="filled questionnaire .xlsx files, one per participant (folders: every .xlsx inside)")
    p.add_argument("--key", type=Path, help="CSV participant,dataset,clip,caption,system that un-blinds "
                                            "'Caption 1'/'Caption 2' of each workbook; 'public': the key of the "
                                            "public questionnaire shipped with soundaq (also used when no key is "
                                            "given and every workbook is in the public questionnaire's layout)")
    p.add_argument("--published", type=Path, help="published per-clip averages workbook (one sheet per dataset)")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--strict", action="store_true", help="any input problem is an error: print them, exit 2")
    p.add_argument("--reference", help="system the others are compared against (default: the human/expert one)")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    p.add_argument("--n-boot", type=int, default=10_000, help="bootstrap resamples (default 10000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    p.set_defaults(handler=_run)


def _collect(paths: list[Path]) -> list[Path]:
    from soundaq.base.errors import UserError

    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            found = sorted(q for q in p.glob("*.xlsx") if not q.name.startswith("~$"))
            if not found:
                raise UserError(f"{p}: folder holds no .xlsx workbooks; pass the filled questionnaires")
            out.extend(found)
        elif p.is_file():
            out.append(p)
        else:
            raise UserError(f"{p}: no such file or folder; pass filled questionnaire .xlsx files")
    return out


def _p(p) -> str:
    from soundaq.human_study.report import fmt_p

    text = fmt_p(p)
    return text.replace(" ", "") if text.startswith("<") else f"={text}"


def _run(args) -> int:
    import sys
    import time

    from soundaq.base.errors import UserError, first_line

    if not 0 < args.alpha < 1:
        raise UserError(f"--alpha {args.alpha}: must be between 0 and 1")
    if args.n_boot < 0:
        raise UserError(f"--n-boot {args.n_boot}: must be 0 or more")
    workbooks = _collect(args.workbooks)
    from soundaq.human_study.workbooks import check_jury_inputs

    check_jury_inputs(workbooks, args.published)   # a file given in the role of another: one line, exit 2
    if not workbooks and args.published is None:
        raise UserError("nothing to read: pass questionnaire workbooks (with --key) and/or --published FILE.xlsx")
    use_public = workbooks and args.key is not None and str(args.key) == "public" and not args.key.is_file()
    if workbooks and args.key is None:
        from soundaq.human_study.public_key import layout_mismatch

        if any(layout_mismatch(w) is not None for w in workbooks):
            raise UserError("questionnaire workbooks need --key KEY.csv (participant,dataset,clip,caption,system) "
                            "to know which system wrote 'Caption 1' and 'Caption 2'")
        use_public = True
        print("soundaq jury: the workbooks are in the public questionnaire's layout: using the key shipped with "
              "soundaq (recovered from the release's text metrics; docs/caption_metrics.md)", file=sys.stderr)
    if args.published is not None and not args.published.is_file():
        raise UserError(f"{args.published}: published workbook not found; pass the results .xlsx")
    if args.out.exists() and not args.out.is_dir():
        raise UserError(f"{args.out}: exists and is not a folder; pass a folder for --out")

    import pandas as pd

    from soundaq.human_study import figures as figs
    from soundaq.human_study import jury, report
    from soundaq.human_study.issues import IssueLog
    from soundaq.human_study.published import read_published
    from soundaq.human_study.questionnaire import TIDY_COLUMNS, KeyError_, read_key, read_questionnaires
    from soundaq.human_study.reliability import reliability_table
    from soundaq.base.fileio import sha256_file

    started = time.time()
    log = IssueLog()
    records: list[dict] = []
    inputs: list[dict] = []
    if workbooks:
        try:
            if use_public:
                from soundaq.human_study.public_key import public_key_for

                key = public_key_for(workbooks)
            else:
                key = read_key(args.key)
        except (KeyError_, ValueError) as err:
            raise UserError(first_line(err)) from None
        inputs.append({"path": str(key.path), "kind": "key (public questionnaire)" if use_public else "key",
                       "sha256": sha256_file(key.path)})
        records += read_questionnaires(workbooks, key, log)
        inputs += [{"path": str(w), "kind": "questionnaire",
                    "sha256": sha256_file(w) if w.is_file() else ""} for w in workbooks]
    if args.published is not None:
        records += read_published(args.published, log)
        inputs.append({"path": str(args.published), "kind": "published averages",
                       "sha256": sha256_file(args.published)})

    for issue in log.items[:20]:
        print(f"soundaq jury: {issue.line()}", file=sys.stderr)
    if len(log) > 20:
        print(f"soundaq jury: ... and {len(log) - 20} more issues (issues.csv)", file=sys.stderr)
    if args.strict and log.errors:
        raise UserError(f"{len(log.errors)} input error(s) (listed above); fix them or run without --strict "
                        "to exclude the affected ratings", exit_code=2)
    tidy = pd.DataFrame(records, columns=list(TIDY_COLUMNS))
    if tidy.empty:
        raise UserError("no usable rating in the inputs (see the messages above)")

    systems = set(tidy["system"])
    if args.reference is not None and args.reference.casefold() not in {s.casefold() for s in systems}:
        raise UserError(f"--reference {args.reference}: not a system of the inputs ({', '.join(sorted(systems))})")
    reference = jury.pick_reference(systems, args.reference)
    clips = jury.clip_scores(tidy)
    summary = jury.summarise(clips, args.n_boot, args.seed)
    tests = jury.paired_tests(clips, reference, args.alpha, args.n_boot, args.seed)
    friedman = jury.friedman_tests(clips)
    reliability = reliability_table(tidy)

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    written = []
    tables = {"ratings": tidy, "clip_scores": clips, "summary": summary, "tests": tests,
              "friedman": friedman if not friedman.empty else None,
              "reliability": reliability if not reliability.empty else None, "issues": log.frame()}
    for name, frame in tables.items():
        if frame is not None:
            written.append(report.write_table(frame, out / f"{name}.csv"))
    figure_paths: list[Path] = []
    if not args.no_figures:
        for (source, dataset), _ in clips.groupby(["source", "dataset"]):
            figure_paths.append(figs.ratings_figure(clips, source, dataset,
                                                    out / "figures" / f"ratings_{source}_{dataset}.png", reference))
        if not tests.empty:
            for source in sorted(tests["source"].unique()):
                figure_paths.append(figs.paired_figure(tests, source, out / "figures" / f"paired_{source}.png",
                                                       args.alpha))
    written += figure_paths
    written.append(report.write_xlsx(tables, out / "jury_results.xlsx"))
    text = report.build_report(inputs, tidy, summary, tests, friedman, reliability, log, args.alpha,
                               args.n_boot, args.seed, figure_paths, out)
    written.append(report.write_report(text, out / "report.md"))
    import importlib.metadata as md

    versions = {}
    for pkg in ("numpy", "scipy", "pandas", "pingouin", "openpyxl", "matplotlib"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    written.append(report.write_provenance({
        "command": "soundaq jury", "argv": sys.argv[1:], "inputs": inputs, "alpha": args.alpha,
        "n_boot": args.n_boot, "seed": args.seed, "reference": reference, "strict": args.strict,
        "issues": len(log), "excluded_ratings": sum(i.excluded for i in log.items),
        "versions": versions, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seconds": round(time.time() - started, 2)}, out / "provenance.json"))

    n_rated = int((tidy["dimension"] != "overall").sum())
    print(f"read {n_rated} ratings ({tidy['participant'].nunique()} participant(s) incl. averages), "
          f"{len(log)} issue(s), {sum(i.excluded for i in log.items)} rating(s) excluded")
    ov = tests[tests["dimension"] == "overall"] if not tests.empty else tests
    for _, r in ov.iterrows():
        print(f"  {r['source']} {r['dataset']} overall: {r['system_a']} - {r['system_b']} = {r['mean_diff']:+.3f} "
              f"(n={r['n']}), paired t p{_p(r['p_t'])}, Wilcoxon p{_p(r['p_wilcoxon'])}"
              + ("  <- tests disagree" if r["tests_agree"] is not None and not bool(r["tests_agree"]) else ""))
    print(f"wrote {len(written)} files to {out} (report.md, summary.csv, tests.csv, jury_results.xlsx, ...)")
    if log.errors:   # the batch went on past bad cells or files: exit 1 (--strict makes them fatal, exit 2)
        print(f"soundaq jury: {len(log.errors)} input error(s), listed above and in issues.csv; "
              f"{len(log.skipped_files())} input file(s) left out; the analysis is of the rest", file=sys.stderr)
        return 1
    return 0
