"""Figures of ``soundaq jury``: per-clip score distributions and paired differences with CIs."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from soundaq.evaluation.figures import save
from soundaq.human_study.dimensions import LABELS, RANGES
from soundaq.human_study.jury import dimension_order

_SOURCE_LABEL = {"published": "published averages", "participants": "per-participant ratings"}
_PALETTE = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860"]


def _system_order(systems, reference: str | None) -> list[str]:
    systems = sorted(set(systems))
    if reference in systems:
        systems.remove(reference)
        systems.insert(0, reference)
    return systems


def ratings_figure(clips, source: str, dataset: str, target: Path, reference: str | None = None) -> Path:
    """Box plot with every clip's score on top, one panel per dimension, one box per system."""
    import matplotlib.pyplot as plt

    g = clips[(clips["source"] == source) & (clips["dataset"] == dataset)]
    dims = dimension_order(g["dimension"].unique())
    systems = _system_order(g["system"].unique(), reference)
    ncols = 3
    nrows = int(np.ceil(len(dims) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.6 * nrows), squeeze=False)
    rng = np.random.default_rng(0)
    for ax, dim in zip(axes.flat, dims):
        gd = g[g["dimension"] == dim]
        data = [gd.loc[gd["system"] == s, "score"].to_numpy(float) for s in systems]
        box = ax.boxplot(data, widths=0.55, patch_artist=True, showfliers=False,
                         medianprops={"color": "black", "linewidth": 1.2})
        for patch, color in zip(box["boxes"], _PALETTE):
            patch.set_facecolor(color)
            patch.set_alpha(0.35)
        for i, (vals, color) in enumerate(zip(data, _PALETTE), start=1):
            ax.scatter(i + rng.uniform(-0.15, 0.15, vals.size), vals, s=12, color=color, alpha=0.8,
                       edgecolors="none", zorder=3)
            if vals.size:
                ax.scatter([i], [vals.mean()], marker="D", s=36, color="white", edgecolors="black", zorder=4,
                           label="mean" if i == 1 else None)
        ax.set_xticks(range(1, len(systems) + 1))
        ax.set_xticklabels([_wrap(s) for s in systems])
        lo, hi = RANGES.get(dim, (np.nan, np.nan))
        present = [d for d in data if d.size]
        if present:
            vmin, vmax = min(d.min() for d in present), max(d.max() for d in present)
            pad = 0.08 * (vmax - vmin) if vmax > vmin else 0.1
            ax.set_ylim(vmin - pad, vmax + pad)
        ax.set_title(LABELS.get(dim, dim), fontsize=11)
        ax.grid(axis="y", alpha=0.3)
        ax.set_ylabel(f"score (scale {lo:g} to {hi:g})", fontsize=8)
    for ax in list(axes.flat)[len(dims):]:
        ax.axis("off")
    n = g.groupby("system")["clip"].nunique()
    what = "one dot per clip (mean over participants)" if source == "participants" else "one dot per clip"
    fig.suptitle(f"{dataset}, {_SOURCE_LABEL.get(source, source)}: {what} "
                 f"({', '.join(f'{s}: {n.get(s, 0)} clips' for s in systems)}); diamond = mean", fontsize=11)
    fig.tight_layout()
    return save(fig, target, dpi=150, formats=("png",), bbox_inches="tight")[0]


def _wrap(text: str, width: int = 14) -> str:
    words, lines, cur = text.split(), [], ""
    for w in words:
        if cur and len(cur) + 1 + len(w) > width:
            lines.append(cur)
            cur = w
        else:
            cur = f"{cur} {w}".strip()
    lines.append(cur)
    return "\n".join(lines)


def paired_figure(tests, source: str, target: Path, alpha: float = 0.05) -> Path:
    """Mean paired difference (A - B) per dimension with its 95% t and bootstrap CIs, per dataset."""
    import matplotlib.pyplot as plt

    t = tests[tests["source"] == source]
    datasets = sorted(t["dataset"].unique())
    pairs = list(dict.fromkeys(zip(t["system_a"], t["system_b"])))
    dims = dimension_order(t["dimension"].unique())
    fig, axes = plt.subplots(1, len(datasets), figsize=(6.8 * len(datasets), 0.6 * len(dims) * len(pairs) + 2.0),
                             squeeze=False, sharey=True)
    for ax, dataset in zip(axes.flat, datasets):
        td = t[t["dataset"] == dataset]
        for k, ((sa, sb), color) in enumerate(zip(pairs, _PALETTE)):
            tp = td[(td["system_a"] == sa) & (td["system_b"] == sb)].set_index("dimension")
            offset = (k - (len(pairs) - 1) / 2) * 0.25
            for i, dim in enumerate(dims):
                if dim not in tp.index:
                    continue
                r = tp.loc[dim]
                y = len(dims) - 1 - i + offset
                ax.plot([r["diff_boot_low"], r["diff_boot_high"]], [y - 0.09, y - 0.09], color=color, lw=1,
                        alpha=0.6, label="95% CI, bootstrap" if (i == 0 and k == 0) else None)
                ax.errorbar(r["mean_diff"], y, xerr=[[r["mean_diff"] - r["diff_ci_low"]],
                                                     [r["diff_ci_high"] - r["mean_diff"]]],
                            fmt="o", color=color, capsize=3, lw=1.6,
                            label=f"{sa} - {sb}, 95% CI (t)" if i == 0 else None)
                sig = r["p_primary"] < alpha if np.isfinite(r["p_primary"]) else False
                agree = r["tests_agree"]
                disagree = isinstance(agree, (bool, np.bool_)) and not bool(agree)
                ax.annotate(f"t: p{_p(r['p_t'])}, W: p{_p(r['p_wilcoxon'])}{' *' if sig else ''}"
                            f"{' (tests disagree)' if disagree else ''}",
                            xy=(1.0, y), xycoords=("axes fraction", "data"), xytext=(4, 0),
                            textcoords="offset points", va="center", fontsize=7.5, color=color)
        ax.axvline(0, color="black", lw=0.8)
        ax.set_yticks(range(len(dims)))
        ax.set_yticklabels([LABELS.get(d, d) for d in reversed(dims)])
        ax.set_xlabel("mean paired difference over clips (A - B)")
        ax.set_title(f"{dataset}", fontsize=11)
        ax.grid(axis="x", alpha=0.3)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.suptitle(f"Paired differences per dimension ({_SOURCE_LABEL.get(source, source)}); t = paired t-test, "
                 f"W = Wilcoxon signed-rank; * primary test p < {alpha:g}; 'tests disagree': one test p < {alpha:g}, "
                 "the other not", fontsize=10)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8.5, frameon=False)
    return save(fig, target, dpi=150, formats=("png",), bbox_inches="tight")[0]


def _p(p: float) -> str:
    """``p`` formatted with its relation sign: ``=0.0497``, ``<0.001``."""
    if not np.isfinite(p):
        return " n/a"
    return "<0.001" if p < 0.001 else f"={p:#.3g}"
