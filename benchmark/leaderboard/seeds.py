"""Repeated runs: every model trained once per training seed (``soundaq leaderboard --seeds 0-9``).

Each training seed ``k`` is a complete leaderboard run folder of its own, ``<out>/seed_<k>/`` (the
layout of a one-seed run; its ``models/<model>/done.json`` makes the (model, seed) unit finished), so
every unit keeps the one-seed guarantees: kill the grid at any time, run the same command again and
only unfinished units run; all units share one pool of ``--workers`` (slowest model first), and a
unit's result does not depend on which worker ran it. The grid's own outputs are rebuilt from the
finished units every time:

    leaderboard.csv      one row per (model, seed) (``kind = seed``, ``rank`` within that seed) and per
                         model the summary rows ``mean``, ``sd`` (ddof 1), ``ci95_low``/``ci95_high``
                         (Student t interval over seeds, scipy.stats.t); on the mean/sd rows the
                         ``paper_runs_*`` columns hold the paper's mean/sd over its 10 runs
    leaderboard.md|json  the summary table, the ranking's stability over seeds, the leader against each
                         model over seeds and test clips (evaluation.bootstrap.compare_to_leader_over_seeds)
    leaderboard.png|pdf  each seed's point and the mean +- sd per model
    comparisons.csv      the two-level paired bootstrap
    provenance.json      seeds, data, budget, versions; per seed its folder

Models are ranked by the mean rank over the paper's three headline scores of their means over seeds
(soundaq.benchmark.leaderboard.table.RANKING_TEXT applied to the means).
"""
from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

from soundaq.base.engine import Engine
from soundaq.base.fileio import atomic_write_json, atomic_write_text, write_csv
from soundaq.base.runs import RunFolder, package_versions
from soundaq.benchmark.leaderboard.model_run import run_model
from soundaq.benchmark.leaderboard.run import (
    Outcome,
    _device_text,
    _run_units,
    _write_outputs,
    budget_text,
    check_settings,
    engine_record,
    pending_models,
    prepare,
    ranked_rows,
)
from soundaq.benchmark.leaderboard.settings import Settings, seeds_text
from soundaq.benchmark.leaderboard.table import RANKED, RANKING_TEXT, json_value, leaderboard_columns, number, rank_rows
from soundaq.models_zoo.metrics import METRICS, PAPER_HEADLINE

#: Statistics of the summary rows (the ``kind`` column), after the per-seed rows (``kind = seed``).
SUMMARY_KINDS = ("mean", "sd", "ci95_low", "ci95_high")
#: Row columns summarised over seeds: every metric and the training cost.
SUMMARISED = (*METRICS, "train_seconds", "clips_seen", "clips_per_second")
#: The paper's mean/sd over its runs, per headline metric (registry.PAPER_OVER_RUNS), in the CSV.
PAPER_RUNS = tuple(f"paper_runs_{m}" for m in PAPER_HEADLINE)


def seed_settings(s: Settings, seed: int) -> Settings:
    """The one-seed run of training seed ``seed``: its own folder ``<out>/seed_<seed>``, no correlation
    analysis (the grid's report is about the spread over seeds).
    """
    return replace(s, seed=seed, seeds=None, out=Path(s.out) / f"seed_{seed}", correlate=False,
                   in_grid=len(s.seeds or []) > 1)


def grid_identity(s: Settings) -> dict:
    """What the grid folder must match to resume: a one-seed identity without its seed (each seed's folder
    checks its own), so a grid can be extended with more seeds.
    """
    identity = dict(s.identity())
    identity["seed"] = "per seed_<k> folder"
    return identity


def run_seeds(s: Settings, *, model_runner: Callable = run_model, engine: Engine | None = None) -> Outcome:
    """Run (or resume) every (model, training seed) of ``s.seeds`` and write the grid's outputs; with a
    Ray ``engine`` (soundaq.base.engine) every (model, seed) unit is one Ray task.

    Raises:
        LeaderboardError: bad settings, or a folder made with other settings (one line).
    """
    seeds = list(s.seeds or [s.seed])
    check_settings(s)
    started = time.perf_counter()
    out = Path(s.out)
    datamodule, data_label, synthetic = prepare(replace(s, seed=seeds[0]))
    RunFolder(out, grid_identity(s)).open()
    plans = {k: seed_settings(s, k) for k in seeds}
    runs = {k: RunFolder(plans[k].out, plans[k].identity()).open() for k in seeds}
    units = [(plans[k], runs[k], m) for k in seeds for m in pending_models(plans[k], runs[k])]
    results = _run_units(units, s.workers, datamodule, data_label, model_runner, engine)
    per_seed: dict[int, list[dict]] = {}
    failed: list[str] = []
    for k in seeds:
        failures = {m: r[1] for (seed, m), r in results.items() if seed == k and r[1] is not None}
        failed += [f"{m} (seed {k})" for m in failures]
        rows, records = ranked_rows(plans[k], runs[k], failures, datamodule, data_label, synthetic)
        _write_outputs(plans[k], plans[k].out, runs[k], rows, records, failures, datamodule, data_label, synthetic,
                       budget_text(s), time.perf_counter(), figures_too=False, engine=engine_record(s, engine))
        per_seed[k] = rows
    summary = summarise(per_seed)
    return _write_grid(s, seeds, per_seed, summary, datamodule, data_label, synthetic, failed, started,
                       engine_record(s, engine))


