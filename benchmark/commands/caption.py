"""``soundaq caption``: soundscape captions of predictions, the language stage of SoundSCaper.

Each INPUT is a predictions table (the leaderboard's predictions/<model>.csv, `soundaq predict`'s CSV
or JSON) or audio files / folders with --checkpoint (predicted first, as `soundaq predict` does).
Long recordings get a caption per 30-s window and one for the whole. The prompt is the release's
(event threshold cascade 0.4/0.3/0.2, agreement words, neutral qualities dropped). Writes
OUT/captions.csv, captions.jsonl, captions.md and provenance.json; the same command again reuses
every caption already there. The `llm` captioner talks to any OpenAI-compatible server; its API key
is read from $SOUNDAQ_LLM_API_KEY (or $OPENAI_API_KEY, or the variable --api-key-env names), never
from the command line.
"""
from __future__ import annotations

import sys
from pathlib import Path


def register(sub) -> None:
    """Add the ``caption`` subcommand, its options and its handler to the CLI's subparsers ``sub``."""
    from soundaq.benchmark import options as o

    p = sub.add_parser("caption", help="soundscape captions of predictions or audio (template or any LLM server)",
                       allow_abbrev=False,
                       description=o.help_text(__doc__),
                       parents=[o.output_options(help="output folder (created; a rerun resumes)"), o.llm_options(),
                                o.seed_options("the template's sentence shapes and the LLM request"),
                                o.checkpoint_options(required=False), o.inference_options(),
                                o.cache_options(), o.progress_options(), o.calibration_options()])
    p.add_argument("inputs", nargs="+", type=Path, metavar="INPUT",
                   help="predictions tables (.csv/.json) or audio files/folders (with --checkpoint or --model)")
    p.set_defaults(handler=_caption)


def _caption(args) -> int:
    from soundaq.base.fileio import check_output_folder
    from soundaq.benchmark.options import calibration_from_args, checkpoint_from_args, llm_settings_from_args
    from soundaq.captions.run import caption_run

    def say(msg: str) -> None:
        print(f"soundaq caption: {msg}", file=sys.stderr)

    check_output_folder(args.out)     # before any captioning (LLM calls cost time and money)
    checkpoint = None
    if args.checkpoint is not None or args.model is not None:
        checkpoint = checkpoint_from_args(args, progress=not args.no_progress)
    summary = caption_run(args.inputs, args.out, captioner=args.captioner, checkpoint=checkpoint,
                          calibration=calibration_from_args(args), batch_size=args.batch_size, device=args.device,
                          llm=llm_settings_from_args(args), seed=args.seed, cache_dir=args.cache_dir, report=say,
                          progress=not args.no_progress)
    c = summary["counts"]
    missing = c["failed"] + c["not_asked"]
    tail = []
    if summary["captioner"] == "llm":
        tail.append(f"{c['requests']} request(s) sent")
    if c["reused"]:
        tail.append(f"{c['reused']} reused")
    if missing:
        why = "see above" if summary["fatal"] or not summary["stop_reason"] else summary["stop_reason"]
        tail.append(f"{missing} without a caption ({why}); rerun to retry")
    if c["audio_skipped"]:
        tail.append(f"{c['audio_skipped']} audio file(s) skipped")
    say(f"{c['captions']} caption(s) -> {args.out}/captions.csv" + (f"; {'; '.join(tail)}" if tail else ""))
    return 1 if missing or c["audio_skipped"] else 0
