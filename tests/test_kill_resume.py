"""Kind 2 of issue 12, end to end: ``train``, ``leaderboard``, ``features`` and ``jury`` runs are killed
(SIGKILL: no handler runs, no file is closed) at seeded random moments, then run again to the end;
the outputs must equal those of an uninterrupted run (metric columns, arrays, tables: not timestamps,
timings or checkpoint hashes).

The uninterrupted reference and the finishing run go in-process (fast); each killed run is a real
``python -m soundaq`` process. The fast suite kills each command once; ``-m slow`` kills each three
times in a row before finishing (so a run resumes from a run that itself resumed).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from input_builders import noise_wav, write_features, write_jury, write_label_folder

from soundaq.benchmark.cli import main

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Case:
    """One command: its arguments for an output folder, and how to compare two output folders."""

    argv: Callable[[Path], list[str]]
    compare: Callable[[Path, Path], None]


def _env(cache: Path) -> dict:
    return {**os.environ, "SOUNDAQ_CACHE": str(cache), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _killed_run(argv: list[str], env: dict, delay: float, log: Path) -> bool:
    """Start ``python -m soundaq ARGV``, SIGKILL it after ``delay`` seconds; True if it was still running."""
    with open(log, "ab") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "soundaq", *argv], env=env, cwd=ROOT, stdout=fh,
                                stderr=subprocess.STDOUT)
        try:
            proc.wait(timeout=delay)
            return False
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True


def _run(argv: list[str], env: dict, log: Path) -> float:
    """Run ``python -m soundaq ARGV`` to the end; returns its wall-clock seconds."""
    t = time.perf_counter()
    with open(log, "ab") as fh:
        rc = subprocess.run([sys.executable, "-m", "soundaq", *argv], env=env, cwd=ROOT, stdout=fh,
                            stderr=subprocess.STDOUT).returncode
    assert rc == 0, log.read_text()[-2000:]
    return time.perf_counter() - t


def interrupted_equals_uninterrupted(case: Case, tmp: Path, cache: Path, kills: int, seed: int) -> dict:
    """An uninterrupted run (a real process, to time it); then, in another folder, ``kills`` runs each
    killed at a seeded random moment of that time span and one run to the end; compare the two
    folders. Returns counts for the report (kills that hit a running process)."""
    env = _env(cache)
    seconds = _run(case.argv(tmp / "reference"), env, tmp / "reference.log")
    rng = np.random.default_rng(seed)
    hit = 0
    for _ in range(kills):
        hit += _killed_run(case.argv(tmp / "resumed"), env, rng.uniform(0.1, 0.9) * seconds, tmp / "killed.log")
    assert main(case.argv(tmp / "resumed")) == 0, (tmp / "killed.log").read_text()[-2000:]
    case.compare(tmp / "reference", tmp / "resumed")
    return {"kills": kills, "interrupted": hit, "seconds": round(seconds, 1)}


# ------------------------------------------------------------------------------------------ cases
def _frames_equal(a: Path, b: Path, drop=()) -> None:
    fa, fb = pd.read_csv(a), pd.read_csv(b)
    pd.testing.assert_frame_equal(fa.drop(columns=[c for c in drop if c in fa]), fb.drop(columns=[c for c in drop
                                                                                                   if c in fb]))


def _train_case(tmp: Path) -> Case:
    labels = write_label_folder(tmp / "labels", per_split=4)
    feats = write_features(labels, tmp / "features")

    def argv(out: Path) -> list[str]:
        return ["train", "--model", "Baseline_CNN", "--data", "araus", "--labels", str(labels), "--features",
                str(feats), "--out", str(out), "--batch-size", "2", "--limit-train-batches", "2",
                "--limit-val-batches", "1", "--accelerator", "cpu", "--no-progress", "--max-epochs", "2",
                "--cache-dir", f"{out}_cache"]   # each run its own statistics cache: the killed runs do the work

    def compare(a: Path, b: Path) -> None:
        import torch

        ra, rb = (json.loads((x / "train.json").read_text()) for x in (a, b))
        for key in ("best_score", "epochs", "stopped_early", "metrics", "params"):
            assert ra[key] == rb[key], key
        assert Path(ra["best_checkpoint"]).name == Path(rb["best_checkpoint"]).name
        sa, sb = (torch.load(r["best_checkpoint"], map_location="cpu", weights_only=False)["state_dict"]
                  for r in (ra, rb))
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)

    return Case(argv, compare)


def _leaderboard_case(tmp: Path, models: tuple[str, ...] = ("Baseline_CNN",)) -> Case:
    def argv(out: Path) -> list[str]:
        return ["leaderboard", "--embedded-clips", "12", "--models", ",".join(models), "--max-epochs", "2",
                "--batch-size", "4", "--resamples", "50", "--no-correlation",
                "--accelerator", "cpu", "--no-progress", "--out", str(out)]

    def compare(a: Path, b: Path) -> None:
        _frames_equal(a / "leaderboard.csv", b / "leaderboard.csv",
                      drop=("train_seconds", "clips_per_second", "checkpoint_sha256"))
        for m in models:
            _frames_equal(a / "predictions" / f"{m}.csv", b / "predictions" / f"{m}.csv")
        if len(models) > 1:
            _frames_equal(a / "comparisons.csv", b / "comparisons.csv")

    return Case(argv, compare)


def _features_case(tmp: Path) -> Case:
    wavs = [noise_wav(tmp / f"clip{i}.wav", seconds=30.0, seed=i) for i in range(2)]

    def argv(out: Path) -> list[str]:
        return ["features", *map(str, wavs), "--out", str(out), "--cache", f"{out}_cache"]   # not the reference's

    def compare(a: Path, b: Path) -> None:
        for w in wavs:
            with np.load(a / f"{w.stem}.npz") as x, np.load(b / f"{w.stem}.npz") as y:
                assert sorted(x.files) == sorted(y.files)
                for k in x.files:
                    np.testing.assert_array_equal(x[k], y[k])
        ma, mb = (json.loads((x / "manifest.json").read_text()) for x in (a, b))
        assert ma["summary"] == mb["summary"] and ma["parameters"] == mb["parameters"]
        assert [(e["output"], e["status"], e["windows"]) for e in ma["files"]] == \
               [(e["output"], e["status"], e["windows"]) for e in mb["files"]]

    return Case(argv, compare)


def _jury_case(tmp: Path) -> Case:
    _books, key = write_jury(tmp / "jury", participants=4, clips=6)

    def argv(out: Path) -> list[str]:
        return ["jury", str(tmp / "jury"), "--key", str(key), "--out", str(out), "--resamples", "200"]

    def compare(a: Path, b: Path) -> None:
        for name in ("ratings", "clip_scores", "summary", "tests", "reliability", "issues"):
            _frames_equal(a / f"{name}.csv", b / f"{name}.csv")
        for sheet in ("ratings", "summary", "tests"):
            pd.testing.assert_frame_equal(pd.read_excel(a / "jury_results.xlsx", sheet_name=sheet),
                                          pd.read_excel(b / "jury_results.xlsx", sheet_name=sheet))
        assert sorted(p.name for p in (a / "figures").iterdir()) == sorted(p.name for p in (b / "figures").iterdir())

    return Case(argv, compare)


CASES = {"train": _train_case, "leaderboard": lambda tmp: _leaderboard_case(tmp, ("Baseline_CNN", "AD_CNN")),
         "features": _features_case, "jury": _jury_case}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("command", [pytest.param("leaderboard", marks=pytest.mark.slow), "jury"])   # leaderboard: 26 s
def test_one_kill_then_rerun_equals_uninterrupted(command, tmp_path, soundaq_cache, monkeypatch):
    """The fast suite's share: the leaderboard (which trains through soundaq train's code, so its
    checkpoints, done.json and predictions) with one model, and the jury, each killed once."""
    monkeypatch.setenv("SOUNDAQ_CACHE", str(soundaq_cache))
    case = _leaderboard_case(tmp_path) if command == "leaderboard" else _jury_case(tmp_path)
    counts = interrupted_equals_uninterrupted(case, tmp_path, soundaq_cache, kills=1, seed=12)
    print(f"{command}: {counts}")


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("command", list(CASES))
def test_three_kills_then_rerun_equals_uninterrupted(command, seed, tmp_path, soundaq_cache, monkeypatch):
    monkeypatch.setenv("SOUNDAQ_CACHE", str(soundaq_cache))
    counts = interrupted_equals_uninterrupted(CASES[command](tmp_path), tmp_path, soundaq_cache, kills=3,
                                              seed=seed)
    print(f"{command} seed {seed}: {counts}")
    assert counts["interrupted"] >= 1
