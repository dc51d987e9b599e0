"""What lets a killed training run continue: atomic checkpoints, the checkpoint to resume from, the logs kept.

Checkpoints are written atomically (:class:`AtomicCheckpointIO`) and checked when a run resumes
(:func:`checkpoint_to_resume`): a damaged one is set aside with one line and the run continues from
the newest whole checkpoint, or starts over when the best one is lost. A resumed run gets the
earlier sessions' rows of ``logs/metrics.csv`` back (:func:`keep_earlier_metrics`); a run whose
``train.json`` says it is done is not trained again (:func:`run_finished`).
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from soundaq.base.artifacts import damaged, set_aside, zip_problem
from soundaq.base.fileio import atomic_path
from soundaq.models_zoo.schedules import Schedule


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint io with soundaq's guarantees.

    A checkpoint is written to a temporary file, flushed to disk and renamed over the old one
    (:func:`soundaq.base.fileio.atomic_path`), so a kill leaves the previous checkpoint whole; one that
    is damaged anyway (full disk, power cut, a cut-short copy) is refused on loading with one line
    naming it, never torch's zip-reader traceback.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        """Write ``checkpoint`` to ``path`` atomically with ``torch.save``.

        Raises:
            TypeError: ``storage_options`` were given (there are none).
        """
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO takes no storage_options")
        with atomic_path(path) as tmp:
            torch.save(checkpoint, tmp)

    def load_checkpoint(self, path: Any, map_location: Any = lambda storage, loc: storage,
                        weights_only: bool | None = None) -> dict[str, Any]:
        """Read the checkpoint at ``path`` after checking its zip container.

        Raises:
            soundaq.base.errors.UserError: the file is damaged (one line naming it and the fix).
        """
        problem = zip_problem(path)
        if problem is not None:
            raise damaged(path, problem, "delete it and run the same command again (training resumes from "
                                         "the newest whole checkpoint, or starts over)")
        return super().load_checkpoint(path, map_location=map_location, weights_only=weights_only)


def checkpoint_to_resume(ckpt_dir: Path | str, act: bool = True) -> Path | None:
    """The checkpoint an interrupted run continues from: the newest whole one of ``ckpt_dir``.

    Damaged files are set aside as ``<name>.damaged`` with one line each (:class:`~soundaq.base.artifacts.RebuiltWarning`).
    A damaged ``best-*.ckpt`` cannot be rebuilt from a later checkpoint (the weights of its epoch are
    gone), so then every checkpoint is set aside and training starts over; with the same seed it
    reproduces the same epochs (see :class:`soundaq.models_zoo.callbacks.EpochSeed`).

    Args:
        ckpt_dir: the run folder's ``checkpoints`` folder (may be missing).
        act: set damaged files aside; False (the other processes of a DDP run) makes the same choice
            without touching files.

    Returns:
        The checkpoint to resume from, or None when training starts from scratch.
    """
    ckpt_dir = Path(ckpt_dir)
    files = sorted(p for p in ckpt_dir.glob("*.ckpt") if p.is_file()) if ckpt_dir.is_dir() else []
    problems = {p: zip_problem(p) for p in files}
    whole = sorted((p for p in files if problems[p] is None),
                   key=lambda p: (p.stat().st_mtime_ns, p.name == "last.ckpt"), reverse=True)
    bad_best = [p for p in files if problems[p] is not None and p.name.startswith("best-")]
    over = "training starts over (same seed: same result)"
    if bad_best:
        for p in files if act else []:
            set_aside(p, problems[p] or f"refers to the damaged {bad_best[0].name}", over)
        return None
    chosen = whole[0] if whole else None
    for p in files if act else []:
        problem = problems[p]
        if problem is not None:
            set_aside(p, problem, f"resuming from {chosen.name}" if chosen else f"no whole checkpoint is left: {over}")
    return chosen


def progress_from_checkpoint(path: Path) -> tuple[int, int, dict[str, Any] | None]:
    """What a Lightning checkpoint records of a fit's progress.

    Args:
        path: a checkpoint this run just wrote (our own file: loaded with full unpickling).

    Returns:
        ``(epochs trained, optimisation steps, the TrainClock callback's state or None)``.
    """
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)   # our own file, just written
    clock_state = (checkpoint.get("callbacks") or {}).get("TrainClock")
    progress = checkpoint.get("loops", {}).get("fit_loop", {}).get("epoch_progress", {}).get("current", {})
    return (int(progress.get("processed", checkpoint.get("epoch", 0))), int(checkpoint.get("global_step", 0)),
            clock_state or None)


def run_finished(record: dict | None, schedule: Schedule) -> bool:
    """True when a run's ``train.json`` record says the run under ``schedule`` needs no more training.

    Args:
        record: the content of ``train.json`` (None: none or unreadable).
        schedule: the schedule of the run asked for (a raised ``--max-epochs`` continues a paper run).
    """
    if not record:
        return False
    if record.get("diverged"):
        return True
    if schedule.steps is not None:
        return int(record.get("steps", 0)) >= schedule.steps
    return bool(record.get("stopped_early")) or int(record.get("epochs", 0)) >= int(schedule.max_epochs or 1)


def read_text_or_none(path: Path) -> str | None:
    """The text of ``path`` (UTF-8), or None when it is missing or unreadable."""
    try:
        return path.read_text(encoding="utf-8") if path.is_file() else None
    except (OSError, UnicodeDecodeError):
        return None


def keep_earlier_metrics(path: Path, earlier: str) -> None:
    """Put the rows of earlier sessions back into a resumed run's ``logs/metrics.csv``.

    Lightning's CSV logger rewrites the file with the rows of the current session only, so a run resumed
    after a kill lost its first epochs' metrics. The earlier rows logged before the first step of this
    session are kept (later ones were logged after the checkpoint this session resumed from, and this
    session logs those steps again), then this session's rows; columns are the union. A file that
    cannot be read as a table is left as Lightning wrote it.

    Args:
        path: the run's ``logs/metrics.csv`` as this session left it; rewritten atomically.
        earlier: the file's text before this session started.
    """
    import pandas as pd

    try:
        old = pd.read_csv(io.StringIO(earlier))
        new = pd.read_csv(path) if path.is_file() and path.stat().st_size else old.iloc[:0]
    except (OSError, ValueError, pd.errors.ParserError):
        return
    if len(new) and "step" in new.columns and "step" in old.columns:
        old = old[old["step"] < new["step"].min()]
    if old.empty:
        return
    merged = pd.concat([old, new], ignore_index=True, sort=False)
    with atomic_path(path) as tmp:
        merged.to_csv(tmp, index=False)
