"""Issue 12, found by reading the code: exception messages were sliced by hand (``str(exc).splitlines()[0]``,
``str(err)[:N]``); an exception with an empty message raised IndexError inside the report of another
error. Every path that shows an exception now goes through ``first_line``/``one_line``; each is
driven here with an exception whose message is empty, and with one of several lines."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from input_builders import noise_wav, write_label_folder, write_predictions

from soundaq.base.errors import UserError, first_line, one_line

MESSAGES = {"empty": "", "multi-line": "\n  first real line\nsecond line"}


def _boom(kind: type[BaseException], msg: str):
    def raiser(*args, **kwargs):
        raise kind(msg)

    return raiser


def _check(text: str, msg: str, type_name: str) -> None:
    assert len(text.splitlines()) == 1, text
    assert (type_name in text) if not msg else ("first real line" in text and "second line" not in text)


def test_first_line_and_one_line():
    assert first_line(ValueError("")) == "ValueError" and one_line(ValueError("")) == "ValueError"
    assert first_line(ValueError("\n a \nb")) == "a" and one_line(ValueError("\n a \nb")) == "ValueError: a"
    assert one_line(UserError("x: bad; fix: y")) == "x: bad; fix: y"


@pytest.mark.parametrize("msg", list(MESSAGES.values()), ids=list(MESSAGES))
def test_normalisation_statistics_run(tmp_path, monkeypatch, msg):
    from input_builders import write_features

    from soundaq.models_zoo.data import datamodule as dmod

    labels = write_label_folder(tmp_path / "l", per_split=3)
    feats = write_features(labels, tmp_path / "f")
    dm = dmod.SoundscapeDataModule("araus", labels_dir=labels, features_dir=feats, cache_dir=tmp_path / "c")
    train = dm._dataset("training", normalise=False)
    real = train.raw
    monkeypatch.setattr(train, "raw", lambda i: _boom(ValueError, msg)() if i == 0 else real(i))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dmod.compute_training_stats(train)
    lines = [str(w.message) for w in caught if issubclass(w.category, dmod.SkippedClipWarning)]
    assert len(lines) == 1 and train.clips[0] in lines[0]
    _check(lines[0], msg, "ValueError")


@pytest.mark.parametrize("msg", list(MESSAGES.values()), ids=list(MESSAGES))
def test_figure_problems(tmp_path, monkeypatch, msg):
    from soundaq.evaluation import correlation, figures

    labels = write_label_folder(tmp_path / "l", per_split=6)
    source = correlation.predictions_source(write_predictions(labels, tmp_path / "p.csv"))
    table = correlation.spearman_table(source)
    for name in ("heatmap", "bars", "heatmap_by_group", "circumplex", "save"):   # draw nothing: only the report
        monkeypatch.setattr(figures, name, lambda *a, **k: None)
    monkeypatch.setattr(figures, "radar", _boom(RuntimeError, msg))
    _made, problems = figures.draw_all(source, table, tmp_path / "out")
    assert len(problems) == 1 and problems[0].startswith("radar: ")
    _check(problems[0], msg, "RuntimeError")


@pytest.mark.parametrize("msg", list(MESSAGES.values()), ids=list(MESSAGES))
def test_table_readers(tmp_path, monkeypatch, msg):
    from soundaq.base import predictions_table, textio
    from soundaq.captions.tables import read_predictions_file
    from soundaq.evaluation.correlation import predictions_source
    from soundaq.models_zoo import metrics

    labels = write_label_folder(tmp_path / "l")
    path = write_predictions(labels, tmp_path / "p.csv")
    monkeypatch.setattr(textio, "read_csv", _boom(ValueError, msg))
    for read in (metrics.read_predictions, predictions_source, read_predictions_file):  # one reader under all
        with pytest.raises(predictions_table.PredictionTableError) as err:
            read(path)
        _check(str(err.value), msg, "ValueError")


@pytest.mark.parametrize("msg", list(MESSAGES.values()), ids=list(MESSAGES))
def test_unopenable_workbooks(tmp_path, monkeypatch, msg):
    import openpyxl

    from soundaq.human_study import cells, published, questionnaire
    from soundaq.human_study.issues import IssueLog

    path = tmp_path / "P1.xlsx"
    openpyxl.Workbook().save(path)        # opens (human_study.workbooks.open_workbook); its XML then fails
    monkeypatch.setattr(cells, "_sheet_xml", _boom(OSError, msg))
    for read in (questionnaire.read_workbook, published.read_published):
        log = IssueLog()
        read(path, log)
        assert [i.kind for i in log.items] == ["unreadable"]
        _check(log.items[0].message, msg, "OSError")


@pytest.mark.parametrize("msg", list(MESSAGES.values()), ids=list(MESSAGES))
def test_icc_note(monkeypatch, msg):
    import pingouin

    from soundaq.human_study.reliability import reliability_table

    rng = np.random.default_rng(0)
    rows = [{"source": "participants", "participant": f"P{p}", "dataset": "D1", "clip": f"{c}.wav",
             "system": s, "dimension": "precision", "score": float(rng.integers(1, 6)), "caption": 1}
            for p in range(3) for c in range(4) for s in ("a", "b")]
    monkeypatch.setattr(pingouin, "intraclass_corr", _boom(ValueError, msg))
    rel = reliability_table(pd.DataFrame(rows))
    notes = set(rel["note"].dropna()) - {""}
    assert notes and all(n.startswith("ICC not computable: ") for n in notes)
    for n in notes:
        _check(n, msg, "ValueError")


@pytest.mark.parametrize("msg", list(MESSAGES.values()), ids=list(MESSAGES))
def test_weights_loader(tmp_path, monkeypatch, msg):
    import torch

    from soundaq.models_zoo import checkpoints

    path = tmp_path / "w.pth"
    torch.save({"a": torch.zeros(1)}, path)
    monkeypatch.setattr(torch, "load", _boom(RuntimeError, msg))
    with pytest.raises(checkpoints.CheckpointError) as err:
        checkpoints.read_state_dict(path)
    _check(str(err.value), msg, "RuntimeError")


@pytest.mark.parametrize("msg", list(MESSAGES.values()), ids=list(MESSAGES))
def test_features_worker(tmp_path, monkeypatch, msg):
    from soundaq.models_zoo.features import FeatureCache, batch

    wav = noise_wav(tmp_path / "a.wav", seconds=1.0)
    monkeypatch.setattr(FeatureCache, "get", _boom(RuntimeError, msg))
    entry = batch._extract(str(wav), str(tmp_path / "a.npz"), None, "fast", 1.0, "test")
    assert entry["status"] == "failed"
    _check(entry["error"], msg, "RuntimeError")


@pytest.mark.parametrize("msg", list(MESSAGES.values()), ids=list(MESSAGES))
def test_predict_input(tmp_path, monkeypatch, msg):
    from soundaq.models_zoo import predict

    npz = tmp_path / "a.npz"
    np.savez(npz, mel=np.zeros((1, 3001, 64), np.float32))
    monkeypatch.setattr(predict.np, "load", _boom(ValueError, msg))
    with pytest.raises(predict.PredictSkip) as err:
        predict.load_features_npz(npz)
    _check(str(err.value), msg, "ValueError")


@pytest.mark.parametrize("msg", list(MESSAGES.values()), ids=list(MESSAGES))
def test_leaderboard_failure_reason(msg):
    from soundaq.benchmark.leaderboard import run  # a failed model's row reason goes through one_line

    _check(run.one_line(RuntimeError(msg)), msg, "RuntimeError")


def test_ctrl_c_says_resume_only_where_a_rerun_resumes(monkeypatch, capsys):
    """predict has nothing to resume (its outputs are written whole at the end); train does (new-user trial)."""
    import argparse

    from soundaq.benchmark import cli

    def interrupted(args):
        raise KeyboardInterrupt

    class Parser:
        def __init__(self, command):
            self.command = command

        def parse_args(self, argv):
            return argparse.Namespace(command=self.command, handler=interrupted)

    for command, said in (("predict", "nothing half-written is left"), ("train", "run the same command again to resume")):
        monkeypatch.setattr(cli, "build_parser", lambda command=command: Parser(command))
        assert cli.main([command]) == 130
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"soundaq {command}: interrupted;") and said in err, err
