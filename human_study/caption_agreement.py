"""Do caption text metrics agree with the expert jury? Rank correlations per clip.

For every metric, system and jury dimension: Spearman's rho and Kendall's tau-b (scipy.stats
``spearmanr``/``kendalltau``, with their p-values) between the per-clip metric value and the
per-clip jury score of the same caption (same clip, same system), and percentile bootstrap 95%
CIs over clips (the resamples of :func:`soundaq.evaluation.bootstrap.resample_indices`, the same
clips drawn for every metric and dimension). On a resample, rho is the Pearson correlation of the
average ranks and tau-b is ``sum(sx sy) / sqrt(sum(sx^2) sum(sy^2))`` over all pairs of drawn clips
(``sx``, ``sy`` the signs of the pairwise differences; a clip drawn twice forms a tied pair), which
is what scipy computes on the resampled table (checked in tests).

Jury scores come from the published per-clip averages workbook (``--jury RESULTS.xlsx``, read by
:mod:`soundaq.human_study.published`) or from a ``soundaq jury`` output folder (its ``clip_scores.csv``).
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import cast

import numpy as np

from soundaq.evaluation.bootstrap import DEFAULT_RESAMPLES, DEFAULT_SEED, resample_indices
from soundaq.human_study.dimensions import DIMENSIONS, OVERALL

AGREEMENT_COLUMNS = ("source", "system", "metric", "dimension", "n_clips", "spearman_rho", "spearman_p",
                     "spearman_ci_low", "spearman_ci_high", "kendall_tau", "kendall_p", "kendall_ci_low",
                     "kendall_ci_high", "confidence", "n_resamples", "seed")


def load_jury(path: Path | str):
    """Per-clip jury scores: columns source, dataset, clip, system, dimension, score.

    Args:
        path: the published results workbook (.xlsx) or a ``soundaq jury`` output folder.

    Returns:
        ``(clip_scores, issues)``: the table and the one-line problems found while reading.

    Raises:
        ValueError: not a workbook or jury folder, or no usable score in it (message names the path).
    """
    import pandas as pd

    path = Path(path)
    if path.is_dir():
        table = path / "clip_scores.csv"
        if not table.is_file():
            raise ValueError(f"{path}: no clip_scores.csv in this folder; pass the --out folder of soundaq jury "
                             "or the published results .xlsx")
        clips = pd.read_csv(table, encoding="utf-8-sig", dtype={"clip": str})
        need = {"source", "dataset", "clip", "system", "dimension", "score"}
        if not need <= set(clips.columns):
            raise ValueError(f"{table}: lacks column(s) {', '.join(sorted(need - set(clips.columns)))}")
        return clips, []
    if not path.is_file():
        raise ValueError(f"{path}: no such file or folder; pass the published results .xlsx or a soundaq jury folder")
    from soundaq.human_study.issues import IssueLog
    from soundaq.human_study.jury import clip_scores
    from soundaq.human_study.published import read_published
    from soundaq.human_study.questionnaire import TIDY_COLUMNS

    log = IssueLog()
    records = read_published(path, log)
    if not records:
        detail = log.items[0].line() if log.items else "no per-clip scores"
        raise ValueError(f"{path}: no usable jury score ({detail})")
    tidy = pd.DataFrame(records, columns=list(TIDY_COLUMNS))
    return clip_scores(tidy), [i.line() for i in log.items if i.severity == "error"]


def _ranks(x: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(x, axis=-1)


def _rowwise_pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(axis=-1, keepdims=True)
    b = b - b.mean(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (a * b).sum(-1) / np.sqrt((a * a).sum(-1) * (b * b).sum(-1))


def spearman_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman's rho of each row pair of ``x``, ``y`` ``[b, n]`` (average ranks; NaN when constant)."""
    return _rowwise_pearson(_ranks(x), _ranks(y))


def kendall_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Kendall's tau-b of each row pair of ``x``, ``y`` ``[b, n]`` (NaN when a row is constant)."""
    sx = np.sign(x[:, :, None] - x[:, None, :])
    sy = np.sign(y[:, :, None] - y[:, None, :])
    with np.errstate(invalid="ignore", divide="ignore"):
        return (sx * sy).sum((1, 2)) / np.sqrt((sx * sx).sum((1, 2)) * (sy * sy).sum((1, 2)))


