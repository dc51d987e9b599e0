"""The ``soundaq`` command. Each subcommand lives in its own module under ``benchmark/commands``
and exposes ``register(subparsers)``; heavy imports (torch, lightning) happen inside the handlers
so that ``soundaq --help`` stays instant.
"""
from __future__ import annotations

import argparse
import importlib
import sys

#: Subcommand modules, in the order ``--help`` lists them (audio -> features -> ... -> reports).
COMMAND_MODULES = [
    "soundaq.benchmark.commands.data",
    "soundaq.benchmark.commands.features",
    "soundaq.benchmark.commands.models",
    "soundaq.benchmark.commands.train", "soundaq.benchmark.commands.predict",
    "soundaq.benchmark.commands.leaderboard", "soundaq.benchmark.commands.ablation",
    "soundaq.benchmark.commands.correlate",
    "soundaq.benchmark.commands.caption", "soundaq.benchmark.commands.compare",
    "soundaq.benchmark.commands.jury", "soundaq.benchmark.commands.caption_metrics",
]


class SoundaqParser(argparse.ArgumentParser):
    """argparse with one-line usage errors, like every other soundaq error:
    ``soundaq train: error: argument --batch-size: 0: must be at least 1; see `soundaq train --help```.
    """

    def error(self, message: str):
        """Print a usage error as one line naming ``--help`` and exit with code 2 (argparse's hook)."""
        self.exit(2, f"{self.prog}: error: {message}; see `{self.prog} --help`\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``soundaq`` parser with every command module's subcommand registered (``COMMAND_MODULES``)."""
    parser = SoundaqParser(
        prog="soundaq",
        description="Benchmark and evaluate soundscape affective-quality models.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


#: Commands whose rerun continues where an interrupted run stopped (run folders, caches, partial downloads).
RESUMES = frozenset({"ablation", "caption", "data", "features", "leaderboard", "models", "train"})


def main(argv: list[str] | None = None) -> int:
    """Run one ``soundaq`` command; the console script's entry point.

    Args:
        argv: the arguments after ``soundaq`` (default: ``sys.argv[1:]``).

    Returns:
        The exit code: the handler's (0 done, 1 done with problems reported), a UserError's
        ``exit_code`` (2 by default) after its one-line message, 130 on Ctrl-C, 2 for usage errors.
    """
    from soundaq.base.errors import UserError

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help, --version or a usage error (already printed in one line)
        return done.code if isinstance(done.code, int) else 2
    if not getattr(args, "handler", None):
        parser.print_help()
        return 0
    try:
        return int(args.handler(args) or 0)
    except UserError as err:
        print(f"soundaq {args.command}: error: {err}", file=sys.stderr)
        return getattr(err, "exit_code", 2)
    except KeyboardInterrupt:
        if args.command in RESUMES:
            print(f"soundaq {args.command}: interrupted; run the same command again to resume", file=sys.stderr)
        else:    # its outputs are written whole at the end (atomically): there is nothing to resume
            print(f"soundaq {args.command}: interrupted; nothing half-written is left, run the command again",
                  file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (e.g. `soundaq models --json | head`): not an error of ours
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except OSError as err:
        if err.filename is None:        # not about a path of the user's: a real fault, shown in full
            raise
        from soundaq.base.fileio import os_error_line

        print(f"soundaq {args.command}: error: {os_error_line(err)}", file=sys.stderr)
        return 2
