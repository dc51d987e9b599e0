"""``soundaq train``: train one zoo net with the shared data module, resumably and reproducibly.

The run folder's layout and the training itself are :func:`soundaq.models_zoo.training.train_model`;
this module only parses the arguments, builds the data module and prints the outcome.
"""
from __future__ import annotations

import sys
from pathlib import Path


def register(sub) -> None:
    """Add the ``train`` subcommand, its options and its handler to the CLI's subparsers ``sub``."""
    from soundaq.benchmark import options as o
    from soundaq.models_zoo.registry import NETS
    from soundaq.models_zoo.schedules import EMBEDDED, PAPER, SCHEDULES

    p = sub.add_parser("train", help="train a model (resumable, seeded; DDP through Lightning strategies)",
                       description="Train one zoo net on the embedded synthetic set, on ARAUS features or audio, "
                                   "or on your own audio and labels CSV. Run the same command again to resume an "
                                   "interrupted run.",
                       parents=[o.data_options(required=True), o.embedded_options(), o.calibration_options(), o.trainer_options(),
                                o.cache_options(),
                                o.workers_options(0, "data loader worker processes"), o.progress_options(),
                                o.output_options(help="run folder (created; an existing one is resumed)"),
                                o.seed_options("weights, shuffling and dropout")])
    p.add_argument("--model", required=True, metavar="NAME",
                   help="registry name (" + ", ".join(NETS) + ", or an installed plug-in's), a SoundAQnet variant "
                        "(SoundAQnet[kernels=3+5], SoundAQnet[blocks=4], SoundAQnet[dilation=1-3-5], combinations "
                        "such as SoundAQnet[blocks=2,dilation=1-1-1], SoundAQnet_AFF; docs/ablations.md) or a "
                        "plug-in's import path package.module:Class (docs/extending.md)")
    p.add_argument("--schedule", choices=tuple(SCHEDULES), default="paper",
                   help="paper (default: the original's epochs and early stopping) or embedded (the leaderboard's "
                        f"equal budget of {EMBEDDED.budget_clips} clips, one-cycle rate, crops; docs/leaderboard.md). "
                        "Either trains as a leaderboard unit of the same model, seed and options does (heads at the "
                        "base rates unless --zero-head-bias), so it reruns a leaderboard or ablation row")
    p.add_argument("--max-epochs", type=o.positive_int, default=None,
                   help=f"upper bound on epochs (default {PAPER.max_epochs}, as the original; paper schedule)")
    p.add_argument("--patience", type=o.positive_int, default=None,
                   help=f"stop after this many epochs without a lower val/isop_mse (val/loss for data without "
                        f"quality labels; default {PAPER.patience})")
    p.add_argument("--budget-clips", type=o.positive_int, default=None,
                   help=f"training clips of the embedded schedule (default {EMBEDDED.budget_clips})")
    p.add_argument("--batch-size", type=o.positive_int, default=None,
                   help=f"clips per batch and device (default: the schedule's, {PAPER.batch_size} paper, "
                        f"{EMBEDDED.batch_size} embedded)")
    p.add_argument("--lr", type=float, default=None,
                   help=f"Adam (peak) learning rate (default: the schedule's, {PAPER.lr:g} paper, {EMBEDDED.lr:g} embedded)")
    p.add_argument("--uncertainty-weighting", action="store_true",
                   help="weight the 12 task losses by learnt uncertainties, as the original SoundAQnet "
                        "(= --loss-weighting uncertainty)")
    o.add_loss_weighting(p)
    o.add_head_init(p)
    p.add_argument("--pretrained", type=Path, default=None,
                   help="AudioSet backbone weights for the nets that have one: PANNs (Cnn14 .pth), YAMNet (yamnet.pth)")
    p.add_argument("--norm-stats", type=Path, default=None,
                   help="normalisation statistics JSON (default: computed on the training split)")
    p.add_argument("--limit-train-batches", type=o.batch_limit, default=None, metavar="N|F",
                   help="Lightning's limit_train_batches: at most N batches (or fraction F) per epoch (smoke runs)")
    p.add_argument("--limit-val-batches", type=o.batch_limit, default=None, metavar="N|F",
                   help="Lightning's limit_val_batches: at most N validation batches (or fraction F)")
    p.add_argument("--test", action="store_true", help="evaluate the best checkpoint on the test split afterwards")
    p.set_defaults(handler=_train)


