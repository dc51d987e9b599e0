"""A leaderboard is a grid of units, (model, training seed, fold rotation) on one dataset:
:func:`run_leaderboard` sends a run to the part that does its shape, one seed on one split
(soundaq.benchmark.leaderboard.run), several seeds (.seeds) or ARAUS's five rotations (.protocol).
"""
from __future__ import annotations

from typing import Callable

from soundaq.benchmark.leaderboard.model_run import run_model
from soundaq.benchmark.leaderboard.protocol import run_araus
from soundaq.benchmark.leaderboard.run import Outcome, run_single
from soundaq.benchmark.leaderboard.seeds import run_seeds
from soundaq.benchmark.leaderboard.settings import LeaderboardError, Settings


def run_leaderboard(s: Settings, *, model_runner: Callable = run_model) -> Outcome:
    """Run (or resume) the leaderboard of ``s``; writes everything into ``s.out`` and returns the rows.
    With several training seeds (``s.seeds``) the grid of soundaq.benchmark.leaderboard.seeds runs, with
    ``s.protocol == "araus"`` the five rotations of soundaq.benchmark.leaderboard.protocol (each of them
    one seed or a grid of seeds), else one run (soundaq.benchmark.leaderboard.run.run_single).

    Raises:
        LeaderboardError: bad settings, or a run folder made with other settings (one line).
    """
    if s.protocol not in ("published", "araus"):
        raise LeaderboardError(f"--protocol {s.protocol!r}; fix: use published or araus")
    if s.protocol == "araus" and s.rotation is None:
        return run_araus(s, model_runner=model_runner)
    if s.seeds and len(s.seeds) > 1:
        return run_seeds(s, model_runner=model_runner)
    return run_single(s, model_runner=model_runner)
