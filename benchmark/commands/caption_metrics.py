"""``soundaq caption-metrics``: text metrics of captions (paper + standard flavours), bootstrap CIs,
paired tests, reproduction of the release's scores and agreement with the expert jury.
"""
from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    """Add the ``caption-metrics`` subcommand, its options and its handler to the CLI's subparsers ``sub``."""
    from soundaq.benchmark import options as o

    p = sub.add_parser(
        "caption-metrics", help="caption text metrics (paper/standard), CIs, agreement with the jury",
        parents=[o.output_options(), o.bootstrap_options(1000, minimum=1), o.seed_options("the bootstrap")],
        description="Score candidate captions against reference captions with the release's text metrics (paper "
                    "flavour) and/or the COCO/DCASE ones (standard flavour); write per-clip scores, per-system means "
                    "with bootstrap CIs, paired tests, a figure and report.md to --out. Optionally compare with the "
                    "release's NLP_metrics.xlsx and correlate with the expert jury's per-clip scores.")
    p.add_argument("candidates", nargs="?", type=Path, metavar="CANDIDATES.csv",
                   help="clip,system,caption (or the captions.csv of soundaq caption)")
    p.add_argument("--references", type=Path, metavar="REFS.csv", help="clip,caption; one or more rows per clip")
    p.add_argument("--questionnaire", type=Path, metavar="WORKBOOK.xlsx",
                   help="questionnaire workbook: the reference system's captions become references, the others candidates")
    p.add_argument("--key", metavar="KEY.csv|public",
                   help="un-blinding key of the questionnaire; 'public' (or none, for a workbook in the public "
                        "questionnaire's layout) uses the key shipped with soundaq")
    p.add_argument("--reference-system", help="the key's system whose captions are the references "
                                              "(default: the human/expert one)")
    p.add_argument("--flavour", choices=("paper", "standard", "both"), default="both",
                   help="paper: the release's NLP_metrics.py; standard: COCO/DCASE (default both)")
    p.add_argument("--jury", type=Path, metavar="RESULTS.xlsx|JURY_DIR",
                   help="published jury workbook or a soundaq jury --out folder: Spearman/Kendall per metric")
    p.add_argument("--compare", type=Path, metavar="NLP_metrics.xlsx",
                   help="the release's per-clip text metrics: reproduction.csv, clip by clip")
    p.add_argument("--strict", action="store_true", help="any input problem is an error: list them, exit 2")
    p.add_argument("--no-figures", action="store_true", help="skip the figures")
    p.set_defaults(handler=_run)


def _run(args) -> int:
    from soundaq.human_study.caption_eval import run_caption_metrics

    res = run_caption_metrics(args.out, args.candidates, args.references, args.questionnaire, args.key, args.flavour,
                              args.reference_system, args.jury, args.compare, args.strict, args.resamples, args.seed,
                              figures=not args.no_figures)
    summ = res["summary"]
    for system, g in summ.groupby("system", sort=True):
        shown = ", ".join(f"{r.metric} {r.value:.3f}" for r in g.itertuples())
        print(f"{system} ({int(g['n_clips'].max())} clips): {shown}")
    repro = res["reproduction"]
    if repro is not None and not repro.empty:
        for metric, g in repro.groupby("metric", sort=False):
            print(f"reproduction {metric}: {int(g['match'].sum())}/{len(g)} clips within 1e-6")
    issues = res["issues"]
    faults = sorted(res["scores"].faults)
    lost = f"; {len(faults)} metric(s) lost to a damaged or failing tool (above)" if faults else ""
    print(f"{len(issues)} input problem(s), {issues.excluded} row(s) excluded{lost}; wrote {len(res['written'])} "
          f"files to {args.out} (report.md, per_clip.csv, summary.csv, ...)")
    return res["exit_code"]
