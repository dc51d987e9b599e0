"""Repeated runs (``soundaq leaderboard --seeds``): per-seed units, summaries over seeds, resume, the report."""
from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from leaderboard_builders import seeded_predictions_unit

from soundaq.benchmark import leaderboard as lb
from soundaq.benchmark.leaderboard.seeds import t_interval
from soundaq.benchmark.leaderboard.settings import LeaderboardError, parse_seeds

ROOT = Path(__file__).resolve().parents[1]


def _runner(calls: list, interrupt_at: tuple[int, str] | None = None, fail: tuple[int, str] | None = None):
    """Writes a predictions table that depends on the model and the training seed (no training)."""

    def runner(s, run, model, datamodule, data_label):
        calls.append((s.seed, model))
        if (s.seed, model) == interrupt_at:
            raise KeyboardInterrupt
        if (s.seed, model) == fail:
            raise RuntimeError("CUDA out of memory")
        return seeded_predictions_unit(s, run, model, datamodule, data_label, train_seconds=1.0 + s.seed)

    return runner


def _settings(out, cache, models, seeds, **kw):
    return lb.Settings(out=out, models=models, cache_dir=cache, n_resamples=40, progress=False, seed=0,
                       embedded_clips=24, correlate=False, seeds=seeds, **kw)


def test_seed_lists_parse_and_bad_ones_name_the_option():
    assert parse_seeds("0-9") == list(range(10))
    assert parse_seeds("0,3,5") == [0, 3, 5] and parse_seeds(" 4 , 1-2") == [4, 1, 2]
    for bad in ("", "a", "1.5", "-1", "3-1", "0,0", "0-2,1"):
        with pytest.raises(LeaderboardError, match="--seeds") as err:
            parse_seeds(bad)
        assert "fix:" in str(err.value) and "\n" not in str(err.value)


def test_t_interval_is_scipys_student_interval():
    from scipy import stats

    values = [0.61, 0.64, 0.58, 0.66]
    mean, sd, lo, hi = t_interval(values)
    assert mean == pytest.approx(np.mean(values)) and sd == pytest.approx(np.std(values, ddof=1))
    half = stats.t.ppf(0.975, 3) * sd / 2.0
    assert (lo, hi) == pytest.approx((mean - half, mean + half))
    assert math.isnan(t_interval([0.5])[1]) and t_interval([0.5, 0.5])[1:] == (0.0, 0.5, 0.5)


def test_grid_writes_seed_rows_and_summaries_and_resumes_after_an_interruption(soundaq_cache, tmp_path):
    models, seeds = ["AD_CNN", "Baseline_CNN", "YAMNet"], [0, 1, 2]
    calls: list = []
    with pytest.raises(KeyboardInterrupt):
        lb.run_leaderboard(_settings(tmp_path / "a", soundaq_cache, models, seeds),
                           model_runner=_runner(calls, interrupt_at=(1, "Baseline_CNN")))
    assert calls == [(0, "AD_CNN"), (0, "Baseline_CNN"), (0, "YAMNet"), (1, "AD_CNN"), (1, "Baseline_CNN")]
    calls.clear()
    out = lb.run_leaderboard(_settings(tmp_path / "a", soundaq_cache, models, seeds), model_runner=_runner(calls))
    assert calls == [(1, "Baseline_CNN"), (1, "YAMNet"), (2, "AD_CNN"), (2, "Baseline_CNN"), (2, "YAMNet")]
    assert out.seeds == "0-2" and "training seeds 0-2" in out.title and "seed 7" not in out.title
    table = pd.read_csv(tmp_path / "a" / "leaderboard.csv")
    per_seed = table[table["kind"] == "seed"]
    assert len(per_seed) == 3 * 4 and set(per_seed["seed"]) == {0, 1, 2}       # 3 models + reference per seed
    for kind in ("mean", "sd", "ci95_low", "ci95_high"):
        assert len(table[table["kind"] == kind]) == 4
    mean = table[table["kind"] == "mean"].set_index("model")
    sd = table[table["kind"] == "sd"].set_index("model")
    lo, hi = (table[table["kind"] == k].set_index("model") for k in ("ci95_low", "ci95_high"))
    for model in models:
        values = per_seed[per_seed["model"] == model]["aq_mse_mean"].to_numpy()
        assert mean.loc[model, "aq_mse_mean"] == pytest.approx(values.mean(), rel=1e-5)
        assert sd.loc[model, "aq_mse_mean"] == pytest.approx(values.std(ddof=1), rel=1e-4) and sd.loc[model, "aq_mse_mean"] > 0
        assert lo.loc[model, "aq_mse_mean"] < mean.loc[model, "aq_mse_mean"] < hi.loc[model, "aq_mse_mean"]
    assert sd.loc[lb.REFERENCE, "aq_mse_mean"] == 0     # the reference does not depend on the training seed
    assert mean.loc["AD_CNN", "paper_runs_scene_acc"] == pytest.approx(0.8963)
    assert sd.loc["AD_CNN", "paper_runs_scene_acc"] == pytest.approx(0.0221)
    for k in seeds:                                       # each seed is a whole one-seed run folder
        assert (tmp_path / "a" / f"seed_{k}" / "leaderboard.csv").is_file()
    md = (tmp_path / "a" / "leaderboard.md").read_text()
    assert "How stable the ranking is" in md and "two-level paired bootstrap" in md and "Kendall" in md
    assert "89.63" not in md and "0.8963 ± 0.0221" in md and "0.84 ± 0.02" in md
    comparisons = pd.read_csv(tmp_path / "a" / "comparisons.csv")
    assert set(comparisons["n_seeds"]) == {3} and len(set(comparisons["model_b"])) == 2
    assert (tmp_path / "a" / "leaderboard.png").is_file()

    straight = lb.run_leaderboard(_settings(tmp_path / "b", soundaq_cache, models, seeds), model_runner=_runner([]))
    assert [r["model"] for r in straight.rows] == [r["model"] for r in out.rows]
    again = pd.read_csv(tmp_path / "b" / "leaderboard.csv")
    pd.testing.assert_frame_equal(table.drop(columns=["data"]), again.drop(columns=["data"]))


