"""``soundaq compare A B``: how soundscape B differs from A, in ADIFF's three tiers.

A and B are each an audio file (with --checkpoint), a window of one (FILE@START-END, seconds), a row
of a predictions table (TABLE.csv#CLIP, or TABLE.csv#CLIP@START-END for a window row), or a whole
predictions table (a site: the mean of its clips). Tier 1 names the events that differ, tier 2 adds
the scenes and the signal (level in dB SPL, N5 loudness from ISO 532-1, spectral balance from the
log-mel; needs the audio: --audio DIR for table rows), tier 3 adds the qualities that rise or fall
and the move on the ISOPleasant/ISOEventful circumplex. A window reads only its part of the file;
--channels chooses how a recording's channels become mono (default auto: digitally silent tracks left
out, so a 6-track file with 4 unused tracks compares equal to its mono mix). Writes OUT/compare.json, compare.md and
circumplex_move.png/.pdf.
"""
from __future__ import annotations

import sys
from pathlib import Path


def register(sub) -> None:
    """Add the ``compare`` subcommand, its options and its handler to the CLI's subparsers ``sub``."""
    from soundaq.benchmark import options as o

    p = sub.add_parser("compare", help="explain how two clips, windows or sites differ (ADIFF's three tiers)",
                       allow_abbrev=False,
                       description=o.help_text(__doc__),
                       parents=[o.output_options(), o.llm_options(), o.seed_options("the LLM request"),
                                o.checkpoint_options(required=False), o.inference_options(),
                                o.cache_options(), o.progress_options(), o.calibration_options(),
                                o.channels_options()])
    p.add_argument("a", metavar="A", help="FILE, FILE@START-END, TABLE.csv, TABLE.csv#CLIP[@START-END]")
    p.add_argument("b", metavar="B", help="the same kinds as A")
    p.add_argument("--audio", type=Path, default=None, metavar="DIR",
                   help="folder with the audio of table rows (<clip>.wav/.flac/...), for their signal facts")
    p.add_argument("--no-signal", action="store_true",
                   help="skip level, N5 and spectral balance (the ISO 532-1 loudness takes seconds per clip)")
    p.set_defaults(handler=_compare)


def _compare(args) -> int:
    from soundaq.base.fileio import check_output_folder
    from soundaq.benchmark.options import (
        calibration_from_args,
        channels_from_args,
        checkpoint_from_args,
        llm_settings_from_args,
    )
    from soundaq.captions.compare import compare_run

    def say(msg: str) -> None:
        print(f"soundaq compare: {msg}", file=sys.stderr)

    channels = channels_from_args(args)
    check_output_folder(args.out)     # before the predictions and captions
    checkpoint = None
    if args.checkpoint is not None or args.model is not None:
        checkpoint = checkpoint_from_args(args, progress=not args.no_progress)   # a download's bar
    result = compare_run(args.a, args.b, args.out, checkpoint=checkpoint,
                         calibration=calibration_from_args(args), audio_dir=args.audio, captioner=args.captioner,
                         llm=llm_settings_from_args(args), cache_dir=args.cache_dir, signal=not args.no_signal,
                         device=args.device, report=say, channels=channels)
    for line in result["failures"]:
        say(line)
    for k in (1, 2, 3):
        if "truncated" in result[f"tier{k}"].get("flags", []):
            say(f"tier {k}: the answer was cut at --max-tokens (finish_reason length); kept, and marked so in "
                "compare.md; fix: raise --max-tokens")
    # stdout holds the tier-3 text of the captioner asked for, or nothing: never the template's in the
    # LLM's place (compare.md says the same: no text, the template for reference)
    if result["tier3"]["text"]:
        print(result["tier3"]["text"])
    else:
        say("no tier-3 text: the LLM gave none (see above); compare.md holds the template's text for reference")
    say(f"-> {args.out}/compare.md, compare.json, circumplex_move.png/.pdf")
    return 1 if result["failures"] else 0
