"""Issue 12's hostile-input test: every subcommand over a corpus of bad inputs of the five kinds
(text encodings, damaged files soundaq wrote, misleading spreadsheet cells, files in the role of
another, empty exception messages are tested in test_one_line_errors.py).

For each entry: the exit code is 2 (or 1 when the rest of a batch completed; 0 for a recording read
with a repair or a choice, issue 26's kind 6), each bad item gets exactly one line naming its file and
the fix, there is no traceback, and every good item is written.
The table :data:`HOSTILE` is the whole test; a new subcommand is one more entry (the last test fails,
naming it, until it has one). Most run in-process through ``soundaq.benchmark.cli.main``; the
entries marked ``subprocess`` go through a real ``python -m soundaq`` process.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from caption_builders import FakeLLMServer, random_rows, write_table
from input_builders import (
    latin1,
    noise_wav,
    ole2_file,
    reencode,
    write_features,
    write_jury,
    write_label_folder,
    write_norm_stats,
    write_predictions,
)

from soundaq.base.errors import SoundaqWarning
from soundaq.benchmark.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Corpus:
    """Good and bad inputs, made once per module under one folder."""

    def __init__(self, root: Path):
        import openpyxl
        import torch

        from soundaq.models_zoo.checkpoints import save_checkpoint
        from soundaq.models_zoo.registry import build_net

        self.root = root
        r = root
        self.labels = write_label_folder(r / "labels", per_split=4)
        self.features = write_features(self.labels, r / "features")
        self.bom_labels = shutil.copytree(self.labels, r / "bom_labels")
        for p in self.bom_labels.iterdir():
            reencode(p, "bom_crlf")
        self.latin1_labels = shutil.copytree(self.labels, r / "latin1_labels")
        latin1(self.latin1_labels / "test_set_acoustic_scene_labels.txt", line=3)
        self.broken_features = shutil.copytree(self.features, r / "broken_features")
        victim = self.broken_features / "Feature_log_mel" / "clip_training_01.npy"
        victim.write_bytes(victim.read_bytes()[:5000])
        self.predictions = write_predictions(self.labels, r / "predictions.csv")
        self.latin1_predictions = latin1(write_predictions(self.labels, r / "latin1_predictions.csv"), line=3)
        self.norm_stats = write_norm_stats(r / "stats.json")
        torch.manual_seed(0)
        stats = {"log_mel": {"mean": [-40.0] * 64, "std": [10.0] * 64}, "loudness": {"mean": [10.0], "std": [3.0]}}
        self.ckpt = save_checkpoint(r / "ckpts" / "AD_CNN.ckpt", "AD_CNN", build_net("AD_CNN").state_dict(), stats)
        self.truncated_ckpt = r / "ckpts" / "Baseline_CNN.ckpt"
        save_checkpoint(self.truncated_ckpt, "Baseline_CNN", build_net("Baseline_CNN").state_dict(), stats)
        self.truncated_ckpt.write_bytes(self.truncated_ckpt.read_bytes()[:300_000])
        self.empty_ckpt = r / "empty.ckpt"
        self.empty_ckpt.write_bytes(b"")
        self.release = r / "AD_CNN_final_model.pth"
        torch.save(build_net("AD_CNN").state_dict(), self.release)
        self.pickle = r / "norm_log_mel.pickle"
        import pickle

        self.pickle.write_bytes(pickle.dumps({"mean": np.zeros(64), "std": np.ones(64)}))
        self.wav = noise_wav(r / "good.wav", seconds=30.0)
        self.text = r / "notes.txt"
        self.text.write_text("these are notes, not audio\n")
        mel = np.random.default_rng(0).normal(-40, 10, (1, 3001, 64)).astype(np.float32)
        self.npz = r / "clip_features.npz"
        np.savez(self.npz, mel=mel, loudness=np.ones((1, 15000, 1), np.float32))
        self.truncated_npz = r / "cut.npz"
        self.truncated_npz.write_bytes(self.npz.read_bytes()[:100_000])
        self.jury_books, self.key = write_jury(r / "jury", participants=3, clips=4)
        self.published = self._published(r / "SoundSCaper_expert_evaluation_results.xlsx")
        self.key_xlsx = r / "key.xlsx"
        openpyxl.Workbook().save(self.key_xlsx)
        bad_jury = shutil.copytree(r / "jury", r / "bad_jury")
        (bad_jury / "P2_excel.xlsx").write_bytes(b"not a workbook at all")
        wb = openpyxl.load_workbook(bad_jury / "P3_excel.xlsx")
        wb["Assessment"]["E3"] = "=2+2"
        wb.save(bad_jury / "P3_excel.xlsx")
        self.bad_jury = bad_jury
        locked_jury = shutil.copytree(r / "jury", r / "locked_jury")     # Excel's "Encrypt with Password"
        ole2_file(locked_jury / "P2_excel.xlsx", {"EncryptionInfo": b"\x04\x00\x04\x00\x40\x00\x00\x00",
                                                  "EncryptedPackage": bytes(6000)})
        self.locked_jury = locked_jury
        cells_jury = shutil.copytree(r / "jury", r / "cells_jury")
        wb = openpyxl.load_workbook(cells_jury / "P1_excel.xlsx")
        ws = wb["Assessment"]
        ws.merge_cells("E3:E4")                      # one precision for both captions of 1.wav
        ws["F5"] = True
        wb.save(cells_jury / "P1_excel.xlsx")
        self.cells_jury = cells_jury
        import datetime

        self.published_cells = self._published(r / "published_cells.xlsx")
        wb = openpyxl.load_workbook(self.published_cells)
        wb.active["C3"] = datetime.datetime(2024, 5, 3)
        wb.active["D5"] = "=3+1"
        wb.save(self.published_cells)

        self.candidates = r / "captions" / "candidates_latin1.csv"
        self.candidates.parent.mkdir()
        rows = ["clip,system,caption", "1.wav,A,a quiet park with birds", "1.wav,B,a busy street with traffic",
                "2.wav,A,people talking in a square", "2.wav,B,a calm caf\u00e9 with music"]
        self.candidates.write_bytes(("\n".join(rows) + "\n").encode("latin-1"))
        self.references = r / "captions" / "references.csv"
        self.references.write_text("clip,caption\n1.wav,birds sing in a quiet park\n2.wav,people talk on a square\n",
                                   encoding="utf-8")
        self.wordless = r / "captions" / "candidates_wordless.csv"     # a multi-line cell, and "..." alone
        self.wordless.write_text('clip,system,caption\n1.wav,A,"a quiet park\r\nwith birds"\n2.wav,A,...\n',
                                 encoding="utf-8")
        self._recorder_files(r / "recorder")
        self.mirror = r / "mirror"                  # a release mirror whose AD_CNN weights arrive cut short
        cut = self.mirror / "Other_AD_CNN" / "application" / "system" / "model" / "final_model.pth"
        cut.parent.mkdir(parents=True)
        cut.write_bytes(self.release.read_bytes()[:5000])

    def _recorder_files(self, folder: Path) -> None:
        """Kind 6 (issue 26): recordings as field recorders leave them."""
        import struct

        import soundfile as sf

        folder.mkdir()
        pcm = (0.1 * 32767 * np.random.default_rng(4).standard_normal(3 * 16000)).astype("<i2")
        self.unfinalised = folder / "rec_crashed.wav"      # header never finalised: data size 0
        self.unfinalised.write_bytes(b"RIFF" + struct.pack("<I", 36) + b"WAVE" + b"fmt "
                                     + struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16)
                                     + b"data" + struct.pack("<I", 0) + pcm.tobytes())
        six = np.zeros((pcm.size, 6), dtype=np.float32)   # two tracks in use, four unused
        six[:, 0] = six[:, 1] = pcm / 32768.0
        self.six = folder / "six.wav"
        sf.write(str(self.six), six, 16000, subtype="FLOAT")
        # compare's own copies: a file's note is said once a process, and predict/features said these
        self.six_b = Path(shutil.copy(self.six, folder / "six_b.wav"))
        self.unfinalised_b = Path(shutil.copy(self.unfinalised, folder / "rec_crashed_b.wav"))
        self.broken_wav = folder / "broken.wav"
        self.broken_wav.write_bytes(b"RIFF" + bytes(range(200)))

    @staticmethod
    def _published(path: Path) -> Path:
        import openpyxl

        wb = openpyxl.Workbook()
        ws = wb.active
        ws.title = "Dataset_D2"
        ws.append(["Audio ID", "Caption", "Precision_Avg", "Recall_Avg", "Fluency_Avg", "Conciseness_Avg",
                   "Irrelevance_Avg", "OverallScore_Avg"])
        for i in range(1, 5):
            ws.append([f"{i}.wav", "Caption by human expert", 4, 4, -0.5, -0.5, 0, 3])
            ws.append([f"{i}.wav", "Caption by SoundSCaper", 3.5, 4, -0.5, -0.5, 0, 2.75])
        wb.save(path)
        return path


#: What the corpus's LLM server answers, by model name and the n-th request for it: reply shapes of
#: real servers (tests/caption_builders.SHAPES); the odd ones give no caption.
LLM_SHAPES = {"shapes": ["think", "tool_call", "parts", "refusal_part", "reasoning_field", "unclosed", "truncated",
                         "filtered"]}


def _llm_script():
    seen: dict[str, int] = {}

    def script(n, body):
        model = str(body.get("model"))
        k = seen[model] = seen.get(model, -1) + 1
        if model == "tier3-refuses":
            return "refuse" if "how a listener would feel" in body["messages"][0]["content"] else "paragraphs"
        shapes = LLM_SHAPES.get(model, [])
        return shapes[k] if k < len(shapes) else "ok"
    return script


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    c = Corpus(tmp_path_factory.mktemp("hostile"))
    c.llm_predictions = write_table(c.root / "llm_predictions.csv", random_rows(8, seed=3))
    with pytest.MonkeyPatch.context() as mp, FakeLLMServer(_llm_script()) as server:   # an LLM server on 127.0.0.1
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
            mp.delenv(name, raising=False)
        mp.setenv("NO_PROXY", "127.0.0.1,localhost")
        c.llm_url = server.url
        yield c


def _llm(c: Corpus, o: Path, model: str, url: str | None = None) -> list:
    return ["--captioner", "llm", "--llm-model", model, "--base-url", url or c.llm_url, "--cache-dir",
            o.parent / "llm_cache", "--retries", "0", "--timeout", "10", "--no-progress"]


@dataclass
class Entry:
    """One command over one bad input: ``argv(corpus, out)``, the exit code, the bad items (names that
    must each appear in exactly one stderr line, with ``fix``), fragments that line must hold, and the
    good items that must be written (paths relative to ``out``)."""

    command: str
    case: str
    argv: Callable[[Corpus, Path], list]
    rc: int
    bad: Callable[[Corpus], list[str]]
    says: tuple[str, ...] = ()
    written: tuple[str, ...] = ()
    subprocess: bool = False
    kind: str = ""          # issue 12's kind (1 text, 2 damaged, 4 cells, 5 role), or issue 26's (6 recorder files, llm)


T = ("--accelerator", "cpu", "--no-progress")

HOSTILE: list[Entry] = [
    # data check / prepare / download
    Entry("data check", "Latin-1 label file", lambda c, o: ["data", "check", "--labels", c.latin1_labels], 2,
          lambda c: ["test_set_acoustic_scene_labels.txt:3"], ("not UTF-8",), subprocess=True, kind="1"),
    Entry("data check", "feature folder as --labels", lambda c, o: ["data", "check", "--labels", c.features], 2,
          lambda c: [str(c.features)], ("feature folder", "--features DIR"), kind="5"),
    Entry("data check", "predictions table as --labels", lambda c, o: ["data", "check", "--labels", c.predictions],
          2, lambda c: [c.predictions.name], ("predictions table", "--predictions"), kind="5"),
    Entry("data prepare", "label folder as --features",
          lambda c, o: ["data", "prepare", "--labels", c.labels, "--features", c.labels, "--cache-dir", o], 2,
          lambda c: [str(c.labels)], ("not a feature folder", "--labels DIR"), kind="5"),
    Entry("data prepare", "one truncated feature file",
          lambda c, o: ["data", "prepare", "--labels", c.bom_labels, "--features", c.broken_features,
                        "--cache-dir", o, "--no-progress"], 1,
          lambda c: ["clip_training_01"], ("left out of the statistics", "fix:"), kind="2"),
    Entry("data download", "missing mirror", lambda c, o: ["data", "download", "--labels-to", o, "--base-url",
                                                            c.root / "no_mirror", "--no-progress"], 2,
          lambda c: ["no_mirror"], ("fix:",), kind="path"),
    # features
    Entry("features", "a features .npz, a text file and a good clip",
          lambda c, o: ["features", c.wav, c.npz, c.text, "--out", o, "--no-cache"], 1,
          lambda c: [c.npz.name, c.text.name], (), written=("good.npz", "manifest.json"), kind="5"),
    # recordings as field recorders write them (issue 26): read with one line, or refused with exit 2
    Entry("predict", "WAV header never finalised (data size 0)",
          lambda c, o: ["predict", c.unfinalised, "--checkpoint", c.ckpt, "--out", o / "p.csv", "--no-progress"], 0,
          lambda c: [c.unfinalised.name], ("never finalised", "sox --ignore-length"), written=("p.csv",), kind="6"),
    Entry("predict", "a single unreadable .wav", lambda c, o: ["predict", c.broken_wav, "--checkpoint", c.ckpt,
                                                              "--out", o / "p.csv", "--no-progress"], 2,
          lambda c: [c.broken_wav.name], ("not readable as audio",), kind="6"),
    Entry("features", "6-track file with 4 silent tracks",
          lambda c, o: ["features", c.six, "--out", o, "--no-cache", "--no-progress"], 0,
          lambda c: [c.six.name], ("digitally silent", "--channels"), written=("six.npz",), kind="6"),
    Entry("compare", "6-track file with 4 silent tracks",
          lambda c, o: ["compare", c.unfinalised_b, c.six_b, "--checkpoint", c.ckpt, "--no-signal", "--out", o,
                        "--no-progress"], 0,
          lambda c: [c.six_b.name, c.unfinalised_b.name], (), written=("compare.json",), kind="6"),
    # models, import-original
    Entry("import-original", "soundaq checkpoint as --weights",
          lambda c, o: ["import-original", "--model", "AD_CNN", "--weights", c.ckpt, "--norm-mel", c.norm_stats,
                        "--out", o / "x.ckpt"], 2, lambda c: [c.ckpt.name], ("soundaq checkpoint", "--checkpoint"),
          kind="5"),
    Entry("import-original", "truncated weights",
          lambda c, o: ["import-original", "--model", "Baseline_CNN", "--weights", c.truncated_ckpt,
                        "--norm-mel", c.norm_stats, "--out", o / "x.ckpt"], 2,
          lambda c: [c.truncated_ckpt.name], ("damaged", "cut short"), kind="2"),
    Entry("import-original", "weights file as --norm-mel",
          lambda c, o: ["import-original", "--model", "AD_CNN", "--weights", c.release, "--norm-mel", c.release,
                        "--out", o / "x.ckpt"], 2, lambda c: [c.release.name], ("PyTorch file",), kind="5"),
    Entry("import-original", "Latin-1 statistics JSON",
          lambda c, o: ["import-original", "--model", "AD_CNN", "--weights", c.release, "--norm-mel",
                        latin1(Path(shutil.copy(c.norm_stats, o.parent / "latin1_stats.json")), 2), "--out", o / "x.ckpt"],
          2, lambda c: ["latin1_stats.json:2"], ("not UTF-8",), kind="1"),
    # predict
    Entry("predict", "release state dict as --checkpoint",
          lambda c, o: ["predict", c.npz, "--checkpoint", c.release], 2, lambda c: [c.release.name],
          ("release state dict", "import-original"), kind="5"),
    Entry("predict", "truncated checkpoint", lambda c, o: ["predict", c.npz, "--checkpoint", c.truncated_ckpt], 2,
          lambda c: [c.truncated_ckpt.name], ("damaged", "cut short"), subprocess=True, kind="2"),
    Entry("predict", "a text file as --checkpoint", lambda c, o: ["predict", c.npz, "--checkpoint", c.text], 2,
          lambda c: [c.text.name], ("not a PyTorch weights file", "fix: give a .ckpt that `soundaq train`"),
          kind="5"),
    Entry("predict", "0-byte checkpoint", lambda c, o: ["predict", c.npz, "--checkpoint", c.empty_ckpt], 2,
          lambda c: [c.empty_ckpt.name], ("damaged", "0 bytes"), kind="2"),
    Entry("predict", "cut-short .npz and a text file among good inputs",
          lambda c, o: ["predict", c.npz, c.truncated_npz, c.text, "--checkpoint", c.ckpt, "--out", o / "p.csv"], 1,
          lambda c: [c.truncated_npz.name, c.text.name], (), written=("p.csv",), kind="2"),
    # train, leaderboard
    Entry("train", "label and feature folders swapped",
          lambda c, o: ["train", "--model", "AD_CNN", "--data", "araus", "--labels", c.features, "--features",
                        c.labels, "--out", o, *T], 2, lambda c: [str(c.features)], ("feature folder",), kind="5"),
    Entry("train", "a pickle as --norm-stats",
          lambda c, o: ["train", "--model", "AD_CNN", "--data", "araus", "--labels", c.bom_labels, "--features",
                        c.features, "--norm-stats", c.pickle, "--out", o, "--max-epochs", "1", *T], 2,
          lambda c: [c.pickle.name], ("not a text file", "Python pickle", "import-original"), kind="5"),
    Entry("leaderboard", "predictions table as --labels",
          lambda c, o: ["leaderboard", "--data", "araus", "--labels", c.predictions, "--features", c.features,
                        "--models", "AD_CNN", "--out", o, *T], 2, lambda c: [c.predictions.name],
          ("predictions table",), kind="5"),
    Entry("leaderboard", "one truncated checkpoint of two",
          lambda c, o: ["leaderboard", "--data", "araus", "--labels", c.bom_labels, "--features", c.features,
                        "--checkpoints", c.ckpt.parent, "--resamples", "20", "--no-correlation", "--batch-size", "4",
                        "--out", o, *T], 1, lambda c: [c.truncated_ckpt.name], ("damaged",),
          written=("leaderboard.csv", "predictions/AD_CNN.csv"), kind="2"),
    Entry("ablation", "predictions table as --labels",
          lambda c, o: ["ablation", "dilation", "--data", "araus", "--labels", c.predictions, "--features",
                        c.features, "--out", o, *T], 2, lambda c: [c.predictions.name], ("predictions table",),
          kind="5"),
    Entry("data araus-stimuli", "predictions table as --araus",
          lambda c, o: ["data", "araus-stimuli", "--araus", c.predictions, "--out", o], 2,
          lambda c: [c.predictions.name], ("ARAUS folder", "soundaq data download araus"), kind="5"),
    # correlate
    Entry("correlate", "label folder as --predictions",
          lambda c, o: ["correlate", "--predictions", c.labels, "--out", o], 2, lambda c: [str(c.labels)],
          ("label folder", "--labels DIR"), kind="5"),
    Entry("correlate", "predictions table as --labels",
          lambda c, o: ["correlate", "--labels", c.predictions, "--out", o], 2, lambda c: [c.predictions.name],
          ("predictions table", "--predictions"), kind="5"),
    Entry("correlate", "Latin-1 predictions table",
          lambda c, o: ["correlate", "--predictions", c.latin1_predictions, "--out", o, "--no-figures"], 2,
          lambda c: [f"{c.latin1_predictions.name}:3"], ("not UTF-8",), kind="1"),
    Entry("correlate", "checkpoint as --predictions",
          lambda c, o: ["correlate", "--predictions", c.ckpt, "--out", o], 2, lambda c: [c.ckpt.name],
          ("PyTorch file",), kind="5"),
    # jury
    Entry("jury", "published workbook as a questionnaire",
          lambda c, o: ["jury", c.published, "--out", o], 2, lambda c: [c.published.name],
          ("published per-clip averages", "--published"), subprocess=True, kind="5"),
    Entry("jury", "questionnaire as --published",
          lambda c, o: ["jury", "--published", c.jury_books[0], "--out", o], 2, lambda c: [c.jury_books[0].name],
          ("filled questionnaire", "--key"), kind="5"),
    Entry("jury", "workbook as --key",
          lambda c, o: ["jury", *c.jury_books, "--key", c.key_xlsx, "--out", o], 2, lambda c: [c.key_xlsx.name],
          (".xlsx workbook", "save the key sheet as CSV"), kind="5"),
    Entry("jury", "key as a questionnaire",
          lambda c, o: ["jury", c.key, "--key", c.key, "--out", o], 2, lambda c: [c.key.name],
          ("jury key", "--key FILE"), kind="5"),
    Entry("jury", "merged rating cells and a TRUE among good ones",
          lambda c, o: ["jury", c.cells_jury, "--key", c.cells_jury / "key.csv", "--out", o, "--no-figures",
                        "--resamples", "0"], 1,
          lambda c: [f"P1_excel.xlsx Assessment!{cell}:" for cell in ("E3", "E4", "F5")], ("fix:",),
          written=("ratings.csv", "tests.csv"), kind="4"),
    Entry("jury", "published workbook with a date and a formula without result",
          lambda c, o: ["jury", "--published", c.published_cells, "--out", o, "--no-figures", "--resamples", "0"], 1,
          lambda c: ["published_cells.xlsx Dataset_D2!C3:", "published_cells.xlsx Dataset_D2!D5:"],
          ("fix:",), written=("ratings.csv", "summary.csv"), kind="4"),
    Entry("jury", "an unreadable workbook and a formula cell among good ones",
          lambda c, o: ["jury", c.bad_jury, "--key", c.bad_jury / "key.csv", "--out", o, "--no-figures",
                        "--resamples", "0"], 1, lambda c: ["P2_excel.xlsx", "P3_excel.xlsx Assessment!E3"],
          ("fix",), written=("ratings.csv", "tests.csv", "report.md"), kind="4"),
    Entry("jury", "a password-protected workbook among good ones",
          lambda c, o: ["jury", c.locked_jury, "--key", c.locked_jury / "key.csv", "--out", o, "--no-figures",
                        "--resamples", "0"], 1, lambda c: ["P2_excel.xlsx"],
          ("password-protected (encrypted) workbook", "fix: remove the password in Excel"),
          written=("ratings.csv", "tests.csv"), kind="5"),
    # captions
    Entry("caption", "Latin-1 predictions table",
          lambda c, o: ["caption", c.latin1_predictions, "--out", o, "--no-progress"], 2,
          lambda c: [f"{c.latin1_predictions.name}:3"], ("not UTF-8",), kind="1"),
    Entry("compare", "label folder as a side",
          lambda c, o: ["compare", c.labels, c.predictions, "--out", o, "--no-progress"], 2,
          lambda c: [str(c.labels)], ("looks like an ARAUS label folder", "--labels DIR"), kind="5"),
    # LLM replies and servers (issue 26)
    Entry("caption", "LLM replies of every shape, four without a caption",
          lambda c, o: ["caption", c.llm_predictions, "--out", o, *_llm(c, o, "shapes")], 1,
          lambda c: ["clip01", "clip03", "clip05", "clip07"], ("fix:",),
          written=("captions.csv", "captions.md", "captions.jsonl"), kind="llm"),
    Entry("caption", "an LLM base URL without /v1",
          lambda c, o: ["caption", c.llm_predictions, "--out", o,
                        *_llm(c, o, "m", c.llm_url.removesuffix("/v1"))], 1,
          lambda c: ["/chat/completions"], ("HTTP 404: File Not Found", "end --base-url with /v1"),
          written=("captions.csv",), kind="llm"),
    Entry("compare", "an LLM tier refused",
          lambda c, o: ["compare", f"{c.llm_predictions}#clip00", f"{c.llm_predictions}#clip01", "--out", o,
                        "--no-signal", *_llm(c, o, "tier3-refuses")], 1,
          lambda c: ["tier 3:"], ("refused", "fix:"), written=("compare.md", "compare.json"), kind="llm"),
    Entry("caption-metrics", "a Latin-1 row among good ones",
          lambda c, o: ["caption-metrics", c.candidates, "--references", c.references, "--flavour", "standard",
                        "--resamples", "10", "--no-figures", "--out", o], 1,
          lambda c: [f"{c.candidates.name}:5"], ("not UTF-8", "fix: save the file as UTF-8"),
          written=("per_clip.csv", "summary.csv", "report.md"), kind="1"),
    Entry("caption-metrics", "a caption without a word beside a multi-line one",
          lambda c, o: ["caption-metrics", c.wordless, "--references", c.references, "--flavour", "paper",
                        "--resamples", "10", "--no-figures", "--out", o], 1,
          lambda c: [f"{c.wordless.name}:4"], ("has no word", "excluded from every flavour", "fix:"),
          written=("per_clip.csv", "issues.csv"), kind="1"),
    # released weights
    Entry("models download", "weights cut short by the mirror",
          lambda c, o: ["models", "download", "AD_CNN", "--mirror", c.mirror, "--cache-dir", o, "--no-progress"], 2,
          lambda c: ["AD_CNN_final_model.pth"], ("incomplete", "5,000 of"), kind="2"),
    Entry("models import", "a text file as --weights",
          lambda c, o: ["models", "import", "PANNs", "--weights", c.text, "--cache-dir", o, "--no-progress"], 2,
          lambda c: [c.text.name], ("not a PyTorch weights file",), kind="5"),
]

#: Subcommands that take no input file (nothing hostile to give them), with the reason.
NO_FILE_INPUTS = {"models": "lists the registry; takes no file"}


def _run(entry: Entry, corpus: Corpus, out: Path, capsys) -> tuple[int, str, str]:
    """(exit code, stderr, stdout) of one entry."""
    argv = [str(a) for a in entry.argv(corpus, out)]
    if entry.subprocess:
        proc = subprocess.run([sys.executable, "-m", "soundaq", *argv], cwd=ROOT, capture_output=True, text=True)
        return proc.returncode, proc.stderr, proc.stdout
    capsys.readouterr()
    rc = main(argv)
    captured = capsys.readouterr()
    return rc, captured.err, captured.out


@pytest.mark.parametrize("entry", HOSTILE, ids=[f"{e.command}: {e.case}" for e in HOSTILE])
def test_hostile_input(entry: Entry, corpus: Corpus, tmp_path, capsys, recwarn):
    out = tmp_path / "out"
    rc, err, stdout = _run(entry, corpus, out, capsys)
    lines = [line for line in err.splitlines() if line.strip()]          # problems go to stderr
    lines += [f"warning: {w.message}" for w in recwarn.list    # soundaq's warnings print as one line each
              if issubclass(w.category, SoundaqWarning)]
    assert "Traceback" not in err + stdout, err
    assert rc == entry.rc, (err + stdout)[-3000:]
    for name in entry.bad(corpus):
        naming = [line for line in lines if name in line]
        assert len(naming) == 1, (name, naming)
        assert "fix" in naming[0], naming[0]
        for fragment in entry.says:
            assert fragment in naming[0], (fragment, naming[0])
    for rel in entry.written:
        assert (out / rel).is_file(), rel
    if entry.rc == 2 and entry.command in ("jury", "correlate", "import-original", "predict", "caption", "compare"):
        assert not out.exists() or not any(out.iterdir()), sorted(out.iterdir())   # nothing half-done


def _leaf_commands() -> set[str]:
    import argparse

    def walk(parser, prefix):
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            yield prefix
            return
        for name, sub in subs[0].choices.items():
            yield from walk(sub, f"{prefix} {name}".strip())

    return set(walk(build_parser(), ""))


def test_every_subcommand_has_hostile_entries():
    covered = {e.command for e in HOSTILE} | set(NO_FILE_INPUTS)
    missing = sorted(_leaf_commands() - covered)
    assert not missing, (f"add entries for {', '.join(missing)} to HOSTILE in tests/test_hostile_inputs.py "
                         "(or to NO_FILE_INPUTS with the reason it takes no file)")


def test_corpus_counts():
    """The counts docs/reliability.md reports (kept honest by this test)."""
    kinds = {k: sum(e.kind == k for e in HOSTILE) for k in ("1", "2", "4", "5", "6", "path", "llm")}
    assert len(HOSTILE) == 47 and kinds == {"1": 6, "2": 7, "4": 3, "5": 23, "6": 4, "path": 1, "llm": 3}
    assert sum(e.subprocess for e in HOSTILE) == 3 and sum(e.rc == 1 for e in HOSTILE) == 13
