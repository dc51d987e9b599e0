"""Kind 2 of issue 12: files soundaq wrote, left broken by a kill or a full disk, are written atomically
and checked where they are read back (soundaq.base.fileio, soundaq.base.artifacts); a damaged one is
rebuilt or named in one line."""
from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

from soundaq.base import fileio
from soundaq.base.artifacts import RebuiltWarning, digest_problem, read_record, set_aside, zip_problem
from soundaq.base.fileio import WriteFailed, atomic_path, atomic_write_json, atomic_write_text, sha256_file
from soundaq.base.runs import RunFolder


def _npz(path: Path) -> Path:
    np.savez(path, a=np.arange(1000, dtype=np.float32), b=np.ones((50, 3)))
    return path


def test_zip_problem_names_each_kind_of_damage(tmp_path):
    good = _npz(tmp_path / "good.npz")
    assert zip_problem(good) is None
    assert zip_problem(tmp_path / "none.npz") == "missing"
    (tmp_path / "empty.ckpt").write_bytes(b"")
    assert zip_problem(tmp_path / "empty.ckpt").startswith("0 bytes")
    cut = tmp_path / "cut.npz"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    assert zip_problem(cut).startswith("cut short or not a zip archive")
    flipped = bytearray(good.read_bytes())
    with zipfile.ZipFile(good) as zf:
        info = zf.infolist()[0]
        at = info.header_offset + 30 + len(info.filename) + len(info.extra) + 200
    flipped[at] ^= 0xFF
    (tmp_path / "flip.npz").write_bytes(bytes(flipped))
    assert "fails its CRC-32 check" in zip_problem(tmp_path / "flip.npz")


def test_read_record_and_digest(tmp_path):
    p = tmp_path / "done.json"
    assert read_record(p) == (None, None)
    atomic_write_json(p, {"a": 1})
    assert read_record(p, required=("a",)) == ({"a": 1}, None)
    assert read_record(p, required=("b",))[1] == "lacks b"
    p.write_text('{"a": ')
    assert read_record(p)[1].startswith("not valid JSON")
    p.write_text("[1, 2]")
    assert read_record(p)[1] == "holds a JSON list, not an object"
    p.write_text("")
    assert read_record(p)[1] == "0 bytes, no JSON"
    p.write_text("x")
    sha = sha256_file(p)
    assert digest_problem(p, sha) is None and digest_problem(tmp_path / "q", sha) == "missing"
    p.write_text("y")
    assert "differs from the recorded" in digest_problem(p, sha)


def test_set_aside_renames_and_says_one_line(tmp_path):
    p = tmp_path / "last.ckpt"
    p.write_bytes(b"broken")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        aside = set_aside(p, "cut short", "resuming from best-000.ckpt")
    assert aside.name == "last.ckpt.damaged" and aside.read_bytes() == b"broken" and not p.exists()
    assert [str(w.message) for w in caught] == [
        f"{p}: damaged (cut short); set aside as last.ckpt.damaged; resuming from best-000.ckpt"]
    assert warnings.formatwarning(caught[0].message, caught[0].category, "f.py", 1).count("\n") == 1


def test_atomic_write_keeps_the_old_file_on_failure_and_names_a_full_disk(tmp_path, monkeypatch):
    target = tmp_path / "out.json"
    atomic_write_text(target, "old")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fileio.os, "replace", full)
    with pytest.raises(WriteFailed) as err:
        atomic_write_text(target, "new")
    msg = str(err.value)
    assert msg == f"{target}: cannot be written (No space left on device); fix: free disk space (or write " \
                  "elsewhere), then run the same command again"
    assert isinstance(err.value, OSError) and err.value.exit_code == 2
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_a_killed_writers_temporary_file_is_removed_by_the_next_write(tmp_path):
    target = tmp_path / "predictions.csv"
    code = ("import os, sys; from soundaq.base.fileio import atomic_path\n"
            "with atomic_path(sys.argv[1]) as tmp:\n"
            "    tmp.write_text('half'); os._exit(9)\n")      # dies inside the write, like a SIGKILL
    proc = subprocess.run([sys.executable, "-c", code, str(target)])
    assert proc.returncode == 9
    left = [p for p in tmp_path.iterdir() if p.name.startswith(".predictions.csv.")]
    assert len(left) == 1 and not target.exists()
    with atomic_path(target) as tmp:               # a live writer's temporary file is kept meanwhile
        tmp.write_text("whole")
        assert tmp.exists()
    assert target.read_text() == "whole" and sorted(p.name for p in tmp_path.iterdir()) == ["predictions.csv"]


