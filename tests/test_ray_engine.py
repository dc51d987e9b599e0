"""``--engine ray``: a real two-node Ray cluster on 127.0.0.1 (one per session: the ``ray_cluster``
fixture of tests/conftest.py, shared with tests/test_ray_leaderboard.py), the features batch equal
to the local pool's, the batch contract, Ray's retries after a killed worker, and no traffic off the loopback.

The cluster's nodes and this process (the driver) run with RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, set
here before Ray is imported (soundaq.base.ray_local). Ray is the `test` extra's; without it the tests
skip, and under CI=true they fail.
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

import numpy as np
import pytest
import soundfile as sf
from conftest import need_ray

from soundaq.base.ray_local import foreign_connections, keep_driver_on_loopback
from soundaq.benchmark.cli import main

keep_driver_on_loopback()   # before `import ray`, here and in the engine


def _clips(folder: Path, seconds: float, bad: bool = True) -> list[Path]:
    """Five noise clips of ``seconds`` (different rates and channels) and, with ``bad``, a text file
    named .wav third in the list."""
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i, (rate, ch) in enumerate([(16000, 1), (22050, 2), (44100, 1), (48000, 2), (32000, 1)]):
        x = np.clip(0.1 * np.random.default_rng(i).standard_normal((int(seconds * rate), ch)), -0.9, 0.9)
        sf.write(folder / f"clip{i}.wav", x, rate, subtype="PCM_16")
        files.append(folder / f"clip{i}.wav")
    if bad:
        (folder / "broken.wav").write_text("not audio\n")
        files.insert(2, folder / "broken.wav")
    return files


def _same_outputs(a: Path, b: Path) -> None:
    """Equal .npz arrays and equal manifest entries (all but the timing)."""
    ma, mb = (json.loads((d / "manifest.json").read_text()) for d in (a, b))
    assert ma["summary"] == mb["summary"] and ma["parameters"] == mb["parameters"]
    strip = [[{k: v for k, v in e.items() if k != "elapsed_s"} for e in m["files"]] for m in (ma, mb)]
    assert strip[0] == strip[1]
    for entry in ma["files"]:
        if entry["status"] == "ok":
            with np.load(a / entry["output"]) as za, np.load(b / entry["output"]) as zb:
                np.testing.assert_array_equal(za["mel"], zb["mel"])
                np.testing.assert_array_equal(za["loudness"], zb["loudness"])


def test_ray_missing_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)   # `import ray` raises ImportError
    files = _clips(tmp_path / "in", 0.5, bad=False)[:1]
    rc = main(["features", str(files[0]), "--out", str(tmp_path / "out"), "--engine", "ray", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "pip install 'soundaq[ray]'" in err[0]
    assert not (tmp_path / "out").exists()


def test_ray_client_and_out_of_range_port_addresses_are_one_line(tmp_path, capsys):
    files = _clips(tmp_path / "in", 0.5, bad=False)[:1]
    for address, needle in (("ray://127.0.0.1:10001", "not through Ray Client"), ("127.0.0.1:99999", "expected HOST:PORT")):
        rc = main(["features", str(files[0]), "--out", str(tmp_path / "out"), "--engine", "ray", "--address", address,
                   "--no-progress"])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and needle in err[0] and "fix:" in err[0], err
    assert not (tmp_path / "out").exists()


def test_unreachable_address_is_one_line_and_writes_nothing(tmp_path, capsys):
    with socket.socket() as s:     # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    files = _clips(tmp_path / "in", 0.5, bad=False)[:1]
    t0 = time.perf_counter()
    rc = main(["features", str(files[0]), "--out", str(tmp_path / "out"), "--engine", "ray",
               "--address", f"127.0.0.1:{port}", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert f"127.0.0.1:{port}" in err[0] and "no Ray cluster answers" in err[0] and "fix:" in err[0]
    assert not (tmp_path / "out").exists() and time.perf_counter() - t0 < 10
    rc = main(["features", str(files[0]), "--out", str(tmp_path / "out"), "--address", "127.0.0.1:6379"])
    assert rc == 2 and "--address is for --engine ray" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_loopback_check_sees_a_socket_on_every_interface():
    """The check can fail: a UDP socket bound to 0.0.0.0 (nothing sent) is reported, a loopback one is not."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as wide, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as local:
        wide.bind(("0.0.0.0", 0))
        local.bind(("127.0.0.1", 0))
        ports = wide.getsockname()[1], local.getsockname()[1]
        found = foreign_connections([os.getpid()])
    assert any(f"0.0.0.0:{ports[0]}" in line for line in found), found
    assert not any(f":{ports[1]} " in line for line in found)


def test_features_on_a_two_node_cluster_equal_the_local_pool(ray_cluster, tmp_path, capsys):
    import ray

    files = _clips(tmp_path / "in", 2.0)
    local, on_ray = tmp_path / "local", tmp_path / "ray"
    assert main(["features", *map(str, files), "--out", str(local), "--no-cache", "--no-progress"]) == 1
    capsys.readouterr()
    rc = main(["features", *map(str, files), "--out", str(on_ray), "--no-cache", "--no-progress",
               "--engine", "ray", "--address", ray_cluster.address])
    captured = capsys.readouterr()
    assert rc == 1 and "Traceback" not in captured.err
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "broken.wav" in lines[0], lines
    assert "5 of 6 files written" in captured.out
    _same_outputs(local, on_ray)
    manifest = json.loads((on_ray / "manifest.json").read_text())
    assert manifest["engine"] == {"name": "ray", "address": ray_cluster.address, "ray": ray.__version__, "cpus": 2.0}
    assert not ray.is_initialized()          # the driver left the cluster
    # every Ray process of the cluster, and this driver, only ever used 127.0.0.1
    assert foreign_connections([*ray_cluster.live_pids(), os.getpid()]) == []


