"""The International Soundscape Database (ISD) bundled with soundscapy, as a correlation source.

soundscapy ships ISD v1.0 (3,589 on-site survey responses from 26 locations in Europe and China;
Mitchell et al., Zenodo 10.5281/zenodo.6331810). Each response rates the 8 perceived affective
qualities (1-5, ISO/TS 12913-2 method A) and how much four kinds of sound source dominate
("Not at all" 1 ... "Dominates completely" 5): columns ``ssi01``..``ssi04`` of the file, which
soundscapy's Likert vocabulary calls ``traffic_noise``, ``other_noise``, ``human_sounds`` and
``natural_sounds``. We keep soundscapy's names and compute ISOPleasant/ISOEventful with the one
formula of :func:`soundaq.base.vocab.iso_coordinates` (equal to soundscapy's ``add_iso_coords``).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from soundaq.base.errors import one_line
from soundaq.base.vocab import QUALITIES, from_soundscapy, iso_coordinates
from soundaq.evaluation.correlation import QUALITY_ORDER, CorrelationError, Source

#: ISD file column -> soundscapy's name for the perceived sound-source dominance items.
SOURCE_COLUMNS: dict[str, str] = {
    "ssi01": "traffic_noise",
    "ssi02": "other_noise",
    "ssi03": "human_sounds",
    "ssi04": "natural_sounds",
}
#: Display names of the sources, in the questionnaire's order.
SOURCE_LABELS: dict[str, str] = {
    "traffic_noise": "Traffic noise",
    "other_noise": "Other noise",
    "human_sounds": "Human sounds",
    "natural_sounds": "Natural sounds",
}
ID_COLUMNS: dict[str, str] = {"LocationID": "location", "SessionID": "session", "GroupID": "group_id",
                              "RecordID": "record", "Language": "language"}


def _soundscapy():
    try:
        import soundscapy  # noqa: F401
        from soundscapy.databases import isd
    except ImportError as exc:
        raise CorrelationError(f"the ISD source needs soundscapy ({one_line(exc)}); install it with "
                               "`pip install soundscapy`, or pass --predictions FILE or --labels DIR") from None
    return isd


def load_isd(validate: bool = True) -> tuple[pd.DataFrame, dict]:
    """The bundled ISD as a tidy frame: ids, the 4 source columns, the 8 qualities, isop, isoe.

    With ``validate`` (soundscapy's own ``isd.validate``), responses with a missing or
    out-of-range quality, or the same non-neutral answer to all 8, are dropped, as soundscapy's
    analyses do. Returns ``(frame, info)`` where ``info`` counts raw and kept responses.
    """
    from importlib.metadata import version

    isd = _soundscapy()
    soundscapy_version = version("soundscapy")      # what soundscapy.__version__ says (its stub omits it)
    raw = isd.load()
    n_raw = len(raw)
    excluded = 0
    if validate:
        raw, excl = isd.validate(raw)
        excluded = 0 if excl is None else len(excl)
    data = from_soundscapy(raw)
    needed = [*ID_COLUMNS, *SOURCE_COLUMNS, *QUALITIES]
    missing = [c for c in needed if c not in data.columns]
    if missing:
        raise CorrelationError(f"soundscapy {soundscapy_version}'s ISD lacks column(s) {', '.join(missing)}; "
                               "install soundscapy 0.8 (`pip install 'soundscapy>=0.8,<0.9'`)")
    frame = data[needed].rename(columns={**ID_COLUMNS, **SOURCE_COLUMNS}).reset_index(drop=True)
    for col in [*SOURCE_COLUMNS.values(), *QUALITIES]:
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(np.float64)
    frame["location"] = frame["location"].astype(str)
    isop, isoe = iso_coordinates(*(frame[q] for q in QUALITIES))
    incomplete = frame[list(QUALITIES)].isna().any(axis=1).to_numpy()
    # as soundscapy: a response missing any of the 8 ratings has no ISO coordinates (ISOP alone
    # would not need eventful/uneventful, but a partial circumplex answer is not comparable)
    frame["isop"] = np.where(incomplete, np.nan, isop)
    frame["isoe"] = np.where(incomplete, np.nan, isoe)
    info = {"dataset": "ISD v1.0 (bundled with soundscapy)", "soundscapy": soundscapy_version,
            "responses": n_raw, "kept": len(frame), "excluded_by_validate": excluded,
            "validated": validate, "locations": int(frame["location"].nunique())}
    return frame, info


def isd_source(validate: bool = True, synthetic: bool = False) -> Source:
    """Perceived sound-source dominance against the 8 qualities, overall and per location."""
    frame, info = load_isd(validate)
    title = f"ISD survey (soundscapy {info['soundscapy']}), {info['kept']:,} responses"
    return Source(kind="isd", title=title, frame=frame,
                  x={SOURCE_LABELS[c]: c for c in SOURCE_COLUMNS.values()},
                  y={q: q for q in QUALITY_ORDER}, x_name="perceived sound-source dominance",
                  group_col="location", group_name="location", synthetic=synthetic, details=info)