def t_interval(values: list[float], confidence: float = 0.95) -> tuple[float, float, float, float]:
    """``(mean, sd, ci_low, ci_high)`` of ``values`` over seeds: sd with ddof 1 and the Student t interval
    ``mean +- t_{n-1} sd / sqrt(n)`` (scipy.stats.t.interval); NaN where undefined (sd and CI need 2 values).
    """
    import numpy as np
    from scipy import stats

    x = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    if x.size == 0:
        return (math.nan,) * 4
    mean = float(x.mean())
    if x.size < 2:
        return mean, math.nan, math.nan, math.nan
    sd = float(x.std(ddof=1))
    if sd == 0.0:
        return mean, 0.0, mean, mean
    lo, hi = stats.t.interval(confidence, x.size - 1, loc=mean, scale=sd / math.sqrt(x.size))
    return mean, sd, float(lo), float(hi)


def value_bounds(column: str) -> tuple[float, float]:
    """The values a summarised column can take: its metric's ``bounds`` (also for the breakdown's
    ``<metric>_seen_folds`` ...), else ``[0, inf)`` (times, counts, clips per second).
    """
    matches = [name for name in METRICS if column == name or column.startswith(name + "_")]
    if not matches:
        return 0.0, math.inf
    return METRICS[max(matches, key=len)].bounds


def summarise(per_seed: dict[int, list[dict]]) -> list[dict]:
    """Per model its summary: ``{"model", "status", "n_seeds", "ranks": {seed: rank}, "first": count,
    "values": {column: [per seed]}, "mean"|"sd"|"ci95_low"|"ci95_high": {column: x}, ...}``, ranked by
    the mean rank of the means over PAPER_HEADLINE (the reference and models finished in no seed last).
    """
    from soundaq.benchmark.leaderboard.folds import FOLD_COLUMNS

    models = list(dict.fromkeys(r["model"] for rows in per_seed.values() for r in rows))
    present = [c for c in FOLD_COLUMNS if any(c in r for rows in per_seed.values() for r in rows)]
    summarised = (*SUMMARISED, *present)
    out = []
    for model in models:
        rows = {k: next(r for r in rs if r["model"] == model) for k, rs in per_seed.items()}
        done = {k: r for k, r in rows.items() if r["status"] in (*RANKED, "reference")}
        template = dict(next(iter(done.values()), next(iter(rows.values()))))
        entry = {"model": model, "status": template["status"] if done else "failed", "n_seeds": len(done),
                 "ranks": {k: r.get("rank") for k, r in rows.items()},
                 "first": sum(1 for r in rows.values() if r.get("rank") == 1),
                 "values": {c: [number(r.get(c)) for r in done.values()] for c in summarised},
                 "template": template, "seeds": list(done)}
        for c in summarised:
            mean, sd, low, high = t_interval(entry["values"][c])
            floor, ceiling = value_bounds(c)           # no accuracy above 1, no negative MSE
            low, high = max(low, floor), min(high, ceiling)   # (NaN stays NaN)
            for kind, value in zip(SUMMARY_KINDS, (mean, sd, low, high)):
                entry.setdefault(kind, {})[c] = None if math.isnan(value) else value
        out.append(entry)
    flat = [{"model": e["model"], "status": "ok" if e["status"] in RANKED else e["status"],
             **{m: e["mean"][m] for m in PAPER_HEADLINE}, "aq_mse_mean": e["mean"]["aq_mse_mean"]} for e in out]
    order = {r["model"]: r for r in rank_rows(flat)}
    for e in out:
        e["rank"], e["mean_rank"] = order[e["model"]]["rank"], order[e["model"]]["mean_rank"]
    return sorted(out, key=lambda e: list(order).index(e["model"]))


def kendall_taus(summary: list[dict], seeds: list[int]) -> list[float]:
    """Kendall's tau (scipy.stats.kendalltau, tau-b) between the model ranks of every pair of seeds."""
    from itertools import combinations

    from scipy import stats

    ranked = [e for e in summary if e["status"] in RANKED and all(e["ranks"].get(k) for k in seeds)]
    if len(ranked) < 2:
        return []
    taus = []
    for a, b in combinations(seeds, 2):
        tau = stats.kendalltau([e["ranks"][a] for e in ranked], [e["ranks"][b] for e in ranked]).statistic
        taus.append(float(tau))
    return taus


