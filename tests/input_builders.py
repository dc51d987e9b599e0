"""Small valid inputs made in the test (label folders, features, predictions tables, statistics) and
the ways to spoil them: other encodings and line ends, truncation, other kinds of file."""
from __future__ import annotations

import codecs
import json
from pathlib import Path

import numpy as np

from soundaq.base.vocab import EVENTS, QUALITIES, SCENES, iso_coordinates

#: Ways to write the same text: UTF-8 with or without a byte-order mark, LF/CRLF/CR line ends.
ENCODINGS = {
    "lf": lambda text: text.encode("utf-8"),
    "bom": lambda text: codecs.BOM_UTF8 + text.encode("utf-8"),
    "crlf": lambda text: text.replace("\n", "\r\n").encode("utf-8"),
    "cr": lambda text: text.replace("\n", "\r").encode("utf-8"),
    "bom_crlf": lambda text: codecs.BOM_UTF8 + text.replace("\n", "\r\n").encode("utf-8"),
    "bom_cr_no_final_newline": lambda text: codecs.BOM_UTF8 + text.rstrip("\n").replace("\n", "\r").encode("utf-8"),
}


def reencode(path: Path, how: str) -> Path:
    """Rewrite a UTF-8/LF text file in another accepted encoding (see :data:`ENCODINGS`)."""
    path.write_bytes(ENCODINGS[how](path.read_bytes().decode("utf-8")))
    return path


def latin1(path: Path, line: int = 2) -> Path:
    """Put a Latin-1 'é' (byte 0xE9, not UTF-8) at the start of line ``line``; returns the path."""
    lines = path.read_bytes().split(b"\n")
    lines[line - 1] = b"\xe9" + lines[line - 1]
    path.write_bytes(b"\n".join(lines))
    return path


def write_label_folder(folder: Path, per_split: int = 4, seed: int = 0, splits=("training", "validation", "test"),
                       prefix: str = "clip") -> Path:
    """A valid ARAUS-layout label folder with ``per_split`` clips in each split (every scene appears)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split in splits:
        ids = [f"{prefix}_{split}_{i:02d}" for i in range(per_split)]
        scenes = [SCENES[i % len(SCENES)] for i in range(per_split)]
        events = ["\t".join(e for e in EVENTS if rng.random() < 0.3) or EVENTS[0] for _ in ids]
        aq = rng.integers(1, 6, (per_split, len(QUALITIES))).astype(float)
        iso = np.stack(iso_coordinates(*aq.T), axis=1)
        files = {"audio_file_ids": ids, "acoustic_scene_labels": scenes, "audio_event_labels": events,
                 "PAQ_8D_AQs": [" ".join(f"{v:.1f}" for v in row) for row in aq],
                 "ISOP_ISOE": [" ".join(repr(float(v)) for v in row) for row in iso]}
        for role, lines in files.items():
            (folder / f"{split}_set_{role}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def write_features(labels: Path, out: Path, seed: int = 0) -> Path:
    """Random features in the release layout for every clip of a label folder."""
    from soundaq.base.textio import read_lines

    (out / "Feature_log_mel").mkdir(parents=True, exist_ok=True)
    (out / "Feature_loudness_ISO532_1").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for f in sorted(labels.glob("*_set_audio_file_ids.txt")):
        for cid in read_lines(f):
            np.save(out / "Feature_log_mel" / f"{cid}.npy", rng.normal(-40, 10, (3001, 64)).astype(np.float32))
            np.save(out / "Feature_loudness_ISO532_1" / f"{cid}.npy",
                    np.abs(rng.normal(10, 3, (15000, 1))).astype(np.float32))
    return out


def write_predictions(labels: Path, path: Path, model: str = "M", seed: int = 0) -> Path:
    """A predictions table with truth columns (as the leaderboard writes) for the test split of ``labels``."""
    from soundaq.models_zoo.data.labels import read_labels
    from soundaq.models_zoo.predict import add_truth, predictions_frame

    truth = read_labels(labels, "test")
    n = len(truth)
    rng = np.random.default_rng(seed)
    outputs = {"scene_probabilities": rng.dirichlet(np.ones(3), n), "event_probabilities": rng.random((n, 15)),
               "qualities": rng.uniform(1, 5, (n, 8)), "isop": rng.uniform(-1, 1, n), "isoe": rng.uniform(-1, 1, n)}
    table = add_truth(predictions_frame(outputs, model, truth["clip"].tolist()), truth)
    table.to_csv(path, index=False, lineterminator="\n")
    return path


def write_norm_stats(path: Path) -> Path:
    stats = {"log_mel": {"mean": [float(-40 + i / 8) for i in range(64)], "std": [10.0] * 64},
             "loudness": {"mean": [10.0], "std": [3.0]}}
    path.write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
    return path


def write_key(path: Path, rows: list[tuple]) -> Path:
    path.write_text("participant,dataset,clip,caption,system\n"
                    + "".join(",".join(map(str, r)) + "\n" for r in rows), encoding="utf-8")
    return path


def noise_wav(path: Path, seconds: float = 30.0, rate: int = 16000, seed: int = 0, level: float = 0.05) -> Path:
    """White noise (the cheap case for the loudness model: no digital silence)."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    sf.write(str(path), (level * rng.standard_normal(int(seconds * rate))).astype(np.float32), rate)
    return path


