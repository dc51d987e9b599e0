"""``soundaq correlate``: Spearman's rho between sound events (or sources) and affective qualities."""
from __future__ import annotations

from pathlib import Path

CORRECTIONS = ("fdr_bh", "bonferroni", "none")  # kept equal to soundaq.evaluation.correlation.CORRECTIONS (tested)


def register(sub) -> None:
    """Add the ``correlate`` subcommand, its options and its handler to the CLI's subparsers ``sub``."""
    from soundaq.benchmark.options import positive_int

    p = sub.add_parser(
        "correlate",
        help="Spearman event x affective-quality analysis with heatmap, bar, radar and circumplex figures",
        description="Spearman's rho between the 15 audio events (or the ISD's perceived sound sources) and "
                    "the 8 affective qualities plus ISOPleasant/ISOEventful, overall and per scene or "
                    "location, with multiple-comparison correction, figures (PNG+PDF) and a Markdown "
                    "report. Without a source option it analyses the ISD survey bundled with soundscapy.")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--predictions", type=Path, metavar="FILE",
                     help="a model's predictions table (.csv or .parquet): event probabilities x predicted qualities")
    src.add_argument("--labels", type=Path, metavar="DIR",
                     help="folder of ARAUS label files: binary event labels x human ratings")
    src.add_argument("--isd", action="store_true",
                     help="the International Soundscape Database bundled with soundscapy (the default)")
    p.add_argument("--split", default="test", choices=["test", "train", "training", "validation", "val", "all"],
                   help="label split for --labels (default: test)")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for spearman.csv, figures, report.md")
    p.add_argument("--correction", default="fdr_bh", choices=CORRECTIONS,
                   help="multiple-comparison correction within each group (default: fdr_bh)")
    p.add_argument("--group-by", default=None, metavar="COLUMN",
                   help="column to split by (default: scene; location for --isd)")
    p.add_argument("--synthetic", action="store_true",
                   help="mark the source as synthetic data in every figure and report")
    p.add_argument("--isd-all-rows", action="store_true",
                   help="keep ISD responses that soundscapy's isd.validate would drop")
    p.add_argument("--max-groups", type=positive_int, default=12, metavar="N",
                   help="panels per figure: all rows + the N-1 largest groups (default: 12)")
    p.add_argument("--max-points", type=positive_int, default=3000, metavar="N",
                   help="points per circumplex panel, subsampled with --seed above this (default: 3000)")
    p.add_argument("--top", type=positive_int, default=5, metavar="K", help="strongest pairs listed in report.md (default: 5)")
    p.add_argument("--seed", type=int, default=0, help="seed for point subsampling (default: 0)")
    p.add_argument("--no-figures", action="store_true", help="write spearman.csv and report.md only")
    p.set_defaults(handler=_run)


def _run(args) -> int:
    from soundaq.base.errors import UserError
    from soundaq.evaluation.correlation import labels_source
    from soundaq.evaluation.correlation_report import correlate_predictions, run

    options = dict(correction=args.correction, figures=not args.no_figures, max_groups=args.max_groups,
                   top=args.top, seed=args.seed, max_points=args.max_points)
    if args.predictions is not None:      # a CorrelationError is a UserError: the CLI prints its one line
        summary = correlate_predictions(args.predictions, args.out, synthetic=args.synthetic,
                                        group_by=args.group_by or "scene", **options)
    elif args.labels is not None:
        summary = run(labels_source(args.labels, args.split, synthetic=args.synthetic,
                                    group_by=args.group_by or "scene"), args.out, **options)
    else:
        from soundaq.evaluation.isd import isd_source

        if args.group_by not in (None, "location"):
            raise UserError("--group-by: the ISD source groups by location only; leave --group-by out")
        summary = run(isd_source(validate=not args.isd_all_rows, synthetic=args.synthetic), args.out, **options)
    print(f"{summary['label']}: {summary['tested_pairs']} pairs tested, {summary['significant_pairs']} significant "
          f"({args.correction}); wrote {args.out}/spearman.csv, report.md and {len(summary['figures'])} figures")
    for note in summary.get("notes", []):
        print(f"soundaq correlate: note: {note}")
    for problem in summary["figure_problems"]:
        print(f"soundaq correlate: warning: figure not drawn: {problem}")
    return 1 if summary["figure_problems"] else 0