def csv_rows(per_seed: dict[int, list[dict]], summary: list[dict]) -> list[dict]:
    """leaderboard.csv of a grid: the (model, seed) rows, then per model its summary rows."""
    from soundaq.models_zoo.registry import PAPER_OVER_RUNS

    rows = [{"kind": "seed", "seed": k, **r} for k, rs in per_seed.items() for r in rs]
    for e in summary:
        paper = PAPER_OVER_RUNS.get(e["model"], {})
        for kind in SUMMARY_KINDS:
            row = {"kind": kind, "seed": None, **e["template"], **e[kind], "rank": e["rank"],
                   "mean_rank": e["mean_rank"], "n_seeds": e["n_seeds"], "status": e["status"]}
            for name in METRICS:       # the per-seed bootstrap CIs over clips do not summarise
                row.pop(f"{name}_ci_low", None), row.pop(f"{name}_ci_high", None)
            for metric, column in zip(PAPER_HEADLINE, PAPER_RUNS):
                pair = paper.get(metric)
                row[column] = pair[("mean", "sd").index(kind)] if pair and kind in ("mean", "sd") else None
            rows.append(row)
    return rows


def _write_grid(s: Settings, seeds: list[int], per_seed: dict[int, list[dict]], summary: list[dict], datamodule,
                data_label: str, synthetic: bool, failed: list[str], started: float, engine: dict) -> Outcome:
    import pandas as pd

    from soundaq.base import predictions_table
    from soundaq.benchmark.leaderboard import seeds_report
    from soundaq.evaluation.bootstrap import SEEDS_AND_CLIPS, compare_to_leader_over_seeds
    from soundaq.models_zoo.metrics import metrics_for

    out = Path(s.out)
    complete = [e["model"] for e in summary if e["status"] in RANKED and e["n_seeds"] == len(seeds)]
    comparisons = None
    if len(complete) >= 2:
        tables = {m: [predictions_table.read(out / f"seed_{k}" / "predictions" / f"{m}.csv") for k in seeds]
                  for m in complete}
        comparisons = compare_to_leader_over_seeds(tables, complete[0], metrics=metrics_for(datamodule.tasks),
                                                   n_resamples=s.n_resamples, seed=s.seed)
        write_csv(comparisons, out / "comparisons.csv", float_format="%.6g")
    budget = budget_text(s)
    title = seeds_report.title(data_label, seeds, synthetic)
    fig_path = out / "leaderboard.png"
    drawn = seeds_report.figure(summary, seeds, fig_path, title, budget)
    from soundaq.benchmark.leaderboard.folds import FOLD_COLUMNS

    folds = [c for c in FOLD_COLUMNS if summary and c in summary[0]["mean"]]
    columns = ["kind", "seed", *leaderboard_columns(), *folds, "n_seeds", *PAPER_RUNS]
    rows = csv_rows(per_seed, summary)
    write_csv(pd.DataFrame(rows, columns=columns), out / "leaderboard.csv", float_format="%.6g")
    taus = kendall_taus(summary, seeds)
    prov = {"created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": " ".join(sys.argv),
            "data": datamodule.describe(), "synthetic": synthetic, "seeds": seeds, "seed": s.seed,
            "n_resamples": s.n_resamples, "budget": budget,
            "schedule": s.training_schedule().as_dict() if s.checkpoints is None else None,
            "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(s).items()},
            "ranking": "the means over seeds are ranked; " + RANKING_TEXT, "comparison_method": SEEDS_AND_CLIPS,
            "device": _device_text(s), "engine": engine, "versions": package_versions(),
            "seed_folders": {str(k): f"seed_{k}" for k in seeds}, "failed": failed,
            "session_seconds": round(time.perf_counter() - started, 1)}
    atomic_write_json(out / "leaderboard.json", {
        "data": data_label, "synthetic": synthetic, "budget": budget, "seeds": seeds, "ranking": prov["ranking"],
        "columns": columns, "rows": [{c: json_value(r.get(c)) for c in columns} for r in rows],
        "kendall_tau_between_seeds": taus, "comparison_method": SEEDS_AND_CLIPS,
        "comparisons": [] if comparisons is None else
        [{k: json_value(v) for k, v in c.items()} for c in comparisons.to_dict(orient="records")]})
    atomic_write_text(out / "leaderboard.md", seeds_report.markdown(summary, seeds, comparisons, taus, prov, title,
                                                                    fig_path.name if drawn else None))
    atomic_write_json(out / "provenance.json", prov)
    flat = [{**e["template"], **e["mean"], "rank": e["rank"], "status": e["status"], "n_seeds": e["n_seeds"],
             "summary": e} for e in summary]
    return Outcome(flat, out, fig_path if drawn else None, failed, None, None, budget, None,
                   seeds=seeds_text(seeds), title=title)
