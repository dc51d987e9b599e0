"""``soundaq data``: check, download and prepare datasets."""
from __future__ import annotations

import json
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("data", help="check label folders, download the ARAUS labels, prepare the embedded set")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION")
    c = dsub.add_parser("check", help="validate a label folder and print counts per split, scene and event")
    c.add_argument("--labels", required=True, type=Path, help="folder with the *_set_*.txt label files")
    c.add_argument("--json", action="store_true", help="print the counts as JSON")
    c.set_defaults(handler=_check)
    p.set_defaults(handler=lambda args: p.print_help() or 2)


def _check(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from benchmark.errors import UserError
    from models_zoo.data.labels import SPLITS, read_labels, split_files, summarise
    from models_zoo.vocab import EVENTS, SCENES

    if not args.labels.is_dir():
        raise UserError(f"{args.labels}: not a folder; pass the folder holding the label .txt files")
    present = [s for s in SPLITS if any(p.exists() for p in split_files(args.labels, s).paths.values())]
    if not present:
        raise UserError(f"{args.labels}: no label files found (expected e.g. test_set_audio_file_ids.txt); "
                        "get them with `soundaq data download --labels-to DIR`")
    frame = read_labels(args.labels, present)
    summary = summarise(frame)
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    console = Console()
    splits = list(summary["splits"])
    table = Table(title=f"{args.labels}: {summary['clips']} clips, labels OK")
    table.add_column("count")
    for s in splits:
        table.add_column(s, justify="right")
    table.add_row("clips", *(str(summary["splits"][s]["clips"]) for s in splits), end_section=True)
    for scene in SCENES:
        table.add_row(f"scene: {scene}", *(str(summary["splits"][s]["scenes"][scene]) for s in splits))
    table.rows[-1].end_section = True
    for event in EVENTS:
        table.add_row(f"event: {event}", *(str(summary["splits"][s]["events"][event]) for s in splits))
    console.print(table)
    return 0
