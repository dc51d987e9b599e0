"""`soundaq data download araus`: ARAUS's manifest through the pinned downloader, from a local mirror."""
from __future__ import annotations

import hashlib
import zipfile

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from araus_builders import calibration_columns

from soundaq.base.vocab import QUALITIES
from soundaq.models_zoo.data.araus_download import ARCHIVE_DIR, RAW_DIR, Item, download_araus, manifest
from soundaq.models_zoo.data.download import DownloadError, PinnedFile


def _zip(path, members: dict) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def _wav_bytes(tmp_path, samples, rate) -> bytes:
    path = tmp_path / "x.wav"
    sf.write(path, samples, rate, subtype="PCM_16")
    return path.read_bytes()


def _mirror(tmp_path):
    """A flat mirror of small archives in ARAUS's layout, and the items pinning them (BLAKE2b-512)."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    rng = np.random.default_rng(1)
    minute = (rng.standard_normal((48000 * 60, 2)) * 0.05).astype(np.float32)
    masker = (rng.standard_normal(44100 * 30) * 0.05).astype(np.float32)
    scapes = ["R0001_segment_binaural_44100_1.wav", "R0001_segment_binaural_44100_2.wav",
              "S0001_1min_SQobold_bin_44100_1.wav"]
    rows = [{"participant": "ARAUS_00007", "fold_r": k % 2, "soundscape": s, "masker": m, "smr": 0,
             "stimulus_index": k + 1, **{q: 3 for q in QUALITIES}}
            for k, (s, m) in enumerate(zip(scapes, ("bird_00001.wav", "water_00002.wav", "bird_00001.wav")))]
    tables = {"data/responses.csv": pd.DataFrame(rows).to_csv(index=False),
              "data/soundscapes.csv": pd.DataFrame({"soundscape": scapes, "gain_s": 1.0, "insitu_leq": 65.0}).to_csv(
                  index=False),
              "data/maskers.csv": calibration_columns(["bird_00001.wav", "water_00002.wav"]).to_csv(index=False)}
    _zip(mirror / "data.zip", tables)
    _zip(mirror / "maskers.zip", {"maskers/bird_00001.wav": _wav_bytes(tmp_path, masker, 44100)})
    _zip(mirror / "maskersv2.zip", {"maskersv2/water_00002.wav": _wav_bytes(tmp_path, masker[::-1].copy(), 44100)})
    _zip(mirror / "binaural.zip", {"binaural/R0001_segment_binaural.wav": _wav_bytes(tmp_path, minute, 48000)})
    (mirror / "S0001_1min_SQobold_bin.wav").write_bytes(_wav_bytes(tmp_path, minute[::-1].copy(), 48000))
    items = []
    for name in ("binaural.zip", "maskers.zip", "data.zip", "maskersv2.zip", "S0001_1min_SQobold_bin.wav"):
        digest = hashlib.blake2b((mirror / name).read_bytes()).hexdigest()
        folder = RAW_DIR if name.endswith(".wav") else ARCHIVE_DIR
        items.append(Item("https://origin.invalid/", PinnedFile(name, name, None, f"blake2b:{digest}"), folder))
    return mirror, items


def test_manifest_pins_every_file_by_araus_blake2b():
    items = manifest()
    assert len(items) == 6 + 62 and {it.spec.algorithm for it in items} == {"blake2b"}
    assert all(len(it.spec.digest) == 128 for it in items)
    assert items[2].spec.name == "data.zip" and items[2].base == "https://researchdata.ntu.edu.sg/api/access/datafile/"
    assert items[2].spec.release_path == "99922" and items[-1].spec.name == "S0062_1min_SQobold_bin.wav"


def test_download_verifies_unpacks_moves_and_splits(tmp_path):
    from soundaq.models_zoo.data.sources import make_source

    mirror, items = _mirror(tmp_path)
    dest = tmp_path / "ARAUS"
    results = download_araus(dest, mirror.as_uri(), progress=False, items=items)
    assert [r.status for r in results] == ["downloaded"] * 5
    assert sorted(p.name for p in (dest / "maskers").iterdir()) == ["bird_00001.wav", "water_00002.wav"]
    assert not (dest / "maskersv2").exists() and not (dest / "binaural").exists()
    halves = sorted(p.name for p in (dest / "soundscapes").iterdir())
    assert halves == ["R0001_segment_binaural_44100_1.wav", "R0001_segment_binaural_44100_2.wav",
                      "S0001_1min_SQobold_bin_44100_1.wav", "S0001_1min_SQobold_bin_44100_2.wav"]
    info = sf.info(str(dest / "soundscapes" / halves[1]))
    assert (info.samplerate, info.frames, info.channels) == (44100, 1323000, 2)
    assert (dest / RAW_DIR / "R0001_segment_binaural.wav").is_file()       # moved beside the other raw tracks
    src = make_source("araus", araus_dir=dest, cache_dir=tmp_path / "cache")
    assert sum(len(src.labels(s)) for s in src.splits()) == 3                # the layout serves every row
    again = download_araus(dest, mirror.as_uri(), progress=False, items=items)   # a rerun keeps what verified
    assert [r.status for r in again] == ["present"] * 5


def test_a_tampered_archive_is_refused_in_one_line_with_nothing_half_written(tmp_path):
    mirror, items = _mirror(tmp_path)
    with zipfile.ZipFile(mirror / "maskers.zip", "a") as zf:
        zf.writestr("maskers/extra.wav", b"not what ARAUS published")
    dest = tmp_path / "ARAUS"
    with pytest.raises(DownloadError) as err:
        download_araus(dest, mirror.as_uri(), progress=False, items=items)
    message = str(err.value)
    assert "\n" not in message and message.startswith("maskers.zip: blake2b mismatch") and "nothing kept" in message
    assert "ARAUS download" in message
    assert not (dest / ARCHIVE_DIR / "maskers.zip").exists() and not list(dest.rglob("*.part"))
    assert not (dest / "maskers").exists() and not (dest / "data").exists()      # nothing unpacked


def test_cli_refuses_a_mirror_that_does_not_serve_araus_files(tmp_path, capsys):
    from soundaq.benchmark.cli import main

    mirror = tmp_path / "mirror"
    mirror.mkdir()
    _zip(mirror / "binaural.zip", {"binaural/x.txt": b"tampered"})
    code = main(["data", "download", "araus", "--to", str(tmp_path / "ARAUS"), "--base-url", mirror.as_uri(),
                 "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and "binaural.zip: blake2b mismatch" in err[0] and "fix:" in err[0]
    assert not list((tmp_path / "ARAUS").rglob("*.zip"))
