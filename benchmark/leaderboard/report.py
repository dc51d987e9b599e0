"""What a leaderboard run shows: the Markdown report, the two figures and the terminal table.

``leaderboard.png`` holds the :data:`~soundaq.models_zoo.metrics.SUMMARY` metrics with bootstrap CIs
(models in rank order, the training-mean reference as a dashed line); ``learning_curves.png`` holds
each model's validation metrics against its training seconds, so a reader sees who learns fastest,
not only who ended where.
"""
from __future__ import annotations

import math
from pathlib import Path

from soundaq.base.vocab import LABEL_GROUPS, QUALITIES
from soundaq.benchmark.leaderboard.table import RANKED, RANKING_TEXT, REFERENCE, REFERENCE_TEXT, fmt
from soundaq.models_zoo.metrics import METRICS, PAPER_HEADLINE, SUMMARY


def _with_ci(row: dict, name: str, digits: int = 3) -> str:
    v = row.get(name)
    if v is None:
        return "–"
    lo, hi = row.get(f"{name}_ci_low"), row.get(f"{name}_ci_high")
    if lo is None or hi is None:
        return fmt(v, digits)
    return f"{v:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def _better(name: str) -> str:
    return "higher" if METRICS[name].maximize else "lower"


def _agreement_sentence(agreed: dict) -> str:
    """The leader's agreement with the labels (soundaq.evaluation.correlation.agreement) in one sentence."""
    head = "Agreement with the labels of the same clips: "
    if not math.isfinite(agreed.get("spearman", math.nan)):
        return (head + f"not defined ({agreed['cells']} event x quality cells have a rho in both matrices; "
                "more test clips are needed).")
    return (head + f"rank correlation **{agreed['spearman']:+.3f}** over {agreed['cells']} event x quality cells "
            f"(|rho| > {agreed['strong_threshold']:g}: {agreed['strong_predicted']} predicted, "
            f"{agreed['strong_labels']} in the labels).")


def _heading(prov: dict) -> list[str]:
    """Title, the synthetic-data warning, budget, split sizes, ranking rule and unlabelled groups."""
    data_label = prov["data"]["data"]
    synthetic = prov["data"]["synthetic"]
    lines = [f"# soundaq leaderboard: {data_label}; training seed {prov['seed']}", ""]
    if synthetic:
        lines += ["> **Synthetic data.** These scores come from the embedded synthetic soundscapes, not from "
                  "ARAUS. They show that the pipeline works and how the models compare on that set; they are "
                  "not comparable with the paper's published scores (shown for reference only).", ""]
    sizes = prov["data"].get("split_sizes", {})
    lines += [f"**Budget:** {prov['budget']}.", "",
              f"Test split: {sizes.get('test', '?')} whole 30-s clips (training {sizes.get('training', '?')}, "
              f"validation {sizes.get('validation', '?')}); training seed {prov['seed']}; 95% CIs from "
              f"{prov['n_resamples']} bootstrap resamples of the test clips.", "",
              f"Ranking: {RANKING_TEXT}.", ""]
    missing = prov["data"].get("unlabelled") or []
    lines += _unlabelled_note(missing)
    return lines


