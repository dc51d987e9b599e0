"""`soundaq models download|import`, `--model NAME`: pinned release weights from local mirrors only.

The mirror (tests/release_mirror.py) holds the three reference weights files and the two normalisation
pickles rebuilt byte for byte from the reference statistics, laid out as the release repository at the
pinned commit, in a temp folder. Sources: that folder, the same as a file:// URL, and HTTP servers on
127.0.0.1 started here (Range support, a dropped connection, an HTML error page, a forward proxy).
Never the network.
"""
from __future__ import annotations

import hashlib
import http.server
import json
import shutil
import socket
import subprocess
import threading
from pathlib import Path

import pytest
from release_mirror import REFERENCE_WEIGHTS, build_mirror, write_norm_pickles

from soundaq.benchmark.cli import main
from soundaq.models_zoo import pretrained_weights as pw
from soundaq.models_zoo.data import download as dl

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def stats_json(sample_clip_dir) -> Path:
    return sample_clip_dir / "original_normalisation_stats.json"


@pytest.fixture(scope="module")
def mirror(checkpoints_dir, stats_json, tmp_path_factory) -> Path:
    return build_mirror(checkpoints_dir, stats_json, tmp_path_factory.mktemp("mirror"))


def _cli(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _blob(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _cache_files(cache: Path) -> list[str]:
    return sorted(str(p.relative_to(cache)) for p in cache.rglob("*") if p.is_file()) if cache.exists() else []


# -- pins -------------------------------------------------------------------------------------------

def test_reference_weights_have_the_pinned_blob_ids(checkpoints_dir):
    for model, name in REFERENCE_WEIGHTS.items():
        data = (checkpoints_dir / name).read_bytes()
        spec = pw.released(model).file
        assert spec.algorithm == "gitblob" and spec.digest == _blob(data) == dl.git_blob_id(checkpoints_dir / name)
        assert spec.size == len(data) and spec.name == name


def test_git_blob_id_equals_git_hash_object(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    f = tmp_path / "x.bin"
    f.write_bytes(bytes(range(256)) * 9 + b"\0tail")
    git = subprocess.run(["git", "hash-object", str(f)], capture_output=True, text=True, check=True).stdout.strip()
    assert dl.git_blob_id(f) == git


def test_norm_pickles_rebuilt_from_the_json_match_the_pins(stats_json, tmp_path):
    """The release's norm files are a numpy-1 pickle of {"mean", "std"}: rebuilt, their blob ids are the pins,
    and the project's numpy-only unpickler reads them back to the JSON's numbers."""
    from soundaq.models_zoo.checkpoints import read_norm_file

    mel, loud = write_norm_pickles(stats_json, tmp_path)
    assert [dl.git_blob_id(mel), dl.git_blob_id(loud)] == [f.digest for f in pw.NORM_FILES]
    assert [mel.stat().st_size, loud.stat().st_size] == [f.size for f in pw.NORM_FILES]
    stats = json.loads(stats_json.read_text())
    assert read_norm_file(loud, "loudness") == stats["loudness"]
    assert read_norm_file(mel, "log_mel")["std"] == pytest.approx(stats["log_mel"]["std"], rel=1e-6)


def test_every_registry_name_is_released_or_named_unpinned():
    from soundaq.models_zoo.registry import paper_nets

    for name in paper_nets():        # each of the paper's nets: released, or named as published elsewhere
        assert (name in pw.UNPINNED) != any(r.model == name for r in pw.RELEASES)
    assert pw.variants("soundaqnet") == ["PAQ1027", "PAQ1039", "PAQ1041", "PAQ1052"]
    assert pw.released("SoundAQnet").variant == "PAQ1027"
    assert pw.DEFAULT_MIRROR.endswith(f"/{pw.RELEASE_COMMIT}/")
    assert len({r.file.name for r in pw.RELEASES}) == len(pw.RELEASES)


# -- download from a folder and a file:// URL ------------------------------------------------------------

def test_download_from_a_folder_mirror_imports_a_checkpoint(mirror, tmp_path, capsys, checkpoints_dir):
    import torch

    from soundaq.models_zoo.checkpoints import load_checkpoint, load_original_weights

    cache = tmp_path / "cache"
    code, out, err = _cli(capsys, "models", "download", "AD_CNN", "--mirror", mirror, "--cache-dir", cache,
                          "--no-progress")
    assert code == 0, err
    ckpt = cache / "pretrained" / "AD_CNN.ckpt"
    assert f"AD_CNN: downloaded, 2,099,681 bytes fetched -> {ckpt}" in out
    net, _norm, info = load_checkpoint(ckpt)
    prov = info["provenance"]
    assert prov["git_blob_id"] == pw.released("AD_CNN").file.digest and prov["release_commit"] == pw.RELEASE_COMMIT
    assert prov["downloaded_from"] == str(mirror)
    assert prov["norm_stats_files"]["log_mel"]["file"] == "norm_log_mel.pickle"
    original = load_original_weights("AD_CNN", checkpoints_dir / "AD_CNN_final_model.pth").state_dict()
    ours = net.state_dict()
    assert ours.keys() == original.keys() and all(torch.equal(ours[k], original[k]) for k in ours)
    assert not [p for p in _cache_files(cache) if p.endswith(".part")]
    # again: nothing fetched, the checkpoint kept
    code, out, _ = _cli(capsys, "models", "download", "ad_cnn", "--mirror", mirror, "--cache-dir", cache,
                        "--no-progress")
    assert code == 0 and "AD_CNN: present ->" in out
    # the table says so
    code, out, _ = _cli(capsys, "models", "--cache-dir", cache, "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["AD_CNN"]["pretrained"][0]["downloaded"] is True
    assert rows["Baseline_CNN"]["pretrained"][0]["downloaded"] is False
    assert [r["variant"] for r in rows["SoundAQnet"]["pretrained"]] == pw.variants("SoundAQnet")
    assert rows["PANNs"]["pretrained"][0]["released"] == pw.UNPINNED["PANNs"]


def test_file_url_mirror_and_all_with_some_models_missing(mirror, tmp_path, capsys):
    """`all` against a mirror holding three models: those three verified and imported, the others one line."""
    cache = tmp_path / "cache"
    code, out, err = _cli(capsys, "models", "download", "all", "--mirror", mirror.resolve().as_uri(),
                          "--cache-dir", cache, "--no-progress")
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "MobileNetV2_final_model.pth: not found" in err and "(and 3 more model(s) failed)" in err
    for model in REFERENCE_WEIGHTS:
        assert (cache / "pretrained" / f"{model}.ckpt").is_file() and f"{model}: downloaded" in out
    release = cache / "pretrained" / f"release-{pw.RELEASE_COMMIT[:7]}"
    assert sorted(p.name for p in release.iterdir()) == sorted(
        [*REFERENCE_WEIGHTS.values(), "norm_log_mel.pickle", "norm_loudness.pickle"])
    assert all(pw.verify_cached(cache).values())


def test_flat_folder_mirror_by_file_names(checkpoints_dir, stats_json, tmp_path, capsys):
    """A flat folder holding the files under their cache names works too (e.g. the reference folder + pickles)."""
    flat = tmp_path / "flat"
    flat.mkdir()
    shutil.copyfile(checkpoints_dir / "Hierarchical_CNN_final_model.pth", flat / "Hierarchical_CNN_final_model.pth")
    write_norm_pickles(stats_json, flat)
    code, _, err = _cli(capsys, "models", "download", "Hierarchical_CNN", "--mirror", flat,
                        "--cache-dir", tmp_path / "c", "--no-progress")
    assert code == 0, err


# -- refusals: one line, exit 2, nothing half-written ------------------------------------------------------

def test_a_tampered_byte_is_refused_and_nothing_is_kept(mirror, tmp_path, capsys):
    bad = tmp_path / "bad"
    shutil.copytree(mirror, bad)
    victim = bad / pw.released("AD_CNN").file.release_path
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    cache = tmp_path / "cache"
    code, _, err = _cli(capsys, "models", "download", "AD_CNN", "--mirror", bad, "--cache-dir", cache, "--no-progress")
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "AD_CNN_final_model.pth: git blob id mismatch" in err and "nothing kept" in err
    files = _cache_files(cache)
    assert not [f for f in files if "AD_CNN" in f]          # no weights, no part file, no checkpoint
    assert not [f for f in files if f.endswith(".part")]


def test_half_a_file_in_a_folder_then_the_rest_resumes(mirror, tmp_path, capsys):
    half = tmp_path / "half"
    shutil.copytree(mirror, half)
    spec = pw.released("Baseline_CNN").file
    full = (mirror / spec.release_path).read_bytes()
    (half / spec.release_path).write_bytes(full[: len(full) // 2])
    cache = tmp_path / "cache"
    code, _, err = _cli(capsys, "models", "download", "Baseline_CNN", "--mirror", half, "--cache-dir", cache,
                        "--no-progress")
    assert code == 2 and err.count("\n") == 1
    assert f"incomplete ({len(full) // 2:,} of {len(full):,} bytes arrived)" in err and "resume" in err
    part = dl.part_path(pw.release_dir(cache), spec)
    assert part.stat().st_size == len(full) // 2
    assert not (pw.release_dir(cache) / spec.name).exists()
    assert not (cache / "pretrained" / "Baseline_CNN.ckpt").exists()
    code, out, err = _cli(capsys, "models", "download", "Baseline_CNN", "--mirror", mirror, "--cache-dir", cache,
                          "--no-progress", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["status"] == "resumed" and summary["bytes"] == len(full) - len(full) // 2
    assert (pw.release_dir(cache) / spec.name).read_bytes() == full and not part.exists()


class _Release(http.server.BaseHTTPRequestHandler):
    """Serves a folder with Range support; ``mode`` makes it misbehave: "drop" (the first full answer of a
    weights file breaks off half way), "html" (an HTML error page with status 200 instead of .pth files),
    "proxy" (accepts absolute URLs, as a forward proxy receives them)."""

    root: Path
    log: list
    mode: str = ""
    dropped: set

    def do_GET(self):
        target = self.path
        if self.mode == "proxy":
            assert target.startswith("http://release.invalid/"), target
            target = target[len("http://release.invalid"):]
        path = self.root / target.lstrip("/")
        rng = self.headers.get("Range")
        self.log.append((self.path, rng))
        if self.mode == "html" and path.suffix == ".pth":
            body = b"<!DOCTYPE html><html><body>Rate limit exceeded</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        start = int(rng[len("bytes="):].split("-")[0]) if rng else 0
        self.send_response(206 if rng else 200)
        if rng:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.mode == "drop" and path.suffix == ".pth" and not rng and path not in self.dropped:
            self.dropped.add(path)
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture()
def serve(mirror):
    servers = []

    def start(mode: str = ""):
        log: list = []
        handler = type("H", (_Release,), {"root": mirror, "log": log, "mode": mode, "dropped": set()})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/", log

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_a_dropped_transfer_is_resumed_with_a_range_request(serve, tmp_path, capsys):
    base, log = serve("drop")
    cache = tmp_path / "cache"
    spec = pw.released("AD_CNN").file
    code, _, err = _cli(capsys, "models", "download", "AD_CNN", "--mirror", base, "--cache-dir", cache,
                        "--no-progress", "--timeout", "10")
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "AD_CNN_final_model.pth: transfer interrupted" in err and "run the same command again to resume" in err
    part = dl.part_path(pw.release_dir(cache), spec)
    got = part.stat().st_size
    assert 0 < got < spec.size and not (cache / "pretrained" / "AD_CNN.ckpt").exists()
    log.clear()
    code, out, err = _cli(capsys, "models", "download", "AD_CNN", "--mirror", base, "--cache-dir", cache,
                          "--no-progress", "--json")
    assert code == 0, err
    assert json.loads(out)["status"] == "resumed"
    assert (f"/{spec.release_path}", f"bytes={got}-") in log
    assert dl.git_blob_id(pw.release_dir(cache) / spec.name) == spec.digest and not part.exists()


def test_an_html_page_instead_of_weights_is_refused(serve, tmp_path, capsys):
    base, _ = serve("html")
    cache = tmp_path / "cache"
    code, _, err = _cli(capsys, "models", "download", "Hierarchical_CNN", "--mirror", base, "--cache-dir", cache,
                        "--no-progress")
    assert code == 2 and err.count("\n") == 1
    assert "Hierarchical_CNN_final_model.pth: the source served an HTML page" in err and "nothing kept" in err
    assert not [f for f in _cache_files(cache) if "Hierarchical" in f]


def test_no_network_is_one_line_and_leaves_nothing(tmp_path, capsys):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cache = tmp_path / "cache"
    code, _, err = _cli(capsys, "models", "download", "AD_CNN", "--mirror", f"http://127.0.0.1:{port}/",
                        "--cache-dir", cache, "--no-progress", "--timeout", "5")
    assert code == 2 and err.count("\n") == 1 and "cannot connect" in err and "--mirror" in err
    assert _cache_files(cache) == []


def test_a_command_without_mirror_option_names_the_fix_it_has(tmp_path, capsys, monkeypatch):
    """`predict --model NAME` downloads on first use but has no --mirror: its fix names $SOUNDAQ_MIRROR and
    `soundaq models download` (a new user was told to pass a --mirror that predict refused)."""
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("SOUNDAQ_MIRROR", f"http://127.0.0.1:{port}/")
    wav = tmp_path / "rec.wav"
    import numpy as np
    import soundfile as sf

    sf.write(wav, np.zeros(16000, dtype=np.float32), 16000)
    code, _, err = _cli(capsys, "predict", wav, "--model", "AD_CNN", "--cache-dir", tmp_path / "cache",
                        "--no-progress")
    assert code == 2 and err.count("\n") == 1 and "cannot connect" in err
    assert "$SOUNDAQ_MIRROR (or run `soundaq models download AD_CNN --mirror DIR|URL` first)" in err
    assert "pass --mirror" not in err


def test_downloads_go_through_the_proxy_of_the_environment(serve, tmp_path, capsys, monkeypatch):
    proxy, log = serve("proxy")
    for var in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy)
    monkeypatch.setenv("http_proxy", proxy)
    code, _, err = _cli(capsys, "models", "download", "AD_CNN", "--mirror", "http://release.invalid/",
                        "--cache-dir", tmp_path / "cache", "--no-progress", "--timeout", "10")
    assert code == 0, err
    assert (f"http://release.invalid/{pw.released('AD_CNN').file.release_path}", None) in log


def test_names_without_released_weights(tmp_path, capsys, checkpoints_dir, stats_json):
    cache = tmp_path / "cache"
    code, _, err = _cli(capsys, "models", "download", "PANNs", "--cache-dir", cache, "--no-progress")
    assert code == 2 and err.count("\n") == 1
    assert "PANNs: the release publishes no pinned weights" in err
    assert "soundaq models import PANNs --weights FILE" in err
    for args, needle in ((["NoSuchNet"], "unknown model 'NoSuchNet'"),
                         (["SoundAQnet", "--variant", "PAQ9999"], "no released variant 'PAQ9999'"),
                         (["AD_CNN", "--variant", "PAQ1027"], "without variants")):
        code, _, err = _cli(capsys, "models", "download", *args, "--cache-dir", cache, "--no-progress")
        assert code == 2 and needle in err and err.count("\n") == 1, err
    assert _cache_files(cache) == []
    # predict --model PANNs: the same one line, before any audio is read
    code, _, err = _cli(capsys, "predict", tmp_path / "x.wav", "--model", "PANNs", "--cache-dir", cache)
    assert code == 2 and "soundaq models import PANNs" in err and err.count("\n") == 1
    # a user's file that is not PANNs' is refused in one line, nothing filed
    not_panns = tmp_path / "not_panns.pth"
    shutil.copyfile(checkpoints_dir / "AD_CNN_final_model.pth", not_panns)
    code, _, err = _cli(capsys, "models", "import", "PANNs", "--weights", not_panns, "--norm-mel", stats_json,
                        "--cache-dir", cache, "--no-progress")
    assert code == 2 and "weights do not fit PANNs" in err and err.count("\n") == 1
    assert not (cache / "pretrained" / "PANNs.ckpt").exists()


def test_import_a_user_file_then_use_it_by_name(tmp_path, capsys, checkpoints_dir, stats_json, monkeypatch):
    """`soundaq models import NAME --weights FILE` files the user's copy; `--model NAME` then finds it offline."""
    cache = tmp_path / "cache"
    monkeypatch.setenv(pw.MIRROR_ENV, str(tmp_path / "nowhere"))   # any download attempt would fail
    code, out, err = _cli(capsys, "models", "import", "AD_CNN", "--weights", checkpoints_dir / "AD_CNN_final_model.pth",
                          "--norm-mel", stats_json, "--cache-dir", cache, "--no-progress")
    assert code == 0, err and "use it with --model AD_CNN" in out
    assert pw.resolve_checkpoint("AD_CNN", cache_dir=cache) == cache / "pretrained" / "AD_CNN.ckpt"


def test_resolve_checkpoint_paths_names_and_first_use_download(mirror, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    ckpt = tmp_path / "mine.ckpt"
    ckpt.write_bytes(b"x")
    assert pw.resolve_checkpoint(ckpt) == ckpt
    with pytest.raises(pw.PretrainedError, match="no such checkpoint file"):
        pw.resolve_checkpoint(tmp_path / "missing.ckpt")
    with pytest.raises(pw.PretrainedError, match="--variant goes with a model name"):
        pw.resolve_checkpoint(ckpt, variant="PAQ1039")
    monkeypatch.setenv(pw.MIRROR_ENV, mirror.resolve().as_uri())
    path = pw.resolve_checkpoint("hierarchical_cnn", cache_dir=cache, progress=False)
    assert path == cache / "pretrained" / "Hierarchical_CNN.ckpt" and path.is_file()
    with pytest.raises(dl.DownloadError, match=r"SoundAQnet_ASC96_AEC94_PAQ1039\.pth: not found"):
        pw.resolve_checkpoint("SoundAQnet", variant="PAQ1039", cache_dir=cache, progress=False)
    assert not (cache / "pretrained" / "SoundAQnet-PAQ1039.ckpt").exists()


def test_predict_with_model_name_downloads_on_first_use(mirror, tmp_path, capsys, monkeypatch, sample_clip_dir,
                                                        checkpoints_dir):
    import numpy as np

    mel = np.load(sample_clip_dir / "reference_log_mel.npy").astype(np.float32)
    np.savez(tmp_path / "clip.npz", mel=mel[None])
    monkeypatch.setenv(pw.MIRROR_ENV, str(mirror))
    code, out, err = _cli(capsys, "predict", tmp_path / "clip.npz", "--model", "AD_CNN", "--cache-dir",
                          tmp_path / "cache", "--no-progress")
    assert code == 0, err
    result = json.loads(out)[0]
    exp = np.load(checkpoints_dir / "expected_outputs" / "AD_CNN_sample_clip.npz")
    assert result["model"] == "AD_CNN" and result["isop"] == pytest.approx(float(exp["ISOPl"][0, 0]), abs=1e-4)
    assert (tmp_path / "cache" / "pretrained" / "AD_CNN.ckpt").is_file()


def test_leaderboard_pretrained_resolves_each_model(mirror, tmp_path, monkeypatch):
    from soundaq.benchmark import leaderboard as lb

    monkeypatch.setenv(pw.MIRROR_ENV, str(mirror))
    s = lb.Settings(out=tmp_path / "run", checkpoints=lb.PRETRAINED, cache_dir=tmp_path / "cache", progress=False)
    assert lb.checkpoint_for(s, "AD_CNN") == tmp_path / "cache" / "pretrained" / "AD_CNN.ckpt"
    assert lb.is_pretrained("pretrained") and not lb.is_pretrained(Path("pretrained"))
    assert pw.models_with_weights(tmp_path / "cache") == [
        "AD_CNN", "Baseline_CNN", "Hierarchical_CNN", "MobileNetV2", "YAMNet", "CNN_Transformer", "SoundAQnet"]
