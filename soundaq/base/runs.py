"""Run folders: what a run writes, how it knows what is finished, and how it resumes.

A run folder holds ``run.json`` (the arguments that define the run) and one ``models/<name>/done.json``
per finished model. A model counts as finished only once its ``done.json`` exists; it is written
atomically after everything else of that model, so a run killed at any moment resumes by redoing
only the unfinished models. Arguments that change the results (data, seed, epochs, models) must
match to resume (:func:`identity_problem`, the one rule of ``soundaq train`` and the leaderboard);
otherwise the user is told, in one line, which options differ and how to go on.
"""
from __future__ import annotations

import json
import platform
import sys
import time
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any

from soundaq.base.artifacts import RebuiltWarning, digest_problem, read_record, set_aside
from soundaq.base.errors import UserError
from soundaq.base.fileio import atomic_write_json

PACKAGES = ("torch", "lightning", "torchmetrics", "numpy", "scipy", "pandas", "librosa", "mosqito", "soundaq")


def package_versions(packages: tuple[str, ...] = PACKAGES, missing: str | None = "not installed",
                     python: bool = True) -> dict[str, str | None]:
    """The installed versions of ``packages``, for a run's provenance.

    Args:
        packages: distribution names (default :data:`PACKAGES`, a training run's).
        missing: what a package that is not installed reads as.
        python: whether Python's own version comes first (key ``python``).

    Returns:
        ``{name: version}`` in the order given.
    """
    out: dict[str, str | None] = {"python": platform.python_version()} if python else {}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = missing
    return out


#: The command-line option behind each key of a run identity (``soundaq train``'s, a leaderboard run's,
#: and the ``schedule`` dict's fields). A key not listed is shown by its name.
IDENTITY_FLAGS: dict[str, str] = {
    "data": "--data", "labels": "--labels", "audio": "--audio", "features": "--features",
    "calibration": "--calibration/--dbfs-offset", "embedded_clips": "--embedded-clips", "model": "--model",
    "models": "--models", "checkpoints": "--checkpoints", "seed": "--seed", "batch_size": "--batch-size",
    "lr": "--lr", "norm_stats": "--norm-stats", "pretrained_sha256": "--pretrained (its SHA-256)",
    "uncertainty_weighting": "--uncertainty-weighting", "head_init": "--zero-head-bias",
    "n_resamples": "--resamples", "precision": "--precision", "devices": "--devices", "strategy": "--strategy",
    "protocol": "--protocol", "rotation": "--protocol (rotation)", "patience": "--patience",
    "limit_train_batches": "--limit-train-batches", "limit_val_batches": "--limit-val-batches",
    "schedule.name": "--schedule", "schedule.budget_clips": "--budget-clips", "schedule.max_epochs": "--max-epochs",
    "schedule.patience": "--patience", "schedule.batch_size": "--batch-size", "schedule.lr": "--lr",
}
#: The value a key had before it joined the identity (a ``run.json`` written then lacks it); any other
#: missing key reads as None. ``patience``: the paper schedule's (soundaq.models_zoo.schedules.PATIENCE, spelt
#: out here because soundaq.base imports nothing above it; tests/test_train_predict.py checks they agree).
#: ``head_init``: off (``--zero-head-bias``), what a ``train`` folder made before ``train`` started the heads at
#: the base rates was trained with; resuming one without ``--zero-head-bias`` is refused in one line saying so.
IDENTITY_DEFAULTS: dict[str, Any] = {"devices": 1, "strategy": "auto", "patience": 10, "head_init": False}
#: Boolean keys whose option turns them off.
_INVERTED = {"head_init"}


def _shown(key: str, value: Any) -> str:
    if value is None:
        return "not given"
    if isinstance(value, bool):
        return "on" if value != (key in _INVERTED) else "off"
    if isinstance(value, dict):
        return str(value.get("name", "set"))
    if isinstance(value, list):
        value = ",".join(map(str, value))
    text = str(value)
    return text if len(text) <= 60 else text[:28] + "..." + text[-28:]


