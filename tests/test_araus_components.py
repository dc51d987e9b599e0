"""ARAUS from its components: the stimulus of a responses row, as ARAUS's own function makes it."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from araus_builders import MIX_MASKER, MIX_SOUNDSCAPE, build_mix_case

from soundaq.models_zoo.data.araus_components import (
    StimulusError,
    clip_id,
    mix,
    read_tables,
    stimulus_plan,
)

#: Measured: ARAUS's make_augmented_soundscapes (repository ntudsp/araus-dataset-baseline-models,
#: code/araus_utils.py at 46a9a7c, mode "return") run on the files build_mix_case writes (byte for byte
#: the same files): its gain for the masker of each row and samples (index, channel) of its output.
ARAUS_GAIN_M = (0.6502644129312797, 1.8326941222142192, 0.9185228971975066)
ARAUS_SAMPLES = {
    0: {(1, 0): 0.029419949472706798, (1, 1): 0.1158811311133318, (12345, 0): 0.2677643295729969,
        (12345, 1): -0.057259474137940615, (1322999, 0): -0.029419949472706798, (1322999, 1): 0.0308687468163557},
    1: {(1, 0): 0.044828197942671864, (1, 1): 0.13128937958329687, (12345, 0): 0.22157566905413206,
        (12345, 1): -0.10344813465680544, (1322999, 0): -0.044828197942671864, (1322999, 1): 0.015460498346390638},
    2: {(1, 0): 0.03291562735300706, (1, 1): 0.11937680899363207, (12345, 0): 0.2572854825313474,
        (12345, 1): -0.06773832117959011, (1322999, 0): -0.03291562735300706, (1322999, 1): 0.027373068936055442},
}


def test_clip_ids_are_the_soundscaper_label_ids():
    assert clip_id("ARAUS_00042", 2, 1) == "fold_2_participant_00042_stimulus_01"
    assert clip_id("ARAUS_10001", 0, 12) == "fold_0_participant_10001_stimulus_12"


def test_mixed_stimuli_equal_araus_own_function(tmp_path):
    tables = read_tables(build_mix_case(tmp_path))
    for row in range(3):
        plan = stimulus_plan(tables, row)
        assert plan.clip == f"fold_2_participant_00042_stimulus_{row + 1:02d}"
        assert plan.gain_m == ARAUS_GAIN_M[row]          # exact: the same float64 operations
        x = mix(plan)
        assert x.shape == (1323000, 2) and x.dtype == np.float64
        for (k, c), value in ARAUS_SAMPLES[row].items():
            assert x[k, c] == value, (row, k, c)
    # the second row's stimulus exceeds full scale: unclipped, as ARAUS returns it
    assert np.abs(mix(stimulus_plan(tables, 1))).max() > 1.0


def test_target_levels_round_half_to_even(tmp_path):
    """insitu 71.5 dB - SMR 3 = 68.5 dB uses the 68-dB calibration, -(-6) gives 77.5 -> 78 (numpy's round)."""
    tables = read_tables(build_mix_case(tmp_path))
    gain_68 = 0.8 * 10 ** ((68 - 70) / 20) * 10 ** ((68.5 - 68.3) / 20)
    assert stimulus_plan(tables, 0).gain_m == pytest.approx(gain_68, rel=1e-15)
    gain_78 = 0.8 * 10 ** ((78 - 70) / 20) * 10 ** ((77.5 - 78.3) / 20)
    assert stimulus_plan(tables, 1).gain_m == pytest.approx(gain_78, rel=1e-15)


def _row_error(tables, row=0) -> str:
    with pytest.raises(StimulusError) as err:
        stimulus_plan(tables, row)
    message = str(err.value)
    assert "\n" not in message and "fix:" in message and f"responses.csv row {row + 1} " in message
    return message


def test_bad_rows_name_the_row_the_file_and_the_fix(tmp_path):
    root = build_mix_case(tmp_path)
    (root / "maskers" / MIX_MASKER).rename(root / "maskers" / "elsewhere.wav")
    assert f"masker file {root / 'maskers' / MIX_MASKER} is missing" in _row_error(read_tables(root))
    (root / "maskers" / "elsewhere.wav").rename(root / "maskers" / MIX_MASKER)

    maskers = pd.read_csv(root / "data" / "maskers.csv").drop(columns=["gain_68dB"])
    maskers.to_csv(root / "data" / "maskers.csv", index=False)
    message = _row_error(read_tables(root))
    assert "no gain_68dB column for masker bird_00001.wav at 68.50 dB" in message
    assert stimulus_plan(read_tables(root), 1).gain_m == ARAUS_GAIN_M[1]   # the other rows are served

    sf.write(root / "soundscapes" / MIX_SOUNDSCAPE, np.zeros((48000 * 30, 2)), 48000, subtype="PCM_16")
    message = _row_error(read_tables(root), 1)
    assert f"soundscape file {root / 'soundscapes' / MIX_SOUNDSCAPE} has 1440000 samples x 2 channels at 48000 Hz" \
        in message


def test_missing_table_is_one_line(tmp_path):
    root = build_mix_case(tmp_path)
    (root / "data" / "maskers.csv").unlink()
    with pytest.raises(StimulusError, match=r"maskers.csv: table not found; fix:"):
        read_tables(root)


@pytest.fixture(scope="module")
def araus_folder(tmp_path_factory):
    from araus_builders import build_araus_folder

    return build_araus_folder(tmp_path_factory.mktemp("araus"))


def _copy(folder, tmp_path):
    import shutil

    shutil.copytree(folder, tmp_path / "araus")
    return tmp_path / "araus"


def test_the_source_keeps_araus_columns_and_joins_the_labels(araus_folder, tmp_path):
    from soundaq.models_zoo.data.sources import make_source

    src = make_source("araus", araus_dir=araus_folder, labels_dir=araus_folder / "labels", cache_dir=tmp_path)
    assert src.name == "araus" and src.splits() == ("training", "validation", "test") and src.paper_split
    test = src.labels("test")
    assert len(test) == 9 and sorted(set(test["fold_r"])) == [0, 2]          # fold 0 plus a seen fold, as the paper's
    for column in ("participant", "fold_r", "soundscape", "masker", "smr", "stimulus_index", "scene", "pleasant"):
        assert column in test.columns
    responses = pd.read_csv(araus_folder / "data" / "responses.csv")
    row = responses[(responses["participant"] == "ARAUS_00001") & (responses["stimulus_index"] == 2)].iloc[0]
    ours = test.set_index("clip").loc["fold_0_participant_00001_stimulus_02"]
    assert ours["masker"] == row["masker"] and ours["smr"] == row["smr"] and ours["pleasant"] == row["pleasant"]

    bare = make_source("araus", araus_dir=araus_folder, cache_dir=tmp_path)   # no labels: ratings, split by fold
    assert bare.tasks == ("qualities",) and not bare.paper_split
    assert set(bare.labels("test")["fold_r"]) == {0} and set(bare.labels("validation")["fold_r"]) == {1}
    assert set(bare.labels("training")["fold_r"]) == {2, 3, 4, 5}


def test_bad_rows_are_left_out_one_line_each_and_the_rest_is_served(araus_folder, tmp_path):
    from soundaq.models_zoo.data.sources import make_source
    from soundaq.models_zoo.data.sources.araus_mixed import ArausRowWarning

    root = _copy(araus_folder, tmp_path)
    responses = pd.read_csv(root / "data" / "responses.csv")
    first = responses.iloc[0]
    (root / "maskers" / first["masker"]).unlink()                           # every row of that masker
    maskers = pd.read_csv(root / "data" / "maskers.csv")
    maskers.loc[maskers["masker"] == responses.iloc[6]["masker"], "gain_64dB":"leq_at_gain_83dB"] = np.nan
    maskers.to_csv(root / "data" / "maskers.csv", index=False)
    with pytest.warns(ArausRowWarning) as caught:
        src = make_source("araus", araus_dir=root, cache_dir=tmp_path)
        served = sum(len(src.labels(s)) for s in src.splits())
    lines = [str(w.message) for w in caught if issubclass(w.category, ArausRowWarning)]
    assert all("\n" not in line and "fix:" in line and "responses.csv row" in line for line in lines)
    assert any(f"masker file {root / 'maskers' / first['masker']} is missing" in line for line in lines)
    assert served + len(lines) == len(responses) and served > 0


def test_mixed_features_are_cached_by_the_components_content(araus_folder, tmp_path):
    from soundaq.models_zoo.data.sources import make_source

    src = make_source("araus", araus_dir=araus_folder, cache_dir=tmp_path)
    clip = src.labels("test")["clip"][0]
    mel, loud = src.reader().load(clip)
    assert mel.shape == (3001, 64) and loud.shape == (15000, 1) and np.isfinite(mel).all()
    entries = list((tmp_path / "features").rglob("*.npz"))
    assert len(entries) == 1
    again = make_source("araus", araus_dir=araus_folder, cache_dir=tmp_path).reader().load(clip)
    assert np.array_equal(again[0], mel) and len(list((tmp_path / "features").rglob("*.npz"))) == 1


def test_araus_protocol_takes_its_folds_from_fold_r(araus_folder, tmp_path):
    from soundaq.models_zoo.data.sources import make_source
    from soundaq.models_zoo.data.sources.rotation import FoldRotation

    src = make_source("araus", araus_dir=araus_folder, labels_dir=araus_folder / "labels", cache_dir=tmp_path)
    rotation = FoldRotation(src, 3)
    rotation.prepare()
    assert set(rotation.labels("test")["fold_r"]) == {0} and set(rotation.labels("validation")["fold_r"]) == {3}
    assert set(rotation.labels("training")["fold_r"]) == {1, 2, 4, 5} and len(rotation.labels("test")) == 6
    assert set(rotation.labels("training")["soundscape"]).isdisjoint(rotation.labels("test")["soundscape"])


@pytest.mark.slow   # about 80 s on 2 shared cores: features of 24 stimuli, then 5 + 1 trainings
def test_leaderboard_runs_end_to_end_on_a_component_folder(tmp_path):
    import subprocess
    import sys

    from araus_builders import build_araus_folder

    root = build_araus_folder(tmp_path / "araus", soundscapes_per_fold=1, stimuli_per_participant=2)
    common = ["--data", "araus", "--araus", root, "--labels", root / "labels", "--models", "Baseline_CNN",
              "--budget-clips", "8", "--batch-size", "4", "--resamples", "20", "--cache-dir", tmp_path / "cache",
              "--accelerator", "cpu", "--no-progress"]
    for protocol in ("araus", "published"):
        proc = subprocess.run([sys.executable, "-m", "soundaq", "leaderboard", *map(str, common), "--protocol",
                               protocol, "--out", str(tmp_path / protocol)], capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        table = pd.read_csv(tmp_path / protocol / "leaderboard.csv")
        assert (table.loc[table["model"] == "Baseline_CNN", "status"].dropna() == "ok").all()
    assert "test split: 2 clips from ARAUS folds that also feed training, 4 from unseen folds" in proc.stdout
    # the components give the breakdown by base recording and by masker too (ARAUS's folds share neither)
    assert "test split: 2 clips mixed from a base recording training also uses, 4 from new ones" in proc.stdout
    table = pd.read_csv(tmp_path / "published" / "leaderboard.csv")
    assert {"scene_acc_seen_recording", "aq_mse_mean_unseen_masker", "seen_masker_clips"} <= set(table.columns)
    assert "base recording" in (tmp_path / "published" / "leaderboard.md").read_text()


def test_data_check_counts_clips_sharing_a_recording_or_masker_with_training(araus_folder, tmp_path, capsys):
    import json

    from soundaq.benchmark.cli import main

    args = ["data", "check", "--araus", str(araus_folder), "--labels", str(araus_folder / "labels"),
            "--cache-dir", str(tmp_path)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "share a base recording with training" in out and "test: 3 of 9 clips are mixed from a base" in out
    assert main([*args, "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["components"]["test"]["shared_either"] == 3 and found["components"]["test"]["shared_neither"] == 6
    assert found["folds"]["splits"]["test"]["in_training_folds"] == 3
    root = _copy(araus_folder, tmp_path)
    (root / "maskers" / "bird_00001.wav").unlink()
    assert main(["data", "check", "--araus", str(root), "--json", "--cache-dir", str(tmp_path)]) == 1   # rows left out
    assert json.loads(capsys.readouterr().out)["left_out_rows"] == 3


#: Measured: ARAUS's make_augmented_soundscapes, mode "file", out_format "wav", on build_mix_case's files:
#: 16-bit samples (index, channel) of its second stimulus (the one above full scale) and its clipped count.
ARAUS_FILE_2 = {(1, 0): 1468, (1, 1): 4302, (12345, 0): 7260, (12345, 1): -3390, (1322999, 0): -1469,
                (1322999, 1): 506}
ARAUS_FILE_2_AT_FULL_SCALE = 4200      # samples with |x| >= 32767 after libsndfile's clipping


def test_written_stimuli_are_araus_files(tmp_path, capsys):
    from soundaq.benchmark.cli import main

    root = build_mix_case(tmp_path / "case")
    args = ["data", "araus-stimuli", "--araus", str(root), "--out", str(tmp_path / "out")]
    assert main(args) == 0 and "3 written" in capsys.readouterr().out
    x, rate = sf.read(tmp_path / "out" / "fold_2_participant_00042_stimulus_02.wav", dtype="int16")
    assert rate == 44100 and x.shape == (1323000, 2) and sf.info(str(tmp_path / "out" / "fold_2_participant_00042_"
                                                                   "stimulus_02.wav")).subtype == "PCM_16"
    assert {k: int(x[k]) for k in ARAUS_FILE_2} == ARAUS_FILE_2
    assert int((np.abs(x.astype(int)) >= 32767).sum()) == ARAUS_FILE_2_AT_FULL_SCALE
    assert main(args) == 0 and "0 written, 3 already there" in capsys.readouterr().out   # resumes
    assert main([*args[:-1], str(tmp_path / "flac"), "--format", "flac"]) == 0
    y, _ = sf.read(tmp_path / "flac" / "fold_2_participant_00042_stimulus_02.flac", dtype="int16")
    # libsndfile scales floats to 16 bits differently for FLAC than for WAV (ARAUS's FLAC files differ from
    # its WAV files the same way; equal to ARAUS's own FLAC output, checked outside the suite)
    assert np.abs(x.astype(int) - y).max() == 1