def test_predict_on_a_two_node_cluster_equals_the_one_process_run(ray_cluster, ad_cnn_checkpoint, tmp_path, capsys):
    """`soundaq predict --engine ray`: the inputs cut into one part per CPU of the cluster (2), the same
    JSON as the one-process run (ids, order, numbers), the bad input one line, exit 1."""
    import ray

    files = _clips(tmp_path / "in", 1.0)
    twin = tmp_path / "other" / "clip0.wav"          # a second clip0: both get a batch-wide distinct id
    twin.parent.mkdir()
    twin.write_bytes(files[0].read_bytes())
    files.append(twin)
    outs = {}
    for engine in ("local", "ray"):
        out = tmp_path / f"{engine}.json"
        extra = ["--engine", "ray", "--address", ray_cluster.address] if engine == "ray" else []
        rc = main(["predict", *map(str, files), "--checkpoint", str(ad_cnn_checkpoint), "--out", str(out),
                   "--no-progress", *extra])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 1 and "Traceback" not in "\n".join(err)
        skipped = [line for line in err if "skipped /" in line]
        assert len(skipped) == 1 and skipped[0].startswith(f"soundaq predict: skipped {files[2]}: "), err
        outs[engine] = json.loads(out.read_text())
    assert [r["clip"] for r in outs["ray"]] == [r["clip"] for r in outs["local"]]
    assert len({r["clip"] for r in outs["ray"]}) == 6
    assert outs["ray"] == outs["local"]
    assert not ray.is_initialized()


@pytest.mark.slow
def test_a_killed_worker_is_retried_and_the_batch_completes(ray_cluster, tmp_path, capsys):
    """A Ray worker killed (SIGKILL) mid-file: Ray reruns its task (max_retries), the outputs equal the
    local pool's."""
    files = _clips(tmp_path / "in", 30.0)
    local, on_ray = tmp_path / "local", tmp_path / "ray"
    assert main(["features", *map(str, files), "--out", str(local), "--no-cache", "--no-progress"]) == 1
    capsys.readouterr()
    killed: list[int] = []

    def kill_one():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            busy = ray_cluster.unit_workers()
            if busy:
                time.sleep(0.3)     # well inside the file (seconds of work each)
                os.kill(busy[0], signal.SIGKILL)
                killed.append(busy[0])
            time.sleep(0.05)

    killer = threading.Thread(target=kill_one)
    killer.start()
    rc = main(["features", *map(str, files), "--out", str(on_ray), "--no-cache", "--no-progress",
               "--engine", "ray", "--address", ray_cluster.address])
    killer.join()
    captured = capsys.readouterr()
    assert killed, "no busy Ray worker was seen"
    assert rc == 1 and len(captured.err.strip().splitlines()) == 1 and "broken.wav" in captured.err
    _same_outputs(local, on_ray)


def test_a_unit_that_raises_is_one_failure_on_either_engine(ray_cluster):
    """The engine's own contract, what a grid of runs relies on: results by unit index, a unit that raised
    is a UnitFailed with its one line (Ray does not retry an exception the unit raised), the rest complete."""
    import math

    from soundaq.base.engine import UnitFailed, open_engine

    units = [(4.0,), (-1.0,), (9.0,)]
    want = {0: 2.0, 1: UnitFailed("ValueError: math domain error"), 2: 3.0}
    for name, address in (("local", None), ("ray", ray_cluster.address)):
        with open_engine(name, workers=2, address=address) as engine:
            assert dict(engine.run(math.sqrt, units)) == want, name


def test_a_cluster_without_the_gpus_asked_for_is_one_line(ray_cluster):
    import ray

    from soundaq.base.engine import EngineError, open_engine

    with pytest.raises(EngineError, match=r"asks for 1 GPU but the Ray cluster has 0; fix: .*--num-gpus"):
        open_engine("ray", address=ray_cluster.address, gpus=1)
    assert not ray.is_initialized()


@pytest.mark.slow
def test_without_address_a_private_ray_runs_the_batch(tmp_path):
    """`soundaq features --engine ray` alone, in a fresh process: a private one-machine Ray of --workers
    CPUs on the loopback, started and stopped by the command, with a token only it knows (nothing
    written to ~/.ray); the outputs equal the local pool's."""
    import subprocess

    need_ray()
    files = _clips(tmp_path / "in", 1.0)[:3]
    assert main(["features", *map(str, files), "--out", str(tmp_path / "local"), "--no-cache", "--no-progress"]) == 1
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env["HOME"] = str(tmp_path / "home")
    proc = subprocess.run([sys.executable, "-m", "soundaq", "features", *map(str, files), "--out", str(tmp_path / "ray"),
                           "--no-cache", "--no-progress", "--engine", "ray", "--workers", "2"],
                          env=env, capture_output=True, text=True, timeout=300)
    err = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(err) == 1 and "broken.wav" in err[0], proc.stderr
    _same_outputs(tmp_path / "local", tmp_path / "ray")
    assert json.loads((tmp_path / "ray" / "manifest.json").read_text())["engine"]["address"] == "local"
    assert not (tmp_path / "home" / ".ray").exists()