def test_run_folder_redoes_damaged_records_and_outputs(tmp_path):
    run = RunFolder(tmp_path, {"a": 1}).open()
    pred = tmp_path / "predictions" / "M.csv"
    pred.parent.mkdir()
    pred.write_text("clip,x\n1,2\n")
    run.mark_done("M", {"model": "M", "predictions_sha256": sha256_file(pred)})
    outputs = {"predictions/M.csv": "predictions_sha256"}
    assert run.finished("M", outputs)["model"] == "M"
    pred.write_text("clip,x\n1,3\n")                    # changed after done.json recorded it
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert run.finished("M", outputs) is None
    assert len(caught) == 1 and "M.csv: damaged (its SHA-256" in str(caught[0].message)
    assert "M is done again" in str(caught[0].message) and not pred.exists()
    (tmp_path / "models" / "M" / "done.json").write_text('{"model": "M", ')   # torn by a full disk
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert run.done("M") is None
    assert len(caught) == 1 and "done.json: damaged (not valid JSON" in str(caught[0].message)
    (tmp_path / "run.json").write_text("")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        RunFolder(tmp_path, {"a": 1}).open()
    assert json.loads((tmp_path / "run.json").read_text())["identity"] == {"a": 1} and len(caught) == 1


def _ckpt(path: Path, content: bytes = b"x" * 2000) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", content)
    return path


def test_checkpoint_to_resume_policy(tmp_path):
    from soundaq.models_zoo.resume import checkpoint_to_resume

    d = tmp_path / "checkpoints"
    d.mkdir()
    assert checkpoint_to_resume(d) is None and checkpoint_to_resume(tmp_path / "none") is None
    best, last = _ckpt(d / "best-002.ckpt"), _ckpt(d / "last.ckpt")
    os.utime(best, ns=(time.time_ns() - 10**9,) * 2)
    assert checkpoint_to_resume(d) == last
    os.utime(best, ns=(time.time_ns() + 10**9,) * 2)   # killed between writing best and last
    assert checkpoint_to_resume(d) == best
    last.write_bytes(last.read_bytes()[:100])          # last cut short: resume from best, one line
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert checkpoint_to_resume(d, act=False) == best and not caught   # other DDP ranks: same choice
        assert checkpoint_to_resume(d) == best
    assert [str(w.message).split(": damaged")[0] for w in caught] == [str(last)]
    assert "resuming from best-002.ckpt" in str(caught[0].message) and (d / "last.ckpt.damaged").exists()
    _ckpt(d / "last.ckpt")
    best.write_bytes(b"")                               # the best is lost: start over, both set aside
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RebuiltWarning)
        assert checkpoint_to_resume(d) is None
    assert len(caught) == 2 and all("training starts over" in str(w.message) for w in caught)
    assert not list(d.glob("*.ckpt"))


def test_checkpoint_io_writes_atomically_and_refuses_damage(tmp_path):
    import torch

    from soundaq.base.artifacts import DamagedFile
    from soundaq.models_zoo.resume import AtomicCheckpointIO

    io_ = AtomicCheckpointIO()
    path = tmp_path / "c.ckpt"
    io_.save_checkpoint({"w": torch.arange(3)}, path)
    assert torch.equal(io_.load_checkpoint(path)["w"], torch.arange(3))
    assert [p.name for p in tmp_path.iterdir()] == ["c.ckpt"]
    path.write_bytes(path.read_bytes()[:-50])
    with pytest.raises(DamagedFile, match=r"c\.ckpt: damaged \(cut short"):
        io_.load_checkpoint(path)


def test_embedded_set_rebuilds_damaged_statistics(small_embedded_set, tmp_path):
    """The embedded set's manifest says complete but its statistics file was torn: it is rewritten."""
    import shutil

    from soundaq.models_zoo.data.synthetic import MIN_CLIPS, prepare_embedded

    src = small_embedded_set   # the session's 12-clip set (seed 7), copied: never generated twice
    cache = tmp_path / "cache"
    shutil.copytree(src.root, cache / "embedded" / src.root.name)
    stats = cache / "embedded" / src.root.name / "norm_stats.json"
    want = json.loads(stats.read_text())
    stats.write_text(stats.read_text()[:40])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RebuiltWarning)
        es = prepare_embedded(cache, n_clips=MIN_CLIPS, seed=7, workers=1, progress=False)
    assert len(caught) == 1 and "norm_stats.json: damaged" in str(caught[0].message)
    assert json.loads(es.norm_stats_path.read_text()) == want and es.manifest["generated_clips"] == 0
