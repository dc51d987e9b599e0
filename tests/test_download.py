"""`soundaq data download`: pins, mirrors (folder, file://, local HTTP with Range), resume, atomicity.

Never touches the network: every source is a mirror built in a temp folder from the reference labels.
"""
from __future__ import annotations

import hashlib
import http.server
import threading
from pathlib import Path

import pytest

from soundaq.benchmark.cli import main
from soundaq.models_zoo.data import download as dl
from soundaq.models_zoo.data import label_download as ld
from soundaq.models_zoo.data.labels import read_labels


@pytest.fixture(scope="module")
def mirror(araus_labels_dir, tmp_path_factory) -> Path:
    """A copy of the release laid out as in the repository (folders Dataset_training_validation_test/...)."""
    return ld.copy_tree_mirror(araus_labels_dir, tmp_path_factory.mktemp("mirror"), layout="release")


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    root: Path
    log: list

    def do_GET(self):
        path = self.root / self.path.lstrip("/").replace("%20", " ")
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        rng = self.headers.get("Range")
        start = 0
        if rng and rng.startswith("bytes="):
            start = int(rng[len("bytes="):].split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        # logged before the body goes out: once a client has read it, its entry is already in the log
        self.log.append((self.path, rng, len(body)))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture()
def http_mirror(mirror):
    log: list = []
    handler = type("H", (_RangeHandler,), {"root": mirror, "log": log})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", log
    finally:
        server.shutdown()
        server.server_close()


def test_pins_match_reference_files(araus_labels_dir):
    """The pins are the reference release files' sizes and sha256 (computed independently here)."""
    names = sorted(p.name for p in araus_labels_dir.iterdir() if p.suffix == ".txt")
    assert sorted(f.name for f in ld.LABEL_FILES) == names
    assert len(ld.LABEL_FILES) == 16
    for spec in ld.LABEL_FILES:
        data = (araus_labels_dir / spec.name).read_bytes()
        assert len(data) == spec.size
        assert hashlib.sha256(data).hexdigest() == spec.sha256


def test_default_base_is_github_raw_main():
    assert ld.DEFAULT_BASE_URL == "https://raw.githubusercontent.com/Yuanbo2020/SoundSCaper/main/"
    urls = dl._candidates(ld.DEFAULT_BASE_URL, ld.LABEL_FILES[0])
    assert urls[0] == ("https://raw.githubusercontent.com/Yuanbo2020/SoundSCaper/main/"
                       "Dataset_training_validation_test/training_set_audio_file_ids.txt")
    usotw = next(f for f in ld.LABEL_FILES if f.name.startswith("annotated"))
    assert usotw.release_path == "Dataset_all_ARAUS/annotated_USotW_scene_labels.txt"


def test_download_from_folder_mirror_then_labels_read(mirror, tmp_path, araus_labels_dir):
    dest = tmp_path / "labels"
    results = ld.download_labels(dest, str(mirror), progress=False)
    assert {r.status for r in results} == {"downloaded"}
    assert all(ld.verify_labels(dest).values())
    assert not list(dest.glob(".*.part"))
    frame = read_labels(dest, "test")
    assert len(frame) == 3576
    # a second run keeps every file (hash re-checked), fetching nothing
    again = ld.download_labels(dest, str(mirror), progress=False)
    assert {r.status for r in again} == {"present"}


def test_flat_file_url_mirror(araus_labels_dir, tmp_path):
    """A file:// base pointing at a flat folder (the reference layout) works via the bare-name fallback."""
    dest = tmp_path / "labels"
    ld.download_labels(dest, araus_labels_dir.resolve().as_uri(), progress=False)
    assert all(ld.verify_labels(dest).values())


def test_http_range_resume(http_mirror, tmp_path):
    base, log = http_mirror
    dest = tmp_path / "labels"
    dest.mkdir()
    spec = next(f for f in ld.LABEL_FILES if f.name == "training_set_PAQ_8D_AQs.txt")
    # simulate an interrupted download: the first 1,000,000 bytes are already in the part file
    original = _read_from_server(base, spec)
    half = 1_000_000
    dl.part_path(dest, spec).write_bytes(original[:half])
    log.clear()
    results = ld.download_labels(dest, base, progress=False, files=[spec])
    assert results[0].status == "resumed"
    assert results[0].fetched_bytes == spec.size - half
    assert log == [(f"/{spec.release_path}", f"bytes={half}-", spec.size - half)]
    assert (dest / spec.name).read_bytes() == original
    assert not dl.part_path(dest, spec).exists()


def _read_from_server(base: str, spec) -> bytes:
    import urllib.request

    with urllib.request.urlopen(base + spec.release_path) as resp:
        return resp.read()


def test_stale_partial_restarts_from_scratch(mirror, tmp_path):
    """A partial file that is not a prefix of the release copy is discarded, not trusted."""
    dest = tmp_path / "labels"
    dest.mkdir()
    spec = ld.LABEL_FILES[0]
    dl.part_path(dest, spec).write_bytes(b"garbage" * 100)
    results = ld.download_labels(dest, str(mirror), progress=False, files=[spec])
    assert results[0].status == "downloaded"
    assert ld.verify_labels(dest, [spec]) == {spec.name: True}


def test_corrupt_existing_file_is_replaced(mirror, tmp_path):
    dest = tmp_path / "labels"
    dest.mkdir()
    spec = ld.LABEL_FILES[1]
    (dest / spec.name).write_text("park\n")
    results = ld.download_labels(dest, str(mirror), progress=False, files=[spec])
    assert results[0].status == "downloaded"
    assert ld.verify_labels(dest, [spec]) == {spec.name: True}


def test_hash_mismatch_is_one_line_naming_the_file(mirror, tmp_path, capsys):
    bad = tmp_path / "bad_mirror"
    ld.copy_tree_mirror(mirror / ld.SPLIT_FOLDER, bad, layout="flat",
                        files=[f for f in ld.LABEL_FILES if f.release_path.startswith(ld.SPLIT_FOLDER)])
    ld.copy_tree_mirror(mirror / ld.ALL_ARAUS_FOLDER, bad, layout="flat",
                        files=[f for f in ld.LABEL_FILES if f.release_path.startswith(ld.ALL_ARAUS_FOLDER)])
    victim = bad / "test_set_PAQ_8D_AQs.txt"
    victim.write_bytes(victim.read_bytes().replace(b"4.0", b"5.0", 1))
    dest = tmp_path / "labels"
    code = main(["data", "download", "--labels-to", str(dest), "--base-url", str(bad), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "test_set_PAQ_8D_AQs.txt" in err and "sha256 mismatch" in err
    # the bad file never reaches its final name; the good ones are all there (the batch kept going)
    assert not (dest / "test_set_PAQ_8D_AQs.txt").exists()
    assert not list(dest.glob(".*.part"))
    ok = ld.verify_labels(dest)
    assert sum(ok.values()) == 15


def test_missing_file_and_bad_base(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    code = main(["data", "download", "--labels-to", str(tmp_path / "d"), "--base-url", str(empty), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "training_set_audio_file_ids.txt: not found" in err and "15 more" in err
    code = main(["data", "download", "--labels-to", str(tmp_path / "d"), "--base-url", str(tmp_path / "nope"),
                 "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "not a URL" in err and err.count("\n") == 1


def test_unreachable_server_is_one_line(tmp_path, capsys):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = main(["data", "download", "--labels-to", str(tmp_path / "d"), "--base-url", f"http://127.0.0.1:{port}/",
                 "--no-progress", "--timeout", "5"])
    err = capsys.readouterr().err
    assert code == 2 and "cannot connect" in err and err.count("\n") == 1


def test_cli_success_line(mirror, tmp_path, capsys):
    code = main(["data", "download", "--labels-to", str(tmp_path / "d"), "--base-url", str(mirror), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0
    assert "16 label files, sha256 verified (16 downloaded, 0 resumed, 0 already present)" in out
