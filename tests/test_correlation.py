"""Spearman event x quality analysis: numbers against scipy/pingouin/statsmodels, sources, CLI errors."""
from __future__ import annotations

import math
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from soundaq.base import vocab
from soundaq.base.predictions_table import PredictionTableError
from soundaq.base.vocab import EVENT_COLUMNS, EVENTS, QUALITIES, SCENES
from soundaq.benchmark.cli import main
from soundaq.evaluation import correlation as C
from soundaq.evaluation import correlation_report as R


@pytest.fixture(scope="module")
def test_labels(araus_labels_dir):
    from soundaq.models_zoo.data.labels import read_labels

    return read_labels(araus_labels_dir, "test")


def noisy_predictions(labels: pd.DataFrame, seed: int = 0, n: int | None = None, data: str | None = None):
    """A predictions-shaped table made from labels: blurred event labels and noisy ratings."""
    rng = np.random.default_rng(seed)
    lab = labels.iloc[:n] if n else labels
    out = pd.DataFrame({"clip": lab["clip"].to_numpy(), "model": "noisy-labels", "scene": lab["scene"].to_numpy()})
    for pcol, lcol in zip(vocab.EVENT_PROB_COLUMNS, EVENT_COLUMNS):
        out[pcol] = np.clip(0.2 + 0.6 * lab[lcol].to_numpy() + rng.normal(0, 0.15, len(lab)), 0, 1)
    for q in QUALITIES:
        out[q] = np.clip(lab[q].to_numpy() + rng.normal(0, 0.5, len(lab)), 1, 5)
    if data:
        out["data"] = data
    return out


def _source(frame: pd.DataFrame, x: dict, group_col="scene") -> C.Source:
    return C.Source(kind="test", title="unit test", frame=frame, x=x, y={q: q for q in C.QUALITY_ORDER},
                    x_name="event", group_col=group_col)


# ------------------------------------------------------------------ statistics

def test_rho_and_p_equal_scipy_exactly_with_ties(test_labels):
    src = _source(test_labels, {e: c for e, c in zip(EVENTS, EVENT_COLUMNS)})
    table = C.spearman_table(src)
    assert list(table.columns) == list(C.TABLE_COLUMNS)
    assert list(dict.fromkeys(table["group"])) == [C.ALL, *SCENES]
    assert len(table) == 4 * 15 * 10
    for row in table.itertuples():
        part = test_labels if row.group == C.ALL else test_labels[test_labels["scene"] == row.group]
        ref = stats.spearmanr(part[src.x[row.event]], part[row.quality])
        assert row.rho == ref.statistic and row.p == ref.pvalue, (row.group, row.event, row.quality)
        assert row.n == len(part)


def test_rho_and_p_match_pingouin(test_labels):
    import pingouin as pg

    for event, quality in [("Bird", "pleasant"), ("Vehicle", "calm"), ("Music", "isoe")]:
        x = test_labels[EVENT_COLUMNS[EVENTS.index(event)]].astype(float)
        y = test_labels[quality]
        rho, p, n, reason = C.spearman_pair(x, y)
        ref = pg.corr(x, y, method="spearman")
        assert reason == "" and n == int(ref["n"].iloc[0])
        assert rho == pytest.approx(float(ref["r"].iloc[0]), rel=1e-12)
        assert p == pytest.approx(float(ref["p_val"].iloc[0] if "p_val" in ref else ref["p-val"].iloc[0]), rel=1e-9)


def test_missing_values_are_dropped_pairwise():
    rng = np.random.default_rng(3)
    x = rng.integers(1, 6, 200).astype(float)
    y = x + rng.integers(-2, 3, 200)
    x[[3, 50]] = np.nan
    y[[7]] = np.nan
    rho, p, n, reason = C.spearman_pair(x, y)
    ref = stats.spearmanr(x, y, nan_policy="omit")
    assert n == 197 and reason == ""
    assert rho == pytest.approx(ref.statistic, rel=1e-14) and p == pytest.approx(ref.pvalue, rel=1e-12)


