"""``soundaq features``: mixed inputs, bad files, manifest, cache reuse and parallel workers."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from soundaq.benchmark.cli import build_parser, main
from soundaq.models_zoo.features import Calibration, clip_features, load_audio


def _noise(seconds, rate, channels=1, seed=0):
    x = 0.1 * np.random.default_rng(seed).standard_normal((int(seconds * rate), channels))
    return np.clip(x, -0.9, 0.9)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("audio")
    good = {
        "short_stereo": (d / "short_stereo.wav", _noise(3.0, 22050, 2, 1), 22050, "PCM_16"),
        "long_24bit": (d / "long_24bit.flac", _noise(31.0, 16000, 1, 2), 16000, "PCM_24"),
        "float_3ch": (d / "float_3ch.wav", _noise(1.5, 44100, 3, 3), 44100, "FLOAT"),
    }
    for path, data, rate, subtype in good.values():
        sf.write(path, data, rate, subtype=subtype)
    bad = {"empty": d / "empty.wav", "text": d / "text.wav", "nan": d / "nan.wav"}
    sf.write(bad["empty"], np.zeros((0, 2)), 48000)
    bad["text"].write_text("not audio at all\n")
    sf.write(bad["nan"], np.array([0.0, np.nan] * 500), 16000, subtype="FLOAT")
    return d, {k: v[0] for k, v in good.items()}, bad


def test_help_lists_the_subcommand():
    text = build_parser().format_help()
    assert "features" in text and "log-mel" in text


def test_mixed_batch_writes_good_files_and_reports_bad_ones(inputs, tmp_path, capsys):
    d, good, bad = inputs
    out = tmp_path / "out"
    cache = tmp_path / "cache"
    files = [good["short_stereo"], bad["empty"], good["long_24bit"], bad["text"], good["float_3ch"], bad["nan"],
             d / "missing.wav"]
    rc = main(["features", *map(str, files), "--out", str(out), "--cache-dir", str(cache)])
    captured = capsys.readouterr()
    assert rc == 1
    assert "Traceback" not in captured.err + captured.out
    lines = [ln for ln in captured.err.splitlines() if ln.startswith("soundaq features:")]
    assert len(lines) == 4
    for path, why in [(bad["empty"], "no samples"), (bad["text"], "not readable"), (bad["nan"], "NaN"),
                      (d / "missing.wav", "not found")]:
        assert sum(str(path) in ln and why in ln for ln in lines) == 1, (path, lines)
    assert "3 of 7 files written" in captured.out

    windows = {"short_stereo": 1, "long_24bit": 2, "float_3ch": 1}
    for name in good:
        with np.load(out / f"{name}.npz") as z:
            mel, loud = z["mel"], z["loudness"]
        assert mel.dtype == loud.dtype == np.float32
        assert mel.shape == (windows[name], 3001, 64) and loud.shape == (windows[name], 15000, 1)
    # the same numbers as the Python pipeline
    ref_mel, ref_loud = clip_features(*load_audio(good["short_stereo"]), Calibration.default())
    with np.load(out / "short_stereo.npz") as z:
        np.testing.assert_array_equal(z["mel"], ref_mel)
        np.testing.assert_array_equal(z["loudness"], ref_loud)
    assert not (out / "empty.npz").exists() and not (out / "text.npz").exists()

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["summary"] == {"files": 7, "ok": 3, "failed": 4}
    assert [e["input"] for e in manifest["files"]] == [str(p) for p in files]
    status = {e["input"]: e for e in manifest["files"]}
    assert status[str(good["long_24bit"])]["windows"] == 2
    assert status[str(good["long_24bit"])]["sample_rate"] == 16000
    assert status[str(good["long_24bit"])]["seconds"] == pytest.approx(31.0)
    assert status[str(good["short_stereo"])]["source"] == "computed"
    assert "NaN" in status[str(bad["nan"])]["error"]
    params = manifest["parameters"]
    assert params["log_mel"]["n_fft"] == 512 and params["loudness"]["backend"] == "fast"
    assert manifest["calibration"]["db_spl_at_rms_1"] == pytest.approx(103.033, abs=1e-3)
    assert manifest["versions"]["numpy"] == np.__version__


def test_parallel_run_reuses_the_cache(inputs, tmp_path, capsys):
    d, good, _ = inputs
    cache = tmp_path / "cache"
    first = tmp_path / "first"
    assert main(["features", str(good["short_stereo"]), str(good["float_3ch"]), "--out", str(first),
                 "--cache-dir", str(cache)]) == 0
    second = tmp_path / "second"
    # a folder argument expands to its audio files; the bad ones fail, the good ones come from the cache
    rc = main(["features", str(d), "--out", str(second), "--cache-dir", str(cache), "--workers", "2"])
    captured = capsys.readouterr()
    assert rc == 1 and "Traceback" not in captured.err
    manifest = json.loads((second / "manifest.json").read_text())
    by_name = {e["output"]: e for e in manifest["files"]}
    assert by_name["short_stereo.npz"]["source"] == "cached"
    assert by_name["float_3ch.npz"]["source"] == "cached"
    assert by_name["long_24bit.npz"]["status"] == "ok"
    assert manifest["summary"]["failed"] == 3
    for name in ("short_stereo", "float_3ch"):
        with np.load(first / f"{name}.npz") as a, np.load(second / f"{name}.npz") as b:
            np.testing.assert_array_equal(a["mel"], b["mel"])
            np.testing.assert_array_equal(a["loudness"], b["loudness"])


def test_loudness_stats_csv(inputs, tmp_path, capsys):
    """--loudness-stats: N5, N10, Nmax, mean N per 30-s window and per file, from the written loudness,
    over the frames that cover the audio; failed inputs have no rows; without the flag, no CSV."""
    import csv

    from soundaq.models_zoo.features import loudness_statistics

    _d, good, bad = inputs
    out = tmp_path / "out"
    files = [good["long_24bit"], bad["text"], good["short_stereo"]]
    assert main(["features", *map(str, files), "--out", str(out), "--cache-dir", str(tmp_path / "c"),
                 "--workers", "2", "--loudness-stats"]) == 1
    assert "Traceback" not in capsys.readouterr().err
    with open(out / "loudness_stats.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["file", "window", "start_s", "end_s", "N5", "N10", "Nmax", "Nmean"]
    assert [(r["file"], r["window"]) for r in rows] == [
        (str(good["long_24bit"]), "1"), (str(good["long_24bit"]), "2"), (str(good["long_24bit"]), "all"),
        (str(good["short_stereo"]), "1"), (str(good["short_stereo"]), "all")]
    assert [(r["start_s"], r["end_s"]) for r in rows] == [("0", "30"), ("30", "31"), ("0", "31"), ("0", "3"),
                                                          ("0", "3")]
    with np.load(out / "long_24bit.npz") as z:
        loud = z["loudness"][:, :, 0].astype(np.float64)
    expected = {"2": loudness_statistics(loud[1, :500]), "all": loudness_statistics(np.r_[loud[0], loud[1, :500]])}
    for r in rows[1:3]:
        for key, value in expected[r["window"]].as_dict().items():
            assert float(r[key]) == pytest.approx(value, abs=1e-6)
    for r in rows:
        assert float(r["Nmax"]) >= float(r["N5"]) >= float(r["N10"]) >= 0 and float(r["Nmean"]) > 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["loudness_stats"] == "loudness_stats.csv"
    assert not any("loudness_stats" in entry for entry in manifest["files"])
    plain = tmp_path / "plain"
    assert main(["features", str(good["short_stereo"]), "--out", str(plain), "--cache-dir", str(tmp_path / "c")]) == 0
    assert not (plain / "loudness_stats.csv").exists()


def test_progress_bar_is_drawn_on_a_terminal(inputs, tmp_path, capsys, monkeypatch):
    _, good, _ = inputs
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    rc = main(["features", str(good["short_stereo"]), str(good["float_3ch"]), "--out", str(tmp_path / "o"),
               "--cache-dir", str(tmp_path / "c"), "--workers", "2"])
    err = capsys.readouterr().err
    assert rc == 0
    assert "features" in err and "2/2" in err


def test_calibration_options_change_loudness_only(inputs, tmp_path, sample_clip_dir):
    _, good, _ = inputs
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["features", str(good["float_3ch"]), "--out", str(a), "--no-cache",
                 "--calibration", str(sample_clip_dir / "calibration_sine_1kHz_60dB.wav")]) == 0
    assert main(["features", str(good["float_3ch"]), "--out", str(b), "--no-cache", "--dbfs-offset", "110"]) == 0
    with np.load(a / "float_3ch.npz") as x, np.load(b / "float_3ch.npz") as y:
        np.testing.assert_array_equal(x["mel"], y["mel"])
        assert y["loudness"].max() > 1.5 * x["loudness"].max()
    manifest = json.loads((b / "manifest.json").read_text())
    assert manifest["calibration"]["db_spl_at_rms_1"] == pytest.approx(110.0)
    assert manifest["cache"] is None


@pytest.mark.parametrize("argv,needle", [
    (["--workers", "0"], "--workers"),
    (["--calibration", "/nonexistent/cal.wav"], "cal.wav"),
])
def test_user_errors_are_one_line(inputs, tmp_path, capsys, argv, needle):
    _, good, _ = inputs
    rc = main(["features", str(good["float_3ch"]), "--out", str(tmp_path / "o"), *argv])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and needle in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_out_must_be_a_folder(inputs, tmp_path, capsys):
    _, good, _ = inputs
    target = tmp_path / "file.txt"
    target.write_text("x")
    assert main(["features", str(good["float_3ch"]), "--out", str(target)]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_same_stem_twice_is_reported(inputs, tmp_path, capsys):
    _, good, _ = inputs
    other = tmp_path / "x" / "float_3ch.flac"
    other.parent.mkdir()
    sf.write(other, _noise(0.5, 16000), 16000)
    rc = main(["features", str(good["float_3ch"]), str(other), "--out", str(tmp_path / "o"),
               "--cache-dir", str(tmp_path / "c")])
    captured = capsys.readouterr()
    assert rc == 1 and "same name" in captured.err and "1 of 2 files written" in captured.out


def test_registering_the_command_imports_nothing_heavy():
    code = ("import sys, argparse; import soundaq.benchmark.commands.features as f; "
            "f.register(argparse.ArgumentParser().add_subparsers()); "
            "print(sorted(m for m in ('numpy', 'numba', 'scipy', 'soundfile', 'rich', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr


@pytest.mark.slow
def test_mosqito_backend_writes_the_same_features(inputs, tmp_path):
    """One 30-s window through mosqito (about 40 s of CPU) equals the fast backend's output."""
    _, good, _ = inputs
    for backend in ("fast", "mosqito"):
        assert main(["features", str(good["float_3ch"]), "--out", str(tmp_path / backend), "--no-cache",
                     "--loudness-backend", backend]) == 0
    manifest = json.loads((tmp_path / "mosqito" / "manifest.json").read_text())
    assert manifest["parameters"]["loudness"]["backend"] == "mosqito"
    with np.load(tmp_path / "fast" / "float_3ch.npz") as f, np.load(tmp_path / "mosqito" / "float_3ch.npz") as m:
        np.testing.assert_array_equal(f["mel"], m["mel"])
        diff = np.abs(f["loudness"].astype(np.float64) - m["loudness"])
        assert diff.mean() <= 0.005 and diff.max() <= 0.05