def test_the_grid_counts_every_unit_and_names_its_seed(soundaq_cache, tmp_path, capsys):
    """The terminal's counter runs over every (seed, model) of the grid, each line naming the seed (trial
    fault J: it ran [1/2], [2/2] once per seed, no seed named); a resumed grid counts what is left and names
    the finished units' seeds too."""
    models = ["AD_CNN", "SoundAQnet[kernels=3]"]
    lb.run_leaderboard(_settings(tmp_path / "g", soundaq_cache, models, [0, 1]), model_runner=_runner([]))
    err = capsys.readouterr().err
    started = [line.split(": ", 1)[1] for line in err.splitlines() if line.startswith("soundaq leaderboard: [")]
    assert started == ["[1/4] seed 0 AD_CNN", "[2/4] seed 0 SoundAQnet[kernels=3]", "[3/4] seed 1 AD_CNN",
                       "[4/4] seed 1 SoundAQnet[kernels=3]"], err
    assert "soundaq leaderboard: seed 1 AD_CNN: done" in err
    lb.run_leaderboard(_settings(tmp_path / "g", soundaq_cache, models, [0, 1, 2]), model_runner=_runner([]))
    err = capsys.readouterr().err
    assert "seed 1 SoundAQnet[kernels=3]: finished in an earlier session, kept" in err
    assert "[2/2] seed 2 SoundAQnet[kernels=3]" in err


def test_a_unit_that_fails_is_retried_and_the_others_are_kept(soundaq_cache, tmp_path):
    models, seeds = ["AD_CNN", "YAMNet"], [3, 5]
    out = lb.run_leaderboard(_settings(tmp_path, soundaq_cache, models, seeds),
                             model_runner=_runner([], fail=(5, "YAMNet")))
    assert out.failed == ["YAMNet (seed 5)"]
    table = pd.read_csv(tmp_path / "leaderboard.csv")
    assert table[(table["kind"] == "mean") & (table["model"] == "YAMNet")]["n_seeds"].item() == 1
    assert not (tmp_path / "comparisons.csv").exists()       # YAMNet lacks a seed: no comparison over seeds
    calls: list = []
    lb.run_leaderboard(_settings(tmp_path, soundaq_cache, models, seeds), model_runner=_runner(calls))
    assert calls == [(5, "YAMNet")]
    assert (tmp_path / "comparisons.csv").exists()


def test_a_bad_seed_list_is_one_line_and_trains_nothing(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "soundaq", "leaderboard", "--seeds", "0-x", "--models",
                           "AD_CNN", "--out", str(tmp_path / "run")], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)
    assert proc.returncode == 2 and "--seeds" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "run").exists()


