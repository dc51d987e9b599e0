"""``--protocol araus``: ARAUS's own scheme, five rotations of folds 1-5, every rotation tested on fold 0.

Rotation r (soundaq.models_zoo.data.sources.rotation.FoldRotation) trains on four of folds 1-5,
validates on fold r and tests on fold 0, ARAUS's independent test set of new recordings and maskers.
Each rotation is a whole leaderboard run (one training seed, or a ``--seeds`` grid) in
``<out>/rotation_<r>/``, resumable as any run. The protocol's own outputs, rebuilt every time:

    leaderboard.csv     one row per (model, rotation) (``kind = rotation``; with several seeds the
                        rotation's mean over seeds), then per model ``mean``, ``sd``, ``ci95_low``,
                        ``ci95_high`` over rotations (soundaq.benchmark.leaderboard.seeds.t_interval)
    leaderboard.md|png  per rotation and mean +- sd over rotations; provenance.json
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from soundaq.base.engine import Engine
from soundaq.base.fileio import atomic_write_json, atomic_write_text, write_csv
from soundaq.base.runs import RunFolder
from soundaq.benchmark.leaderboard.model_run import run_model
from soundaq.benchmark.leaderboard.run import Outcome, budget_text, check_settings
from soundaq.benchmark.leaderboard.settings import LeaderboardError, Settings
from soundaq.benchmark.leaderboard.table import RANKED, leaderboard_columns
from soundaq.models_zoo.data.sources.rotation import CV_FOLDS

PROTOCOLS = ("published", "araus")


def check_folds(s: Settings) -> None:
    """Refuse, in one line and before anything is trained, data without the folds ARAUS's protocol needs."""
    from soundaq.models_zoo.data.sources import make_source
    from soundaq.models_zoo.data.sources.rotation import pooled_folds

    inner = make_source(s.data, labels_dir=s.labels, audio_dir=s.audio, features_dir=s.features, araus_dir=s.araus,
                        embedded_clips=s.embedded_clips, cache_dir=s.cache_dir, calibration=s.calibration,
                        progress=s.progress)
    if s.data == "embedded":      # its clips are named <scene>_<n>: no fold, nothing to generate first
        raise LeaderboardError("--protocol araus: the embedded set's clips carry no ARAUS fold (ids without "
                               "fold_<k>_, no fold column); fix: use --protocol published on the embedded set, or "
                               "the embedded set in ARAUS's layout (`soundaq data prepare --embedded --layout araus`, "
                               "then --data araus --araus DIR), ARAUS itself (--data araus) or own data with a fold "
                               "column")
    inner.prepare()
    pooled_folds(inner)


def run_araus(s: Settings, *, model_runner: Callable = run_model, engine: Engine | None = None) -> Outcome:
    """Every rotation of ARAUS's protocol, then the summary over rotations (``engine``: as
    :func:`~soundaq.benchmark.leaderboard.run.run_single`'s, for every rotation).

    Raises:
        LeaderboardError / DataError: no folds, a missing fold, bad settings (one line, nothing trained).
    """
    from soundaq.benchmark.leaderboard.run import run_single
    from soundaq.benchmark.leaderboard.seeds import PAPER_RUNS, csv_rows, run_seeds, summarise

    check_settings(s)
    check_folds(s)
    started = time.perf_counter()
    out = Path(s.out)
    RunFolder(out, {**s.identity(), "rotation": "per rotation_<r> folder"}).open()
    outcomes: dict[int, Outcome] = {}
    failed: list[str] = []
    for r in CV_FOLDS:
        rotation = replace(s, rotation=r, out=out / f"rotation_{r}", correlate=False, figures=False)
        run_rotation = run_seeds if s.seeds and len(s.seeds) > 1 else run_single
        outcome = run_rotation(rotation, model_runner=model_runner, engine=engine)
        outcomes[r] = outcome
        failed += [f"{m} (rotation {r})" for m in outcome.failed]
    per_rotation = {r: [{k: v for k, v in row.items() if k != "summary"} for row in o.rows]
                    for r, o in outcomes.items()}
    summary = summarise(per_rotation)
    rows = [{**row, "kind": "rotation" if row["kind"] == "seed" else row["kind"],
             "rotation": row.pop("seed"), "n_rotations": row.pop("n_seeds", None)}
            for row in csv_rows(per_rotation, summary)]
    columns = ["kind", "rotation", *leaderboard_columns(), "n_rotations", *PAPER_RUNS]
    import pandas as pd

    write_csv(pd.DataFrame(rows, columns=columns), out / "leaderboard.csv", float_format="%.6g")
    first = outcomes[CV_FOLDS[0]]
    data_label = (first.rows[0].get("data") or "") if first.rows else ""
    base_label = data_label.split(", ARAUS protocol")[0]
    title = f"soundaq leaderboard: {base_label}; ARAUS protocol, rotations 1-5 tested on fold 0" + (
        f"; training seeds {first.seeds}" if first.seeds else f"; training seed {s.seed}")
    from soundaq.benchmark.leaderboard import seeds_report

    fig = out / "leaderboard.png"
    drawn = seeds_report.figure(summary, list(CV_FOLDS), fig, title, budget_text(s), unit="rotation")
    atomic_write_text(out / "leaderboard.md", _markdown(summary, title, budget_text(s), drawn))
    atomic_write_json(out / "provenance.json", {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "protocol": "araus", "rotations": list(CV_FOLDS),
        "rotation_folders": {str(r): f"rotation_{r}" for r in CV_FOLDS}, "failed": failed,
        "session_seconds": round(time.perf_counter() - started, 1)})
    flat = [{**e["template"], **e["mean"], "rank": e["rank"], "status": e["status"], "n_seeds": e["n_seeds"],
             "summary": e} for e in summary]
    return Outcome(flat, out, fig if drawn else None, failed, None, None, budget_text(s), None,
                   seeds="rotations 1-5", title=title)


def _markdown(summary: list[dict], title: str, budget: str, drawn: bool) -> str:
    from soundaq.benchmark.leaderboard.seeds_report import mean_sd
    from soundaq.benchmark.leaderboard.table import fmt
    from soundaq.models_zoo.metrics import PAPER_HEADLINE

    lines = [f"# {title}", "", f"**Budget:** {budget}.", "",
             "ARAUS's own protocol: rotation r trains on four of folds 1-5, validates on fold r and tests on "
             "fold 0, ARAUS's independent test set (recordings and maskers no training clip contains). Each "
             "rotation's whole run is in `rotation_<r>/`. Mean ± sd over the five rotations [95% Student t "
             "interval over rotations]; ranked by the mean rank of the means over the paper's three headline "
             "scores.", ""]
    head = ["rank", "model", *PAPER_HEADLINE, "isop_mse", "isoe_mse"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for e in summary:
        lines.append("| " + " | ".join([fmt(e["rank"]), e["model"],
                                        *[mean_sd(e, m) for m in (*PAPER_HEADLINE, "isop_mse", "isoe_mse")]]) + " |")
    lines += ["", "## Per rotation", ""]
    for metric in PAPER_HEADLINE:
        head = ["model", *[f"rotation {r}" for r in CV_FOLDS]]
        lines += [f"`{metric}`:", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for e in summary:
            if e["status"] in (*RANKED, "reference"):
                values = dict(zip(e["seeds"], e["values"][metric]))
                lines.append("| " + " | ".join([e["model"], *[fmt(values.get(r)) for r in CV_FOLDS]]) + " |")
        lines.append("")
    if drawn:
        lines += ["![leaderboard](leaderboard.png)", ""]
    return "\n".join(lines)
