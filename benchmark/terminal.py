"""The console that commands print their rich tables to on stdout.

On a terminal rich fits a table to the terminal's width. Anywhere else (``soundaq models | less``,
``> models.txt``, a test capturing stdout) rich falls back to 80 columns and cuts every cell that
does not fit to ``"…"`` or wraps it over several lines, so a piped table loses its content. There,
:func:`stdout_console` makes the console as wide as the table needs (the table keeps its natural
width: it is never stretched to the console's), unless ``COLUMNS`` says otherwise.
"""
from __future__ import annotations

import os

#: Width of a console that is not a terminal: wide enough for any table of soundaq's (rich draws a
#: table at its natural width, so nothing is padded out to this).
PIPE_WIDTH = 1000


def stdout_console(**kwargs):
    """A ``rich.console.Console`` on stdout that never cuts a table's cells when stdout is not a terminal
    and prints text as it is.

    ``kwargs`` go to ``Console``. On a terminal, or when ``COLUMNS`` is set (rich's own setting), the
    width is rich's; otherwise it is :data:`PIPE_WIDTH`. Markup is off unless ``markup=True`` is given:
    rich would read a variant's name (``SoundAQnet[kernels=3+5]``), a file name or any other text with
    ``[...]`` in it as a style tag and drop it from cells, titles and lines.
    """
    from rich.console import Console

    kwargs.setdefault("markup", False)
    console = Console(**kwargs)
    if "width" not in kwargs and not console.is_terminal and not os.environ.get("COLUMNS"):
        console.width = PIPE_WIDTH
    return console


#: Lightning's loggers of start-up notes and tips ("GPU available: False, used: False", "💡 Tip: For
#: seamless cloud uploads ... litmodels", "💡 Tip: ... litlogger", "LOCAL_RANK: 0 - CUDA_VISIBLE_DEVICES").
LIGHTNING_NOTE_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda",
                          "lightning.fabric.utilities.rank_zero")
#: Lightning's warnings that only advise (our loaders, logging interval and resumed folders are chosen).
LIGHTNING_ADVICE = (".*LeafSpec.*", ".*log_every_n_steps.*", ".*does not have many workers.*", ".*litlogger.*",
                    ".*litmodels.*", ".*is smaller than the logging interval.*",
                    r".*Checkpoint directory .* exists and is not empty.*")


#: What marks one of Lightning's tips among its notes (advertising litlogger/litmodels, not about this run).
LIGHTNING_TIP_MARKS = ("Tip:", "litlogger", "litmodels")


class _NoTips:
    """A ``logging`` filter that drops Lightning's tips (:data:`LIGHTNING_TIP_MARKS`) and lets its notes pass."""

    def filter(self, record) -> bool:
        message = record.getMessage()
        return not any(mark in message for mark in LIGHTNING_TIP_MARKS)


def quiet_lightning(notes: bool = True) -> None:
    """Keep Lightning's tips and advice off the terminal, and its start-up notes too unless ``notes`` is
    False; our own lines and real warnings stay.

    Tips (``💡 Tip: ... litlogger``) and the warnings matching :data:`LIGHTNING_ADVICE` (Lightning's own
    ``LeafSpec`` deprecation, advice on loaders and logging intervals we chose) are never shown: every
    ``train`` printed them (new-user trial). ``notes=True`` also sets :data:`LIGHTNING_NOTE_LOGGERS` to
    WARNING ("GPU available: False, used: False", "Using bfloat16 Automatic Mixed Precision"):
    ``soundaq leaderboard`` does so always (eight trainings would repeat them eight times), ``soundaq
    train`` under ``--no-progress``; with its progress bar ``train`` keeps the notes. For the rest of
    the process.
    """
    import logging
    import warnings

    for name in LIGHTNING_NOTE_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _NoTips) for f in logger.filters):
            logger.addFilter(_NoTips())
        if notes:
            logger.setLevel(logging.WARNING)
    for pattern in LIGHTNING_ADVICE:
        warnings.filterwarnings("ignore", message=pattern)
