"""A whole leaderboard run: prepare the data, run every model (resuming finished ones), write the outputs.

Models run one after another, or ``Settings.workers`` at a time in separate processes with the CPU
threads shared out between them (``soundaq leaderboard --workers``); each model's result does not
depend on which worker ran it or in what order, so the table is the same either way.
"""
from __future__ import annotations

import os
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from soundaq.base.engine import Engine, UnitFailed, open_engine
from soundaq.base.errors import one_line
from soundaq.base.fileio import atomic_write_json, atomic_write_text, write_csv
from soundaq.base.runs import RunFolder, package_versions
from soundaq.benchmark.leaderboard import report
from soundaq.benchmark.leaderboard.model_run import run_model, say
from soundaq.benchmark.leaderboard.reference import reference_scores
from soundaq.benchmark.leaderboard.settings import LeaderboardError, Settings, is_pretrained, make_datamodule
from soundaq.benchmark.leaderboard.table import (
    RANKED,
    RANKING_TEXT,
    REFERENCE,
    definitions,
    json_value,
    leaderboard_columns,
    mark_beats_reference,
    number,
    rank_rows,
    table_row,
)
from soundaq.benchmark.terminal import quiet_lightning
from soundaq.models_zoo.metrics import metrics_for


@dataclass
class Outcome:
    """What :func:`~soundaq.benchmark.leaderboard.grid.run_leaderboard` returns: the ranked rows and where everything went."""

    rows: list[dict]
    out: Path
    figure: Path | None
    failed: list[str]
    correlation: Path | None = None
    curves: Path | None = None
    budget: str = ""
    #: the leader's agreement with the labels (soundaq.evaluation.correlation.agreement), None without labels
    agreement: dict | None = None
    #: the training seeds of a repeated-runs grid (``0-9``; empty for one seed) and the run's title
    seeds: str = ""
    title: str = ""


def _device_text(s: Settings) -> str:
    import platform

    import torch

    if s.accelerator not in ("cpu",) and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return (f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
            f"{max(1, s.workers)} model worker(s) x {_threads(s)} torch thread(s))")


def engine_record(s: Settings, engine: Engine | None) -> dict:
    """Where the units ran, for provenance.json: the Ray engine's description (address, Ray's version,
    the cluster's CPUs), else the local pool's workers.
    """
    return engine.describe() if engine is not None and engine.name == "ray" else {"name": "local", "workers": s.workers}


