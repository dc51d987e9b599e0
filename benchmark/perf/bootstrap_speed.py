"""How long the bootstrap takes: the vectorised resample weights against an explicit loop, side by side.

    .venv/bin/python -m soundaq.benchmark.perf.bootstrap_speed [--clips 3576] [--resamples 1000] [--loop-resamples 20]

Data: --labels DIR scores a noisy synthetic model against the real ARAUS test labels; without it,
random labels of the same size. The loops (our metrics on explicitly resampled data, and sklearn on
explicitly resampled data) run --loop-resamples resamples and are extrapolated to --resamples.
"""
from __future__ import annotations

import argparse
import timeit
import warnings

import numpy as np


def make_data(n: int, labels_dir: str | None, seed: int = 0, model_seed: int = 0):
    """Labels from ``seed`` (or the ARAUS test split) and a noisy model's predictions from ``model_seed``."""
    from soundaq.base.vocab import EVENT_COLUMNS, QUALITIES, SCENES
    from soundaq.models_zoo.eval_data import EvalData

    rng = np.random.default_rng(seed)
    if labels_dir:
        from soundaq.models_zoo.data.labels import read_split

        test = read_split(labels_dir, "test")
        n = len(test)
        truth = test["scene"].map({s: i for i, s in enumerate(SCENES)}).to_numpy()
        events = test[list(EVENT_COLUMNS)].to_numpy(float)
        qt = test[list(QUALITIES)].to_numpy(float)
        iso = test[["isop", "isoe"]].to_numpy(float)
    else:
        truth = rng.integers(0, 3, n)
        events = (rng.random((n, 15)) < 0.4).astype(float)
        qt = rng.uniform(1, 5, (n, 8))
        iso = rng.uniform(-1, 1, (n, 2))
    rng = np.random.default_rng(1000 + model_seed)   # the same labels for every model
    logits = rng.normal(0, 1, (n, 3)) + 1.5 * np.eye(3)[truth]
    return EvalData(scene_true=truth, scene_prob=np.exp(logits) / np.exp(logits).sum(1, keepdims=True),
                    event_true=events, event_prob=1 / (1 + np.exp(-(rng.normal(0, 1, (n, 15)) + 1.2 * events))),
                    quality_true=qt, quality_pred=np.clip(qt + rng.normal(0, 0.8, qt.shape), 1, 5),
                    iso_true=iso, iso_pred=iso + rng.normal(0, 0.2, iso.shape))


def sklearn_headline(d) -> list[float]:
    """The headline metrics computed with scikit-learn on ``d`` (an EvalData), for the loop timing: balanced scene
    accuracy, macro F1, per-clip and macro event AUC, ...
    """
    from sklearn import metrics as sk

    pred = d.scene_prob.argmax(1)
    clip = [sk.roc_auc_score(d.event_true[i], d.event_prob[i]) for i in range(d.n) if 0 < d.event_true[i].sum() < 15]
    ok = [k for k in range(15) if 0 < d.event_true[:, k].sum() < d.n]
    return [sk.balanced_accuracy_score(d.scene_true, pred), sk.f1_score(d.scene_true, pred, average="macro"),
            float(np.mean(clip)), sk.roc_auc_score(d.event_true[:, ok], d.event_prob[:, ok], average="macro"),
            sk.average_precision_score(d.event_true[:, ok], d.event_prob[:, ok], average="macro"),
            sk.mean_squared_error(d.quality_true, d.quality_pred), sk.mean_squared_error(d.iso_true, d.iso_pred)]


def main(argv=None) -> int:
    """Time the vectorised bootstrap against the explicit loops and print both; returns 0."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=3576)
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--loop-resamples", type=int, default=20)
    ap.add_argument("--labels", default=None, help="ARAUS label folder (uses its test split)")
    args = ap.parse_args(argv)

    from soundaq.evaluation.bootstrap import bootstrap_ci, paired_bootstrap, resample_indices
    from soundaq.models_zoo.metrics import HEADLINE, METRICS

    d = make_data(args.clips, args.labels)
    d2 = make_data(d.n, args.labels, model_seed=1)
    print(f"{d.n} clips, {args.resamples} resamples, headline metrics: {', '.join(HEADLINE)}")
    rows = []
    # one timed run each (``timeit``: time.perf_counter, the garbage collector paused while timing)
    rows.append(("vectorised bootstrap_ci (ours)",
                 timeit.timeit(lambda: bootstrap_ci(d, n_resamples=args.resamples, seed=0), number=1), "measured"))
    rows.append(("vectorised paired_bootstrap (ours)",
                 timeit.timeit(lambda: paired_bootstrap(d, d2, n_resamples=args.resamples, seed=0), number=1),
                 "measured"))

    index = next(resample_indices(d.n, args.loop_resamples, seed=0, block=args.loop_resamples))
    scale = args.resamples / args.loop_resamples
    note = f"extrapolated from {args.loop_resamples}"

    def our_loop():
        for row in index:
            sub = d.take(row)
            [METRICS[name].compute(sub) for name in HEADLINE]

    def sklearn_loop():
        for row in index:
            sklearn_headline(d.take(row))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows.append(("loop: our metrics on resampled copies", timeit.timeit(our_loop, number=1) * scale, note))
        try:
            rows.append(("loop: sklearn on resampled copies", timeit.timeit(sklearn_loop, number=1) * scale, note))
        except ImportError:
            rows.append(("loop: sklearn on resampled copies", float("nan"), "scikit-learn not installed"))

    base = rows[0][1]
    print(f"{'method':42s} {'seconds':>9s} {'x vectorised':>13s}  note")
    for name, sec, note in rows:
        print(f"{name:42s} {sec:9.2f} {sec / base:13.1f}  {note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