def _differences(saved: dict, new: dict, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """(key, saved value, new value) of every key that differs, nested dicts (the schedule) by field."""
    out = []
    for key in sorted(set(saved) | set(new), key=lambda k: (k not in new, list(new).index(k) if k in new else 0)):
        name = prefix + key
        default = IDENTITY_DEFAULTS.get(name)
        old, now = saved.get(key, default), new.get(key, default)
        if isinstance(old, dict) and isinstance(now, dict):
            out += _differences(old, now, name + ".")
        elif old != now:
            out.append((name, old, now))
    return out


def identity_problem(root: Path | str, saved: dict, new: dict) -> str | None:
    """The one rule for continuing a run: None when ``new`` (the identity of the command given now)
    matches ``saved`` (the folder's ``run.json``), else the one line that refuses it.

    An identity holds only what changes results (data, model, seed, schedule, limits, precision,
    devices, ...): options that do not (``--workers``, ``--no-progress``, ``--cache-dir``) stay out and
    may change freely. A key that ``saved`` lacks (a folder written before that key joined) reads as its
    :data:`IDENTITY_DEFAULTS` value, else None. The line names each differing option with its old and
    new value, then the fix: the folder's values to continue it, or a new ``--out``.
    """
    new = json.loads(json.dumps(new, default=str))        # as run.json stores it (tuples -> lists, paths -> str)
    diffs = _differences(saved, new)
    if not diffs:
        return None
    lines = [f"{IDENTITY_FLAGS.get(k, k)} {_shown(k, a)} there, {_shown(k, b)} now" for k, a, b in diffs]
    said = "; ".join(dict.fromkeys(lines))             # --batch-size is in the schedule too: say it once
    return (f"{root} holds a run made with other arguments that change its results ({said}); fix: give the "
            "folder's values to continue it, or a new --out for the new ones (or delete that folder)")


class RunFolder:
    """A resumable run's output folder: ``run.json`` holds the arguments that change its results (``identity``),
    ``models/<name>/done.json`` each finished model's record.
    """

    def __init__(self, root: Path | str, identity: dict):
        self.root = Path(root)
        self.identity = identity

    def open(self) -> RunFolder:
        """Create the folder, or check that an existing one belongs to the same run (then resume)."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / "run.json"
        saved, problem = read_record(path, required=("identity",))
        if problem is not None:
            set_aside(path, problem, "it is written again with this run's arguments")
        if saved is not None:
            problem = identity_problem(self.root, saved.get("identity") or {}, self.identity)
            if problem is not None:
                raise UserError(problem)
        if saved is None:
            atomic_write_json(path, {"identity": self.identity, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                     "command": " ".join(sys.argv)})
        return self

    def model_dir(self, name: str) -> Path:
        """The folder of model ``name`` inside the run (created)."""
        d = self.root / "models" / name
        d.mkdir(parents=True, exist_ok=True)
        return d

    def done(self, name: str) -> dict | None:
        """The finished record of model ``name``, or None; a damaged ``done.json`` (a torn write cannot
        happen, but a full disk or a hand edit can) is set aside with one line and the model is redone.
        """
        path = self.root / "models" / name / "done.json"
        record, problem = read_record(path)
        if problem is not None:
            set_aside(path, problem, f"{name} is done again")
        return record

    def finished(self, name: str, outputs: dict[str, str | None]) -> dict | None:
        """The done record of ``name`` when it and its output files are whole, else None.

        ``outputs`` maps each output's path (relative to the run folder) to the record key holding the
        file's SHA-256 as written (None: only its presence is checked). A missing or changed output
        is reported in one line and the model is done again (:mod:`soundaq.base.artifacts`).
        """
        record = self.done(name)
        if record is None:
            return None
        for rel, sha_key in outputs.items():
            path = self.root / rel
            problem = digest_problem(path, record.get(sha_key) if sha_key else None)
            if problem == "missing":
                warnings.warn(f"{path}: missing though {name}'s done.json exists; {name} is done again",
                              RebuiltWarning, stacklevel=2)
                return None
            if problem is not None:
                set_aside(path, problem, f"{name} is done again")
                return None
        return record

    def mark_done(self, name: str, record: dict) -> None:
        """Write model ``name``'s finished record (``done.json``) atomically."""
        atomic_write_json(self.model_dir(name) / "done.json", record)
