"""The scales a net's ratings belong on, and what prediction does with values outside them.

The released nets' quality heads are linear, so on real recordings they can leave the 1-5 rating
scale (and the ISOP/ISOE heads the [-1, 1] range of ISO/TS 12913-3). The raw values are kept
(fidelity to the original); every out-of-scale value is listed in a record's ``out_of_scale``
(:func:`out_of_scale`). With ``clamp=True`` (``soundaq predict --clamp``) the qualities are clipped
to [1, 5] and ISOP/ISOE to [-1, 1] window by window (:func:`clamp_outputs`; the means are taken over
the clipped windows), the raw values stay under ``raw``, and ``ratings`` says ``"clamped"`` (else
``"raw"``): ISOP/ISOE and every figure made from them say which they used.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from soundaq.base.vocab import QUALITIES, RATING_MAX, RATING_MIN
from soundaq.models_zoo.outputs import OUTPUT_KEYS

#: The 8 qualities are rated on ARAUS's 5-point scale; ISOPleasant/ISOEventful (ISO/TS 12913-3) lie in [-1, 1].
QUALITY_SCALE = (RATING_MIN, RATING_MAX)
ISO_SCALE = (-1.0, 1.0)
#: ``ratings`` values: the raw outputs of the net, or outputs clipped to their scales.
RAW, CLAMPED = "raw", "clamped"


def out_of_scale(outputs: Mapping, row: int = 0) -> list[str]:
    """Names of the values of row ``row`` outside their scale.

    Args:
        outputs: ``OUTPUT_KEYS`` arrays (qualities [N, 8], isop [N], isoe [N]; the probabilities are not read).
        row: the row (clip or window) to check.

    Returns:
        The qualities outside [1, 5] (in ``QUALITIES`` order), then ``isop``/``isoe`` outside [-1, 1].
    """
    quals = np.asarray(outputs["qualities"], dtype=np.float64).reshape(-1, len(QUALITIES))[row]
    names = [q for q, v in zip(QUALITIES, quals, strict=True) if not QUALITY_SCALE[0] <= v <= QUALITY_SCALE[1]]
    for key in ("isop", "isoe"):
        v = float(np.asarray(outputs[key], dtype=np.float64).reshape(-1)[row])
        if not ISO_SCALE[0] <= v <= ISO_SCALE[1]:
            names.append(key)
    return names


def clamp_outputs(outputs: Mapping) -> dict:
    """A copy with the qualities clipped to [1, 5] and ISOP/ISOE to [-1, 1] (probabilities unchanged).

    Args:
        outputs: ``OUTPUT_KEYS`` arrays, one row per clip or window; other keys are dropped.

    Returns:
        The ``OUTPUT_KEYS`` arrays, the ratings as float64.
    """
    out = {k: np.asarray(v) for k, v in outputs.items() if k in OUTPUT_KEYS}
    out["qualities"] = np.clip(np.asarray(outputs["qualities"], dtype=np.float64), *QUALITY_SCALE)
    for key in ("isop", "isoe"):
        out[key] = np.clip(np.asarray(outputs[key], dtype=np.float64), *ISO_SCALE)
    return out


#: The largest squared error a prediction inside its scale can make on a label inside it: (5 - 1)^2 for a
#: quality, (1 - (-1))^2 for ISOP/ISOE. A validation MSE above it means the predictions left the scale.
MAX_IN_SCALE_MSE = {"quality": (QUALITY_SCALE[1] - QUALITY_SCALE[0]) ** 2, "iso": (ISO_SCALE[1] - ISO_SCALE[0]) ** 2}


def exploded_validation(scores: Mapping[str, float]) -> dict | None:
    """The first validation error of ``scores`` beyond :data:`MAX_IN_SCALE_MSE`, or None.

    Args:
        scores: metric name -> value (``isop_mse``, ``isoe_mse``, ``aq_mse_mean``, ``mse_<quality>``;
            a ``val/`` prefix is allowed; other names are not read).

    Returns:
        ``{"metric", "value", "bound"}`` for a value that is not finite or exceeds the largest squared
        error any prediction within the scale can make (16 for a quality, 4 for ISOP/ISOE): the
        validation loss exploded, the outputs are far outside the scale. None otherwise.
    """
    import math

    for name, value in scores.items():
        short = name.removeprefix("val/")
        kind = "iso" if short in ("isop_mse", "isoe_mse") else (
            "quality" if short == "aq_mse_mean" or short.removeprefix("mse_") in QUALITIES else None)
        if kind is None or not isinstance(value, (int, float)):
            continue
        if not math.isfinite(value) or value > MAX_IN_SCALE_MSE[kind]:
            return {"metric": short, "value": float(value), "bound": float(MAX_IN_SCALE_MSE[kind])}
    return None

