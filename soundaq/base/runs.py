"""Run folders: what a run writes, how it knows what is finished, and how it resumes.

A run folder holds ``run.json`` (the arguments that define the run) and one ``models/<name>/done.json``
per finished model. A model counts as finished only once its ``done.json`` exists; it is written
atomically after everything else of that model, so a run killed at any moment resumes by redoing
only the unfinished models. Arguments that change the results (data, seed, epochs, models) must
match to resume; otherwise the user is told to pick another ``--out``.
"""
from __future__ import annotations

import platform
import sys
import time
import warnings
from importlib import metadata
from pathlib import Path

from soundaq.base.artifacts import RebuiltWarning, digest_problem, read_record, set_aside
from soundaq.base.errors import UserError
from soundaq.base.fileio import atomic_write_json

PACKAGES = ("torch", "lightning", "torchmetrics", "numpy", "scipy", "pandas", "librosa", "mosqito", "soundaq")


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


class RunFolder:
    def __init__(self, root: Path | str, identity: dict):
        self.root = Path(root)
        self.identity = identity

    def open(self) -> "RunFolder":
        """Create the folder, or check that an existing one belongs to the same run (then resume)."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / "run.json"
        saved, problem = read_record(path, required=("identity",))
        if problem is not None:
            set_aside(path, problem, "it is written again with this run's arguments")
        if saved is not None:
            if saved.get("identity") != self.identity:
                diff = sorted(k for k in set(saved.get("identity", {})) | set(self.identity)
                              if saved.get("identity", {}).get(k) != self.identity.get(k))
                raise UserError(f"{self.root} holds a run with other arguments ({', '.join(diff)} differ); "
                                "use another --out or delete that folder")
        if saved is None:
            atomic_write_json(path, {"identity": self.identity, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                     "command": " ".join(sys.argv)})
        return self

    def model_dir(self, name: str) -> Path:
        d = self.root / "models" / name
        d.mkdir(parents=True, exist_ok=True)
        return d

    def done(self, name: str) -> dict | None:
        """The finished record of model ``name``, or None; a damaged ``done.json`` (a torn write cannot
        happen, but a full disk or a hand edit can) is set aside with one line and the model is redone."""
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
        atomic_write_json(self.model_dir(name) / "done.json", record)
