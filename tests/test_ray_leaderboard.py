"""``soundaq leaderboard --engine ray``: every (model, training seed) unit as one Ray task on the session's
two-node loopback cluster (the ``ray_cluster`` fixture of tests/conftest.py), the same run folders and
tables as the local engine, resume, a killed worker, bad input in one line, no traffic off 127.0.0.1.

The fast cases use a model runner that writes a seeded predictions table instead of training (it
reaches the Ray workers pickled by value, as a closure); the real training case is marked slow.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from leaderboard_builders import seeded_predictions_unit

from soundaq.base.ray_local import foreign_connections, keep_driver_on_loopback
from soundaq.benchmark import leaderboard as lb
from soundaq.benchmark.cli import main

keep_driver_on_loopback()   # before `import ray`, here and in the engine

MODELS, SEEDS = ["AD_CNN", "Baseline_CNN"], [0, 1]
#: What differs between two runs of the same grid: wall times and the checkpoints' bytes (none here).
TIMING = ["train_seconds", "clips_per_second", "checkpoint_sha256"]


def _runner(log: Path, sleep_s: float = 0.0):
    """A model runner that writes a predictions table depending on the model and the training seed (no
    training), after ``sleep_s``; each call appends ``seed model pid`` to ``log`` (the calls made in Ray's
    workers are seen there: a closure's list would not come back)."""
    import leaderboard_builders
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(leaderboard_builders)   # the workers cannot import tests/ modules

    def runner(s, run, model, datamodule, data_label):
        with open(log, "a") as f:
            f.write(f"{s.seed} {model} {os.getpid()}\n")
        time.sleep(sleep_s)
        return seeded_predictions_unit(s, run, model, datamodule, data_label)

    return runner


def _calls(log: Path) -> list[tuple[int, str, int]]:
    if not log.exists():
        return []
    return [(int(seed), model, int(pid)) for seed, model, pid in (line.split() for line in log.read_text().splitlines())]


def _settings(out: Path, cache: Path, **kw) -> lb.Settings:
    return lb.Settings(out=out, models=list(MODELS), cache_dir=cache, n_resamples=40, progress=False, seed=0,
                       embedded_clips=12, correlate=False, seeds=list(SEEDS), **kw)


def _tables(out: Path) -> list[pd.DataFrame]:
    """leaderboard.csv of the grid and of each seed's run folder, less the timing columns."""
    paths = [out / "leaderboard.csv", *(out / f"seed_{k}" / "leaderboard.csv" for k in SEEDS)]
    return [pd.read_csv(p).drop(columns=TIMING, errors="ignore") for p in paths]


def _same_tables(a: Path, b: Path) -> None:
    for x, y in zip(_tables(a), _tables(b)):
        pd.testing.assert_frame_equal(x, y)
    assert (json.loads((a / "leaderboard.json").read_text())["comparisons"]
            == json.loads((b / "leaderboard.json").read_text())["comparisons"])


def test_a_grid_on_a_two_node_cluster_equals_the_local_engine_and_resumes(ray_cluster, soundaq_cache, tmp_path):
    import ray

    from soundaq.base.engine import open_engine

    lb.run_leaderboard(_settings(tmp_path / "local", soundaq_cache), model_runner=_runner(tmp_path / "local.log"))
    log = tmp_path / "ray.log"
    with open_engine("ray", address=ray_cluster.address) as engine:   # one driver: its workers stay warm
        out = lb.run_leaderboard(_settings(tmp_path / "ray", soundaq_cache), model_runner=_runner(log), engine=engine)
        assert out.failed == []
        calls = _calls(log)
        assert sorted((k, m) for k, m, _ in calls) == [(k, m) for k in SEEDS for m in MODELS]
        assert os.getpid() not in {pid for *_, pid in calls}           # every unit ran in a Ray worker
        _same_tables(tmp_path / "local", tmp_path / "ray")
        prov = json.loads((tmp_path / "ray" / "provenance.json").read_text())
        assert prov["engine"]["name"] == "ray" and prov["engine"]["address"] == ray_cluster.address

        # resume: a unit without its done.json is the only one that runs again, and the tables stay
        (tmp_path / "ray" / "seed_1" / "models" / "Baseline_CNN" / "done.json").unlink()
        log.unlink()
        lb.run_leaderboard(_settings(tmp_path / "ray", soundaq_cache), model_runner=_runner(log), engine=engine)
        assert [(k, m) for k, m, _ in _calls(log)] == [(1, "Baseline_CNN")]
        _same_tables(tmp_path / "local", tmp_path / "ray")
    assert not ray.is_initialized()
    assert json.loads((tmp_path / "local" / "provenance.json").read_text())["engine"] == {"name": "local", "workers": 1}
    # every Ray process of the cluster, and this driver, only ever used 127.0.0.1
    assert foreign_connections([*ray_cluster.live_pids(), os.getpid()]) == []


@pytest.mark.slow
def test_a_worker_killed_mid_unit_is_retried_and_the_grid_completes(ray_cluster, soundaq_cache, tmp_path):
    """SIGKILL to the Ray worker of a unit while the unit runs (its runner has started and sleeps): Ray
    reruns the task (max_retries), the grid completes with the local engine's tables."""
    from soundaq.base.engine import open_engine

    lb.run_leaderboard(_settings(tmp_path / "local", soundaq_cache), model_runner=_runner(tmp_path / "local.log"))
    log = tmp_path / "ray.log"
    killed: list[int] = []

    def kill_one():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            started = {pid for *_, pid in _calls(log)}   # workers inside the runner, not still importing
            busy = [pid for pid in ray_cluster.unit_workers() if pid in started]
            if busy:
                os.kill(busy[0], signal.SIGKILL)
                killed.append(busy[0])
            time.sleep(0.05)

    killer = threading.Thread(target=kill_one)
    killer.start()
    try:
        with open_engine("ray", address=ray_cluster.address) as engine:
            out = lb.run_leaderboard(_settings(tmp_path / "ray", soundaq_cache), model_runner=_runner(log, 1.5),
                                     engine=engine)
    finally:
        killer.join()
    assert killed, "no Ray worker was seen running a unit"
    assert out.failed == []
    calls = _calls(log)
    assert len(calls) == len(MODELS) * len(SEEDS) + 1          # the killed unit ran twice
    assert killed[0] in {pid for *_, pid in calls}
    _same_tables(tmp_path / "local", tmp_path / "ray")


def _free_port() -> int:
    with socket.socket() as s:     # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_unreachable_address_and_missing_ray_are_one_line_and_write_nothing(tmp_path, capsys, monkeypatch):
    port = _free_port()
    for command in (["leaderboard", "--models", "AD_CNN"], ["ablation", "blocks"]):
        out = tmp_path / command[0]
        rc = main([*command, "--out", str(out), "--engine", "ray", "--address", f"127.0.0.1:{port}", "--no-progress"])
        line = _one_line(capsys)
        assert rc == 2 and f"127.0.0.1:{port}" in line and "no Ray cluster answers" in line and "fix:" in line
        assert not out.exists()
    monkeypatch.setitem(sys.modules, "ray", None)   # `import ray` raises ImportError
    rc = main(["leaderboard", "--models", "AD_CNN", "--out", str(tmp_path / "lb"), "--engine", "ray", "--no-progress"])
    assert rc == 2 and "pip install 'soundaq[ray]'" in _one_line(capsys)
    assert not (tmp_path / "lb").exists()


def test_gpus_the_cluster_lacks_are_one_line_and_write_nothing(ray_cluster, tmp_path, capsys):
    import ray

    out = tmp_path / "lb"
    rc = main(["leaderboard", "--models", "AD_CNN", "--out", str(out), "--engine", "ray", "--address",
               ray_cluster.address, "--accelerator", "gpu", "--devices", "2", "--no-progress"])
    line = _one_line(capsys)
    assert rc == 2 and "asks for 2 GPU but the Ray cluster has 0" in line and "fix:" in line
    assert not out.exists() and not ray.is_initialized()


def test_units_ask_ray_for_gpus_only_with_accelerator_gpu():
    from soundaq.benchmark.leaderboard.grid import unit_gpus

    assert [unit_gpus(a, d) for a, d in (("auto", 1), ("cpu", 2), ("gpu", 1), ("gpu", "auto"), ("cuda", 2),
                                         ("gpu", [0, 1, 2]), ("gpu", -1))] == [0, 0, 1, 1, 2, 3, 1]


@pytest.mark.slow
def test_real_training_grid_on_ray_equals_the_local_pool(ray_cluster, soundaq_cache, tmp_path, capsys):
    """`soundaq leaderboard` with real (tiny) training, 2 models x 2 seeds: --engine ray on the two-node
    cluster and the local pool of 2 workers give the same tables (timing columns aside)."""
    common = ["leaderboard", "--models", ",".join(MODELS), "--seeds", "0,1", "--budget-clips", "8", "--batch-size",
              "4", "--embedded-clips", "12", "--resamples", "20", "--cache-dir", str(soundaq_cache), "--accelerator",
              "cpu", "--no-progress", "--no-correlation"]
    assert main([*common, "--workers", "2", "--out", str(tmp_path / "local")]) == 0
    assert main([*common, "--engine", "ray", "--address", ray_cluster.address, "--out", str(tmp_path / "ray")]) == 0
    err = capsys.readouterr().err
    assert "4 model run(s) as Ray tasks on " + ray_cluster.address in err and "Traceback" not in err
    _same_tables(tmp_path / "local", tmp_path / "ray")
    for k in SEEDS:
        for m in MODELS:   # the same predictions, clip by clip
            a, b = (pd.read_csv(tmp_path / e / f"seed_{k}" / "predictions" / f"{m}.csv") for e in ("local", "ray"))
            pd.testing.assert_frame_equal(a, b)
    assert foreign_connections([*ray_cluster.live_pids(), os.getpid()]) == []
