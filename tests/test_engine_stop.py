"""The local pool stops with its driver: a driver killed with SIGKILL takes its workers with it, and a
Ctrl-C starts no new unit (soundaq.base.parallel.WorkerStart, stop_pool). Before, the workers of a
killed leaderboard went on training and writing into the run folder the user was about to resume."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

UNIT = '''
import os, time
from pathlib import Path

def unit(folder, k):
    Path(folder, f"start_{k}").write_text(str(os.getpid()))
    time.sleep(1.5)
    Path(folder, f"done_{k}").write_text("")
    return k
'''

DRIVER = '''
import sys
sys.path.insert(0, {folder!r})
from unitmod import unit
from soundaq.base.engine import open_engine

if __name__ == "__main__":
    for index, result in open_engine("local", workers=2).run(unit, [({folder!r}, k) for k in range(8)],
                                                            start_method="spawn"):
        print(index, result, flush=True)
'''


def _start(tmp_path: Path) -> subprocess.Popen:
    (tmp_path / "unitmod.py").write_text(textwrap.dedent(UNIT))
    (tmp_path / "driver.py").write_text(DRIVER.format(folder=str(tmp_path)))
    proc = subprocess.Popen([sys.executable, str(tmp_path / "driver.py")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob("start_*")):
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    time.sleep(0.2)
    return proc


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return "\nState:\tZ" not in state        # a zombie has ended (its new parent may not reap it)


def _after_stop(tmp_path: Path) -> tuple[list[int], int]:
    """Worker pids, and how many units had started, once the driver is gone."""
    pids = [int(p.read_text()) for p in tmp_path.glob("start_*") if p.read_text()]
    return pids, len(list(tmp_path.glob("start_*")))


def test_workers_end_when_the_driver_is_killed(tmp_path):
    proc = _start(tmp_path)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    pids, started = _after_stop(tmp_path)
    deadline = time.monotonic() + 5
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(p) for p in pids), "pool workers outlived their killed driver"
    time.sleep(2)
    assert len(list(tmp_path.glob("start_*"))) == started     # nothing started after the kill
    assert len(list(tmp_path.glob("done_*"))) <= started


def test_ctrl_c_starts_no_new_unit_and_ends_the_workers(tmp_path):
    proc = _start(tmp_path)
    t0 = time.monotonic()
    os.kill(proc.pid, signal.SIGINT)                  # the driver only, as a KeyboardInterrupt there
    proc.communicate(timeout=20)
    assert time.monotonic() - t0 < 5                   # it did not wait for the queued units
    pids, started = _after_stop(tmp_path)
    time.sleep(2)
    assert len(list(tmp_path.glob("start_*"))) == started <= 2
    assert not any(_alive(p) for p in pids)
