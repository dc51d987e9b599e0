"""``soundaq models`` (the model registry and the released weights), ``soundaq models download|import``
(the paper's trained models into the cache) and ``soundaq import-original`` (release weights -> checkpoint).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import JustifyMethod


def register(sub) -> None:
    """Add the ``models`` subcommand, its options and its handler to the CLI's subparsers ``sub``."""
    from soundaq.benchmark import options as o

    p = sub.add_parser("models",
                       help="list the model zoo and the released weights; download the paper's trained models",
                       parents=[o.cache_options()])
    p.add_argument("--json", action="store_true",
                   help="print the registry as a JSON list (with each model's released weights under `pretrained`)")
    p.add_argument("--count", action="store_true",
                   help="also build every net and count its parameters (slower; checks the registry)")
    p.set_defaults(handler=_models)
    from soundaq.benchmark.commands.models_cost import add_options

    add_options(p)      # --cost and its options
    msub = p.add_subparsers(dest="models_command", metavar="ACTION")
    d = msub.add_parser("download", help="fetch the release's trained weights (git-blob pinned, resumable) and "
                                         "import them into the cache, for --model NAME",
                        parents=[o.cache_options(), o.progress_options()])
    d.add_argument("names", nargs="+", metavar="NAME",
                   help="registry names, or `all` (every model with released weights)")
    d.add_argument("--variant", default=None, metavar="V",
                   help="SoundAQnet's variant: PAQ1027 (default, the paper's), PAQ1039, PAQ1041, PAQ1052, or all")
    d.add_argument("--mirror", default=None, metavar="DIR|URL",
                   help="a copy of the release at the pinned commit: folder, file:// or http(s):// URL "
                        "(default: $SOUNDAQ_MIRROR, else GitHub)")
    d.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the server (default 60)")
    d.add_argument("--force", action="store_true", help="import again even when the checkpoint is in the cache")
    d.add_argument("--json", action="store_true", help="print one JSON summary per model")
    d.set_defaults(handler=_download)
    m = msub.add_parser("import", help="file your own copy of a model's release weights (e.g. PANNs) in the cache, "
                                       "for --model NAME", parents=[o.cache_options(), o.progress_options()])
    m.add_argument("name", metavar="NAME", help="registry name, e.g. PANNs")
    m.add_argument("--weights", required=True, type=Path, help="the release's state dict (.pth)")
    m.add_argument("--norm-mel", type=Path, default=None,
                   help="log-mel mean/std (default: the release's pinned norm_log_mel.pickle, downloaded)")
    m.add_argument("--norm-loudness", type=Path, default=None,
                   help="loudness mean/std (default: the release's pinned norm_loudness.pickle, downloaded)")
    m.add_argument("--mirror", default=None, metavar="DIR|URL", help="where the normalisation files come from")
    m.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the server (default 60)")
    m.set_defaults(handler=_import_user)

    i = sub.add_parser("import-original",
                       help="turn a SoundSCaper release state dict and its normalisation files into a checkpoint")
    i.add_argument("--model", required=True, help="registry name (see `soundaq models`), e.g. AD_CNN")
    i.add_argument("--weights", required=True, type=Path, help="the release's state dict, e.g. AD_CNN_final_model.pth")
    i.add_argument("--norm-mel", required=True, type=Path,
                   help="log-mel mean/std: the release's norm_log_mel.pickle or a JSON file")
    i.add_argument("--norm-loudness", type=Path, default=None,
                   help="loudness mean/std: norm_loudness.pickle or JSON (needed for SoundAQnet unless "
                        "--norm-mel is a JSON holding both)")
    i.add_argument("--out", required=True, type=Path, help="checkpoint to write (.ckpt)")
    i.add_argument("--json", action="store_true", help="print the summary as JSON")
    i.set_defaults(handler=_import_original)


def _fmt(value, spec: str = "") -> str:
    return "-" if value is None else format(value, spec)


