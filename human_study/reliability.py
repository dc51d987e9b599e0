"""Inter-rater reliability of the jury: ICC (pingouin, two-way forms) and Krippendorff's alpha.

Krippendorff's alpha with the interval metric comes from the ``krippendorff`` package
(``krippendorff.alpha(reliability_data=..., level_of_measurement="interval")``; Krippendorff 2011,
"Computing Krippendorff's alpha-reliability"): for the values pairable within units (units with at
least two ratings, n values in all), alpha = 1 - D_o / D_e with

    D_o = 1/n * sum_u [ sum_{i != j in u} (v_i - v_j)^2 / (m_u - 1) ]
    D_e = 1/(n (n - 1)) * sum_{i != j over all pairable values} (v_i - v_j)^2

where m_u is the number of ratings of unit u. Missing ratings are allowed.
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
#: Largest units x values x values tensor the krippendorff package may build (its coincidence matrix
#: holds one values x values block per unit): 2e7 float64 = 160 MB per temporary, about 2 s on the
#: shared 2-core machine. Questionnaire ratings on the scales' steps have a few dozen distinct values.
KRIPPENDORFF_MAX_ELEMENTS = 20_000_000


def krippendorff_alpha_interval(data) -> float:
    """Krippendorff's alpha (interval metric) of a raters x units matrix; NaN marks a missing rating.

    Args:
        data: ``[raters, units]`` ratings (array-like of floats), NaN where a rater did not rate a unit.

    Returns:
        alpha in (-inf, 1]; NaN when fewer than two units are pairable (rated at least twice) or
        the pairable values do not vary.

    Raises:
        ValueError: ``data`` is not 2-D, or its pairable values are so many distinct numbers that
            the package's units x values x values coincidence tensor exceeds
            :data:`KRIPPENDORFF_MAX_ELEMENTS` (the message says how many).

    Source: ``krippendorff.alpha(level_of_measurement="interval")`` on the pairable units (units
    rated once add nothing to D_o or D_e, so leaving them out changes no digit).
    """
    import krippendorff

    x = np.asarray(data, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"expected a 2-D raters x units matrix, got shape {x.shape}")
    x = x[:, (~np.isnan(x)).sum(axis=0) >= 2]
    if x.shape[1] < 2:
        return float("nan")
    n_values = np.unique(x[~np.isnan(x)]).size
    if x.shape[1] * n_values ** 2 > KRIPPENDORFF_MAX_ELEMENTS:
        raise ValueError(f"{n_values} distinct rating values over {x.shape[1]} units would need a "
                         f"{x.shape[1]}x{n_values}x{n_values} coincidence tensor in the krippendorff package "
                         f"(limit {KRIPPENDORFF_MAX_ELEMENTS:.0e}); round the ratings to the scale's steps")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            alpha = krippendorff.alpha(reliability_data=x, level_of_measurement="interval")
    except ValueError:      # one value in the domain: nothing varies
        return float("nan")
    return float(alpha) if np.isfinite(alpha) else float("nan")


def reliability_table(tidy):
    """``reliability.csv`` from per-participant ratings: per source x dataset x dimension x system
    (and ``all``: every caption of the dataset as a unit), the four two-way ICCs and alpha.
    """
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
                try:
                    alpha = krippendorff_alpha_interval(wide.to_numpy())
                    note = "" if np.isfinite(alpha) else "fewer than 2 pairable units or no variation"
                except ValueError as err:
                    alpha, note = float("nan"), f"alpha not computed: {err}"
                pairable = int((wide.notna().sum(axis=0) >= 2).sum())
                rows.append({**base, "measure": "Krippendorff alpha (interval)", "value": alpha,
                             "n_units": pairable, "n_raters": int(wide.shape[0]), "note": note})
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
