"""``soundaq models --cost``: the cost table of the zoo's nets, measured here, the paper's figures beside
(:mod:`soundaq.models_zoo.cost`). Its options join the ``models`` parser (:func:`add_options`); the
``models`` handler hands over to :func:`run_cost` when ``--cost`` is given.
"""
from __future__ import annotations

import json
import sys


def add_options(p) -> None:
    """The ``--cost`` options of ``soundaq models``."""
    from soundaq.benchmark import options as o

    g = p.add_argument_group("cost table (--cost)")
    g.add_argument("--cost", action="store_true",
                   help="measure params, MACs per 30-s clip, training and inference time per clip and peak memory "
                        "of each net on this machine (a GPU when torch sees one), the paper's V100 figures beside; "
                        "prints Markdown (--json: one object per model). Minutes: every net trains and predicts")
    g.add_argument("--models", default=None, metavar="A,B", help="with --cost: " + o.MODELS_HELP)
    g.add_argument("--batch", type=o.positive_int, default=4, metavar="N",
                   help="with --cost: clips per training step and per forward pass (default 4; memory grows with it)")
    g.add_argument("--min-time", type=float, default=1.0, metavar="S",
                   help="with --cost: seconds timed per net and phase after a warm-up call (default 1; "
                        "at least one call is timed)")
    g.add_argument("--device", default=None, metavar="cpu|cuda[:N]",
                   help="with --cost: where to measure (default: cuda when torch sees a GPU, else cpu)")
    g.add_argument("--threads", type=o.positive_int, default=None, metavar="N",
                   help="with --cost: torch's CPU threads in the measuring processes (default: torch's default)")
    g.add_argument("--no-progress", action="store_true", help="with --cost: no progress bar (result lines stay)")


def wants_cost(args) -> bool:
    """True when ``--cost`` was given.

    Raises:
        UserError: a ``--cost`` option without ``--cost``.
    """
    from soundaq.base.errors import UserError

    if args.cost:
        return True
    given = [flag for flag, dest, default in (("--models", "models", None), ("--batch", "batch", 4),
                                              ("--min-time", "min_time", 1.0), ("--device", "device", None),
                                              ("--threads", "threads", None))
             if getattr(args, dest, default) != default]
    if given:
        raise UserError(f"{', '.join(given)} go(es) with --cost; fix: add --cost (soundaq models --cost {given[0]} ...)")
    return False


def _progress(enabled: bool):
    """A ``report`` callback for :func:`measure_cost`: a rich progress bar on stderr (unless disabled) and
    one line per finished phase; returns ``(report, close)``.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    bar = Progress(TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=console, transient=True, disable=not enabled)
    task = None

    def report(event: dict) -> None:
        nonlocal task
        if task is None:
            bar.start()
            task = bar.add_task("cost", total=event["total"])
        what = f"{event['model']} {'training step' if event['phase'] == 'train' else 'inference'}"
        if event["status"] == "start":
            bar.update(task, description=f"measuring {what}")
            return
        bar.advance(task)
        if event["status"] == "failed":
            line = f"{what}: failed: {event['error']}"
        else:
            r = event["result"]
            peak = "-" if r["peak_mb"] is None else f"{r['peak_mb']:,.0f} MB"
            line = (f"{what}: {r['seconds']:.3g} s per call ({r['runs']} timed), peak {peak}"
                    + (f", {r['macs'] / 1e9:.2f} GMACs per clip" if "macs" in r else "")
                    + f" [{event['wall_s']:.0f} s]")
        console.print(f"soundaq models --cost: [{event['index']}/{event['total']}] {line}", markup=False,
                      highlight=False, soft_wrap=True)

    def close() -> None:
        if task is not None:
            bar.stop()

    return report, close


def run_cost(args) -> int:
    """Measure, print Markdown or JSON on stdout; exit 1 when a net could not be measured (the rest are)."""
    from soundaq.benchmark.options import models_from_arg
    from soundaq.models_zoo.cost import cost_markdown, measure_cost
    from soundaq.models_zoo.registry import get_spec

    names = models_from_arg(args.models)
    for name in names:
        get_spec(name)      # an unknown name: one line before anything is measured
    report, close = _progress(not args.no_progress)
    try:
        rows = measure_cost(names, batch=args.batch, min_time=args.min_time, device=args.device,
                            threads=args.threads, report=report)
    finally:
        close()
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(cost_markdown(rows), end="")
    failed = [r["model"] for r in rows if r["error"]]
    if failed:
        print(f"soundaq models --cost: not measured: {', '.join(failed)} (reasons above and in the table's notes)",
              file=sys.stderr)
        return 1
    return 0
