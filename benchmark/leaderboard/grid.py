"""A leaderboard is a grid of units, (model, training seed, fold rotation) on one dataset:
:func:`run_leaderboard` sends a run to the part that does its shape, one seed on one split
(soundaq.benchmark.leaderboard.run), several seeds (.seeds) or ARAUS's five rotations (.protocol).
"""
from __future__ import annotations

from collections.abc import Callable

from soundaq.base.engine import Engine
from soundaq.benchmark.leaderboard.model_run import run_model
from soundaq.benchmark.leaderboard.protocol import run_araus
from soundaq.benchmark.leaderboard.run import Outcome, run_single
from soundaq.benchmark.leaderboard.seeds import run_seeds
from soundaq.benchmark.leaderboard.settings import LeaderboardError, Settings


def run_leaderboard(s: Settings, *, model_runner: Callable = run_model, engine: Engine | None = None) -> Outcome:
    """Run (or resume) the leaderboard of ``s``; writes everything into ``s.out`` and returns the rows.
    With several training seeds (``s.seeds``) the grid of soundaq.benchmark.leaderboard.seeds runs, with
    ``s.protocol == "araus"`` the five rotations of soundaq.benchmark.leaderboard.protocol (each of them
    one seed or a grid of seeds), else one run (soundaq.benchmark.leaderboard.run.run_single).

    ``engine``: None runs the units (model, seed, rotation) on the local pool of ``s.workers``; an engine
    opened with :func:`soundaq.base.engine.open_engine` ``("ray", ...)`` runs each as one Ray task (one
    GPU each when it was opened with ``gpus=1``, see :func:`unit_gpus`), with the same run folders and
    tables. Open it before calling: connecting is what fails on a bad ``--address``, before anything is
    written.

    Raises:
        LeaderboardError: bad settings, or a run folder made with other settings (one line).
    """
    if s.protocol not in ("published", "araus"):
        raise LeaderboardError(f"--protocol {s.protocol!r}; fix: use published or araus")
    if s.protocol == "araus" and s.rotation is None:
        return run_araus(s, model_runner=model_runner, engine=engine)
    if s.seeds and len(s.seeds) > 1:
        return run_seeds(s, model_runner=model_runner, engine=engine)
    return run_single(s, model_runner=model_runner, engine=engine)


def unit_gpus(accelerator: str, devices) -> int:
    """GPUs one unit (one training run) asks Ray for: with ``--accelerator gpu`` (or ``cuda``) the devices
    of one run (``--devices N``: N, a list ``0,1``: its length, ``auto``: 1); otherwise none, and the unit
    runs on one CPU. Ray gives each task GPUs of its own (it sets ``CUDA_VISIBLE_DEVICES``), so a list's
    indices count among the GPUs Ray gave the task.
    """
    if str(accelerator).lower() not in ("gpu", "cuda"):
        return 0
    if isinstance(devices, (list, tuple)):
        return max(1, len(devices))
    if isinstance(devices, int):
        return max(1, devices)
    return 1