def test_constant_event_gets_empty_rho_and_reason_without_warnings():
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({q: rng.integers(1, 6, 120).astype(float) for q in QUALITIES})
    frame["isop"], frame["isoe"] = rng.normal(size=120), rng.normal(size=120)
    frame["scene"] = np.repeat(["park", "street_traffic"], 60)
    frame["ev_a"] = rng.integers(0, 2, 120)
    frame["ev_never"] = 0
    frame["ev_park_only"] = (frame["scene"] == "park").astype(int)  # constant within each scene
    src = _source(frame, {"A": "ev_a", "Never": "ev_never", "ParkOnly": "ev_park_only"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = C.spearman_table(src)
    never = table[table["event"] == "Never"]
    assert never["rho"].isna().all() and never["p_adjusted"].isna().all() and (never["stars"] == "").all()
    assert never["reason"].str.contains("never occurs").all()
    park = table[(table["event"] == "ParkOnly") & (table["group"] == "park")]
    assert park["reason"].str.contains("every row").all()
    # the whole-table ParkOnly rows are testable: the event varies over all rows
    assert table[(table["event"] == "ParkOnly") & (table["group"] == C.ALL)]["rho"].notna().all()
    # untestable pairs do not enter the correction family
    tested = table[(table["group"] == C.ALL) & table["p"].notna()]
    assert np.allclose(tested["p_adjusted"], C.adjust_pvalues(tested["p"].to_numpy(), "fdr_bh"))
    assert len(tested) == 20


def test_too_few_pairs_reason():
    rho, _p, n, reason = C.spearman_pair([1, 2, np.nan], [3, np.nan, 1])
    assert math.isnan(rho) and n == 1 and "paired values" in reason


def test_small_samples_get_permutation_p_values():
    """spearmanr's t approximation gives p = 0 for rho = 1 on 4 pairs; a permutation test gives the exact
    2/24 (a new user saw *** on every cell of 4 recordings)."""
    assert stats.spearmanr([1, 2, 3, 4], [4, 3, 2, 1]).pvalue < 1e-6          # what the approximation says
    assert C.spearman_pair([1, 2, 3, 4], [4, 3, 2, 1])[:3] == (-1.0, pytest.approx(2 / 24, abs=1e-12), 4)
    # n = 5, rho = 0.9: the identity and 4 adjacent swaps of 120 orders reach |sum d^2| <= 2, on each side
    assert C.spearman_pair([1, 2, 3, 4, 5], [1, 2, 3, 5, 4])[1] == pytest.approx(10 / 120, abs=1e-12)
    rng = np.random.default_rng(3)
    x9, y9 = rng.normal(size=9), rng.normal(size=9)
    assert C.spearman_pair(x9, y9)[1] == C.spearman_pair(x9, y9)[1]            # seeded random orders above 8
    x, y = rng.normal(size=C.PERMUTATION_BELOW), rng.normal(size=C.PERMUTATION_BELOW)
    assert C.spearman_pair(x, y)[1] == stats.spearmanr(x, y).pvalue            # from 10 pairs on: spearmanr's


def test_cli_four_rows_mark_no_cell_significant(capsys, pred_csv, test_labels, tmp_path):
    frame = noisy_predictions(test_labels, n=4)
    out = tmp_path / "four"
    rc, _, err = _cli(capsys, "--predictions", pred_csv(frame), "--out", out, "--no-figures")
    assert rc == 0, err
    table = _read_spearman(out / "spearman.csv")
    tested = table[table["p"].notna()]
    assert len(tested) and (tested["p"] >= 2 / 24 - 1e-12).all() and not tested["stars"].fillna("").str.len().any()
    assert "a permutation test below 10 pairs" in (out / "report.md").read_text()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fdr_bh_matches_scipy_and_statsmodels(seed):
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(seed)
    p = np.concatenate([rng.uniform(0, 1, 120), rng.uniform(0, 1e-3, 30), [0.02, 0.02, 0.02]])
    ours = C.adjust_pvalues(p, "fdr_bh")
    np.testing.assert_allclose(ours, stats.false_discovery_control(p, method="bh"), rtol=1e-12)
    np.testing.assert_allclose(ours, multipletests(p, method="fdr_bh")[1], rtol=1e-12)


def test_bonferroni_and_none_and_nan_handling():
    from statsmodels.stats.multitest import multipletests

    p = np.array([0.001, 0.2, np.nan, 0.04, 0.5])
    ok = np.isfinite(p)
    bon = C.adjust_pvalues(p, "bonferroni")
    np.testing.assert_allclose(bon[ok], multipletests(p[ok], method="bonferroni")[1], rtol=1e-12)
    assert math.isnan(bon[2])
    fdr = C.adjust_pvalues(p, "fdr_bh")
    np.testing.assert_allclose(fdr[ok], multipletests(p[ok], method="fdr_bh")[1], rtol=1e-12)
    np.testing.assert_array_equal(C.adjust_pvalues(p, "none")[ok], p[ok])
    with pytest.raises(C.CorrelationError, match="unknown correction"):
        C.adjust_pvalues(p, "holm")


@pytest.mark.parametrize("p,mark", [(0.0009, "***"), (0.001, "**"), (0.0099, "**"), (0.01, "*"),
                                    (0.0499, "*"), (0.05, ""), (0.7, ""), (math.nan, "")])
def test_stars_thresholds(p, mark):
    assert C.stars(p) == mark


def test_stars_use_the_adjusted_p(test_labels):
    src = _source(test_labels, {e: c for e, c in zip(EVENTS, EVENT_COLUMNS)})
    for corr in ("bonferroni", "none"):
        t = C.spearman_table(src, corr, by_group=False)
        assert (t["stars"] == t["p_adjusted"].map(C.stars)).all()
        assert (t["correction"] == corr).all()
    bon = C.spearman_table(src, "bonferroni", by_group=False)
    raw = C.spearman_table(src, "none", by_group=False)
    assert (bon["stars"].str.len() <= raw["stars"].str.len()).all()
    assert (bon["stars"] != raw["stars"]).any()


def test_qualities_in_circumplex_order_then_iso(test_labels):
    src = _source(test_labels, {"Bird": EVENT_COLUMNS[EVENTS.index("Bird")]})
    t = C.spearman_table(src, by_group=False)
    assert list(t["quality"]) == [*vocab.CIRCUMPLEX_ORDER, "isop", "isoe"]


def test_strongest_pairs(test_labels):
    src = _source(test_labels, {e: c for e, c in zip(EVENTS, EVENT_COLUMNS)})
    t = C.spearman_table(src)
    pos, neg = C.strongest_pairs(t, 3)
    allrows = t[t["group"] == C.ALL]
    assert list(pos["rho"]) == sorted(allrows["rho"].nlargest(3), reverse=True)
    assert list(neg["rho"]) == sorted(allrows["rho"].nsmallest(3))
    # sanity against what soundscape research expects of real human labels
    rho = C.matrix(t, "rho")
    assert rho.loc["Bird", "pleasant"] > 0 and rho.loc["Vehicle", "calm"] < 0


# ------------------------------------------------------------------ sources

def test_predictions_source_from_noisy_labels(test_labels):
    pred = noisy_predictions(test_labels, n=600)
    src = C.predictions_source(pred)
    assert src.kind == "predictions" and not src.synthetic
    assert src.groups() == [s for s in SCENES if s in set(pred["scene"])]
    assert src.details["derived_iso"] == ["isop", "isoe"]
    from soundaq.base.vocab import iso_coordinates

    isop, _ = iso_coordinates(*(pred[q] for q in QUALITIES))
    np.testing.assert_allclose(src.frame["isop"], isop)
    t = C.spearman_table(src, by_group=False)
    row = t[(t["event"] == "Outside, rural or natural") & (t["quality"] == "calm")].iloc[0]
    ref = stats.spearmanr(pred["event_prob_outside_rural_or_natural"], pred["calm"])
    assert row["rho"] == ref.statistic and row["p"] == ref.pvalue


def test_synthetic_flag_from_data_column(test_labels):
    pred = noisy_predictions(test_labels, n=50, data="synthetic-embedded")
    src = C.predictions_source(pred)
    assert src.synthetic and "SYNTHETIC" in src.label
    assert C.predictions_source(noisy_predictions(test_labels, n=50), synthetic=True).synthetic


def test_correlate_predictions_on_a_leaderboard_shaped_table(test_labels, tmp_path):
    """The leaderboard's predictions/<model>.csv: every vocab column, truth columns, a data column."""
    rng = np.random.default_rng(3)
    pred = noisy_predictions(test_labels, n=300)
    for c in vocab.SCENE_PROB_COLUMNS:
        pred[c] = rng.random(len(pred))
    pred["isop"], pred["isoe"] = vocab.iso_coordinates(*(pred[q] for q in QUALITIES))
    truth = test_labels.iloc[:300].reset_index(drop=True)
    pred["true_scene"] = truth["scene"]
    for tcol, lcol in zip(vocab.TRUE_EVENT_COLUMNS, EVENT_COLUMNS):
        pred[tcol] = truth[lcol]
    for tcol, q in zip(vocab.TRUE_QUALITY_COLUMNS, QUALITIES):
        pred[tcol] = truth[q]
    pred["true_isop"], pred["true_isoe"] = truth["isop"], truth["isoe"]
    pred["data"] = "synthetic (soundaq embedded set v1, 300 clips, seed 0)"
    pred = pred[[*vocab.PREDICTION_COLUMNS, *vocab.TRUTH_COLUMNS, "data"]]
    path = tmp_path / "noisy-labels.csv"
    pred.to_csv(path, index=False)
    summary = R.correlate_predictions(path, tmp_path / "corr", figures=False)
    assert summary["synthetic"] and summary["source"] == "predictions" and summary["figures"] == []
    assert "SYNTHETIC DATA" in (tmp_path / "corr" / "report.md").read_text()
    table = _read_spearman(tmp_path / "corr" / "spearman.csv")
    row = table[(table["group"] == "all") & (table["event"] == "Music") & (table["quality"] == "isoe")].iloc[0]
    ref = stats.spearmanr(pred["event_prob_music"], pred["isoe"])  # predicted columns, not true_*
    assert row["rho"] == ref.statistic and row["p"] == ref.pvalue
    with pytest.raises(PredictionTableError, match=r"missing column\(s\) calm"):
        R.correlate_predictions(pred.drop(columns=["calm"]), tmp_path / "bad", figures=False)


def test_isd_source_matches_soundscapy():
    sspy = pytest.importorskip("soundscapy")
    from soundscapy.databases import isd
    from soundscapy.surveys.survey_utils import LIKERT_SCALES

    from soundaq.evaluation.isd import SOURCE_COLUMNS, isd_source, load_isd

    raw_frame, info = load_isd(validate=False)
    assert info["responses"] == 3589 and len(raw_frame) == 3589 and info["locations"] == 26
    ref = sspy.add_iso_coords(isd.load())
    np.testing.assert_allclose(raw_frame["isop"], ref["ISOPleasant"], rtol=0, atol=1e-12, equal_nan=True)
    np.testing.assert_allclose(raw_frame["isoe"], ref["ISOEventful"], rtol=0, atol=1e-12, equal_nan=True)
    raw_csv = isd.load()
    for file_col, name in SOURCE_COLUMNS.items():
        assert isd.match_col_to_likert_scale(name) == LIKERT_SCALES.source  # soundscapy's own vocabulary
        np.testing.assert_array_equal(raw_frame[name], raw_csv[file_col].astype(float))
    np.testing.assert_array_equal(raw_frame["calm"], vocab.to_soundscapy(raw_frame)["PAQ8"])
    src = isd_source()
    assert src.details["kept"] + src.details["excluded_by_validate"] == 3589
    assert src.group_col == "location" and len(src.groups()) == 26
    assert list(src.x) == ["Traffic noise", "Other noise", "Human sounds", "Natural sounds"]


def test_labels_source_rejects_bad_folder_and_split(tmp_path):
    with pytest.raises(C.CorrelationError, match="not a folder"):
        C.labels_source(tmp_path / "nope")
    with pytest.raises(C.CorrelationError, match="unknown split"):
        C.labels_source(tmp_path, "dev")


# ------------------------------------------------------------------ CLI

def _read_spearman(path) -> pd.DataFrame:
    """spearman.csv as a user reads it: empty numeric cells are NaN, empty text cells are ''."""
    table = pd.read_csv(path, float_precision="round_trip")
    table[["stars", "reason"]] = table[["stars", "reason"]].fillna("")
    return table


def _cli(capsys, *argv):
    rc = main(["correlate", *map(str, argv)])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


@pytest.fixture
def pred_csv(tmp_path, test_labels):
    def write(frame, name="pred.csv"):
        path = tmp_path / name
        frame.to_csv(path, index=False)
        return path
    return write


@pytest.mark.parametrize("mutate,expect", [
    (lambda f: f.drop(columns=["event_prob_bird"]), "missing column(s) event_prob_bird"),
    (lambda f: vocab.to_soundscapy(f), "PAQ1..PAQ8"),
    (lambda f: f.rename(columns={"pleasant": "Pleasant"}), "lower case"),
    (lambda f: f.iloc[:0], "no rows"),
    (lambda f: f.assign(calm=f["calm"].astype(object).where(f.index != 4, "high")),
     ("row 5, line 6 (clip ", "column calm: 'high' is not a finite number; fix:")),
    (lambda f: f.assign(model=np.where(f.index % 2, "a", "b")), "2 models"),
])
def test_cli_bad_predictions_one_line_exit_2(capsys, pred_csv, test_labels, tmp_path, mutate, expect):
    path = pred_csv(mutate(noisy_predictions(test_labels, n=40)))
    rc, _out, err = _cli(capsys, "--predictions", path, "--out", tmp_path / "out")
    assert rc == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert all(e in err for e in ((expect,) if isinstance(expect, str) else expect)) and str(path) in err
    assert not (tmp_path / "out" / "spearman.csv").exists()


def test_cli_empty_missing_and_label_shaped_files(capsys, tmp_path, test_labels):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    rc, _, err = _cli(capsys, "--predictions", empty, "--out", tmp_path / "o")
    assert rc == 2 and "empty" in err and err.count("\n") == 1
    rc, _, err = _cli(capsys, "--predictions", tmp_path / "missing.csv", "--out", tmp_path / "o")
    assert rc == 2 and "file not found" in err
    labels_like = tmp_path / "labels.csv"
    test_labels.head(20).to_csv(labels_like, index=False)
    rc, _, err = _cli(capsys, "--predictions", labels_like, "--out", tmp_path / "o")
    assert rc == 2 and "use --labels DIR" in err


def test_cli_predictions_end_to_end_synthetic(capsys, pred_csv, test_labels, tmp_path):
    frame = noisy_predictions(test_labels, n=400, data="synthetic")
    path = pred_csv(frame)
    out = tmp_path / "run"
    rc, stdout, err = _cli(capsys, "--predictions", path, "--out", out, "--correction", "bonferroni",
                           "--max-points", 200, "--max-groups", 3)
    assert rc == 0, err
    assert "SYNTHETIC" in stdout
    table = _read_spearman(out / "spearman.csv")
    assert list(table.columns) == list(C.TABLE_COLUMNS) and (table["correction"] == "bonferroni").all()
    row = table[(table["group"] == "all") & (table["event"] == "Bird") & (table["quality"] == "pleasant")].iloc[0]
    ref = stats.spearmanr(frame["event_prob_bird"], frame["pleasant"])
    assert row["rho"] == ref.statistic and row["p"] == ref.pvalue  # exact after the CSV round trip
    report = (out / "report.md").read_text()
    assert "SYNTHETIC DATA" in report and "Bonferroni" in report
    for name in ("heatmap", "bars", "radar", "circumplex", "heatmap_by_predicted_scene"):
        assert (out / f"{name}.png").stat().st_size > 10_000
        assert (out / f"{name}.pdf").read_bytes()[:5] == b"%PDF-"
        assert f"]({name}.png)" in report
    assert not list(out.glob(".*"))  # no temporary files left behind


def test_cli_labels_constant_event_and_determinism(capsys, araus_labels_dir, tmp_path):
    # in the validation split no public_square clip is labelled Silence: a real constant column
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        rc, _, err = _cli(capsys, "--labels", araus_labels_dir, "--split", "validation", "--out", out,
                          "--no-figures")
        assert rc == 0, err
    assert (a / "spearman.csv").read_bytes() == (b / "spearman.csv").read_bytes()
    table = _read_spearman(a / "spearman.csv")
    assert len(table) == 4 * 150
    untested = table[table["rho"].isna()]
    assert set(zip(untested["group"], untested["event"])) == {("public_square", "Silence")}
    assert (untested["reason"] == "event never occurs here (constant 0)").all() and len(untested) == 10
    assert (untested["stars"] == "").all()
    assert (table[table["rho"].notna()]["reason"] == "").all()
    with open(a / "spearman.csv") as fh:  # empty cells in the file, not "nan"
        assert "nan" not in fh.read().lower()
    report = (a / "report.md").read_text()
    assert "| public_square | Silence |" in report and "never occurs" in report


def test_cli_isd_default_source(capsys, tmp_path):
    pytest.importorskip("soundscapy")
    rc, out, err = _cli(capsys, "--out", tmp_path / "isd", "--no-figures")
    assert rc == 0, err and "ISD" in out
    table = _read_spearman(tmp_path / "isd" / "spearman.csv")
    assert set(table["event"]) == {"Traffic noise", "Other noise", "Human sounds", "Natural sounds"}
    assert table["group"].nunique() == 27  # all + 26 locations
    from soundaq.evaluation.isd import isd_source

    frame = isd_source().frame
    row = table[(table["group"] == "all") & (table["event"] == "Natural sounds") & (table["quality"] == "calm")]
    ref = stats.spearmanr(frame["natural_sounds"], frame["calm"], nan_policy="omit")
    assert float(row["rho"].iloc[0]) == pytest.approx(ref.statistic, rel=1e-9)


def test_cli_argument_errors_exit_2(capsys, tmp_path):
    assert main(["correlate", "--isd", "--labels", str(tmp_path), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "not allowed with argument" in err and len(err.strip().splitlines()) == 1, err
    rc, _, err = _cli(capsys, "--isd", "--group-by", "scene", "--out", tmp_path / "x")
    assert rc == 2 and "location" in err


def test_command_is_light_and_listed():
    from soundaq.benchmark.cli import build_parser
    from soundaq.benchmark.commands import correlate as cmd

    assert cmd.CORRECTIONS == C.CORRECTIONS
    assert "correlate" in build_parser().format_help()
    code = "import sys, argparse, soundaq.benchmark.commands.correlate as c; " \
           "c.register(argparse.ArgumentParser().add_subparsers()); " \
           "print(any(m in sys.modules for m in ('pandas', 'matplotlib', 'torch', 'scipy', 'soundscapy')))"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "False"


def _qualities_only_table(n: int = 40, seed: int = 5) -> pd.DataFrame:
    """A leaderboard-shaped predictions table of own data labelled with the 8 qualities only: the truth
    columns of the scene and the events are empty (as the data module leaves unlabelled groups), while
    the untrained scene head still names a scene for every clip."""
    rng = np.random.default_rng(seed)
    pred = pd.DataFrame({"clip": [f"c{i:02d}" for i in range(n)], "model": "m",
                         "scene": rng.choice(SCENES, n)})
    for c in vocab.SCENE_PROB_COLUMNS:
        pred[c] = rng.random(n)
    for c in vocab.EVENT_PROB_COLUMNS:
        pred[c] = rng.random(n)
    for q in QUALITIES:
        pred[q] = rng.uniform(1, 5, n)
    pred["isop"], pred["isoe"] = vocab.iso_coordinates(*(pred[q] for q in QUALITIES))
    pred["true_scene"] = np.nan
    for c in vocab.TRUE_EVENT_COLUMNS:
        pred[c] = np.nan
    for c, q in zip(vocab.TRUE_QUALITY_COLUMNS, QUALITIES):
        pred[c] = np.clip(pred[q] + rng.normal(0, 0.5, n), 1, 5)
    pred["true_isop"], pred["true_isoe"] = vocab.iso_coordinates(*(pred[c] for c in vocab.TRUE_QUALITY_COLUMNS))
    return pred[[*vocab.PREDICTION_COLUMNS, *vocab.TRUTH_COLUMNS]]


def test_qualities_only_labels_are_not_grouped_by_the_untrained_scene_head(capsys, tmp_path):
    pred = _qualities_only_table()
    path = tmp_path / "m.csv"
    pred.to_csv(path, index=False)
    summary = R.correlate_predictions(path, tmp_path / "corr", figures=False)   # the leaderboard's call
    assert summary["groups"] == [] and summary["details"]["grouped_by"] is None
    assert summary["notes"] == [C.UNTRAINED_SCENE_NOTE, C.UNTRAINED_EVENTS_NOTE]
    assert set(_read_spearman(tmp_path / "corr" / "spearman.csv")["group"]) == {"all"}
    report = (tmp_path / "corr" / "report.md").read_text()
    assert C.UNTRAINED_SCENE_NOTE in report and "Strongest pair per" not in report
    # `soundaq correlate --predictions` applies the same rule and says it on the terminal
    assert main(["correlate", "--predictions", str(path), "--out", str(tmp_path / "cli"), "--no-figures"]) == 0
    assert "not grouped by the predicted scene" in capsys.readouterr().out.lower()
    # with scene labels (the scene head trained) the predicted scene still groups the rows
    labelled = pred.assign(true_scene=pred["scene"])
    assert C.predictions_source(labelled).groups() == [s for s in SCENES if s in set(pred["scene"])]
    assert C.predictions_source(labelled).notes == [C.UNTRAINED_EVENTS_NOTE]
