"""Mixing an ARAUS stimulus from its components against decoding a prepared FLAC stimulus.

    python -m soundaq.benchmark.perf.araus_mixing [--stimuli 6] [--repeat 5] [--features] [--json FILE]

``--data araus --araus DIR`` mixes each stimulus in memory when its features are computed
(``gain_s * soundscape + gain_m * masker``, soundaq.models_zoo.data.araus_components.mix), instead of
reading a stimulus file. Issue 28's target: the mixing must cost less than decoding a stimulus. Both
paths run here side by side on the same stimuli, in one run: components as ARAUS ships them (30-s
soundscapes, 2 channels, and maskers, 1 channel, 16-bit WAV at 44.1 kHz; written here from noise) and
the same stimuli as 16-bit FLAC (what ``soundaq data araus-stimuli --format flac`` writes); each path
ends with the mono float64 signal the feature pipeline takes. Times are CPU (process) time, best of
``--repeat`` rounds over all stimuli (the standard library's timeit with ``time.process_time``), so the
other load of a shared machine inflates them little; the ratio comes from one run.
``--features`` also times the log-mel and ISO 532-1 features of one stimulus, for scale.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import timeit
from pathlib import Path

import numpy as np


def write_components(folder: Path, count: int, seed: int = 0) -> list:
    """``count`` stimulus plans over written soundscape/masker WAVs and their FLAC stimuli (returned as
    ``[(plan, flac path)]``).
    """
    import soundfile as sf

    from soundaq.models_zoo.data import araus_components as ac

    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        scape, masker = folder / f"R{i:04d}_segment_binaural_44100_1.wav", folder / f"bird_{i:05d}.wav"
        sf.write(scape, np.clip(0.1 * rng.standard_normal((ac.STIMULUS_SAMPLES, 2)), -1, 1), ac.SAMPLE_RATE,
                 subtype="PCM_16")
        sf.write(masker, np.clip(0.1 * rng.standard_normal((ac.STIMULUS_SAMPLES, 1)), -1, 1), ac.SAMPLE_RATE,
                 subtype="PCM_16")
        plan = ac.StimulusPlan(clip=f"stimulus_{i}", row=i + 1, soundscape=scape, masker=masker,
                               gain_s=0.8 + 0.05 * i, gain_m=0.3)
        flac = folder / f"stimulus_{i}.flac"
        sf.write(flac, np.clip(ac.mix(plan), -1, 1), ac.SAMPLE_RATE, format="FLAC", subtype="PCM_16")
        out.append((plan, flac))
    return out


def measure(stimuli: list, repeat: int, features: bool) -> dict:
    """Seconds per stimulus of each path (best round), clips per second and the mixing/decoding ratio."""
    import soundfile as sf

    from soundaq.models_zoo.data import araus_components as ac
    from soundaq.models_zoo.features.opener import downmix

    def mixed() -> None:
        for plan, _ in stimuli:
            downmix(ac.mix(plan))

    def decoded() -> None:
        for _, flac in stimuli:
            data, _ = sf.read(str(flac), dtype="float64", always_2d=True)
            downmix(data)

    n = len(stimuli)
    mix_s = min(timeit.repeat(mixed, number=1, repeat=repeat, timer=time.process_time)) / n
    decode_s = min(timeit.repeat(decoded, number=1, repeat=repeat, timer=time.process_time)) / n
    out = {"stimuli": n, "repeat": repeat, "mix_s": round(mix_s, 4), "decode_flac_s": round(decode_s, 4),
           "mix_clips_per_s": round(1 / mix_s, 1), "decode_clips_per_s": round(1 / decode_s, 1),
           "mix_over_decode": round(mix_s / decode_s, 3)}
    if features:
        from soundaq.models_zoo.features import clip_features

        signal = downmix(ac.mix(stimuli[0][0]))
        out["features_s"] = round(min(timeit.repeat(lambda: clip_features(signal, ac.SAMPLE_RATE), number=1,
                                                    repeat=max(1, repeat // 2), timer=time.process_time)), 3)
    return out


def main(argv: list[str] | None = None) -> int:
    """Build the stimuli in a temporary folder, time both paths, print the numbers (and write JSON)."""
    p = argparse.ArgumentParser(prog="python -m soundaq.benchmark.perf.araus_mixing",
                                description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--stimuli", type=int, default=6, help="stimuli timed per round (default 6)")
    p.add_argument("--repeat", type=int, default=5, help="rounds; the best is kept (default 5)")
    p.add_argument("--features", action="store_true", help="also time one stimulus' features, for scale")
    p.add_argument("--json", type=Path, default=None, help="also write the numbers to this JSON file")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        stimuli = write_components(Path(tmp), args.stimuli)
        result = measure(stimuli, args.repeat, args.features)
    print(f"mix from components: {result['mix_s'] * 1000:.1f} ms per stimulus ({result['mix_clips_per_s']} clips/s)")
    print(f"decode 16-bit FLAC:  {result['decode_flac_s'] * 1000:.1f} ms per stimulus "
          f"({result['decode_clips_per_s']} clips/s)")
    print(f"mixing / decoding: {result['mix_over_decode']:.2f}x (target: below 1)")
    if "features_s" in result:
        print(f"features of one stimulus (log-mel + ISO 532-1), for scale: {result['features_s']:.2f} s")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
