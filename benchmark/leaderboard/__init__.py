"""The leaderboard: train (or load) every chosen model, score it on the test split, rank, report.

Modules: ``settings`` (what defines a run, the schedule, the data module), ``model_run`` (one model:
train or load, predict, score), ``reference`` (the training-mean predictor), ``table`` (rows, ranking,
columns), ``report`` (Markdown, figures, terminal table), ``run`` (the whole run, resume, workers),
``seeds``/``seeds_report`` (``--seeds``: one run folder per training seed, summaries over seeds),
``folds`` (test scores of clips from folds that feed training against unseen folds) and ``protocol``
(``--protocol araus``: ARAUS's five fold rotations, each tested on fold 0).

One run folder (``--out results/RUN``) holds everything a run writes::

    run.json                     the arguments that define the run (soundaq.base.runs.RunFolder)
    models/<model>/train/        soundaq train's run folder (checkpoints, logs, train.json)
    models/<model>/done.json     written last for a finished model: its scores, CIs, timings, hashes
    models/<model>/failed.json   why a model failed (it is tried again on the next run)
    predictions/<model>.csv      per test clip: the predictions table, the labels and the data label
    leaderboard.csv|.md|.json    one row per model, ranked (see RANKING)
    leaderboard.png|.pdf         the summary metrics with their bootstrap 95% CIs
    learning_curves.png|.pdf     each model's validation metrics against training seconds
    comparisons.csv              paired bootstrap of the leader against every other model
    provenance.json              data source (synthetic or not), split sizes, seed, versions, hashes

Resuming: a model counts as finished only when its ``done.json`` exists (written atomically, after its
predictions), so a run that is interrupted (Ctrl-C, kill -9, power cut) and started again with the
same arguments skips the finished models; an unfinished model continues from its last checkpoint
(``soundaq train`` reseeds every epoch from (seed, epoch), so the result equals an uninterrupted run).
The tables are rebuilt from the ``done.json`` records and the predictions files every time, so the
final table does not depend on how often the run was interrupted.

A model that fails (out of memory, a bad checkpoint, a crash inside the net) gets a row with
``status = failed`` and the one-line reason; the others still run.
"""
from __future__ import annotations

from soundaq.benchmark.leaderboard.grid import run_leaderboard
from soundaq.benchmark.leaderboard.model_run import checkpoint_for, find_checkpoint, run_model
from soundaq.benchmark.leaderboard.report import print_table
from soundaq.benchmark.leaderboard.run import Outcome, correlate_leader, quiet_lightning
from soundaq.benchmark.leaderboard.settings import PRETRAINED, LeaderboardError, Settings, is_pretrained, make_datamodule
from soundaq.benchmark.leaderboard.table import REFERENCE, mark_beats_reference, rank_rows, table_row

__all__ = [
           "PRETRAINED",
           "REFERENCE",
           "LeaderboardError",
           "Outcome",
           "Settings",
           "checkpoint_for",
           "correlate_leader",
           "find_checkpoint",
           "is_pretrained",
           "make_datamodule",
           "mark_beats_reference",
           "print_table",
           "quiet_lightning",
           "rank_rows",
           "run_leaderboard",
           "run_model",
           "table_row",
]