def correlation_ci(x, y, n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED, confidence: float = 0.95,
                   block: int = 200) -> dict[str, float]:
    """Spearman and Kendall correlation of paired values with percentile bootstrap CIs.

    Args:
        x: ``[n]`` values (no NaN), n >= 3.
        y: ``[n]`` values paired with ``x``.
        n_resamples: bootstrap resamples of the pairs.
        seed: bootstrap seed.
        confidence: the intervals' coverage (0.95: 2.5th and 97.5th percentiles).
        block: resamples drawn per block (memory, not results).

    Returns:
        dict with spearman_rho, spearman_p, spearman_ci_low/high, kendall_tau, kendall_p,
        kendall_ci_low/high (NaN where undefined, e.g. constant values).
    """
    import warnings

    from scipy import stats

    x, y = np.asarray(x, float), np.asarray(y, float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rho = stats.spearmanr(x, y)
        tau = stats.kendalltau(x, y)
    rhos, taus = [], []
    for idx in resample_indices(x.size, n_resamples, seed, block=block):
        xs, ys = x[idx], y[idx]
        rhos.append(spearman_rows(xs, ys))
        taus.append(kendall_rows(xs, ys))
    alpha = 100 * (1 - confidence) / 2

    def ci(v):
        v = np.concatenate(v)
        v = v[np.isfinite(v)]
        return (float("nan"), float("nan")) if v.size == 0 else tuple(float(q) for q in np.percentile(v, [alpha, 100 - alpha]))

    (rlo, rhi), (tlo, thi) = ci(rhos), ci(taus)
    return {"spearman_rho": float(rho.statistic), "spearman_p": float(rho.pvalue), "spearman_ci_low": rlo,
            "spearman_ci_high": rhi, "kendall_tau": float(tau.statistic), "kendall_p": float(tau.pvalue),
            "kendall_ci_low": tlo, "kendall_ci_high": thi}


def joined(per_clip, metrics: list[str], jury):
    """Per-clip metric values beside the jury's scores of the same caption.

    Clips are matched by id (case-insensitive, else by file stem), systems by name
    (case-insensitive). Returns a long DataFrame: source, dataset, clip, system, dimension, score,
    and one column per metric.
    """
    import pandas as pd

    from soundaq.evaluation.captions.inputs import clip_matcher

    # clip_matcher is annotated ``-> callable`` (not a type): say what it returns
    match = cast("Callable[[str], str | None]", clip_matcher(list(jury["clip"].astype(str).unique())))
    pc = per_clip.copy()
    pc["_clip"] = [match(str(c)) for c in pc["clip"]]
    pc["_system"] = pc["system"].str.casefold()
    j = jury.copy()
    j["_clip"] = j["clip"].astype(str)
    j["_system"] = j["system"].str.casefold()
    out = j.merge(pc[["_clip", "_system", *metrics]], on=["_clip", "_system"], how="inner")
    return out.drop(columns=["_clip", "_system"]).reset_index(drop=True) if len(out) else pd.DataFrame(
        columns=[*jury.columns, *metrics])


def agreement(per_clip, metrics: list[str], jury, n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED,
              confidence: float = 0.95):
    """The agreement table (:data:`AGREEMENT_COLUMNS`): per source, system (and ``all`` when several
    systems were joined), metric and dimension (overall first).

    Returns:
        ``(table, joined)``: the correlations and the joined per-clip table they come from.
    """
    import pandas as pd

    data = joined(per_clip, metrics, jury)
    rows = []
    dims = [d for d in DIMENSIONS if d in set(data["dimension"])] if len(data) else []
    dims = [OVERALL] + [d for d in dims if d != OVERALL] if OVERALL in dims else dims
    for source, gs in data.groupby("source", sort=True):
        systems = sorted(gs["system"].unique())
        groups = [(s, gs[gs["system"] == s]) for s in systems]
        if len(systems) > 1:
            groups.append(("all", gs))
        for system, g in groups:
            for metric in metrics:
                for dim in dims:
                    gd = g[g["dimension"] == dim][["score", metric]].dropna()
                    if len(gd) < 3:
                        continue
                    res = correlation_ci(gd[metric].to_numpy(), gd["score"].to_numpy(), n_resamples, seed, confidence)
                    rows.append({"source": source, "system": system, "metric": metric, "dimension": dim,
                                 "n_clips": len(gd), **res, "confidence": confidence, "n_resamples": n_resamples,
                                 "seed": seed})
    return pd.DataFrame(rows, columns=list(AGREEMENT_COLUMNS)), data


def scatter_figure(data, metric: str, table, target: Path, dimension: str = OVERALL) -> list[Path]:
    """Per-clip metric (x) against the jury's score (y) for one metric, one colour per dataset and a
    marker per system, rho and tau with their CIs in the title. Writes ``target`` (.png) and the
    same figure as .pdf; returns both paths.
    """
    import matplotlib.pyplot as plt

    from soundaq.evaluation.figures import save
    from soundaq.human_study.dimensions import LABELS

    d = data[data["dimension"] == dimension].dropna(subset=[metric, "score"])
    fig, ax = plt.subplots(figsize=(5.6, 4.4))
    colors = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3"]
    markers = ["o", "s", "^", "D", "v"]
    for i, (dataset, gd) in enumerate(d.groupby("dataset", sort=True)):
        for k, (system, g) in enumerate(gd.groupby("system", sort=True)):
            ax.scatter(g[metric], g["score"], s=22, color=colors[i % len(colors)], marker=markers[k % len(markers)],
                       alpha=0.8, edgecolors="none", label=f"{dataset} {system}")
    ax.set_xlabel(f"{metric} (per clip)")
    ax.set_ylabel(f"jury {LABELS.get(dimension, dimension).lower()} (per clip)")
    t = table[(table["metric"] == metric) & (table["dimension"] == dimension)]
    if len(t):
        r = t.iloc[0]
        ax.set_title(f"{metric} vs jury {dimension}: n = {r['n_clips']}\nSpearman rho = {r['spearman_rho']:.2f} "
                     f"[{r['spearman_ci_low']:.2f}, {r['spearman_ci_high']:.2f}], Kendall tau = {r['kendall_tau']:.2f} "
                     f"[{r['kendall_ci_low']:.2f}, {r['kendall_ci_high']:.2f}]", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, frameon=False)
    return save(fig, target, dpi=150, tight_layout=True)
