"""ARAUS component folders (soundscapes/, maskers/, data/*.csv in ARAUS's layout) that tests build.

:func:`build_mix_case` is the case checked against ARAUS's own ``make_augmented_soundscapes``
(run outside the project on these very files): one soundscape, one masker, three responses whose
target masker levels fall on 68.5 dB and 77.5 dB (numpy rounds them half to even) and 71.5 dB.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from soundaq.base.vocab import QUALITIES

RATE, SAMPLES = 44100, 1323000
MIX_SOUNDSCAPE, MIX_MASKER = "R0001_segment_binaural_44100_1.wav", "bird_00001.wav"


def _tone(freq: float, amplitude: float, phase: float = 0.0) -> np.ndarray:
    t = np.arange(SAMPLES) / RATE
    return np.round(amplitude * np.sin(2 * np.pi * freq * t + phase)).astype(np.int16)


def calibration_columns(names, offset: float = 0.3, scale: float = 0.8, levels=range(46, 84)) -> pd.DataFrame:
    """maskers.csv rows: per level L, gain_<L>dB = scale * 10^((L - 70) / 20) and leq_at_gain_<L>dB = L + offset."""
    cal: dict = {"masker": list(names)}
    for level in levels:
        cal[f"gain_{level}dB"] = [scale * 10 ** ((level - 70) / 20)] * len(cal["masker"])
        cal[f"leq_at_gain_{level}dB"] = [level + offset] * len(cal["masker"])
    return pd.DataFrame(cal)


def build_mix_case(root: Path) -> Path:
    """The three-row case whose stimuli ARAUS's function made (see the module docstring)."""
    for d in ("soundscapes", "maskers", "data"):
        (root / d).mkdir(parents=True, exist_ok=True)
    stereo = np.stack([_tone(440, 8000), _tone(1000, 6000, 0.3)], axis=1)
    sf.write(root / "soundscapes" / MIX_SOUNDSCAPE, stereo, RATE, subtype="PCM_16")
    sf.write(root / "maskers" / MIX_MASKER, _tone(250, 12000), RATE, subtype="PCM_16")
    pd.DataFrame({"soundscape": [MIX_SOUNDSCAPE], "gain_s": [1.37], "insitu_leq": [71.5]}).to_csv(
        root / "data" / "soundscapes.csv", index=False)
    calibration_columns([MIX_MASKER]).to_csv(root / "data" / "maskers.csv", index=False)
    rows = [{"participant": "ARAUS_00042", "fold_r": 2, "soundscape": MIX_SOUNDSCAPE, "masker": MIX_MASKER,
             "smr": smr, "stimulus_index": i + 1, **{q: 3 for q in QUALITIES}} for i, smr in enumerate((3, -6, 0))]
    pd.DataFrame(rows).to_csv(root / "data" / "responses.csv", index=False)
    return root
