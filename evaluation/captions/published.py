"""The release's per-clip text-metric workbook (``NLP_metrics.xlsx``) and reproduction checks.

Layout (Sheet1): a row naming the systems over groups of columns (``Soundscaper``, ``Gama``,
``Qwen-audio``, ``P-LocalAFT``, ``ConvNeXt-Trans 0329``), a row naming the metrics of each group
(``BLEU``, ``ROUGE-L Recall``, ``ROUGE-L Precision``, ``ROUGE-L F1 Score``, ``METEOR``, ``CIDEr``),
then one row per clip of the listening test in the order of the clips' numbers (row i is the clip
``i.wav``/``i.flac``), then a ``mean`` row. The workbook is read by these labels, not by cell
addresses.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from soundaq.base.errors import UserError

#: Header text in the workbook -> metric name of the paper flavour.
METRIC_HEADERS = {"bleu": "BLEU", "rouge-l recall": "ROUGE-L Recall", "rouge-l precision": "ROUGE-L Precision",
                  "rouge-l f1 score": "ROUGE-L F1", "rouge-l f1": "ROUGE-L F1", "meteor": "METEOR", "cider": "CIDEr"}
TOLERANCE = 1e-6


def read_nlp_metrics(path: Path | str):
    """Per-clip scores of every system in the workbook.

    Returns:
        DataFrame with columns system (as written, stripped), index (1-based clip number), metric
        (paper-flavour name), value.

    Raises:
        UserError: unreadable file or no system/metric header rows.
    """
    import pandas as pd

    path = Path(path)
    from soundaq.base.xlsx import WorkbookError, open_workbook

    try:
        wb = open_workbook(path)
    except WorkbookError as err:
        raise UserError(f"{err} (--compare takes the release's NLP_metrics.xlsx)") from None
    ws = wb.worksheets[0]
    rows = [list(r) for r in ws.iter_rows(values_only=True)]
    wb.close()
    metric_row = next((i for i, r in enumerate(rows)
                       if sum(isinstance(v, str) and v.strip().lower() in METRIC_HEADERS for v in r) >= 3), None)
    if metric_row is None or metric_row == 0:
        raise UserError(f"{path}: no row of metric names (BLEU, ROUGE-L Recall, ...) under a row of system names")
    systems_row = rows[metric_row - 1]
    columns: dict[int, tuple[str, str]] = {}
    system = None
    for c, v in enumerate(rows[metric_row]):
        if c < len(systems_row) and isinstance(systems_row[c], str) and systems_row[c].strip():
            system = re.sub(r"\s+", " ", systems_row[c]).strip()
        if isinstance(v, str) and v.strip().lower() in METRIC_HEADERS and system:
            columns[c] = (system, METRIC_HEADERS[v.strip().lower()])
    records = []
    index = 0
    for r in rows[metric_row + 1:]:
        if any(isinstance(v, str) and v.strip().lower() == "mean" for v in r):
            break
        vals = [r[c] if c < len(r) else None for c in columns]
        if all(v is None for v in vals):
            continue
        index += 1
        for c, (system, metric) in columns.items():
            v = r[c] if c < len(r) else None
            records.append({"system": system, "index": index, "metric": metric,
                            "value": float(v) if isinstance(v, (int, float)) else np.nan})
    return pd.DataFrame(records, columns=["system", "index", "metric", "value"])


def clip_number(clip: str) -> int | None:
    """The number of a listening-test clip id (``'37.wav'`` -> 37), or None."""
    m = re.fullmatch(r"\s*(\d+)(?:\.\w+)?\s*", str(Path(str(clip)).name))
    return int(m.group(1)) if m else None


def reproduction(per_clip, published, tolerance: float = TOLERANCE):
    """Compare our paper-flavour per-clip scores with the published ones, clip by clip.

    Args:
        per_clip: per_clip table of :func:`soundaq.evaluation.captions.scoring.score_captions`.
        published: :func:`read_nlp_metrics` table; its systems are matched to ours by name
            (case-insensitive, ``Soundscaper`` = ``SoundSCaper``), its rows to clips by number.
        tolerance: the largest absolute difference that still counts as a match.

    Returns:
        DataFrame: system, clip, metric (labelled), ours, published, abs_diff, match (abs_diff <= tolerance).
    """
    import pandas as pd

    ours_systems = {s.casefold(): s for s in per_clip["system"].unique()}
    rows = []
    for (system, metric), g in published.groupby(["system", "metric"], sort=False):
        ours = ours_systems.get(system.casefold())
        lab = f"paper/{metric}"
        if ours is None or lab not in per_clip.columns:
            continue
        pub = dict(zip(g["index"], g["value"]))
        sub = per_clip[per_clip["system"] == ours]
        for clip, value in zip(sub["clip"], sub[lab]):
            n = clip_number(clip)
            if n is None or n not in pub:
                continue
            diff = abs(float(value) - float(pub[n]))
            rows.append({"system": ours, "clip": clip, "metric": lab, "ours": float(value), "published": float(pub[n]),
                         "abs_diff": diff, "match": bool(diff <= tolerance)})
    return pd.DataFrame(rows, columns=["system", "clip", "metric", "ours", "published", "abs_diff", "match"])
