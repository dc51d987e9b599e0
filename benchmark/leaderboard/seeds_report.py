"""What a repeated-runs grid shows (soundaq.benchmark.leaderboard.seeds): its report, figure and terminal table.

Every headline number is ``mean +- sd`` over the training seeds with its 95 % Student t interval over
seeds; the paper's mean +- sd over its 10 runs stands beside it where the paper gives one
(registry.PAPER_OVER_RUNS). The ranking's stability is each model's rank per seed, how often each
ranked first and Kendall's tau between the seeds' rankings.
"""
from __future__ import annotations

import math
from pathlib import Path

from soundaq.benchmark.leaderboard.report import _better, comparison_table, fmt
from soundaq.benchmark.leaderboard.settings import seeds_text
from soundaq.benchmark.leaderboard.table import RANKED, REFERENCE
from soundaq.models_zoo.metrics import METRICS, PAPER_HEADLINE, SUMMARY


def title(data_label: str, seeds: list[int], synthetic: bool) -> str:
    """The grid's title: the data (with the embedded set's generation seed) and the training seeds."""
    return (f"soundaq leaderboard: {data_label}" + (" (SYNTHETIC data)" if synthetic and "synthetic" not in
                                                    data_label.lower() else "")
            + f"; training seeds {seeds_text(seeds)}")


def mean_sd(entry: dict, name: str, digits: int = 3, ci: bool = True) -> str:
    """``mean ± sd [ci_low, ci_high]`` of one summary entry's column (``–`` where missing)."""
    mean, sd = entry["mean"].get(name), entry["sd"].get(name)
    if mean is None:
        return "–"
    text = f"{mean:.{digits}f}" + (f" ± {sd:.{digits}f}" if sd is not None else "")
    lo, hi = entry["ci95_low"].get(name), entry["ci95_high"].get(name)
    if ci and lo is not None and hi is not None:
        text += f" [{lo:.{digits}f}, {hi:.{digits}f}]"
    return text


def _paper(model: str, name: str) -> str:
    from soundaq.models_zoo.registry import PAPER_OVER_RUNS

    pair = PAPER_OVER_RUNS.get(model, {}).get(name)
    digits = {"scene_acc": 4, "event_auc": 2}.get(name, 3)     # as the paper prints them (scene as a fraction)
    return "–" if pair is None else f"{pair[0]:.{digits}f} ± {pair[1]:.{digits}f}"


def markdown(summary: list[dict], seeds: list[int], comparisons, taus: list[float], prov: dict, head: str,
             figure_name: str | None) -> str:
    """The grid's report (leaderboard.md)."""
    synthetic = prov["synthetic"]
    sizes = prov["data"].get("split_sizes", {})
    lines = [f"# {head}", ""]
    if synthetic:
        lines += ["> **Synthetic data.** These scores come from the embedded synthetic soundscapes, not from "
                  "ARAUS; the paper's numbers beside them are not comparable (shown for reference only).", ""]
    lines += [f"**Budget:** {prov['budget']}.", "",
              f"Every model trained once per training seed ({len(seeds)} seeds: {seeds_text(seeds)}) on the same "
              f"data; test split {sizes.get('test', '?')} clips (training {sizes.get('training', '?')}, validation "
              f"{sizes.get('validation', '?')}). Each cell: mean ± sd over seeds (sd with n - 1) [95% Student t "
              "interval over seeds, scipy.stats.t]; the spread is the training run's, the test clips are the same "
              "in every seed. Each seed's own table: `seed_<k>/leaderboard.md`.", "",
              f"Ranking: {prov['ranking']}.", ""]
    metrics = ("scene_acc", "event_auc", "aq_mse_mean", "isop_mse", "isoe_mse")
    header = ["rank", "model", "seeds", *metrics, *[f"paper {m} (10 runs)" for m in PAPER_HEADLINE]]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for e in summary:
        name = f"*{e['model']}* (reference)" if e["status"] == "reference" else e["model"]
        if e["status"] == "failed":
            name += " (failed in every seed)"
        lines.append("| " + " | ".join([fmt(e["rank"]), name, str(e["n_seeds"]), *[mean_sd(e, m) for m in metrics],
                                        *[_paper(e["model"], m) for m in PAPER_HEADLINE]]) + " |")
    missing = [f"{e['model']} ({len(seeds) - e['n_seeds']} of {len(seeds)} seeds failed)" for e in summary
               if e["status"] != "reference" and 0 < e["n_seeds"] < len(seeds)]
    if missing:
        lines += ["", "Summarised over the seeds that finished: " + "; ".join(missing) + ". Run the same command "
                  "again to retry the failed seeds; models without every seed are left out of the comparison."]
    if figure_name:
        lines += ["", f"![leaderboard]({figure_name})"]
    from soundaq.benchmark.leaderboard import folds

    breakdown = folds.markdown([{**e["mean"], "model": e["model"], "status": e["status"]} for e in summary],
                               lambda r, c: mean_sd(next(e for e in summary if e["model"] == r["model"]), c,
                                                    ci=False))
    lines += ["", *breakdown] if breakdown else []
    lines += ["", *_stability(summary, seeds, taus)]
    lines += ["", *_comparisons(comparisons, prov)]
    lines += ["", f"Files: leaderboard.csv (one row per model and seed, `kind` = seed, then the summary rows mean, "
              "sd, ci95_low, ci95_high; `paper_runs_*`: the paper's mean and sd), leaderboard.json, comparisons.csv, "
              f"provenance.json, seed_<k>/ (each seed's whole run). Device: {prov['device']}. Made by soundaq "
              f"{prov['versions'].get('soundaq', '?')} on {prov['created']}.", ""]
    return "\n".join(lines)


