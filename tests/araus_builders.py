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


#: The synthetic component folder's scenes per soundscape position and events per masker class.
SCENE_OF = ("park", "street_traffic", "public_square")
MASKER_CLASSES = {"bird": ("Bird", "Animal"), "traffic": ("Traffic", "Sounds of things"),
                  "water": ("Water", "Natural sounds")}


def _noise(rng, cutoff_hz: float, rms: float, channels: int) -> np.ndarray:
    """Low-passed Gaussian noise [n, channels] as int16 at ``rms`` full scale (a one-pole filter in FFT form)."""
    spectrum = np.fft.rfft(rng.standard_normal((channels, SAMPLES)), axis=1)
    f = np.fft.rfftfreq(SAMPLES, 1 / RATE)
    x = np.fft.irfft(spectrum / np.sqrt(1 + (f / cutoff_hz) ** 2), n=SAMPLES, axis=1).T
    x *= rms / np.sqrt(np.mean(x ** 2))
    return np.round(x * 32767).astype(np.int16)


def build_araus_folder(root: Path, soundscapes_per_fold: int = 2, participants_per_fold: int = 2,
                       stimuli_per_participant: int = 3, seed: int = 0) -> Path:
    """A small ARAUS download: ``soundscapes_per_fold`` base recordings and as many maskers per fold 0-5
    (disjoint across folds, as ARAUS's), responses of ``participants_per_fold`` participants per fold
    (ratings 1-5 that follow the scene and the SMR, with rater noise), plus ``root/labels``: SoundSCaper-style
    label files for those clips, split as the paper's split does (fold 0 and part of fold 2 in test,
    part of fold 1 in validation, the rest of folds 1-5 in training)."""
    from soundaq.base.vocab import EVENT_COLUMNS, EVENTS, iso_coordinates

    rng = np.random.default_rng(seed)
    for d in ("soundscapes", "maskers", "data", "labels"):
        (root / d).mkdir(parents=True, exist_ok=True)
    scapes, maskers, rows, labels = [], [], [], []
    classes = list(MASKER_CLASSES)
    for fold in range(6):
        for j in range(soundscapes_per_fold):
            name = f"R{fold * 10 + j + 1:04d}_segment_binaural_44100_{j % 2 + 1}.wav"
            scene = SCENE_OF[(fold + j) % 3]
            cutoff = {"park": 3000.0, "street_traffic": 300.0, "public_square": 1200.0}[scene]
            sf.write(root / "soundscapes" / name, _noise(rng, cutoff, 0.03, 2), RATE, subtype="PCM_16")
            scapes.append({"soundscape": name, "fold_s": fold, "gain_s": 1.0 + 0.1 * j,
                           "insitu_leq": 64.0 + 3 * j + fold * 0.5, "scene": scene})
            kind = classes[(fold + j) % 3]
            mname = f"{kind}_{fold * 10 + j + 1:05d}.wav"
            sf.write(root / "maskers" / mname, _noise(rng, {"bird": 6000.0, "traffic": 200.0, "water": 2000.0}[kind],
                                                      0.05, 1)[:, 0], RATE, subtype="PCM_16")
            maskers.append({"masker": mname, "fold_m": fold, "class": kind})
        for p in range(participants_per_fold):
            pid = fold * 100 + p + 1
            for s in range(stimuli_per_participant):
                sc = scapes[-soundscapes_per_fold + (s % soundscapes_per_fold)]
                mk = maskers[-soundscapes_per_fold + ((s + p) % soundscapes_per_fold)]
                smr = int(rng.choice([-6, -3, 0, 3, 6]))
                pleasant = np.clip(2 + (sc["scene"] == "park") * 2 + (mk["class"] == "bird") - (smr < 0), 1, 5)
                base = {q: 3.0 for q in QUALITIES} | {"pleasant": float(pleasant), "annoying": 6.0 - pleasant,
                                                      "calm": float(pleasant), "chaotic": 6.0 - pleasant}
                ratings = {q: int(np.clip(round(v + rng.normal(0, 0.6)), 1, 5)) for q, v in base.items()}
                rows.append({"participant": f"ARAUS_{pid:05d}", "fold_r": fold, "soundscape": sc["soundscape"],
                             "masker": mk["masker"], "smr": smr, "stimulus_index": s + 1, "time_taken": 30.0,
                             **ratings})
                split = ("test" if fold == 0 or (fold == 2 and p == 1) else
                         "validation" if fold == 1 and p == 1 else "training")
                events = [e for e in EVENTS if e in MASKER_CLASSES[mk["class"]]]
                labels.append({"clip": f"fold_{fold}_participant_{pid:05d}_stimulus_{s + 1:02d}", "split": split,
                               "scene": sc["scene"], "events": events, "ratings": ratings})
    pd.DataFrame(scapes).drop(columns="scene").to_csv(root / "data" / "soundscapes.csv", index=False)
    cal = calibration_columns([m["masker"] for m in maskers])
    pd.concat([pd.DataFrame(maskers), cal.drop(columns="masker")], axis=1).to_csv(root / "data" / "maskers.csv",
                                                                                 index=False)
    pd.DataFrame(rows).to_csv(root / "data" / "responses.csv", index=False)
    assert len(EVENT_COLUMNS) == len(EVENTS)
    for split in ("training", "validation", "test"):
        part = [x for x in labels if x["split"] == split]
        files = {"audio_file_ids": [x["clip"] for x in part], "acoustic_scene_labels": [x["scene"] for x in part],
                 "audio_event_labels": ["\t".join(x["events"]) for x in part],
                 "PAQ_8D_AQs": [" ".join(str(x["ratings"][q]) for q in QUALITIES) for x in part],
                 "ISOP_ISOE": [" ".join(f"{v:.6f}" for v in iso_coordinates(*(x["ratings"][q] for q in QUALITIES)))
                               for x in part]}
        for role, lines in files.items():
            (root / "labels" / f"{split}_set_{role}.txt").write_text("\n".join(lines) + "\n")
    return root
