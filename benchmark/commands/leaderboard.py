"""``soundaq leaderboard``: compare models on one dataset with one set of metrics (soundaq.benchmark.leaderboard)."""
from __future__ import annotations

import sys
from pathlib import Path


def register(sub) -> None:
    from soundaq.benchmark import options as o

    p = sub.add_parser(
        "leaderboard", help="train/evaluate models on one dataset and rank them (table, CIs, figure)",
        description="Train each chosen model on the training split (or load --checkpoints), evaluate it on "
                    "the test split and write a ranked table with bootstrap CIs, a figure, per-clip "
                    "predictions and provenance to --out. Run the same command again to resume.",
        parents=[o.data_options(), o.trainer_options(), o.cache_options(), o.bootstrap_options(minimum=1),
                 o.seed_options("training, shuffling and the bootstrap"), o.progress_options(),
                 o.output_options(help="run folder, e.g. results/RUN (an existing one is resumed)")])
    p.add_argument("--models", default="all", help="all (default) or a comma-separated list of registry names")
    p.add_argument("--max-epochs", type=o.positive_int, default=None,
                   help="epochs for every model (default: the embedded schedule in docs/leaderboard.md; "
                        "100 with early stopping on ARAUS)")
    p.add_argument("--train-batches", type=o.positive_int, default=None,
                   help="training batches per epoch for every model (default: the embedded schedule; all on ARAUS)")
    p.add_argument("--checkpoints", default=None, metavar="DIR|pretrained",
                   help="evaluate <DIR>/<MODEL>.ckpt instead of training (soundaq train / import-original); "
                        "`pretrained`: the paper's released weights, downloaded (pinned) on first use")
    p.add_argument("--batch-size", type=o.positive_int, default=32, help="clips per batch (default 32, as the paper)")
    p.add_argument("--embedded-clips", type=o.positive_int, default=None,
                   help="size of the embedded set (default 360; at least 12; a quick trial can use fewer)")
    p.add_argument("--zero-head-bias", action="store_true",
                   help="start the output heads as the original (zero biases, random weights); default: at the "
                        "training base rates with zero weights, see models_zoo/head_init.py")
    p.add_argument("--no-correlation", action="store_true",
                   help="skip the Spearman events x qualities analysis of the leader's predictions")
    p.set_defaults(handler=_leaderboard)


def _leaderboard(args) -> int:
    from soundaq.benchmark.leaderboard import LeaderboardError, Settings, is_pretrained, print_table, run_leaderboard
    from soundaq.models_zoo.registry import list_nets

    text = args.models.strip()
    models = list_nets() if text in ("", "all") else [m.strip() for m in text.split(",") if m.strip()]
    if args.checkpoints is not None and not is_pretrained(args.checkpoints):
        args.checkpoints = Path(args.checkpoints)
    if is_pretrained(args.checkpoints) and text in ("", "all"):
        from soundaq.models_zoo.pretrained_weights import models_with_weights

        models = models_with_weights(args.cache_dir)
    elif args.checkpoints is not None and text in ("", "all") and args.checkpoints.is_dir():
        from soundaq.benchmark.leaderboard import find_checkpoint

        models = [m for m in list_nets() if find_checkpoint(args.checkpoints, m) is not None]
        if not models:
            raise LeaderboardError(f"{args.checkpoints}: no <MODEL>.ckpt files; fix: name them after the registry "
                                   f"({', '.join(list_nets())})")
    settings = Settings(out=args.out, data=args.data, labels=args.labels, audio=args.audio, features=args.features,
                        models=models, max_epochs=args.max_epochs, train_batches=args.train_batches,
                        checkpoints=args.checkpoints, seed=args.seed, batch_size=args.batch_size,
                        n_resamples=args.resamples, cache_dir=args.cache_dir,
                        embedded_clips=args.embedded_clips, accelerator=args.accelerator,
                        devices=args.devices, strategy=args.strategy, progress=not args.no_progress,
                        correlate=not args.no_correlation, head_init=not args.zero_head_bias)
    _quiet_lightning()
    outcome = run_leaderboard(settings)
    print_table(outcome.rows, outcome.rows[0]["data"] if outcome.rows else "")
    print(f"table: {outcome.out / 'leaderboard.md'}")
    if outcome.figure is not None:
        print(f"figure: {outcome.figure}")
    if outcome.correlation is not None:
        print(f"correlation: {outcome.correlation / 'report.md'}")
    if outcome.failed:
        print(f"soundaq leaderboard: {len(outcome.failed)} model(s) failed: {', '.join(outcome.failed)} "
              "(reasons in the table; run the same command again to retry them)", file=sys.stderr)
        return 1
    return 0


def _quiet_lightning() -> None:
    """Eight trainings repeat Lightning's start-up notes and tips eight times; keep our own lines and real warnings."""
    import logging
    import warnings

    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda",
                 "lightning.fabric.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for pattern in (".*LeafSpec.*", ".*log_every_n_steps.*", ".*does not have many workers.*",
                    ".*litlogger.*", ".*is smaller than the logging interval.*"):
        warnings.filterwarnings("ignore", message=pattern)

