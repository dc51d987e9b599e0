"""``soundaq leaderboard``: compare models on one dataset with one set of metrics (soundaq.benchmark.leaderboard)."""
from __future__ import annotations

import math
import sys
from pathlib import Path


def run_parents() -> list:
    """The option groups every training run over a dataset shares (leaderboard, ablation)."""
    from soundaq.benchmark import options as o

    return [o.data_options(), o.embedded_options(), o.calibration_options(), o.trainer_options(), o.cache_options(),
            o.bootstrap_options(minimum=1),
            o.workers_options(_default_workers(), "models trained at the same time, each in its own "
                              "process with the CPU threads shared out; 2 on 2+ cores, else 1: on this machine"),
            o.engine_options(),
            o.seed_options("training, shuffling and the bootstrap"), o.progress_options(),
            o.output_options(help="run folder, e.g. results/RUN (an existing one is resumed)")]


def register(sub) -> None:
    """Add the ``leaderboard`` subcommand, its options and its handler to the CLI's subparsers ``sub``."""
    from soundaq.benchmark import options as o

    p = sub.add_parser(
        "leaderboard", help="train/evaluate models on one dataset and rank them (table, CIs, figure)",
        description="Train each chosen model on the training split (or load --checkpoints), evaluate it on "
                    "the test split and write a ranked table with bootstrap CIs, a figure, per-clip "
                    "predictions and provenance to --out. Run the same command again to resume.",
        parents=run_parents())
    p.add_argument("--models", default="all", help=o.MODELS_HELP)
    p.add_argument("--checkpoints", default=None, metavar="DIR|pretrained",
                   help="evaluate <DIR>/<MODEL>.ckpt instead of training (soundaq train / import-original); "
                        "`pretrained`: the paper's released weights, downloaded (pinned) on first use")
    training_arguments(p)
    o.add_loss_weighting(p)          # one weighting for every model of the run
    p.set_defaults(handler=_leaderboard)


def training_arguments(p) -> None:
    """The training options of a leaderboard-style run (schedule, budget, batch, data size, heads)."""
    from soundaq.benchmark import options as o
    from soundaq.models_zoo.schedules import EMBEDDED, SCHEDULES

    p.add_argument("--schedule", choices=tuple(SCHEDULES), default=None,
                   help="training schedule of every model: embedded (the default on the embedded set: an equal "
                        f"budget of {EMBEDDED.budget_clips} training clips per model, docs/leaderboard.md) or paper "
                        "(the default on ARAUS, on your own data and with --max-epochs: 100 epochs, early stopping)")
    p.add_argument("--max-epochs", type=o.positive_int, default=None,
                   help="epochs for every model, with the paper's early stopping (selects the paper schedule)")
    p.add_argument("--budget-clips", type=o.positive_int, default=None,
                   help="training clips every model sees (an equal budget; default with --schedule embedded: "
                        f"{EMBEDDED.budget_clips})")
    p.add_argument("--batch-size", type=o.positive_int, default=None,
                   help="clips per batch (default: the schedule's, 8 embedded, 32 paper)")
    o.add_head_init(p)
    p.add_argument("--seeds", default=None, metavar="LIST",
                   help="train every model once per training seed, e.g. 0-9 or 0,3,5: mean, sd and a 95%% t "
                        "interval over seeds, the ranking's stability, a comparison over seeds and test clips "
                        "(default: the one --seed, today's table)")
    p.add_argument("--protocol", choices=("published", "araus"), default="published",
                   help="published (default): the split as distributed; araus: ARAUS's scheme, folds 1-5 in five "
                        "rotations (train on four, validate on the fifth), each tested on fold 0 (data with folds)")
    p.add_argument("--no-correlation", action="store_true",
                   help="skip the Spearman events x qualities analysis of the leader's predictions")


def settings_from_args(args, models: list[str], plugins: list[str], out, **extra):
    """The :class:`~soundaq.benchmark.leaderboard.Settings` of a run from its command-line options."""
    from soundaq.benchmark.leaderboard import Settings
    from soundaq.benchmark.leaderboard.settings import parse_seeds
    from soundaq.benchmark.options import data_from_args

    data = data_from_args(args)
    seeds = parse_seeds(args.seeds) if args.seeds is not None else None   # a bad list: one line, nothing trained
    return Settings(out=out, data=data["source"], labels=data["labels_dir"], audio=data["audio_dir"],
                    features=data["features_dir"], araus=data["araus_dir"], calibration=data["calibration"],
                    models=models, plugins=plugins, schedule=args.schedule, max_epochs=args.max_epochs,
                    budget_clips=args.budget_clips, checkpoints=getattr(args, "checkpoints", None), seed=args.seed,
                    seeds=seeds, protocol=args.protocol,
                    batch_size=args.batch_size, n_resamples=args.resamples, cache_dir=args.cache_dir,
                    embedded_clips=args.embedded_clips, workers=args.workers, accelerator=args.accelerator,
                    devices=args.devices, strategy=args.strategy, precision=args.precision,
                    progress=not args.no_progress,
                    correlate=not args.no_correlation, head_init=not args.zero_head_bias, **extra)


