"""`soundaq caption` with the template captioner: input formats, the output contract, resume, bad input."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from caption_builders import predict_object, prediction_row, random_rows, write_table
from input_builders import only_line, run_cli

from soundaq.base.errors import UserError
from soundaq.base.vocab import EVENT_PROB_COLUMNS, EVENTS, QUALITIES, TRUTH_COLUMNS
from soundaq.captions.caption_files import CSV_COLUMNS
from soundaq.captions.prompt import build_prompt, prompt_facts, prompt_sha256
from soundaq.captions.run import caption
from soundaq.captions.tables import PredictionTableError, read_predictions_file

CONTRACT = ("clip", "window", "scene", "events", *QUALITIES, "prompt", "caption", "captioner", "model",
            "temperature", "seed", "prompt_sha256", "time")


_run, _one_line = run_cli, only_line


def test_caption_a_leaderboard_table(tmp_path, capsys):
    rows = random_rows(4, seed=1)
    for r in rows:   # the leaderboard's extra columns
        r.update({c: 0 for c in TRUTH_COLUMNS}, true_scene="park", data="embedded (synthetic)")
    table = write_table(tmp_path / "predictions" / "AD_CNN.csv", rows)
    out = tmp_path / "caps"
    code, _, err = _run(capsys, "caption", table, "--out", out)
    assert code == 0, err
    assert "4 caption(s)" in err
    csv = pd.read_csv(out / "captions.csv", keep_default_na=False)
    assert tuple(csv.columns) == CSV_COLUMNS and set(CONTRACT) <= set(csv.columns)
    assert list(csv["window"]) == ["all"] * 4 and set(csv["captioner"]) == {"template"}
    assert set(csv["model"]) == {""} and set(csv["acoustic_model"]) == {"AD_CNN"}
    first = rows[0]
    facts = prompt_facts(first["scene"], {e: first[c] for e, c in zip(EVENTS, EVENT_PROB_COLUMNS)},
                         {q: first[q] for q in QUALITIES})
    assert csv["prompt"][0] == build_prompt(facts)
    assert csv["prompt_sha256"][0] == prompt_sha256(build_prompt(facts))
    assert csv["events"][0] == "; ".join(f"{e}:{p:.2f}" for e, p in facts.events)
    assert csv["pleasant"][0] == facts.agreements["pleasant"]
    # JSONL: the same fields, structured
    recs = [json.loads(line) for line in (out / "captions.jsonl").read_text().splitlines()]
    assert [r["caption"] for r in recs] == list(csv["caption"])
    assert recs[0]["events"] == [{"event": e, "probability": p} for e, p in facts.events]
    assert recs[0]["qualities"]["calm"]["agreement"] == csv["calm"][0]
    md = (out / "captions.md").read_text()
    assert "[SYNTHETIC DATA]" in md and csv["caption"][2] in md
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["synthetic"] is True and prov["counts"]["captions"] == 4


def test_rerun_reuses_the_captions_and_a_new_seed_does_not(tmp_path, capsys):
    table = write_table(tmp_path / "p.csv", random_rows(6, seed=2))
    out = tmp_path / "caps"
    assert _run(capsys, "caption", table, "--out", out)[0] == 0
    before = pd.read_csv(out / "captions.csv")
    code, _, err = _run(capsys, "caption", table, "--out", out)
    assert code == 0 and "6 reused" in err
    again = pd.read_csv(out / "captions.csv")
    assert list(again["time"]) == list(before["time"]) and list(again["caption"]) == list(before["caption"])
    code, _, err = _run(capsys, "caption", table, "--out", out, "--seed", "9")
    assert code == 0 and "reused" not in err
    assert set(pd.read_csv(out / "captions.csv")["seed"]) == {9}


def test_long_recording_windows_from_predict_json_and_csv(tmp_path, capsys):
    from soundaq.models_zoo.predict import results_frame

    quiet = prediction_row("w", "park", {"Bird": 0.9, "Wind": 0.5}, [4, 2, 1.5, 3, 4, 4.2, 1.5, 3])
    busy = prediction_row("w", "street_traffic", {"Traffic": 0.95, "Vehicle": 0.8}, [1.8, 4, 4, 2, 1.5, 1.5, 4.3, 2])
    obj = predict_object("walk", [(0.0, 30.0, quiet), (30.0, 60.0, busy), (60.0, 72.5, busy)])
    single = predict_object("short", [(0.0, 12.0, quiet)])
    json_path = tmp_path / "pred.json"
    json_path.write_text(json.dumps([obj, single]))
    csv_path = tmp_path / "pred.csv"
    results_frame([obj, single]).to_csv(csv_path, index=False)
    for source in (json_path, csv_path):
        out = tmp_path / f"out_{source.suffix[1:]}"
        assert _run(capsys, "caption", source, "--out", out)[0] == 0
        csv = pd.read_csv(out / "captions.csv", keep_default_na=False)
        assert list(zip(csv["clip"], csv["window"])) == [("walk", "all"), ("walk", "0-30"), ("walk", "30-60"),
                                                       ("walk", "60-72.5"), ("short", "all")]
        assert csv["caption"][1].startswith(("In this park", "Standing in this park"))
        assert csv["caption"][2].startswith(("On this street", "Standing on this street"))
        assert list(csv["end_s"][1:4]) == [30.0, 60.0, 72.5]


def test_python_api_returns_the_frame(tmp_path):
    rows = random_rows(3, seed=3)
    frame = caption(pd.DataFrame(rows))
    assert list(frame.columns) == list(CSV_COLUMNS) and len(frame) == 3
    assert frame.attrs["failures"] == []
    from soundaq import caption as top_level

    assert top_level is caption


# -- bad input --------------------------------------------------------------------------------------
def _bad_table(tmp_path, mutate) -> tuple:
    rows = random_rows(3, seed=4)
    frame = pd.DataFrame(rows)
    frame = mutate(frame)
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("mutate, pieces", [
    (lambda f: f.drop(columns=["event_prob_bird", "calm"]), ["missing column(s)", "event_prob_bird", "calm"]),
    (lambda f: f.assign(event_prob_speech=[0.2, np.nan, 0.3]), ["row 2, line 3", "clip01", "column event_prob_speech is empty"]),
    (lambda f: f.assign(event_prob_water=[0.2, 0.3, 1.2]), ["row 3", "event_prob_water", "1.2", "outside [0, 1]"]),
    (lambda f: f.assign(scene_prob_park=[-0.1, 0.3, 0.2]), ["row 1", "scene_prob_park", "outside [0, 1]"]),
    (lambda f: f.assign(scene=["park", "beach", "park"]), ["row 2", "column scene", "'beach'", "public_square"]),
    (lambda f: f.assign(model=["AD_CNN", "AD_CNN", "SoundAQnet"]), ["row 3", "'SoundAQnet'", "a mix of models"]),
    (lambda f: f.assign(pleasant=["3", "x", "2"]), ["row 2", "column pleasant", "'x'", "not a finite number"]),
    (lambda f: f.assign(clip=["a", "b", "a"]), ["row 3", "repeats row 1"]),
    (lambda f: f.rename(columns={q: f"PAQ{i + 1}" for i, q in enumerate(QUALITIES)}), ["soundscapy's PAQ1..PAQ8"]),
    (lambda f: f.iloc[0:0], ["no rows"]),
])
def test_bad_tables_are_one_line_and_write_nothing(tmp_path, capsys, mutate, pieces):
    path = _bad_table(tmp_path, mutate)
    out = tmp_path / "caps"
    code, _, err = _run(capsys, "caption", path, "--out", out)
    line = _one_line(err)
    assert code == 2 and str(path) in line and "fix:" in line, line
    for piece in pieces:
        assert piece in line, line
    assert not out.exists()


def test_a_mix_of_models_across_tables(tmp_path, capsys):
    a = write_table(tmp_path / "a.csv", random_rows(2, seed=5, model="AD_CNN"))
    b = write_table(tmp_path / "b.csv", random_rows(2, seed=6, model="Baseline_CNN"))
    code, _, err = _run(capsys, "caption", a, b, "--out", tmp_path / "caps")
    line = _one_line(err)
    assert code == 2 and "a mix of models" in line and "b.csv" in line and "a.csv" in line


def test_bad_json_names_the_item(tmp_path):
    good = predict_object("x", [(0, 30, prediction_row("x"))])
    bad = json.loads(json.dumps(good))
    del bad["events"]["Bird"]
    path = tmp_path / "p.json"
    path.write_text(json.dumps([good, bad]))
    with pytest.raises(PredictionTableError, match=r"item 2, events: no 'Bird'"):
        read_predictions_file(path)
    worse = json.loads(json.dumps(good))
    worse["windows"].append(dict(json.loads(json.dumps(worse["windows"][0])), index=1, start_s=30, end_s=60))
    worse["windows"][1]["events"]["Speech"] = 3.0
    path.write_text(json.dumps([worse]))
    with pytest.raises(PredictionTableError, match=r"item 1 window 2 .*event_prob_speech.*outside \[0, 1\]"):
        read_predictions_file(path)
    path.write_text("{not json")
    with pytest.raises(PredictionTableError, match="not valid JSON"):
        read_predictions_file(path)


def test_audio_without_a_checkpoint_and_empty_folders(tmp_path, capsys):
    import soundfile as sf

    wav = tmp_path / "a.wav"
    sf.write(wav, np.zeros(1600), 16000)
    code, _, err = _run(capsys, "caption", wav, "--out", tmp_path / "o")
    assert code == 2 and "needs an acoustic model" in _one_line(err) and "--checkpoint" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = _run(capsys, "caption", empty, "--out", tmp_path / "o")
    assert code == 2 and "without audio files" in _one_line(err)
    code, _, err = _run(capsys, "caption", tmp_path / "nope.csv", "--out", tmp_path / "o")
    assert code == 2 and "not found" in _one_line(err)
    assert not (tmp_path / "o").exists()


def test_the_api_raises_user_errors(tmp_path):
    with pytest.raises(UserError, match="unknown captioner"):
        caption(pd.DataFrame(random_rows(1)), captioner="gpt")
    with pytest.raises(UserError, match="needs LLM settings"):
        caption(pd.DataFrame(random_rows(1)), captioner="llm")


def test_caption_the_csv_tables_of_a_predict_folder(tmp_path, capsys):
    """`soundaq predict REC... --out DIR` names rows by ``recording`` (timeseries.csv: one per window;
    recordings.csv: one per recording); caption refused both with "missing column(s) clip"."""
    rows = random_rows(3, seed=4)
    series = pd.DataFrame(rows).rename(columns={"clip": "recording"})
    series.insert(1, "window", [0, 1, 0])
    series.insert(2, "start_s", [0.0, 30.0, 0.0])
    series.insert(3, "end_s", [30.0, 60.0, 30.0])
    series["recording"] = ["park_walk", "park_walk", "square"]
    table = tmp_path / "timeseries.csv"
    series.to_csv(table, index=False)
    code, _, err = _run(capsys, "caption", table, "--out", tmp_path / "caps")
    assert code == 0, err
    caps = pd.read_csv(tmp_path / "caps" / "captions.csv")
    assert list(caps["clip"]) == ["park_walk", "park_walk", "square"] and list(caps["start_s"]) == [0.0, 30.0, 0.0]
    summary = series.drop(columns=["window", "start_s", "end_s"]).iloc[[0, 2]].assign(windows=[2, 1])
    summary.to_csv(tmp_path / "recordings.csv", index=False)
    code, _, err = _run(capsys, "caption", tmp_path / "recordings.csv", "--out", tmp_path / "caps2")
    assert code == 0, err
    assert list(pd.read_csv(tmp_path / "caps2" / "captions.csv")["clip"]) == ["park_walk", "square"]


def test_predict_json_whose_windows_are_not_objects_is_one_line():
    """A windows list of numbers (a hand-edited JSON) was read with .get before it was checked: a traceback."""
    import pytest

    from soundaq.base.predictions_table import PredictionTableError
    from soundaq.base.vocab import EVENTS, QUALITIES, SCENES
    from soundaq.captions.tables import predictions_from_results

    record = {"clip": "a", "model": "M", "scene": SCENES[0], "scene_probabilities": dict.fromkeys(SCENES, 1 / 3),
              "events": dict.fromkeys(EVENTS, 0.5), "qualities": dict.fromkeys(QUALITIES, 3.0), "isop": 0.0,
              "isoe": 0.0}
    assert len(predictions_from_results([record], source="p.json")) == 1
    with pytest.raises(PredictionTableError, match=r"item 1 window 1 is int, not an object; fix:"):
        predictions_from_results([{**record, "windows": [1, 2]}], source="p.json")
