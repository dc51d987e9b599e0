"""Scaling through Lightning's own strategies: DDP on 2 CPU processes gives the validation metrics
of one process.

The test trains a throwaway net through ``train_model`` twice on the same synthetic data: once in
one process with batches of 16, once with ``strategy="ddp", accelerator="cpu", devices=2`` and
batches of 8 per process. Under DDP, Lightning's own DistributedSampler shuffles the training clips
from the run's seed and the epoch and deals each process every other clip of the permutation; the
one process uses the same permutation (a one-replica DistributedSampler, seed 0), so every step sees
the same 16 clips and DDP averages the same gradient. This only holds if every process seeds its
sampler alike (train_model sees to it). Validation uses Lightning's automatic distributed sampler;
the metrics are gathered over both processes by torchmetrics (soundaq.models_zoo.streaming.SoundAQMetrics).
This file doubles as the training script:
Lightning's DDP launcher re-runs it once per extra rank, so it must be runnable as a program.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PER_STEP = 16  # clips per optimisation step, over all processes


class Data(L.LightningDataModule):
    """The throwaway data module, at module level so that ddp_spawn can pickle it."""

    def __init__(self, devices: int):
        from test_module import SyntheticSet

        super().__init__()
        self.batch_size = PER_STEP // devices
        self.norm_stats = {"log_mel": {"mean": [0.0] * 64, "std": [1.0] * 64},
                           "loudness": {"mean": [0.0], "std": [1.0]}}
        self.train, self.val = SyntheticSet(64, 1), SyntheticSet(32, 2)

    def train_dataloader(self):
        from torch.utils.data import DataLoader, DistributedSampler

        if self.trainer.world_size > 1:
            # Lightning injects its DistributedSampler (shuffled from the run's seed and the epoch).
            return DataLoader(self.train, batch_size=self.batch_size, shuffle=True)
        # One process: the same shuffle with one replica, so every step sees the 16 clips the two
        # DDP processes see together (each takes every other clip of the same permutation).
        sampler = DistributedSampler(self.train, num_replicas=1, rank=0, shuffle=True, seed=0)
        return DataLoader(self.train, batch_size=self.batch_size, sampler=sampler)

    def val_dataloader(self):
        from torch.utils.data import DataLoader

        return DataLoader(self.val, batch_size=8)


def run(out_dir: Path, devices: int, strategy: str = "ddp") -> dict:
    """Train 3 epochs; return the last validation metrics (written to out_dir/metrics.json on rank 0)."""
    from test_module import TinyNet

    from soundaq.models_zoo.training import train_model

    L.seed_everything(0, verbose=False)
    net = TinyNet()
    result = train_model("tiny", Data(devices), out_dir=out_dir, max_epochs=3, seed=0, lr=1e-2, progress=False,
                         accelerator="cpu", devices=devices, strategy=strategy if devices > 1 else "auto", net=net,
                         trainer_kwargs={"num_sanity_val_steps": 0})
    metrics = {k: v for k, v in result.metrics.items() if k.startswith("val/")}
    if os.environ.get("LOCAL_RANK", "0") == "0":
        (out_dir / "metrics.json").write_text(json.dumps(metrics))
    return metrics


@pytest.mark.timeout(400)
@pytest.mark.parametrize("strategy", ["ddp", pytest.param("ddp_spawn", marks=pytest.mark.slow)])   # spawn: 32 s
def test_ddp_on_two_cpu_processes_matches_one_process(tmp_path, strategy):
    """``ddp`` re-runs this file per rank; ``ddp_spawn`` pickles the trainer, module, metrics and
    callbacks into two spawned processes (they are module-level for it, issue 12)."""
    pytest.importorskip("torch.distributed")
    import torch.distributed as dist

    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("torch was built without the gloo backend that CPU DDP needs")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(HERE), os.environ.get("PYTHONPATH", "")])}
    env.pop("LOCAL_RANK", None)
    env["OMP_NUM_THREADS"] = "1"  # two processes on a 2-core machine: one thread each
    for devices in (1, 2):
        proc = subprocess.run([sys.executable, str(Path(__file__)), str(tmp_path / f"d{devices}"), str(devices),
                               strategy],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=280)
        assert proc.returncode == 0, proc.stderr[-3000:]
    one = json.loads((tmp_path / "d1" / "metrics.json").read_text())
    two = json.loads((tmp_path / "d2" / "metrics.json").read_text())
    assert set(one) == set(two) and "val/isop_mse" in one and "val/event_auc" in one
    for key in one:
        assert two[key] == pytest.approx(one[key], rel=1e-4, abs=1e-5), key
    # The DDP run went through the whole run-folder path on rank 0 only.
    record = json.loads((tmp_path / "d2" / "train.json").read_text())
    assert record["provenance"]["strategy"] == strategy and record["provenance"]["devices"] == "2"
    assert record["epochs"] == 3 and record["steps"] == 3 * 64 // PER_STEP and len(record["curve"]) == 3


if __name__ == "__main__":
    sys.path[:0] = [str(ROOT), str(HERE)]
    target, count = Path(sys.argv[1]), int(sys.argv[2])
    target.mkdir(parents=True, exist_ok=True)
    run(target, count, sys.argv[3] if len(sys.argv) > 3 else "ddp")