def open_units_engine(args):
    """The engine of ``--engine``/``--address`` for a grid of training runs (soundaq.base.engine), opened:
    with Ray, one task per unit, asking for :func:`~soundaq.benchmark.leaderboard.grid.unit_gpus` GPUs.

    Raises:
        EngineError: Ray missing, nothing at ``--address``, fewer GPUs on the cluster than a unit asks for.
    """
    from soundaq.base.engine import open_engine
    from soundaq.benchmark.leaderboard.grid import unit_gpus

    gpus = unit_gpus(args.accelerator, args.devices) if args.engine == "ray" else 0
    return open_engine(args.engine, workers=args.workers, address=args.address, gpus=gpus)


def _leaderboard(args) -> int:
    from soundaq.benchmark.leaderboard import (
        LeaderboardError,
        is_pretrained,
        print_table,
        quiet_lightning,
        run_leaderboard,
    )
    from soundaq.benchmark.options import models_from_arg
    from soundaq.models_zoo.registry import get_spec, list_nets

    text = args.models.strip()
    given = models_from_arg(args.models)
    specs = [get_spec(m) for m in given]      # import paths join the registry here, under their class names
    models = [spec.name for spec in specs]
    plugins = [m for m, spec in zip(given, specs) if spec.plugin and ":" in m]
    if args.checkpoints is not None and not is_pretrained(args.checkpoints):
        args.checkpoints = Path(args.checkpoints)
    if is_pretrained(args.checkpoints) and text == "all":
        from soundaq.models_zoo.pretrained_weights import models_with_weights

        models = models_with_weights(args.cache_dir)
    elif args.checkpoints is not None and text == "all" and args.checkpoints.is_dir():
        from soundaq.benchmark.leaderboard import find_checkpoint

        models = [m for m in list_nets() if find_checkpoint(args.checkpoints, m) is not None]
        if not models:
            raise LeaderboardError(f"{args.checkpoints}: no <MODEL>.ckpt files; fix: name them after the registry "
                                   f"({', '.join(list_nets())})")
    settings = settings_from_args(args, models, plugins, args.out, loss_weighting=args.loss_weighting)
    quiet_lightning()
    with open_units_engine(args) as engine:      # connects (Ray) before any run folder is created
        outcome = run_leaderboard(settings, engine=engine)
    if outcome.seeds:
        from soundaq.benchmark.leaderboard.seeds_report import print_table as print_grid

        print_grid(outcome.rows, outcome.title, outcome.budget,
                   unit="rotations" if str(outcome.seeds).startswith("rotations") else "seeds")
    else:
        print_table(outcome.rows, outcome.rows[0]["data"] if outcome.rows else "", outcome.budget, outcome.title)
    print(f"table: {outcome.out / 'leaderboard.md'}")
    first = outcome.rows[0] if outcome.rows else {}
    _say_breakdown(first)
    if outcome.curves is not None:
        print(f"learning curves: {outcome.curves}")
    if outcome.figure is not None:
        print(f"figure: {outcome.figure}")
    if outcome.correlation is not None:
        agreed = outcome.agreement or {}
        said = ""
        if math.isfinite(agreed.get("spearman", math.nan)):
            said = (f" (leader {outcome.rows[0]['model']}: agreement with the labels {agreed['spearman']:+.3f}, "
                    f"rank correlation over {agreed['cells']} event x quality cells)")
        print(f"correlation: {outcome.correlation / 'report.md'}{said}")
    if outcome.failed:
        print(f"soundaq leaderboard: {len(outcome.failed)} model(s) failed: {', '.join(outcome.failed)} "
              "(reasons in the table; run the same command again to retry them)", file=sys.stderr)
        return 1
    return 0


def _default_workers() -> int:
    """Two model workers on a machine with two or more cores (measured faster than one process using
    both cores for one model on the embedded set), else one.
    """
    import os

    return 2 if (os.cpu_count() or 1) >= 2 else 1


def _say_breakdown(first: dict) -> None:
    """The terminal's line on the test split's seen/unseen parts (by fold; by recording and masker)."""
    def count(key: str) -> int:
        return int(round(float(first[key])))     # a grid's row holds the mean over seeds: a float

    if first.get("seen_folds_clips") is not None:
        seen, unseen = count("seen_folds_clips"), count("unseen_folds_clips")
        if seen == 0:
            print(f"test split: all {unseen} clips from ARAUS folds no training clip comes from")
        else:
            print(f"test split: {seen} clips from ARAUS folds that also feed training, {unseen} from unseen folds "
                  "(each part scored in the table and the report)")
    if first.get("seen_recording_clips") is not None:
        print(f"test split: {count('seen_recording_clips')} clips mixed from a base recording training also uses, "
              f"{count('unseen_recording_clips')} from new ones; {count('seen_masker_clips')} from a masker "
              f"training uses, {count('unseen_masker_clips')} from new ones (scored in the table and the report)")