def write_jury(folder: Path, participants: int = 4, clips: int = 6, seed: int = 0) -> tuple[list[Path], Path]:
    """A small jury without the template: one questionnaire per participant (header row, 'Caption 1/2'
    rows, ratings on the scales' grids) and its key. Returns (workbooks, key)."""
    import openpyxl

    from soundaq.human_study.dimensions import RATED

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    header = ["No.", "Record ID", "Caption", "", "Precision ( [1, 5] )", "Recall ( [1, 5] )",
              "Fluency (negative) ( [-2, 0] )", "Conciseness (negative) ( [-2, 0] )",
              "Irrelevance (negative) ( [-2, 0] )"]
    names = [f"{i + 1}.wav" for i in range(clips)]
    key_rows, books = [], []
    for p in range(1, participants + 1):
        wb = openpyxl.Workbook()
        ws = wb.active
        ws.title = "Assessment"
        ws.append(["Dataset 2: audio clips"])
        ws.append(header)
        for no, clip in enumerate(names, start=1):
            systems = ["human expert", "SoundSCaper"][:: 1 if rng.random() < 0.5 else -1]
            for n, system in enumerate(systems, start=1):
                base = 3.8 - (0.4 if system == "SoundSCaper" else 0.0) + rng.normal(0, 0.5)
                pr = [int(np.clip(np.rint(base + rng.normal(0, 0.4)), 1, 5)) for _ in range(2)]
                pen = [float(np.clip(np.rint(2 * rng.normal(-0.3, 0.4)) / 2, -2, 0)) for _ in range(3)]
                ws.append([no if n == 1 else None, clip if n == 1 else None, f"Caption {n}", "text", *pr, *pen])
                key_rows.append((f"P{p}", "D2", clip, n, system))
        assert len(RATED) == 5
        path = folder / f"P{p}_excel.xlsx"
        wb.save(path)
        books.append(path)
    return books, write_key(folder / "key.csv", key_rows)


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    """``soundaq ARGV...`` in this process: (exit code, stdout, stderr)."""
    from soundaq.benchmark.cli import main

    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def only_line(err: str) -> str:
    """The one non-empty line of a command's stderr (fails on more, or on a traceback)."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def ole2_file(path: Path, streams: dict[str, bytes]) -> Path:
    """A minimal OLE2 compound file ([MS-CFB] version 3, 512-byte sectors) holding ``streams`` at its
    root, each padded to the 4096-byte mini-stream cutoff so that all live in regular sectors (at most
    3 streams, 125 sectors in all: one FAT sector). ``{"EncryptionInfo": ..., "EncryptedPackage": ...}`` is what Excel's
    "Encrypt with Password" writes around an .xlsx; ``{"Workbook": ...}`` is a legacy .xls."""
    import struct

    end, free, fatsect, nostream = 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFD, 0xFFFFFFFF
    names = list(streams)[:3]
    datas = [streams[n].ljust(max(4096, -(-len(streams[n]) // 512) * 512), b"\x00") for n in names]
    fat = [fatsect, end]                                   # sector 0: the FAT; sector 1: the directory
    starts = []
    for d in datas:
        first, count = len(fat), len(d) // 512
        starts.append(first)
        fat += [first + i + 1 for i in range(count - 1)] + [end]
    fat += [free] * (128 - len(fat))

    def entry(name: str, kind: int, left: int, right: int, child: int, start: int, size: int) -> bytes:
        raw = name.encode("utf-16-le")
        return (raw.ljust(64, b"\x00") + struct.pack("<HBB3I", len(raw) + 2, kind, 1, left, right, child)
                + b"\x00" * 36 + struct.pack("<IQ", start, size))

    # the root's children as a chain of right siblings, ordered as CFB orders names (length, then text)
    order = sorted(range(len(names)), key=lambda i: (len(names[i]), names[i].upper()))
    entries = [entry("Root Entry", 5, nostream, nostream, order[0] + 1 if order else nostream, end, 0)]
    for i, n in enumerate(names):
        nxt = order.index(i) + 1
        right = order[nxt] + 1 if nxt < len(order) else nostream
        entries.append(entry(n, 2, nostream, right, nostream, starts[i], len(streams[n])))
    directory = b"".join(entries).ljust(512, b"\x00")
    header = (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 16
              + struct.pack("<HHHHH6xIIIIIIIII", 0x3E, 3, 0xFFFE, 9, 6, 0, 1, 1, 0, 4096, end, 0, end, 0)
              + struct.pack("<I", 0) + struct.pack("<I", free) * 108)
    path.write_bytes(header + struct.pack("<128I", *fat) + directory + b"".join(datas))
    return path
