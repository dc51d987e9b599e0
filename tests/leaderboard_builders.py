"""A leaderboard unit without training, for tests of the grid machinery (seeds, resume, Ray): it writes a
predictions table that depends only on the model and the training seed and returns the unit's record."""
from __future__ import annotations

import numpy as np
import pandas as pd


def seeded_predictions_unit(s, run, model, datamodule, data_label, train_seconds: float = 1.0) -> dict:
    """Write ``run/predictions/<model>.csv`` (random outputs seeded by model and ``s.seed``, the test
    split's truth) atomically and return the record a trained unit returns."""
    from soundaq.base.fileio import sha256_file, write_csv
    from soundaq.models_zoo.metrics import score_table
    from soundaq.models_zoo.predict import add_truth, predictions_frame

    labels = datamodule.labels("test")
    n = len(labels)
    rng = np.random.default_rng([sum(map(ord, model)), s.seed])
    outputs = {"scene_probabilities": rng.dirichlet(np.ones(3), n), "event_probabilities": rng.random((n, 15)),
               "qualities": rng.uniform(1, 5, (n, 8)), "isop": rng.uniform(-1, 1, n), "isoe": rng.uniform(-1, 1, n)}
    table = add_truth(predictions_frame(outputs, model, labels["clip"].astype(str).tolist()), labels)
    table["data"] = data_label
    path = run.root / "predictions" / f"{model}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_csv(table, path, float_format="%.6g")
    table = pd.read_csv(path, float_precision="round_trip")
    return {"model": model, "status": "ok", "params": 1, "scores": score_table(table), "ci": {},
            "test_clips": n, "train_seconds": train_seconds, "epochs": 1, "clips_per_second": 10.0,
            "predictions": f"predictions/{model}.csv", "predictions_sha256": sha256_file(path)}
