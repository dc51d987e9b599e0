"""Metric runners against independent references (sklearn, scipy, a loop transcription of the original's
definitions) on random data, edge cases (absent scene, clip/event without positives, ties) and the real
ARAUS test labels; the streaming torchmetrics runner against the table scorer."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

sk = pytest.importorskip("sklearn.metrics", reason="scikit-learn is the test reference (pip install -e .[test])")

from soundaq.base.predictions_table import PredictionTableError  # noqa: E402
from soundaq.base.vocab import EVENT_COLUMNS, EVENTS, QUALITIES, SCENES  # noqa: E402
from soundaq.models_zoo.eval_data import EvalData, MetricInputError  # noqa: E402
from soundaq.models_zoo.metric_definitions import PAPER, STANDARD  # noqa: E402
from soundaq.models_zoo.metrics import (  # noqa: E402
    HEADLINE,
    METRICS,
    confusion_key,
    definitions,
    read_predictions,
    resolve,
    score,
    score_table,
)
from soundaq.models_zoo.predict import batch_truth, predictions_frame  # noqa: E402


# ------------------------------------------------------------------------------------------ helpers
def make_data(seed: int = 0, n: int = 400, ties: bool = False) -> EvalData:
    rng = np.random.default_rng(seed)
    scene = rng.integers(0, 3, n)
    sprob = rng.dirichlet([1, 1, 1], n)
    sprob[np.arange(n), scene] += 0.4 * rng.random(n)
    sprob /= sprob.sum(1, keepdims=True)
    events = (rng.random((n, 15)) < rng.uniform(0.1, 0.6, 15)).astype(float)
    eprob = np.clip(0.35 * events + 0.65 * rng.random((n, 15)), 0, 1)
    if ties:
        eprob = np.round(eprob, 1)
    qt = rng.uniform(1, 5, (n, 8))
    qp = qt + rng.normal(0, 1, (n, 8))
    it = rng.uniform(-1, 1, (n, 2))
    ip = it + rng.normal(0, 0.3, (n, 2))
    return EvalData(scene_true=scene, scene_prob=sprob, event_true=events, event_prob=eprob,
                    quality_true=qt, quality_pred=qp, iso_true=it, iso_pred=ip,
                    clips=[f"clip{i}" for i in range(n)], source="random")


def original_scene_accuracy(target, probs, eps=1e-8):
    """The original's `macro` accuracy, transcribed as a plain loop over clips."""
    k = probs.shape[1]
    correct, total = [0.0] * k, [0.0] * k
    for t, p in zip(target, probs):
        total[t] += 1
        if int(np.argmax(p)) == t:
            correct[t] += 1
    return sum(c / (n + eps) for c, n in zip(correct, total)) / k


def sk_clip_auc(d: EvalData) -> tuple[float, int]:
    aucs = [sk.roc_auc_score(d.event_true[i], d.event_prob[i]) for i in range(d.n)
            if 0 < d.event_true[i].sum() < len(EVENTS)]
    return float(np.mean(aucs)) if aucs else math.nan, len(aucs)


def sk_event_macro(d: EvalData, fn, need_negative: bool) -> float:
    vals = []
    for k in range(len(EVENTS)):
        pos = d.event_true[:, k].sum()
        if pos == 0 or (need_negative and pos == d.n):
            continue
        vals.append(fn(d.event_true[:, k], d.event_prob[:, k]))
    return float(np.mean(vals))


