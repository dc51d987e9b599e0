"""``soundaq ablation kernels|blocks|dilation|loss-weighting|all``: SoundAQnet's ablation studies
(soundaq.benchmark.ablation; docs/ablations.md).
"""
from __future__ import annotations

import sys
from pathlib import Path


def register(sub) -> None:
    """Add the ``ablation`` subcommand, its options and its handler to the CLI's subparsers ``sub``."""
    from soundaq.benchmark.ablation import STUDIES
    from soundaq.benchmark.commands.leaderboard import run_parents, training_arguments

    p = sub.add_parser(
        "ablation", help="re-run SoundAQnet's ablation studies (kernels, blocks, dilation, loss weighting)",
        description="Train the variants of one of the release's SoundAQnet studies (or SoundAQnet under each "
                    "loss weighting) as leaderboard runs on the chosen data, and write the study's table in the "
                    "release's column order with our scores, parameters and the paper's numbers beside. Run the "
                    "same command again to resume.",
        parents=run_parents())
    p.add_argument("study", choices=(*STUDIES, "all"), help="which study (all: the four in turn)")
    training_arguments(p)
    p.set_defaults(handler=_ablation)


def _ablation(args) -> int:
    from soundaq.benchmark.ablation import STUDIES, run_study
    from soundaq.benchmark.commands.leaderboard import open_units_engine, settings_from_args
    from soundaq.benchmark.leaderboard import quiet_lightning, run_leaderboard

    out = Path(args.out)
    quiet_lightning()

    def make(models: list[str], folder: Path, scheme: str | None):
        return settings_from_args(args, models, [], folder, loss_weighting=scheme)

    failed_all: list[str] = []
    with open_units_engine(args) as engine:      # one engine for every run; connects before anything is written
        def runner(settings):
            return run_leaderboard(settings, engine=engine)

        for study in (STUDIES if args.study == "all" else (args.study,)):
            table, failed = run_study(study, make, out, runner=runner)
            print(f"soundaq ablation: {study}: table {table}")
            failed_all += [f"{study}: {name}" for name in failed]
    if failed_all:
        print(f"soundaq ablation: {len(failed_all)} run(s) failed: {', '.join(failed_all)} (reasons in the "
              "leaderboard tables; run the same command again to retry them)", file=sys.stderr)
        return 1
    return 0
