"""``soundaq models`` (the model registry) and ``soundaq import-original`` (release weights -> checkpoint)."""
from __future__ import annotations

import json
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("models", help="list the model zoo: inputs, parameters and the paper's published scores")
    p.add_argument("--json", action="store_true", help="print the registry as a JSON list")
    p.add_argument("--count", action="store_true",
                   help="also build every net and count its parameters (slower; checks the registry)")
    p.set_defaults(handler=_models)

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
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0

    from rich.console import Console
    from rich.table import Table

    table = Table(title="soundaq model zoo (scores: SoundSCaper paper, ARAUS test set, 3,576 clips)")
    for col, justify in (("name", "left"), ("inputs", "left"), ("params", "right"), ("scene acc %", "right"),
                         ("event AUC", "right"), ("PAQ MSE", "right"), ("weights", "left")):
        table.add_column(col, justify=justify, no_wrap=col in ("name", "params"))
    if args.count:
        table.add_column("count", justify="right")
    for row in rows:
        inputs = "mel+loudness" if row["uses_loudness"] else "mel"
        cells = [row["name"] + (" (plug-in)" if row["plugin"] else ""), inputs,
                 f"{row['params']:,}" if row["params"] else "?", _fmt(row["paper_scene_acc"], ".2f"),
                 _fmt(row["paper_event_auc"], ".2f"), _fmt(row["paper_paq_mse"], ".3f"),
                 "released" if row["released_weights"] else "-"]
        if args.count:
            ok = row["params_counted"] == row["params"]
            cells.append("ok" if ok else f"{row['params_counted']:,} (!)")
        table.add_row(*cells)
    mismatched = [r["name"] for r in rows if args.count and not r["plugin"] and r["params_counted"] != r["params"]]
    console = Console()
    console.print(table)
    console.print("inputs: normalised log-mel [3001, 64]; loudness [15000, 1] (ISO 532-1). weights: the release "
                  "ships trained weights (import them with `soundaq import-original`). `--json` gives every field.")
    if mismatched:
        console.print(f"parameter count differs from the original for: {', '.join(mismatched)}")
        return 1
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