def reference_scores(d: EvalData) -> dict[str, float]:
    """Every registry metric from sklearn/scipy (and the original's loop for scene_acc)."""
    pred = d.scene_prob.argmax(1)
    ref = {
        "scene_acc": original_scene_accuracy(d.scene_true, d.scene_prob),
        "scene_acc_plain": sk.accuracy_score(d.scene_true, pred),
        "scene_f1_macro": sk.f1_score(d.scene_true, pred, average="macro"),
        "event_auc": sk_clip_auc(d)[0],
        "event_auc_macro": sk_event_macro(d, sk.roc_auc_score, need_negative=True),
        "event_map": sk_event_macro(d, sk.average_precision_score, need_negative=False),
        "isop_mse": sk.mean_squared_error(d.iso_true[:, 0], d.iso_pred[:, 0]),
        "isoe_mse": sk.mean_squared_error(d.iso_true[:, 1], d.iso_pred[:, 1]),
    }
    mses = []
    for k, q in enumerate(QUALITIES):
        ref[f"mse_{q}"] = sk.mean_squared_error(d.quality_true[:, k], d.quality_pred[:, k])
        mses.append(ref[f"mse_{q}"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref[f"pearson_{q}"] = stats.pearsonr(d.quality_pred[:, k], d.quality_true[:, k])[0]
    ref["aq_mse_mean"] = float(np.mean(mses))
    return ref


def assert_matches_reference(d: EvalData, rel=1e-9):
    got = score(d)
    for name, want in reference_scores(d).items():
        if math.isnan(want):
            assert math.isnan(got[name]), name
        else:
            assert got[name] == pytest.approx(want, rel=rel, abs=1e-9), name
    return got


def to_table(d: EvalData, model="m") -> pd.DataFrame:
    """``d`` as the predictions table that ``soundaq predict`` and the leaderboard write (their writers)."""
    outputs = {"scene_probabilities": d.scene_prob, "event_probabilities": d.event_prob,
               "qualities": d.quality_pred, "isop": d.iso_pred[:, 0], "isoe": d.iso_pred[:, 1]}
    truth = batch_truth({"scene": d.scene_true, "events": d.event_true, "qualities": d.quality_true,
                         "isop": d.iso_true[:, 0], "isoe": d.iso_true[:, 1]})
    return pd.concat([predictions_frame(outputs, model, d.clips), pd.DataFrame(truth)], axis=1)


def replace(d: EvalData, **arrays) -> EvalData:
    fields = dict(scene_true=d.scene_true, scene_prob=d.scene_prob, event_true=d.event_true,
                  event_prob=d.event_prob, quality_true=d.quality_true, quality_pred=d.quality_pred,
                  iso_true=d.iso_true, iso_pred=d.iso_pred, clips=d.clips, source=d.source)
    fields.update(arrays)
    return EvalData(**fields)


# ------------------------------------------------------------------------------------------ registry
def test_registry_names_definitions_and_directions():
    expected = {"scene_acc", "scene_acc_plain", "scene_f1_macro", "event_auc", "event_auc_macro", "event_map",
                "aq_mse_mean", "isop_mse", "isoe_mse", *(f"mse_{q}" for q in QUALITIES),
                *(f"pearson_{q}" for q in QUALITIES)}
    assert set(METRICS) == expected
    assert definitions()["scene_acc"] == PAPER and definitions()["event_auc"] == PAPER
    assert definitions()["event_auc_macro"] == STANDARD and definitions()["event_map"] == STANDARD
    for name, m in METRICS.items():
        assert m.name == name and m.definition in (PAPER, STANDARD) and m.description
        assert m.maximize == ("mse" not in name), name
    assert {"scene_acc", "event_auc", "event_auc_macro", "event_map", "aq_mse_mean", "isop_mse",
            "isoe_mse"} <= set(HEADLINE)
    assert [m.name for m in resolve("scene_acc, event_map")] == ["scene_acc", "event_map"]
    with pytest.raises(MetricInputError, match="unknown metric"):
        resolve(["scene_accuracy"])


# ------------------------------------------------------------------------------------------ random data
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("ties", [False, True])
def test_every_metric_matches_sklearn_and_scipy(seed, ties):
    got = assert_matches_reference(make_data(seed, n=300, ties=ties))
    assert got["n_clips"] == 300


def test_confusion_matrix_matches_sklearn():
    d = make_data(3)
    got = score(d)
    cm = sk.confusion_matrix(d.scene_true, d.scene_prob.argmax(1), labels=[0, 1, 2])
    for i, t in enumerate(SCENES):
        for j, p in enumerate(SCENES):
            assert got[confusion_key(t, p)] == cm[i, j]
    assert sum(got[confusion_key(t, p)] for t in SCENES for p in SCENES) == d.n


# ------------------------------------------------------------------------------------------ edge cases
def test_absent_scene_counts_zero_in_the_paper_accuracy():
    d = make_data(4, n=200)
    truth = np.where(d.scene_true == 0, 1, d.scene_true)  # public_square never in the labels
    d = replace(d, scene_true=truth)
    got = assert_matches_reference(d)
    pred = d.scene_prob.argmax(1)
    assert (pred == 0).any()  # it is still predicted sometimes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns that y_pred holds a class absent from y_true
        balanced = sk.balanced_accuracy_score(truth, pred)  # averages over the 2 present scenes only
    assert got["scene_acc"] == pytest.approx(balanced * 2 / 3, rel=1e-7)
    assert got[confusion_key("public_square", "public_square")] == 0


def test_scene_absent_from_labels_and_predictions_is_left_out_of_macro_f1():
    d = make_data(5, n=150)
    truth = np.where(d.scene_true == 2, 1, d.scene_true)
    probs = d.scene_prob.copy()
    probs[:, 2] = 0.0  # street_traffic neither true nor predicted
    d = replace(d, scene_true=truth, scene_prob=probs)
    got = assert_matches_reference(d)
    assert got["scene_f1_macro"] == pytest.approx(sk.f1_score(truth, probs.argmax(1), average="macro"))


def test_scene_probability_tie_goes_to_the_first_scene():
    d = make_data(6, n=30)
    probs = np.full((30, 3), 1 / 3)
    got = score(replace(d, scene_prob=probs))
    assert got["scene_acc_plain"] == pytest.approx(np.mean(d.scene_true == 0))
    assert got[confusion_key(SCENES[1], SCENES[0])] == int((d.scene_true == 1).sum())


def test_clips_without_positive_or_negative_events_are_skipped_and_counted():
    d = make_data(7, n=120)
    events = d.event_true.copy()
    events[:, 0], events[:, 1] = 1.0, 0.0  # every clip has a positive and a negative ...
    events[:5] = 0.0  # ... but these have no positive: skipped by the original
    events[5:7] = 1.0  # all 15 positive: AUC undefined, we skip it too
    d = replace(d, event_true=events)
    got = assert_matches_reference(d)
    assert got["event_auc_clips_no_positive"] == 5
    assert got["event_auc_clips_all_positive"] == 2
    assert got["event_auc_clips_scored"] == 113 == sk_clip_auc(d)[1]


def test_clip_with_all_scores_tied_has_auc_one_half():
    d = make_data(8, n=1)
    events = np.zeros((1, 15))
    events[0, [1, 4]] = 1
    got = score(replace(d, event_true=events, event_prob=np.full((1, 15), 0.3)))
    assert got["event_auc"] == 0.5


def test_event_without_positives_or_negatives_is_left_out_of_macro_scores():
    d = make_data(9, n=200, ties=True)
    events = d.event_true.copy()
    events[:, EVENTS.index("Silence")] = 0.0  # never present: no AUC, no AP
    events[:, EVENTS.index("Music")] = 1.0  # always present: no AUC, AP = 1
    d = replace(d, event_true=events)
    got = assert_matches_reference(d)
    assert got["event_auc_macro_events_scored"] == 13
    assert got["event_map_events_scored"] == 14


def test_no_clip_with_a_positive_gives_nan_event_auc():
    d = make_data(10, n=20)
    got = score(replace(d, event_true=np.zeros((20, 15))))
    assert math.isnan(got["event_auc"]) and math.isnan(got["event_auc_macro"]) and math.isnan(got["event_map"])
    assert got["event_auc_clips_scored"] == 0


def test_constant_prediction_has_nan_pearson_like_scipy():
    d = make_data(11, n=50)
    qp = d.quality_pred.copy()
    qp[:, QUALITIES.index("calm")] = 3.0
    got = assert_matches_reference(replace(d, quality_pred=qp))
    assert math.isnan(got["pearson_calm"]) and not math.isnan(got["pearson_pleasant"])


def test_perfect_predictions():
    d = make_data(12, n=80)
    probs = np.eye(3)[d.scene_true]
    perfect = replace(d, scene_prob=probs, event_prob=d.event_true * 0.9 + 0.05,
                      quality_pred=d.quality_true, iso_pred=d.iso_true)
    got = score(perfect)
    for name in ("scene_acc", "scene_acc_plain", "scene_f1_macro", "event_auc", "event_auc_macro", "event_map"):
        assert got[name] == pytest.approx(1.0, abs=1e-7), name
    for name in ("aq_mse_mean", "isop_mse", "isoe_mse"):
        assert got[name] == 0.0


# ------------------------------------------------------------------------------------------ tables
def test_table_round_trip_and_row_order_do_not_change_scores(tmp_path):
    d = make_data(13, n=120)
    table = to_table(d)
    got = score_table(table)
    assert got == score(d)
    shuffled = table.sample(frac=1.0, random_state=0)
    assert score_table(shuffled) == pytest.approx(got, nan_ok=True)
    path = tmp_path / "preds.csv"
    table.to_csv(path, index=False)
    again = score(read_predictions(path))
    for k, v in got.items():
        assert again[k] == pytest.approx(v, rel=1e-12), k


@pytest.mark.parametrize("breakage, message", [
    (lambda t: t.drop(columns=["true_calm", "event_prob_bird"]), "missing column"),
    (lambda t: t.assign(calm=[np.nan, *list(t["calm"][1:])]), r"row 1 \(clip 'clip0'\), column calm is empty"),
    (lambda t: t.assign(pleasant=["high", *list(t["pleasant"][1:])]), "'high' is not a finite number"),
    (lambda t: t.assign(true_scene=["beach", *list(t["true_scene"][1:])]),
     r"row 1 \(clip 'clip0'\), column true_scene: 'beach' is not a known scene"),
    (lambda t: t.assign(true_scene=[np.nan, *list(t["true_scene"][1:])]), "column true_scene is empty"),
    (lambda t: t.assign(true_event_bird=[2, *list(t["true_event_bird"][1:])]), "must be 0 or 1"),
    (lambda t: pd.concat([t, t.iloc[:1]]), "appears more than once"),
    (lambda t: t.iloc[0:0], "no rows"),
])
def test_bad_tables_raise_one_line_user_errors(breakage, message):
    table = breakage(to_table(make_data(14, n=10)))
    with pytest.raises(PredictionTableError, match=message) as info:
        score_table(table, source="runs/x/predictions/m.csv")
    text = str(info.value)
    assert "\n" not in text and text.startswith("runs/x/predictions/m.csv") and "fix:" in text


def test_unreadable_files_raise_user_errors(tmp_path):
    with pytest.raises(PredictionTableError, match=r"missing\.csv: file not found; fix:"):
        read_predictions(tmp_path / "missing.csv")
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet at all")
    with pytest.raises(PredictionTableError, match="cannot be read as a table"):
        read_predictions(bad)
    with pytest.raises(PredictionTableError, match="is a folder"):
        read_predictions(tmp_path)


def test_bad_arrays_raise_user_errors():
    d = make_data(15, n=10)
    with pytest.raises(MetricInputError, match="event labels must be 0 or 1"):
        replace(d, event_true=d.event_true * 0.5)
    with pytest.raises(MetricInputError, match=r"expected \[10, 15\]"):
        replace(d, event_prob=d.event_prob[:, :14])
    with pytest.raises(MetricInputError, match="not an index"):
        replace(d, scene_true=d.scene_true + 3)


def test_reading_a_label_group_the_data_lack_is_one_line_naming_it():
    d = replace(make_data(15, n=10), event_true=None, quality_true=None, iso_true=None)
    assert d.tasks == ("scene",) and d.scene_labels is d.scene_true
    for group, read in (("events", lambda: d.event_labels), ("qualities", lambda: d.quality_labels),
                        ("qualities", lambda: d.iso_labels)):
        with pytest.raises(MetricInputError, match=rf"^random: the data have no {group} labels; fix: score "
                                                   r"only the metrics of the labelled groups \(metrics_for"):
            read()


# ------------------------------------------------------------------------------------------ real labels
def test_real_araus_test_labels_with_a_noisy_model(araus_labels):
    test = araus_labels[araus_labels["split"] == "test"].reset_index(drop=True)
    rng = np.random.default_rng(0)
    n = len(test)
    truth = test["scene"].map({s: i for i, s in enumerate(SCENES)}).to_numpy()
    logits = rng.normal(0, 1, (n, 3)) + 1.5 * np.eye(3)[truth]
    events = test[list(EVENT_COLUMNS)].to_numpy(float)
    qt = test[list(QUALITIES)].to_numpy(float)
    d = EvalData(scene_true=truth, scene_prob=np.exp(logits) / np.exp(logits).sum(1, keepdims=True),
                 event_true=events, event_prob=1 / (1 + np.exp(-(rng.normal(0, 1, (n, 15)) + 1.2 * events))),
                 quality_true=qt, quality_pred=np.clip(qt + rng.normal(0, 0.8, qt.shape), 1, 5),
                 iso_true=test[["isop", "isoe"]].to_numpy(float),
                 iso_pred=test[["isop", "isoe"]].to_numpy(float) + rng.normal(0, 0.2, (n, 2)),
                 clips=test["clip"], source="araus test")
    got = assert_matches_reference(d)
    assert got["n_clips"] == 3576
    assert got["event_auc_clips_no_positive"] == 9  # 9 test clips carry no event label
    assert got["event_auc_clips_all_positive"] == 0
    assert got["event_auc_clips_scored"] == 3567


# ------------------------------------------------------------------------------------------ streaming
def _batches(d: EvalData, sizes):
    torch = pytest.importorskip("torch")
    from soundaq.models_zoo.outputs import NetOutput

    scene_logits = np.log(d.scene_prob + 1e-12)
    p = np.clip(d.event_prob, 1e-6, 1 - 1e-6)
    event_logits = np.log(p / (1 - p))
    start = 0
    for size in sizes:
        s = slice(start, start + size)
        start += size
        t = lambda a, s=s: torch.tensor(a[s], dtype=torch.float32)  # noqa: E731
        yield (NetOutput(t(scene_logits), t(event_logits), t(d.quality_pred), t(d.iso_pred[:, 0]), t(d.iso_pred[:, 1])),
               {"scene": torch.tensor(d.scene_true[s]), "events": t(d.event_true), "qualities": t(d.quality_true),
                "isop": t(d.iso_true[:, 0]), "isoe": t(d.iso_true[:, 1])})
    assert start == d.n


def test_streaming_metric_equals_the_table_scorer():
    torch = pytest.importorskip("torch")
    from soundaq.models_zoo.streaming import SoundAQMetrics

    d = make_data(16, n=233)
    events = d.event_true.copy()
    events[:, EVENTS.index("Water")] = 0
    events[:, 0], events[:, 1] = 1, 0
    events[:3] = 0
    events[3] = 1
    # float32 copies so both paths see identical numbers (and identical ties)
    d = replace(d, event_true=events, event_prob=np.round(d.event_prob, 2))
    metric = SoundAQMetrics()
    for output, batch in _batches(d, [50, 1, 100, 82]):
        metric.update(output, batch)
    got = metric.compute()
    scene_prob = torch.softmax(torch.tensor(np.log(d.scene_prob + 1e-12), dtype=torch.float32), 1).double().numpy()
    p = np.clip(d.event_prob, 1e-6, 1 - 1e-6)
    event_prob = torch.sigmoid(torch.tensor(np.log(p / (1 - p)), dtype=torch.float32)).double().numpy()
    f32 = lambda a: a.astype(np.float32).astype(np.float64)  # noqa: E731
    ref = score(replace(d, scene_prob=scene_prob, event_prob=event_prob, quality_true=f32(d.quality_true),
                        quality_pred=f32(d.quality_pred), iso_true=f32(d.iso_true), iso_pred=f32(d.iso_pred)))
    assert set(got) == set(ref)
    for k, v in ref.items():
        assert got[k] == pytest.approx(v, rel=2e-5, abs=2e-6), k
    assert got["event_auc_clips_no_positive"] == 3 and got["event_auc_clips_all_positive"] == 1
    metric.reset()
    with pytest.raises(MetricInputError, match="before any update"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchmetrics also warns about compute() before update()
        metric.compute()


# ------------------------------------------------------------------------------- one tester, every path
# Every metric reaches users four ways: a predictions table, the streaming object the training module
# logs (batches of uneven size), the bootstrap's point estimate, and the streaming object gathered over
# two DDP processes. All four must give sklearn/scipy's number (computed once, by reference_scores) on
# the same clips. The streamed paths see float32 tensors, so the reference is computed on the float32
# view of the data (softmax/sigmoid round trips included) and compared at float32 precision.
def _float32_view(d: EvalData) -> EvalData:
    torch = pytest.importorskip("torch")
    scene_prob = torch.softmax(torch.tensor(np.log(d.scene_prob + 1e-12), dtype=torch.float32), 1).double().numpy()
    p = np.clip(d.event_prob, 1e-6, 1 - 1e-6)
    event_prob = torch.sigmoid(torch.tensor(np.log(p / (1 - p)), dtype=torch.float32)).double().numpy()
    f32 = lambda a: a.astype(np.float32).astype(np.float64)  # noqa: E731
    return replace(d, scene_prob=scene_prob, event_prob=event_prob, quality_true=f32(d.quality_true),
                   quality_pred=f32(d.quality_pred), iso_true=f32(d.iso_true), iso_pred=f32(d.iso_pred))


def _path_table(d: EvalData) -> dict:
    return score_table(to_table(d))


def _path_streaming(d: EvalData) -> dict:
    from soundaq.models_zoo.streaming import SoundAQMetrics

    metric = SoundAQMetrics()
    sizes = [d.n // 3, 1, d.n - d.n // 3 - 1]
    for output, batch in _batches(d, sizes):
        metric.update(output, batch)
    return metric.compute()


def _path_bootstrap(d: EvalData) -> dict:
    from soundaq.evaluation.bootstrap import bootstrap_ci

    table = bootstrap_ci(d, "all", n_resamples=2, seed=0)
    return dict(zip(table["metric"], table["estimate"]))


def _ddp_worker(rank: int, world: int, port: int, d: EvalData, out: str) -> None:
    import json
    import os

    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    from soundaq.models_zoo.streaming import SoundAQMetrics

    metric = SoundAQMetrics()
    half = d.n // 2
    mine = range(0, half) if rank == 0 else range(half, d.n)   # uneven halves when n is odd
    part = d.take(list(mine))
    for output, batch in _batches(part, [part.n // 2, part.n - part.n // 2]):
        metric.update(output, batch)
    result = metric.compute()   # gathers every process's rows first
    if rank == 0:
        with open(out, "w") as fh:
            json.dump(result, fh)
    dist.destroy_process_group()


def _path_ddp(d: EvalData, tmp_path) -> dict:
    import json
    import socket

    mp = pytest.importorskip("torch.multiprocessing")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "ddp.json"
    mp.spawn(_ddp_worker, args=(2, port, d, str(out)), nprocs=2, join=True)
    return json.loads(out.read_text())


def _edge_case_data() -> EvalData:
    """Random clips plus every edge case at once: an absent scene, a clip without positive events, a clip
    with all 15 positive, an event without positives, tied scores, a constant prediction column."""
    d = make_data(21, n=181, ties=True)
    events = d.event_true.copy()
    events[:, EVENTS.index("Water")] = 0
    events[0] = 0
    events[1] = 1
    scene = np.where(d.scene_true == SCENES.index("park"), 0, d.scene_true)
    qp = d.quality_pred.copy()
    qp[:, QUALITIES.index("monotonous")] = 3.0
    return replace(d, event_true=events, scene_true=scene, quality_pred=qp)


@pytest.fixture(scope="module")
def path_data():
    return {"random": _float32_view(make_data(5, n=257)), "edge cases": _float32_view(_edge_case_data())}


@pytest.mark.parametrize("path", ["table", "streaming", "bootstrap",
                                  pytest.param("ddp", marks=pytest.mark.slow)])   # ddp: 20 s, also in test_ddp
def test_every_metric_equals_sklearn_through_every_path(path, path_data, tmp_path):
    for label, d in path_data.items():
        ref = reference_scores(d)
        if path == "ddp":
            got = _path_ddp(d, tmp_path)
        else:
            got = {"table": _path_table, "streaming": _path_streaming, "bootstrap": _path_bootstrap}[path](d)
        assert set(ref) <= set(got), (path, label)
        for name, want in ref.items():
            if math.isnan(want):
                assert got[name] is None or math.isnan(got[name]), (path, label, name)
            else:
                assert got[name] == pytest.approx(want, rel=1e-9, abs=1e-12), (path, label, name)
        if path != "bootstrap":   # the bootstrap table holds the metrics only
            assert got["n_clips"] == d.n
            assert got["event_auc_clips_no_positive"] == int((d.event_true.sum(1) == 0).sum())
            assert got["event_auc_clips_all_positive"] == int((d.event_true.sum(1) == len(EVENTS)).sum())


def test_a_metric_without_declared_bounds_is_never_clipped(monkeypatch):
    """A new metric that declares no range keeps its whole seed interval (the old default (0, 1) cut an
    interval of an error metric below its own mean); the registry's metrics keep their declared ranges."""
    import math

    from soundaq.benchmark.leaderboard import seeds
    from soundaq.models_zoo import metrics
    from soundaq.models_zoo.metric_definitions import ScoreFunction

    class MeanAbsoluteError(ScoreFunction):
        name, maximize = "aq_mae_mean", False

        def values(self, data, weights):
            return np.zeros(len(weights))

    monkeypatch.setitem(metrics.METRICS, "aq_mae_mean", MeanAbsoluteError())
    assert seeds.value_bounds("aq_mae_mean") == (-math.inf, math.inf)
    assert seeds.value_bounds("scene_acc") == (0.0, 1.0) and seeds.value_bounds("event_map") == (0.0, 1.0)
    assert seeds.value_bounds("aq_mse_mean") == (0.0, math.inf)
    assert seeds.value_bounds("pearson_calm") == (-1.0, 1.0)
