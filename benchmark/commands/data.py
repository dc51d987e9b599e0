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
    d = dsub.add_parser("download", help="fetch the 16 ARAUS label files of the SoundSCaper release (sha256-pinned, resumable)")
    d.add_argument("--labels-to", required=True, type=Path, metavar="DIR", help="destination folder")
    d.add_argument("--base-url", default=None, metavar="URL",
                   help="mirror: http(s):// or file:// URL or a local folder (default: the release on GitHub)")
    d.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the server (default 60)")
    d.add_argument("--no-progress", action="store_true", help="do not draw a progress bar")
    d.set_defaults(handler=_download)
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


def _download(args) -> int:
    from models_zoo.data.download import DEFAULT_BASE_URL, LABEL_FILES, download_labels

    results = download_labels(args.labels_to, args.base_url, progress=not args.no_progress, timeout=args.timeout)
    counts = {status: sum(r.status == status for r in results) for status in ("downloaded", "resumed", "present")}
    print(f"{args.labels_to}: {len(LABEL_FILES)} label files, sha256 verified "
          f"({counts['downloaded']} downloaded, {counts['resumed']} resumed, {counts['present']} already present) "
          f"from {args.base_url or DEFAULT_BASE_URL}")
    return 0