def _stability(summary: list[dict], seeds: list[int], taus: list[float]) -> list[str]:
    ranked = [e for e in summary if e["status"] in RANKED]
    lines = ["## How stable the ranking is", "",
             "Each model's rank in each seed's own table (the same ranking rule), and how often it ranked first.", ""]
    header = ["model", *[f"seed {k}" for k in seeds], "first"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for e in ranked:
        lines.append("| " + " | ".join([e["model"], *[fmt(e["ranks"].get(k)) for k in seeds],
                                        f"{e['first']} of {len(seeds)}"]) + " |")
    if taus:
        import numpy as np

        spread = (f"all {len(taus)} pairs): mean {np.mean(taus):+.2f}, from {min(taus):+.2f} to {max(taus):+.2f}"
                  if len(taus) > 1 else f"one pair): {taus[0]:+.2f}")
        lines += ["", f"Kendall's tau between the rankings of two seeds (scipy.stats.kendalltau, {spread} "
                  "(1: the same order in every seed; near 0: the order below the top is the seed's choice)."]
    return lines


def _comparisons(comparisons, prov: dict) -> list[str]:
    if comparisons is None or not len(comparisons):
        return ["## Leader against each model", "", "Fewer than two models finished every seed: no comparison."]
    leader = comparisons["model_a"].iloc[0]
    lines = [f"## Leader ({leader}) against each model, over seeds and test clips", "",
             f"Method: {prov['comparison_method']} ({int(comparisons['n_resamples'].iloc[0])} resamples). The "
             "interval covers both sources of variance, the training seed and the test clips. Difference = leader "
             "minus the other model's mean over seeds; p two-sided.", "", *comparison_table(comparisons)]
    return lines


def figure(summary: list[dict], seeds: list[int], path_png: Path, head: str, budget: str,
           unit: str = "training seed") -> bool:
    """SUMMARY metrics, one panel each: every seed's point (grey) and the mean ± sd (black/blue) per model,
    models in rank order, the reference as a dashed line (PNG + PDF). False when no model finished.
    """
    import matplotlib.pyplot as plt

    ranked = [e for e in summary if e["status"] in RANKED]
    if not ranked:
        return False
    ref = next((e for e in summary if e["status"] == "reference"), None)
    fig, axes = plt.subplots(1, len(SUMMARY), figsize=(3.1 * len(SUMMARY), 0.45 * len(ranked) + 2.1), sharey=True)
    ys = list(range(len(ranked)))[::-1]
    for ax, name in zip(axes, SUMMARY):
        for y, e in zip(ys, ranked):
            points = [v for v in e["values"][name] if v is not None and not math.isnan(v)]
            if not points:
                continue
            offsets = [0.18 * ((i % 5) - 2) / 2 for i in range(len(points))]   # spread so equal seeds stay visible
            ax.plot(points, [y + o for o in offsets], "o", ms=3, color="0.6", zorder=1)
            sd = e["sd"].get(name)
            colour = "tab:blue" if e["rank"] == 1 else "black"
            ax.errorbar([e["mean"][name]], [y], xerr=None if sd is None else [[sd], [sd]], fmt="D", ms=5,
                        color=colour, ecolor=colour, capsize=3, zorder=2)
        if ref is not None and ref["mean"].get(name) is not None:
            ax.axvline(ref["mean"][name], color="tab:red", ls="--", lw=1)
        ax.set_title(f"{name}\n({METRICS[name].definition} def., {_better(name)} is better)", fontsize=9)
        ax.grid(axis="x", alpha=0.3)
        ax.tick_params(labelsize=8)
    axes[0].set_yticks(ys)
    axes[0].set_yticklabels([f"{e['rank']}. {e['model']}" for e in ranked], fontsize=9)
    fig.suptitle(f"{head}\n{budget}", fontsize=9)
    fig.text(0.5, 0.01, f"grey: each {unit}'s test-split score; diamond and bar: mean ± sd over "
             f"{len(seeds)} {unit}s; red dashed line: {REFERENCE}", ha="center", fontsize=8)
    fig.tight_layout(rect=(0, 0.04, 1, 0.93))
    from soundaq.evaluation.figures import save

    save(fig, path_png, dpi=150)
    return True


def print_table(rows: list[dict], head: str, budget: str = "", unit: str = "seeds") -> None:
    """The grid's ranked table on stdout: mean ± sd over ``unit`` (``seeds``, or ``rotations`` for ARAUS's
    protocol) per headline metric.
    """
    from rich.table import Table

    from soundaq.benchmark.terminal import stdout_console

    over = "training seeds" if unit == "seeds" else unit
    t = Table(title=head, caption=(budget + "; " if budget else "") + f"mean ± sd over {over}")
    for col in ("rank", "model", "scene_acc", "event_auc", "aq_mse_mean", "isop_mse", "isoe_mse", unit, "first",
                "status"):
        t.add_column(col, justify="left" if col in ("model", "status") else "right")
    for r in rows:
        e = r["summary"]
        t.add_row(fmt(e["rank"]), e["model"], *[mean_sd(e, m, ci=False) for m in
                                               ("scene_acc", "event_auc", "aq_mse_mean", "isop_mse", "isoe_mse")],
                  str(e["n_seeds"]), str(e["first"]) if e["status"] in RANKED else "–", e["status"])
    stdout_console(width=170).print(t)      # markup off: variant names keep their [...]