def test_two_level_bootstrap_widens_with_the_spread_over_seeds():
    from soundaq.evaluation.bootstrap import compare_to_leader_over_seeds

    rng = np.random.default_rng(0)
    n = 60
    truth = rng.uniform(1, 5, (n, 8))

    def table(noise, shift):
        from soundaq.base import vocab

        frame = pd.DataFrame({"clip": [f"c{i}" for i in range(n)]})
        for c in vocab.SCENE_PROB_COLUMNS:
            frame[c] = 1 / 3
        for c, t in zip(vocab.EVENT_PROB_COLUMNS, vocab.TRUE_EVENT_COLUMNS):
            frame[c], frame[t] = 0.5, np.arange(n) % 2
        for j, q in enumerate(vocab.QUALITIES):
            frame[q] = truth[:, j] + shift + rng.normal(0, noise, n)
            frame[f"true_{q}"] = truth[:, j]
        frame["true_scene"] = [vocab.SCENES[i % 3] for i in range(n)]
        for name in ("isop", "isoe"):
            frame[name], frame[f"true_{name}"] = 0.0, 0.0
        return frame

    steady = {"A": [table(0.3, 0.0) for _ in range(4)], "B": [table(0.3, 0.2) for _ in range(4)]}
    shaky = {"A": steady["A"], "B": [table(0.3, s) for s in (-0.3, 0.2, 0.7, 0.1)]}
    a = compare_to_leader_over_seeds(steady, "A", metrics=["aq_mse_mean"], n_resamples=300, seed=1)
    b = compare_to_leader_over_seeds(shaky, "A", metrics=["aq_mse_mean"], n_resamples=300, seed=1)
    width = lambda f: float(f["ci_high"].item() - f["ci_low"].item())  # noqa: E731
    assert width(b) > 2 * width(a) and a["method"].item().startswith("two-level paired bootstrap")
    assert a["significant"].item() and a["better"].item() == "A"


def _soundaq(*args, timeout=900, env=None):
    return subprocess.run([sys.executable, "-m", "soundaq", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout, env=env)


@pytest.mark.slow   # 60 s on 2 shared cores: 6 real trainings twice, then one again
def test_real_grid_of_three_seeds_resumes_and_is_the_same_with_one_or_two_workers(soundaq_cache, tmp_path):
    """Done-means of issue 24: per-seed and summary rows with sd > 0, a resumed unit, one or two workers."""
    # one torch thread per training in both runs: on 2 cores one worker would otherwise train with 2
    # threads and two workers with 1 each, which moves the 4th-5th digit of a score whatever the grid
    # (tests/test_leaderboard.py's workers test shows it on one seed); the units must then agree exactly
    import os

    one_thread = {**os.environ, "OMP_NUM_THREADS": "1"}
    tables = []
    for workers in (2, 1):
        out = tmp_path / f"w{workers}"
        args = ["leaderboard", "--models", "Baseline_CNN,Hierarchical_CNN", "--seeds", "0,1,2", "--budget-clips",
                "16", "--batch-size", "4", "--embedded-clips", "12", "--resamples", "50", "--workers", workers,
                "--cache-dir", soundaq_cache, "--accelerator", "cpu", "--no-progress", "--out", out]
        proc = _soundaq(*args, env=one_thread)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "training seeds 0-2" in proc.stdout and "±" in proc.stdout
        table = pd.read_csv(out / "leaderboard.csv")
        assert len(table[table["kind"] == "seed"]) == 9
        sd = table[(table["kind"] == "sd") & (table["status"] == "ok")]
        assert len(sd) == 2 and (sd["aq_mse_mean"] > 0).all()
        if workers == 2:     # a unit lost before its done.json (a kill) runs again, alone; the table stays
            (out / "seed_1" / "models" / "Hierarchical_CNN" / "done.json").unlink()
            again = _soundaq(*args, env=one_thread)
            assert again.returncode == 0, again.stderr[-3000:]
            assert again.stderr.count("finished in an earlier session") == 5
            resumed = pd.read_csv(out / "leaderboard.csv")
            timing = ["train_seconds", "clips_per_second", "checkpoint_sha256"]
            pd.testing.assert_frame_equal(table.drop(columns=timing), resumed.drop(columns=timing))
        tables.append(table.drop(columns=["train_seconds", "clips_per_second", "checkpoint_sha256"]))
    pd.testing.assert_frame_equal(tables[0], tables[1])


def test_intervals_over_seeds_stay_within_what_the_metric_can_take():
    """Two seeds give a wide t interval: 0.333 and 0.667 scene accuracy gave [-1.618, 2.618] (new-user trial)."""
    from soundaq.benchmark.leaderboard.seeds import summarise

    rows = {k: [{"model": "Net", "status": "ok", "rank": 1, "scene_acc": acc, "event_auc": 0.5, "aq_mse_mean": mse,
                 "isop_mse": 0.1, "isoe_mse": 0.1}] for k, acc, mse in ((0, 1 / 3, 0.05), (1, 2 / 3, 0.9))}
    net = summarise(rows)[0]
    assert net["ci95_low"]["scene_acc"] == 0.0 and net["ci95_high"]["scene_acc"] == 1.0
    assert net["ci95_low"]["aq_mse_mean"] == 0.0 and net["ci95_high"]["aq_mse_mean"] > 0.9
    assert net["mean"]["scene_acc"] == 0.5
