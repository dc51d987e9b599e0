"""Run folders: what a run writes, how it knows what is finished, and how it resumes.

A run folder holds ``run.json`` (the arguments that define the run) and one ``models/<name>/done.json``
per finished model. A model counts as finished only once its ``done.json`` exists; it is written
atomically after everything else of that model, so a run killed at any moment resumes by redoing
only the unfinished models. Arguments that change the results (data, seed, epochs, models) must
match to resume; otherwise the user is told to pick another ``--out``.
"""
from __future__ import annotations

import json
import platform
import sys
import time
from importlib import metadata
from pathlib import Path

from soundaq.base.fileio import atomic_write_json

from soundaq.base.errors import UserError

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
        if path.exists():
            try:
                saved = json.loads(path.read_text())
            except json.JSONDecodeError:
                saved = None
            if saved is not None and saved.get("identity") != self.identity:
                diff = sorted(k for k in set(saved.get("identity", {})) | set(self.identity)
                              if saved.get("identity", {}).get(k) != self.identity.get(k))
                raise UserError(f"{self.root} holds a run with other arguments ({', '.join(diff)} differ); "
                                "use another --out or delete that folder")
        if not path.exists() or saved is None:
            atomic_write_json(path, {"identity": self.identity, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                     "command": " ".join(sys.argv)})
        return self

    def model_dir(self, name: str) -> Path:
        d = self.root / "models" / name
        d.mkdir(parents=True, exist_ok=True)
        return d

    def done(self, name: str) -> dict | None:
        path = self.root / "models" / name / "done.json"
        if not path.exists():
            return None
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError:
            return None  # a torn write cannot happen (atomic), but a hand-edited file is redone

    def mark_done(self, name: str, record: dict) -> None:
        atomic_write_json(self.model_dir(name) / "done.json", record)