def _models(args) -> int:
    from soundaq.benchmark.commands.models_cost import run_cost, wants_cost

    if wants_cost(args):
        return run_cost(args)
    from soundaq.models_zoo.pretrained_weights import pretrained_rows
    from soundaq.models_zoo.registry import nets

    NETS = nets()   # the paper's eight, then installed plug-ins
    counted = {}
    if args.count:
        from soundaq.models_zoo.registry import build_net, count_params

        counted = {name: count_params(build_net(name)) for name in NETS}
    rows = []
    for spec in NETS.values():
        row = spec.as_dict()
        if args.count:
            row["params_counted"] = counted[spec.name]
        rows.append(row)
    released = pretrained_rows(args.cache_dir)
    for row in rows:
        row["pretrained"] = [r for r in released if r["model"] == row["name"]]
    from soundaq.models_zoo.variants import FAMILY, families

    for row in rows:
        if row["name"] == FAMILY:     # the release's ablation variants ride on their family's row
            row["variant_families"] = families()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0

    from rich.table import Table

    from soundaq.benchmark.terminal import stdout_console

    table = Table(title="soundaq model zoo (scores: SoundSCaper paper, ARAUS test set, 3,576 clips)")
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("name", "left"), ("inputs", "left"), ("params", "right"), ("scene acc %", "right"),
        ("event AUC", "right"), ("PAQ MSE", "right"), ("weights", "left"))
    for col, justify in columns:
        table.add_column(col, justify=justify, no_wrap=col in ("name", "params"))
    if args.count:
        table.add_column("count", justify="right")
    for row in rows:
        inputs = "mel+loudness" if row["uses_loudness"] else "mel"
        cells = [row["name"] + (" (plug-in)" if row["plugin"] else ""), inputs,
                 f"{row['params']:,}" if row["params"] else "?", _fmt(row["paper_scene_acc"], ".2f"),
                 _fmt(row["paper_event_auc"], ".2f"), _fmt(row["paper_paq_mse"], ".3f"),
                 _weights_cell(released, row["name"])]
        if args.count:
            ok = row["params_counted"] == row["params"]
            cells.append("ok" if ok else f"{row['params_counted']:,} (!)")
        table.add_row(*cells)
    mismatched = [r["name"] for r in rows if args.count and not r["plugin"] and r["params_counted"] != r["params"]]
    console = stdout_console()   # a pipe gets every column whole
    console.print(table)
    console.print("inputs: normalised log-mel [3001, 64]; loudness [15000, 1] (ISO 532-1). `--json` gives every field.")
    console.print(_released_table(released))
    console.print("SoundAQnet's ablation variants (train/leaderboard by name): SoundAQnet[kernels=3+5], "
                  "SoundAQnet[blocks=2|4|5], SoundAQnet[dilation=1-1-1|1-2-5|1-3-5|2-3-5], combinations such as "
                  "SoundAQnet[blocks=2,dilation=1-1-1], SoundAQnet_AFF; `--json` lists them with their parameter counts.")
    if mismatched:
        console.print(f"parameter count differs from the original for: {', '.join(mismatched)}")
        return 1
    return 0


def _weights_cell(released: list[dict], model: str) -> str:
    mine = [r for r in released if r["model"] == model]
    if any(r["released"] == "pinned" for r in mine):
        return "released" + (f" ({len(mine)} variants)" if len(mine) > 1 else "")
    return "user file" if mine and mine[0]["released"] != "not released" else "-"


def _size(n) -> str:
    return "?" if n is None else f"{n / 1e6:.1f} MB"


def _released_table(released: list[dict]):
    from rich.table import Table

    from soundaq.models_zoo.pretrained_weights import RELEASE_COMMIT

    notes = sorted({f"{r['model']}: {r['released']}; "
                    f"file yours with `soundaq models import {r['model']} --weights FILE`"
                    for r in released if r["released"] not in ("pinned", "not released")})
    table = Table(title=f"the paper's trained models (Yuanbo2020/SoundSCaper @ {RELEASE_COMMIT[:7]}; "
                        "the release's scores, ARAUS test set)",
                  caption="\n".join(["`soundaq models download NAME|all` fetches them, checks each file's git blob id "
                                     "and imports it; `--model NAME` (predict, leaderboard) does so on first use. "
                                     "size ?: learnt from the server.", *notes]))
    released_columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("--model [--variant]", "left"), ("weights", "left"), ("size", "right"),
        ("scene acc %", "right"), ("event AUC", "right"), ("PAQ MSE", "right"), ("cached", "left"))
    for col, justify in released_columns:
        table.add_column(col, justify=justify, no_wrap=col in ("--model [--variant]", "size", "weights"))
    for r in released:
        if r["released"] == "not released" and r["scene_acc"] is None:
            continue        # a net the paper does not have (your own, a plug-in): no release, no scores
        name = r["model"] + (f" {r['variant']}" if r["variant"] else "")
        where = {"pinned": "release", "not released": "-"}.get(r["released"], "user file")
        table.add_row(name, where, _size(r["size"]) if r["released"] == "pinned" else "-",
                      _fmt(r["scene_acc"], ".2f"), _fmt(r["event_auc"], ".2f"), _fmt(r["paq_mse"], ".3f"),
                      "yes" if r["downloaded"] else "no")
    return table


def _download(args) -> int:
    import sys

    from soundaq.models_zoo.pretrained_weights import download_many

    def report(summary: dict) -> None:
        if args.json:
            print(json.dumps(summary))
        elif summary["status"] != "failed":
            moved = f", {summary['bytes']:,} bytes fetched" if summary["bytes"] else ""
            print(f"{summary['key']}: {summary['status']}{moved} -> {summary['checkpoint']}")
        sys.stdout.flush()

    download_many(args.names, args.variant, cache_dir=args.cache_dir, mirror=args.mirror,
                  progress=not args.no_progress, timeout=args.timeout, force=args.force, report=report)
    return 0


def _import_user(args) -> int:
    from soundaq.models_zoo.pretrained_weights import import_user_weights

    summary = import_user_weights(args.name, args.weights, args.norm_mel, args.norm_loudness,
                                  cache_dir=args.cache_dir, mirror=args.mirror, progress=not args.no_progress,
                                  timeout=args.timeout)
    print(f"{summary['model']}: imported {args.weights} -> {summary['checkpoint']} ({summary['params']:,} parameters); "
          f"use it with --model {summary['model']}")
    return 0


def _import_original(args) -> int:
    from soundaq.models_zoo.checkpoints import import_original

    summary = import_original(args.model, args.weights, args.norm_mel, args.norm_loudness, args.out)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"wrote {summary['out']}: {summary['model']}, {summary['params']:,} parameters, "
              f"{summary['tensors']} tensors, sha256 {summary['sha256'][:16]}")
    return 0