def _score_table(rows: list[dict]) -> list[str]:
    """The ranked table: one line per model, failed runs with their reason."""
    lines: list[str] = []
    head = ["rank", "model", "params", "scene_acc (paper def.)", "event_auc (paper def.)", "event_auc_macro",
            "aq_mse_mean", "isop_mse", "isoe_mse", "beats reference on", "train s", "clips/s"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        if r["status"] == "failed":
            lines.append(f"| – | {r['model']} | {r['params']:,} | failed: {r['reason']} |" + " |" * (len(head) - 4))
            continue
        name = f"*{r['model']}* (reference)" if r["status"] == "reference" else r["model"]
        if r["status"] == "diverged":
            name += " (diverged)"
        lines.append("| " + " | ".join([
            fmt(r["rank"]), name, f"{r['params']:,}", _with_ci(r, "scene_acc"), _with_ci(r, "event_auc"),
            _with_ci(r, "event_auc_macro"), _with_ci(r, "aq_mse_mean"), _with_ci(r, "isop_mse"),
            _with_ci(r, "isoe_mse"), fmt(r.get("beats_reference")), fmt(r["train_seconds"], 1),
            fmt(r["clips_per_second"], 2)]) + " |")
    return lines


def comparison_table(comparisons) -> list[str]:
    """The Markdown table of the leader against each model: one row per (model, metric) of ``comparisons``
    (columns ``model_b``, ``metric``, ``diff``, ``ci_low``, ``ci_high``, ``p_value``, ``better``,
    ``significant``: :func:`soundaq.evaluation.bootstrap.compare_to_leader` over clips or
    :func:`~soundaq.evaluation.bootstrap.compare_to_leader_over_seeds` over seeds and clips).
    """
    lines = ["| model | metric | difference [95% CI] | p | better |", "|---|---|---|---|---|"]
    for c in comparisons.itertuples():
        lines.append(f"| {c.model_b} | {c.metric} | {c.diff:+.3f} [{c.ci_low:+.3f}, {c.ci_high:+.3f}] | "
                     f"{c.p_value:.3f} | {c.better}{' (significant)' if c.significant else ''} |")
    return lines


def _comparison_lines(comparisons) -> list[str]:
    """The leader against each model (paired bootstrap), or nothing without comparisons."""
    if comparisons is None or not len(comparisons):
        return []
    leader = comparisons["model_a"].iloc[0]
    return ["", f"## Leader ({leader}) against each model: paired bootstrap", "",
            "Difference = leader minus the other model, on the same resampled clips; p two-sided.", "",
            *comparison_table(comparisons)]


#: The paper's scores a leaderboard row carries (None for a net the paper does not have).
PAPER_SCORE_COLUMNS = ("paper_scene_acc", "paper_event_auc", "paper_aq_mse_mean")


def _paper_lines(rows: list[dict], prov: dict) -> list[str]:
    """The paper's published scores of each net, and whether they compare with this run."""
    data_label = prov["data"]["data"]
    synthetic = prov["data"]["synthetic"]
    lines: list[str] = []
    lines += ["", "## The paper's published scores (ARAUS test split, 3,576 clips)", "",
              ("Same test split, but the paper's own training runs; differences include training noise."
               if prov["data"].get("paper_split", not synthetic) else
               f"Not comparable with this table: the data differ ({'synthetic set' if synthetic else data_label})."),
              "",
              "| model | scene_acc | event_auc | aq_mse_mean |", "|---|---|---|---|"]
    for r in rows:
        if r["status"] == "reference" or all(r.get(k) is None for k in PAPER_SCORE_COLUMNS):
            continue        # the reference, and nets the paper does not have (a plug-in, your own net)
        lines.append(f"| {r['model']} | {fmt(r['paper_scene_acc'], 4)} | {fmt(r['paper_event_auc'], 2)} | "
                     f"{fmt(r['paper_aq_mse_mean'], 3)} |")
    return lines


def _definitions(prov: dict) -> list[str]:
    """Column definitions, the reference predictor, and the files of the run."""
    lines: list[str] = []
    lines += ["", "## Column definitions", "",
              "`paper` = the original SoundSCaper code's definition; `standard` = the usual one.", ""]
    for name in ("scene_acc", "scene_acc_plain", "scene_f1_macro", "event_auc", "event_auc_macro", "event_map",
                 "aq_mse_mean", "isop_mse", "isoe_mse"):
        m = METRICS[name]
        lines.append(f"- `{name}` ({m.definition}, {_better(name)} is better): {m.description}")
    lines += [f"- *{REFERENCE}*: {REFERENCE_TEXT}. A model scoring worse than it has not learnt that task; "
              f"`beats reference on` lists the metrics ({', '.join(SUMMARY)}) where a model's "
              "estimate is better than the reference's (point estimates; see the CIs).",
              "- `train s`: seconds of training (validation excluded, all resumed sessions); `clips/s`: test "
              f"clips per second of the test-split forward passes (whole clips, inference mode) on {prov['device']}.",
              ""]
    lines += [f"Files: leaderboard.csv, leaderboard.json, comparisons.csv, predictions/<model>.csv, provenance.json. "
              f"Made by soundaq {prov['versions'].get('soundaq', '?')} on {prov['created']}.", ""]
    return lines


def markdown(rows: list[dict], comparisons, prov: dict, figures: dict[str, str]) -> str:
    """The run's report (leaderboard.md).

    Args:
        rows: the leaderboard rows (leaderboard.json's), ranked, with the reference predictor's row.
        comparisons: the leader-against-each paired bootstrap table (comparisons.csv), or None.
        prov: the run's provenance (provenance.json: data, budget, seed, device, versions, ...).
        figures: ``leaderboard`` and ``curves`` figure paths relative to the report, where drawn.

    Returns:
        The Markdown text.
    """
    lines = _heading(prov)
    lines += _score_table(rows)
    notes = [f"- {r['model']}: {r['reason']}" for r in rows if r["status"] == "diverged"]
    if notes:
        lines += ["", "Runs stopped by the divergence guard:", *notes]
    if figures.get("leaderboard"):
        lines += ["", f"![leaderboard]({figures['leaderboard']})"]
    if figures.get("curves"):
        lines += ["", "## Learning curves", "",
                  "Validation metrics against training seconds (validation time excluded); every curve starts at "
                  f"0 s from the *{REFERENCE}*, which is what each net predicts before its first step. Where a "
                  "budget ends with precise batch norm, the statistics are recomputed just before the last "
                  "validation, so the curve's last point is the weights the table tests.", "",
                  f"![learning curves]({figures['curves']})"]
    missing = prov["data"].get("unlabelled") or []
    lines += ["", "## Per-quality MSE", "", *_quality_table(rows, "qualities" not in missing)]
    from soundaq.benchmark.leaderboard.folds import markdown as fold_lines

    breakdown = fold_lines(rows)
    lines += ["", *breakdown] if breakdown else []
    lines += _comparison_lines(comparisons)
    agreed = prov.get("correlation_agreement")
    if prov.get("correlation"):
        lines += ["", "## The leader's events x qualities analysis", "",
                  f"Same code as `soundaq correlate`: [{prov['correlation']}/report.md]({prov['correlation']}/report.md)."]
        if agreed:
            lines += ["", _agreement_sentence(agreed)]
    lines += _paper_lines(rows, prov)
    lines += _definitions(prov)
    return "\n".join(lines)


def _unlabelled_note(missing: list[str]) -> list[str]:
    """The report's lines on label groups the data lack (none when every group is labelled)."""
    if not missing:
        return []
    kinds = {"scene": "scene", "events": "event", "qualities": "quality"}
    return [f"**Not labelled:** {' and '.join(missing)}. The data have no "
            f"{' or '.join(kinds.get(g, g) for g in missing)} labels: the metrics of "
            f"{'these tasks' if len(missing) > 1 else 'this task'} are left empty (–), no model was trained on "
            "them and the reference predicts neutral values for them.", ""]


def _quality_table(rows: list[dict], labelled: bool) -> list[str]:
    """The per-quality MSE table (a one-line note for data without quality ratings)."""
    if not labelled:
        return ["Not labelled: the data have no quality ratings."]
    qhead = ["model", *QUALITIES]
    lines = ["| " + " | ".join(qhead) + " |", "|" + "---|" * len(qhead)]
    for r in rows:
        if r["status"] != "failed":
            lines.append("| " + " | ".join([r["model"], *[fmt(r.get(f"mse_{q}")) for q in QUALITIES]]) + " |")
    return lines


def _mark_unlabelled(ax, rows: list[dict], name: str) -> None:
    """Write "not labelled" across the panel of a metric whose label group the data lack."""
    missing = {g for r in rows for g in (r.get("unlabelled") or "").split(";") if g}
    if METRICS[name].task in missing:
        ax.text(0.5, 0.5, "not labelled\n(no such labels in the data)", transform=ax.transAxes, ha="center",
                va="center", fontsize=9, color="0.4")


def figure(rows: list[dict], path_png: Path, title: str, budget: str) -> None:
    """The SUMMARY metrics with CI error bars, one panel per metric, models in rank order (PNG + PDF)."""
    import matplotlib.pyplot as plt

    ranked = [r for r in rows if r["status"] in RANKED]
    ref = next((r for r in rows if r["status"] == "reference"), None)
    n = max(len(ranked), 1)
    fig, axes = plt.subplots(1, len(SUMMARY), figsize=(3.1 * len(SUMMARY), 0.45 * n + 2.1), sharey=True)
    ys = list(range(len(ranked)))[::-1]
    for ax, name in zip(axes, SUMMARY):
        m = METRICS[name]
        _mark_unlabelled(ax, rows, name)
        for y, r in zip(ys, ranked):
            v = r.get(name)
            if v is None:
                continue
            lo, hi = r.get(f"{name}_ci_low"), r.get(f"{name}_ci_high")
            err = [[v - lo], [hi - v]] if lo is not None and hi is not None else None
            colour = "tab:blue" if r["rank"] == 1 else "0.35"
            ax.errorbar([v], [y], xerr=err, fmt="o", color=colour, ecolor=colour, capsize=3, ms=5)
        if ref is not None and ref.get(name) is not None:
            ax.axvline(ref[name], color="tab:red", ls="--", lw=1, label=REFERENCE)
        values: list[float] = [v for v in (r.get(name) for r in ranked) if v is not None]
        values += [ref[name]] if ref and ref.get(name) else []
        if not m.maximize and values and min(values) > 0 and max(values) / min(values) > 10:
            ax.set_xscale("log")       # one diverged model must not flatten the others
        ax.set_title(f"{name}\n({m.definition} def., {_better(name)} is better)", fontsize=9)
        ax.grid(axis="x", alpha=0.3)
        ax.tick_params(labelsize=8)
    axes[0].set_yticks(ys)
    axes[0].set_yticklabels([f"{r['rank']}. {r['model']}" + (" (diverged)" if r["status"] == "diverged" else "")
                             for r in ranked], fontsize=9)
    failed = [r["model"] for r in rows if r["status"] == "failed"]
    caption = "points: test-split estimate; bars: 95% bootstrap CI"
    if ref is not None:
        caption += f"; red dashed line: {REFERENCE} (what a model must beat)"
    if failed:
        caption += f"; failed: {', '.join(failed)}"
    fig.suptitle(f"{title}\n{budget}", fontsize=9)
    fig.text(0.5, 0.01, caption, ha="center", fontsize=8)
    fig.tight_layout(rect=(0, 0.04, 1, 0.93))
    from soundaq.evaluation.figures import save

    save(fig, path_png, dpi=150)


def curves_figure(rows: list[dict], curves: dict[str, list[dict]], start: dict | None, path_png: Path,
                  title: str, budget: str) -> bool:
    """Each model's validation PAPER_HEADLINE metrics against training seconds, one panel per metric
    (PNG + PDF); ``start`` (the reference's validation scores) is every curve's point at 0 s.
    Returns False (nothing drawn) when no model logged a validation point.
    """
    import matplotlib.pyplot as plt

    order = [r["model"] for r in rows if r["status"] in RANKED and curves.get(r["model"])]
    if not order:
        return False
    fig, axes = plt.subplots(1, len(PAPER_HEADLINE), figsize=(4.2 * len(PAPER_HEADLINE), 3.8))
    colours = plt.get_cmap("tab10")
    for ax, name in zip(axes, PAPER_HEADLINE):
        _mark_unlabelled(ax, rows, name)
        for i, model in enumerate(order):
            pts = [(p["seconds"], p.get(name)) for p in curves[model] if p.get(name) is not None]
            if start is not None and start.get(name) is not None:
                pts = [(0.0, start[name]), *pts]
            if not pts:
                continue
            xs, ys = zip(*pts)
            ax.plot(xs, ys, "o-", ms=3.5, lw=1.4, color=colours(i % 10), label=model)
        if start is not None and start.get(name) is not None:
            ax.axhline(start[name], color="tab:red", ls="--", lw=0.9)
        ax.set_xlabel("training seconds")
        if "mse" in name and ax.get_legend_handles_labels()[0]:
            ax.set_yscale("log")      # one spike of a stale batch-norm point would flatten every other curve
        ax.set_title(f"validation {name} ({_better(name)} is better"
                     f"{', log scale' if ax.get_yscale() == 'log' else ''})", fontsize=9)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=8)
    drawn = [ax for ax in axes if ax.get_legend_handles_labels()[0]]   # a metric the data lack has no lines
    if drawn:
        drawn[-1].legend(fontsize=7, loc="best")
    fig.suptitle(f"{title}: learning curves\n{budget}; red dashed line: {REFERENCE}", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    from soundaq.evaluation.figures import save

    save(fig, path_png, dpi=150)
    return True


def _beats(row: dict) -> str:
    """``won/scored``: SUMMARY metrics the row beats the reference on, of those the data can score."""
    text = row.get("beats_reference")
    if not text:
        return "–"
    scored = sum(row.get(name) is not None for name in SUMMARY)
    return f"{0 if text == 'none' else len(text.split(','))}/{scored}"


def print_table(rows: list[dict], data_label: str, budget: str = "", title: str | None = None) -> None:
    """The ranked table on stdout (``title``: the run's, naming its training seed; default from the data)."""
    from rich.table import Table

    from soundaq.benchmark.terminal import stdout_console

    missing = [g for g in LABEL_GROUPS if any(g in (r.get("unlabelled") or "").split(";") for r in rows)]
    caption = "; ".join(x for x in (budget, f"not labelled: {', '.join(missing)} (metrics empty)" if missing else "")
                        if x)
    t = Table(title=title or f"soundaq leaderboard: {data_label}", caption=caption or None)
    for col in ("rank", "model", "scene_acc", "event_auc", "aq_mse_mean", "isop_mse", "isoe_mse", "beats ref.",
                "train s", "clips/s", "status"):
        t.add_column(col, justify="left" if col in ("model", "status") else "right")
    for r in rows:
        t.add_row(fmt(r["rank"]), r["model"], fmt(r.get("scene_acc")), fmt(r.get("event_auc")),
                  fmt(r.get("aq_mse_mean")), fmt(r.get("isop_mse")), fmt(r.get("isoe_mse")),
                  _beats(r), fmt(r.get("train_seconds"), 1), fmt(r.get("clips_per_second"), 2),
                  r["status"] if r["status"] != "failed" else f"failed: {r['reason']}")
    stdout_console(width=160).print(t)      # markup off: variant names keep their [...]