def _train(args) -> int:
    from soundaq.base.errors import UserError
    from soundaq.benchmark.options import data_from_args
    from soundaq.models_zoo.registry import get_spec

    spec = get_spec(args.model)             # a plug-in given by import path joins the registry here
    args.model = spec.name
    uncertainty, loss_weights = _loss_weighting(args)
    if args.pretrained is not None and spec.backbone is None:
        from soundaq.models_zoo.registry import with_backbone

        raise UserError(f"--pretrained is for {' and '.join(with_backbone())}; {args.model} has no AudioSet backbone")

    from soundaq.models_zoo.data.datamodule import SoundscapeDataModule
    from soundaq.models_zoo.schedules import SCHEDULES

    schedule = SCHEDULES[args.schedule]
    if schedule.budget_clips is None and args.budget_clips is not None:
        raise UserError("--budget-clips goes with --schedule embedded; the paper schedule counts epochs")
    if schedule.budget_clips is not None and (args.max_epochs is not None or args.patience is not None):
        raise UserError("--max-epochs/--patience go with --schedule paper; the embedded schedule counts clips "
                        "(--budget-clips)")
    schedule = schedule.with_overrides(**spec.schedule).with_overrides(batch_size=args.batch_size, lr=args.lr,
                                                                        budget_clips=args.budget_clips)
    data = data_from_args(args)             # the source checks its own options (one line saying what it needs)
    datamodule = SoundscapeDataModule(**data, cache_dir=args.cache_dir, batch_size=schedule.batch_size,
                                      num_workers=args.workers, norm_stats=args.norm_stats, seed=args.seed,
                                      embedded_clips=args.embedded_clips)
    identity = {"data": args.data, "labels": str(args.labels) if args.labels else None,
                "audio": str(args.audio) if args.audio else None,
                "features": str(args.features) if args.features else None,
                **({"araus": str(args.araus)} if args.araus else {}),
                "batch_size": schedule.batch_size, "norm_stats": str(args.norm_stats) if args.norm_stats else None,
                "embedded_clips": args.embedded_clips,
                **({"calibration": data["calibration"].key()} if data["calibration"] else {}),
                "head_init": not args.zero_head_bias}
    limits = {k: v for k, v in (("limit_train_batches", args.limit_train_batches),
                                ("limit_val_batches", args.limit_val_batches)) if v is not None}
    from soundaq.benchmark.terminal import quiet_lightning
    from soundaq.models_zoo.training import is_rank_zero, train_model

    quiet_lightning(notes=args.no_progress)     # never tips or advice; no bars: no Lightning notes either

    net = _start_net(args, datamodule)
    result = train_model(args.model, datamodule, out_dir=args.out, schedule=schedule, max_epochs=args.max_epochs,
                         seed=args.seed, uncertainty_weighting=uncertainty, loss_weights=loss_weights,
                         patience=args.patience,
                         accelerator=args.accelerator, devices=args.devices, strategy=args.strategy,
                         precision=args.precision, pretrained=args.pretrained, progress=not args.no_progress,
                         identity=identity, run_test=args.test, trainer_kwargs=limits, net=net,
                         provenance={"head_init": "zero (original)" if net is None else "training base rates",
                                     **({"trainer_limits": limits} if limits else {})})
    if is_rank_zero():
        score = f"{result.best_score:.4f}" if result.best_score is not None else "n/a"
        exploded = (result.diverged or {}).get("validation")
        state = ("already trained (nothing to do)" if result.already_done else
                 f"DIVERGED: validation {exploded['metric']} {exploded['value']:.4g} exceeds {exploded['bound']:g}, the "
                 "largest error of any prediction within the rating scale (its outputs are far outside it; "
                 "train.json: diverged)" if exploded else
                 f"diverged at step {result.diverged['step']} (kept the last checkpoint before it)" if result.diverged
                 else "stopped early" if result.stopped_early else
                 "budget used" if schedule.budget_clips is not None else "max epochs reached")
        monitor = result.record.get("monitor", "val/isop_mse")
        which = "best"
        if schedule.budget_clips is not None:    # a budget keeps its last weights: say their score
            which = "final"
            last = (result.record.get("curve") or [{}])[-1].get(monitor.removeprefix("val/"))
            final = result.metrics.get(monitor, last)
            score = f"{final:.4f}" if isinstance(final, (int, float)) else "n/a"
        resumed = " (resumed an interrupted run)" if result.resumed else ""
        print(f"soundaq train: {args.model}: {state}{resumed} after {result.epochs} epoch(s), "
              f"{which} {monitor} {score}, {result.train_seconds:.1f} s; {which} checkpoint {result.best_checkpoint}",
              file=sys.stderr)
    return 0


def _start_net(args, datamodule):
    """The net the run starts from, as a leaderboard unit starts it (heads at the training base rates,
    :func:`soundaq.models_zoo.head_init.start_net`), or None under ``--zero-head-bias`` (the registry's
    net, built by train_model: the original's initialisation). A resumed run loads its checkpoint over it.
    """
    if args.zero_head_bias:
        return None
    from soundaq.models_zoo.head_init import start_net

    datamodule.prepare_data()       # the training labels (the embedded set is generated here on first use)
    return start_net(args.model, args.seed, datamodule.labels("training"))


def _loss_weighting(args) -> tuple[bool, tuple[float, ...] | None]:
    """``(uncertainty_weighting, loss_weights)`` from ``--loss-weighting``/``--uncertainty-weighting``."""
    from soundaq.base.errors import UserError
    from soundaq.models_zoo.losses import parse_loss_weighting

    if args.loss_weighting is None:
        return bool(args.uncertainty_weighting), None
    try:
        parsed = parse_loss_weighting(args.loss_weighting)
    except ValueError as err:
        raise UserError(str(err)) from None
    if args.uncertainty_weighting and parsed != "uncertainty":
        raise UserError("--uncertainty-weighting and --loss-weighting disagree; fix: give --loss-weighting alone")
    if parsed == "uncertainty" or isinstance(parsed, str):
        return True, None
    return False, parsed