def _threads(s: Settings) -> int:
    import torch

    if s.workers <= 1:
        return torch.get_num_threads()
    return max(1, (os.cpu_count() or 1) // s.workers)


def _worker(s: Settings, model: str, data_label: str, threads: int, model_runner: Callable = run_model):
    """One model in a worker process: its own data module (the same data, read from the cache)."""
    import torch

    torch.set_num_threads(threads)
    quiet_lightning()
    from soundaq.models_zoo.registry import get_spec

    try:
        for target in s.plugins:              # nets given by import path are known to this process too
            get_spec(target)
        datamodule = make_datamodule(s)
        datamodule.prepare_data()
        datamodule.setup("fit" if s.checkpoints is None else "test")
        run = RunFolder(Path(s.out), s.identity())
        return model_runner(s, run, model, datamodule, data_label), None, None
    except KeyboardInterrupt:
        raise
    except Exception as err:  # noqa: BLE001 - reported as the model's failed row
        return None, one_line(err), traceback.format_exc()


def _ray_worker(context: dict, s: Settings, model: str, data_label: str, model_runner: Callable = run_model):
    """One unit as a Ray task, on whichever node Ray chose: first the driver's working directory and its
    ``SOUNDAQ_*`` variables, so that relative paths and the default cache mean what they mean on the
    driver (a shared filesystem mounted at the same path on every node, docs/scaling.md), then
    :func:`_worker` with one torch thread (the task holds one CPU).
    """
    try:
        os.chdir(context["cwd"])
    except OSError as err:
        return None, (f"{context['cwd']}: the working directory of the soundaq command is not on this Ray node "
                      f"({err.strerror}); fix: run soundaq from a folder of the filesystem every node mounts"), None
    os.environ.update(context["env"])
    return _worker(s, model, data_label, 1, model_runner)


def slowest_first(models: list[str]) -> list[str]:
    """``models`` ordered by their registry cost hint, slowest first (unknown last, original order kept
    among equals): parallel workers that start the longest runs first finish together (LPT scheduling).
    """
    from soundaq.models_zoo.registry import get_spec

    def hint(model: str) -> float:
        try:
            return float(get_spec(model).cost_hint_s or 0.0)
        except Exception:  # noqa: BLE001 - an unknown name fails later, in its own row
            return 0.0

    return sorted(models, key=lambda m: -hint(m))


#: One unit of work: (the settings of its training seed, its run folder, the model).
Unit = tuple[Settings, RunFolder, str]


def _run_units(units: list[Unit], workers: int, datamodule, data_label: str, model_runner: Callable,
               engine: Engine | None = None) -> dict[tuple[int, str], tuple[dict | None, str | None, str | None]]:
    """``{(seed, model): (record, failure reason, traceback)}`` for every unit. Units of several training
    seeds share one pool of workers (slowest first), so a grid costs no more than its runs one by one.

    With a Ray ``engine`` (soundaq.base.engine) every unit is one Ray task, whatever ``workers`` says;
    otherwise ``workers`` processes of a local pool (spawned), or this process when ``workers`` is 1, there
    is one unit, or ``model_runner`` is not :func:`run_model` (a test's runner, which need not pickle).
    Each unit's done.json (or failed.json) is written here, on the driver, as soon as it finishes. The
    terminal counts the units of this call, ``[i/n]`` over every (seed, model) of a grid (a unit started
    here, or finished in a pool), and names each by :meth:`Settings.unit_name` (its seed in a grid).
    """
    results: dict[tuple[int, str], tuple[dict | None, str | None, str | None]] = {}
    on_ray = engine is not None and engine.name == "ray"
    if not on_ray and (workers <= 1 or len(units) <= 1 or model_runner is not run_model):
        for i, (us, run, model) in enumerate(units, 1):
            say(f"soundaq leaderboard: [{i}/{len(units)}] {us.unit_name(model)}")
            datamodule.seed = us.seed     # the training loader's seed (EpochSeed reseeds it every epoch)
            key = (us.seed, model)
            try:
                results[key] = (model_runner(us, run, model, datamodule, data_label), None, None)
            except KeyboardInterrupt:
                raise
            except Exception as err:  # noqa: BLE001 - one model's failure must not stop the others
                results[key] = (None, one_line(err), traceback.format_exc())
            _settle(run, model, *results[key], name=us.unit_name(model))
        return results
    if not units:
        return results
    grid = len({u[0].seed for u in units}) > 1
    order = {m: i for i, m in enumerate(slowest_first(list(dict.fromkeys(u[2] for u in units))))}
    ordered = sorted(units, key=lambda u: (order[u[2]], u[0].seed))
    # (replace, not asdict: asdict would turn a Calibration into a dict)
    fn: Callable[..., Any]
    args: list[tuple]
    if on_ray:
        assert engine is not None
        context = {"cwd": os.getcwd(), "env": {k: v for k, v in os.environ.items() if k.startswith("SOUNDAQ_")}}
        fn, args = _ray_worker, [(context, replace(us, progress=False), model, data_label, model_runner)
                                 for us, _, model in ordered]
        say(f"soundaq leaderboard: {len(units)} {'model run(s)' if grid else 'model(s)'} as Ray tasks on "
            f"{engine.address or 'a private Ray'} (1 CPU{f', {engine.gpus:g} GPU' if engine.gpus else ''} each)")
        fix = "fix: free memory on the Ray nodes (`ray status`), or run the same command again"
        runner = engine
    else:
        threads = _threads(units[0][0])
        fn, args = _worker, [(replace(us, progress=False), model, data_label, threads) for us, _, model in ordered]
        say(f"soundaq leaderboard: {len(units)} model run(s) on {workers} workers x {threads} thread(s)" if grid else
            f"soundaq leaderboard: {len(units)} model(s) on {workers} workers x {threads} thread(s)")
        fix = "fix: rerun with --workers 1"
        runner = open_engine("local", workers=workers)
    # torch in the workers: spawned, not forked; each sets its own torch threads
    for finished, (index, result) in enumerate(runner.run(fn, args, start_method="spawn", initializer=None), 1):
        us, run, model = ordered[index]
        if isinstance(result, UnitFailed):   # the worker died (killed, out of memory; with Ray, more than its retries)
            result = (None, f"{result.why}; {fix}", None)
        results[(us.seed, model)] = result
        record, failure, trace = result
        _settle(run, model, record, failure, trace, name=f"[{finished}/{len(units)}] {us.unit_name(model)}")
    return results


def _settle(run: RunFolder, model: str, record: dict | None, failure: str | None, trace: str | None,
            name: str | None = None) -> None:
    """Write the model's done.json (or failed.json) as soon as it finishes."""
    failed_file = run.model_dir(model) / "failed.json"
    if failure is not None:
        atomic_write_json(failed_file, {"model": model, "reason": failure, "traceback": trace,
                                        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
        say(f"soundaq leaderboard: {name or model}: failed: {failure}")
        return
    if failed_file.exists():
        failed_file.unlink()
    assert record is not None                  # a unit without a failure returns its record
    run.mark_done(model, record)
    scores = {k: number(v) for k, v in record.get("scores", {}).items()}
    shown = ", ".join(f"{k} {scores[k]:.3f}" for k in ("scene_acc", "aq_mse_mean") if scores.get(k) is not None)
    say(f"soundaq leaderboard: {name or model}: done ({shown + ', ' if shown else ''}"
        f"{record.get('train_seconds') or 0:.0f} s training)")


def check_settings(s: Settings) -> None:
    """Check a run's settings before anything is trained or read.

    Raises:
        LeaderboardError: no or unknown models, bad ``--resamples``/``--workers``, a missing checkpoint
            folder; UserError subclasses from a bad loss weighting, plug-in or schedule (one line each).
    """
    from soundaq.models_zoo.registry import get_spec, is_known, list_nets

    if not s.models:
        raise LeaderboardError("no models chosen; fix: pass --models all or a comma-separated list")
    for target in s.plugins:
        get_spec(target)
    unknown = [m for m in s.models if m not in list_nets() and not is_known(m)]
    if unknown:
        raise LeaderboardError(f"unknown model(s) {', '.join(unknown)}; fix: choose from {', '.join(list_nets())} "
                               "or give a plug-in's import path package.module:Class")
    from soundaq.benchmark.leaderboard.settings import loss_setting

    loss_setting(s)                           # a bad --loss-weighting stops the run before any training
    if s.n_resamples < 1:
        raise LeaderboardError("--resamples must be at least 1")
    if s.workers < 1:
        raise LeaderboardError("--workers must be at least 1")
    if s.checkpoints is not None and not is_pretrained(s.checkpoints) and not Path(s.checkpoints).is_dir():
        raise LeaderboardError(f"{s.checkpoints}: checkpoint folder not found; fix: pass the folder holding "
                               "<MODEL>.ckpt files")
    s.training_schedule()   # a bad schedule name or conflicting options fail here, in one line


def prepare(s: Settings):
    """The run's data module, prepared and set up, with its data label and whether it is synthetic."""
    datamodule = make_datamodule(s)
    datamodule.prepare_data()
    datamodule.setup("fit" if s.checkpoints is None else "test")
    return datamodule, datamodule.data_label(), bool(datamodule.synthetic)


def budget_text(s: Settings) -> str:
    """The run's training budget in words: the schedule, or where its checkpoints come from."""
    return (f"released/trained checkpoints from {s.checkpoints}" if s.checkpoints is not None
            else s.training_schedule().describe())


def pending_models(s: Settings, run: RunFolder) -> list[str]:
    """The models of ``s`` without a whole finished record in ``run`` (the others are kept)."""
    todo = []
    for model in s.models:
        if run.finished(model, {f"predictions/{model}.csv": "predictions_sha256"}) is not None:
            say(f"soundaq leaderboard: {s.unit_name(model)}: finished in an earlier session, kept")
        else:
            todo.append(model)
    return todo


def ranked_rows(s: Settings, run: RunFolder, failures: dict, datamodule, data_label: str,
                synthetic: bool) -> tuple[list[dict], dict]:
    """The ranked rows of one training seed (models, the reference, failures) and the done records."""
    records = {m: run.done(m) for m in s.models}
    paper_split = bool(datamodule.data_source.paper_split)
    rows = [table_row(m, records[m] if m not in failures else None, failures.get(m), data_label, synthetic,
                      paper_split) for m in s.models]
    rows.append(table_row(REFERENCE, reference_scores(datamodule, s.n_resamples, s.seed), None, data_label,
                          synthetic, paper_split))
    mark_beats_reference(rows)
    return rank_rows(rows), records


def run_single(s: Settings, *, model_runner: Callable = run_model, engine: Engine | None = None) -> Outcome:
    """Run (or resume) the leaderboard of ``s`` with one training seed (``s.seed``, or ``s.seeds``'s
    only one) on one split; writes everything into ``s.out`` and returns the rows. Grids of seeds and
    rotations go through :func:`soundaq.benchmark.leaderboard.grid.run_leaderboard`. ``engine``: an open
    Ray engine (soundaq.base.engine.open_engine) runs each model as a Ray task; None: the local pool.

    Raises:
        LeaderboardError: bad settings, or a run folder made with other settings (one line).
    """
    if s.seeds:
        s = replace(s, seed=s.seeds[0], seeds=None)
    check_settings(s)
    out = Path(s.out)
    started = time.perf_counter()
    datamodule, data_label, synthetic = prepare(s)
    run = RunFolder(out, s.identity()).open()
    todo = pending_models(s, run)
    results = _run_units([(s, run, m) for m in todo], s.workers, datamodule, data_label, model_runner, engine)
    failures = {m: r[1] for (_, m), r in results.items() if r[1] is not None}
    rows, records = ranked_rows(s, run, failures, datamodule, data_label, synthetic)
    return _write_outputs(s, out, run, rows, records, failures, datamodule, data_label, synthetic, budget_text(s),
                          started, figures_too=s.figures, engine=engine_record(s, engine))


def run_title(data_label: str, synthetic: bool, training_seed: int) -> str:
    """A one-seed run's title: the data (with the embedded set's generation seed) and the training seed."""
    return (f"soundaq leaderboard: {data_label}" + (" (SYNTHETIC data)" if synthetic and "synthetic" not in
                                                    data_label.lower() else "") + f"; training seed {training_seed}")


def _write_outputs(s: Settings, out: Path, run: RunFolder, rows: list[dict], records: dict, failures: dict,
                   datamodule, data_label: str, synthetic: bool, budget: str, started: float,
                   figures_too: bool = True, engine: dict | None = None) -> Outcome:
    import pandas as pd

    from soundaq.benchmark.leaderboard import folds

    columns = leaderboard_columns()
    added = folds.add_fold_scores(rows, datamodule, out / "predictions")   # clips with ARAUS folds or components
    if added:
        for r in rows:
            if r["status"] == "reference":
                folds.reference_fold_scores(r, datamodule)
        columns += added
    ranked = [r["model"] for r in rows if r["status"] in RANKED]
    # the leader's correlation analysis (mostly figures, about 15 s) runs in a process of its own
    # while this one bootstraps the comparisons and draws the leaderboard's figures
    pending = _start_correlation(out, ranked[0], synthetic) if s.correlate and ranked else None
    comparisons = None
    if len(ranked) >= 2:
        from soundaq.base import predictions_table
        from soundaq.evaluation.bootstrap import compare_to_leader

        tables = {m: predictions_table.read(out / "predictions" / f"{m}.csv") for m in ranked}
        comparisons = compare_to_leader(tables, ranked[0], metrics=metrics_for(datamodule.tasks),
                                        n_resamples=s.n_resamples, seed=s.seed)
        write_csv(comparisons, out / "comparisons.csv", float_format="%.6g")

    title = run_title(data_label, synthetic, s.seed)
    figures: dict[str, str] = {}
    fig_path = out / "leaderboard.png"
    if ranked and figures_too:
        report.figure(rows, fig_path, title, budget)
        figures["leaderboard"] = fig_path.name
    curves = {m: (records.get(m) or {}).get("curve") or [] for m in ranked}
    curves_file = out / "learning_curves.png"
    curves_path: Path | None = None           # set when the figure is drawn
    start = None
    if figures_too and any(curves.values()) and s.head_init:   # every net's point at 0 s: it predicts the reference's rates
        limit = s.training_schedule().val_clips if s.checkpoints is None else None
        start = reference_scores(datamodule, 0, s.seed, split="validation", clips=limit)["scores"]
    if figures_too and report.curves_figure(rows, curves, start, curves_file, title, budget):
        figures["curves"] = curves_file.name
        curves_path = curves_file

    correlation, agreed = None, None
    if s.correlate and ranked:
        correlation, agreed = _finish_correlation(pending, out, ranked[0], synthetic)

    desc = datamodule.describe()
    prov = {"created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": " ".join(sys.argv),
            "data": desc, "synthetic": synthetic, "seed": s.seed, "n_resamples": s.n_resamples,
            "budget": budget, "schedule": s.training_schedule().as_dict() if s.checkpoints is None else None,
            "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(s).items()},
            "ranking": RANKING_TEXT, "device": _device_text(s), "engine": engine or engine_record(s, None),
            "versions": package_versions(),
            "models": {m: ({k: records[m].get(k) for k in ("checkpoint", "checkpoint_sha256", "predictions",
                                                            "predictions_sha256", "epochs", "steps", "clips_seen",
                                                            "train_seconds", "crop_frames", "diverged")}
                           if records[m] and m not in failures else {"failed": failures.get(m, "not run")})
                       for m in s.models},
            "correlation": correlation.name if correlation else None, "correlation_agreement": agreed,
            "session_seconds": round(time.perf_counter() - started, 1)}
    frame = pd.DataFrame(rows, columns=columns)
    write_csv(frame, out / "leaderboard.csv", float_format="%.6g")
    atomic_write_json(out / "leaderboard.json", {
        "data": data_label, "synthetic": synthetic, "budget": budget, "ranking": RANKING_TEXT,
        "definitions": definitions(), "columns": columns,
        "rows": [{c: json_value(r.get(c)) for c in columns} for r in rows],
        "curves": curves,
        "comparisons": [] if comparisons is None else
        [{k: json_value(v) for k, v in c.items()} for c in comparisons.to_dict(orient="records")]})
    atomic_write_text(out / "leaderboard.md", report.markdown(rows, comparisons, prov, figures))
    atomic_write_json(out / "provenance.json", prov)
    return Outcome(rows, out, fig_path if ranked and figures_too else None, sorted(failures), correlation, curves_path,
                   budget, agreed, title=title)


def _start_correlation(out: Path, leader: str, synthetic: bool):
    """``(pool, future)`` of :func:`correlate_leader` in a spawned process; None where no process
    can be started (the analysis then runs in this one).
    """
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    try:
        from soundaq.base.parallel import WorkerStart

        pool = ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn"), initializer=WorkerStart())
        return pool, pool.submit(correlate_leader, out, leader, synthetic)
    except (OSError, RuntimeError):
        return None


def _finish_correlation(pending, out: Path, leader: str, synthetic: bool) -> tuple[Path | None, dict | None]:
    if pending is not None:
        pool, future = pending
        try:
            return future.result()
        except Exception:  # noqa: BLE001 - the process died (killed, out of memory): do it here instead
            pass
        finally:
            pool.shutdown()
    return correlate_leader(out, leader, synthetic)


def correlate_leader(out: Path, leader: str, synthetic: bool) -> tuple[Path | None, dict | None]:
    """Spearman event x quality analysis of the leader's test predictions into ``out/correlation``
    (soundaq.evaluation.correlation, the code behind ``soundaq correlate``), with its agreement with the
    labels of the same clips. A problem here is reported, not fatal.
    """
    from soundaq.evaluation.correlation_report import correlate_predictions

    folder = out / "correlation"
    try:
        summary = correlate_predictions(out / "predictions" / f"{leader}.csv", folder, synthetic=synthetic)
    except Exception as err:  # noqa: BLE001 - the leaderboard itself is complete without it
        say(f"soundaq leaderboard: correlation analysis of {leader} skipped: {one_line(err)}")
        return None, None
    return folder, summary.get("agreement_with_labels")
