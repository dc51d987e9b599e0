"""Inter-rater reliability of the jury: ICC (pingouin, two-way forms) and Krippendorff's alpha.

Krippendorff's alpha with the interval metric (Krippendorff 2011, "Computing Krippendorff's
alpha-reliability"): for the values pairable within units (units with at least two ratings),

    D_o = 1/n * sum_u [ sum_{i != j in u} (v_i - v_j)^2 / (m_u - 1) ]
    D_e = 1/(n (n - 1)) * sum_{i != j over all pairable values} (v_i - v_j)^2
    alpha = 1 - D_o / D_e

where m_u is the number of ratings of unit u and n the number of pairable values. Missing
ratings are allowed. The sums over ordered pairs use sum_{i != j} (v_i - v_j)^2 = 2 (m S2 - S1^2).
"""
from __future__ import annotations

import warnings

import numpy as np

from soundaq.base.errors import one_line

#: The two-way ICC forms (McGraw & Wong): absolute agreement and consistency, single and average.
ICC_FORMS: dict[str, str] = {
    "ICC(A,1)": "two-way, absolute agreement, single rater (Shrout-Fleiss ICC2)",
    "ICC(A,k)": "two-way, absolute agreement, mean of k raters (ICC2k)",
    "ICC(C,1)": "two-way, consistency, single rater (ICC3)",
    "ICC(C,k)": "two-way, consistency, mean of k raters (ICC3k)",
}
_PINGOUIN_ALIASES = {"ICC(A,1)": ("ICC(A,1)", "ICC2"), "ICC(A,k)": ("ICC(A,k)", "ICC2k"),
                     "ICC(C,1)": ("ICC(C,1)", "ICC3"), "ICC(C,k)": ("ICC(C,k)", "ICC3k")}


def _pair_sum(values: np.ndarray) -> float:
    """sum over ordered pairs i != j of (v_i - v_j)^2."""
    m = values.size
    return float(2.0 * (m * np.sum(values ** 2) - np.sum(values) ** 2))


def krippendorff_alpha_interval(data) -> float:
    """Krippendorff's alpha (interval metric) of a raters x units matrix; NaN marks a missing rating.

    Returns NaN when fewer than two units are pairable or the pairable values do not vary.
    """
    x = np.asarray(data, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"expected a 2-D raters x units matrix, got shape {x.shape}")
    within = 0.0
    pooled: list[np.ndarray] = []
    for u in range(x.shape[1]):
        v = x[:, u]
        v = v[~np.isnan(v)]
        if v.size < 2:
            continue
        # centre per unit for numerical stability; differences are unchanged
        within += _pair_sum(v - v.mean()) / (v.size - 1)
        pooled.append(v)
    if len(pooled) < 2:
        return float("nan")
    allv = np.concatenate(pooled)
    n = allv.size
    d_o = within / n
    d_e = _pair_sum(allv - allv.mean()) / (n * (n - 1))
    if d_e <= 0:
        return float("nan")
    return float(1.0 - d_o / d_e)


def reliability_table(tidy):
    """``reliability.csv`` from per-participant ratings: per source x dataset x dimension x system
    (and ``all``: every caption of the dataset as a unit), the four two-way ICCs and alpha."""
    import pandas as pd
    import pingouin as pg

    part = tidy[tidy["participant"] != "average"]
    rows = []
    cols = ["source", "dataset", "dimension", "system", "measure", "value", "ci_low", "ci_high", "F", "df1",
            "df2", "p", "n_units", "n_raters", "note"]
    if part.empty:
        return pd.DataFrame(columns=cols)
    from soundaq.human_study.jury import dimension_order

    for (source, dataset), g in part.groupby(["source", "dataset"]):
        for dim in dimension_order(g["dimension"].unique()):
            gd = g[g["dimension"] == dim]
            groups = [(s, gs) for s, gs in gd.groupby("system")]
            if len(groups) > 1:
                groups.append(("all", gd))
            for system, gs in groups:
                gs = gs.assign(unit=gs["clip"].astype(str) + " | " + gs["system"].astype(str))
                base = {"source": source, "dataset": dataset, "dimension": dim, "system": system}
                wide = gs.pivot_table(index="participant", columns="unit", values="score", aggfunc="mean")
                alpha = krippendorff_alpha_interval(wide.to_numpy())
                pairable = int((wide.notna().sum(axis=0) >= 2).sum())
                rows.append({**base, "measure": "Krippendorff alpha (interval)", "value": alpha,
                             "n_units": pairable, "n_raters": int(wide.shape[0]),
                             "note": "" if np.isfinite(alpha) else "fewer than 2 pairable units or no variation"})
                complete = wide.dropna(axis=1, how="any")
                note = ""
                icc = None
                if complete.shape[0] < 2 or complete.shape[1] < 2:
                    note = "ICC needs at least 2 raters who rated the same 2 or more units"
                else:
                    long = complete.reset_index().melt(id_vars="participant", var_name="unit", value_name="score")
                    try:
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore")
                            icc = pg.intraclass_corr(long, targets="unit", raters="participant", ratings="score")
                        icc = icc.set_index("Type")
                    except Exception as err:  # noqa: BLE001 - degenerate data: report, do not crash
                        note = f"ICC not computable: {one_line(err)[:160]}"
                        icc = None
                for form in ICC_FORMS:
                    row = {**base, "measure": form, "n_units": int(complete.shape[1]),
                           "n_raters": int(complete.shape[0]), "note": note}
                    if icc is not None:
                        label = next((a for a in _PINGOUIN_ALIASES[form] if a in icc.index), None)
                        if label is not None:
                            r = icc.loc[label]
                            ci = r["CI95"] if "CI95" in r else r.get("CI95%", [np.nan, np.nan])
                            row.update(value=float(r["ICC"]), ci_low=float(ci[0]), ci_high=float(ci[1]),
                                       F=float(r["F"]), df1=float(r["df1"]), df2=float(r["df2"]),
                                       p=float(r["pval"]))
                    rows.append(row)
    return pd.DataFrame(rows, columns=cols)
