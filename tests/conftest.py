"""Shared fixtures. Reference data is read from ../shared/reference (never copied into the project).

Outside CI a missing reference folder skips the tests that need it, saying why; under CI=true it fails.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = Path(os.environ.get("SOUNDAQ_REFERENCE", ROOT.parent / "shared" / "reference"))


def _reference_dir(sub: str = "") -> Path:
    path = REFERENCE / sub
    if not path.exists():
        reason = f"reference data not found at {path} (expected ../shared/reference beside the checkout)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason + "; under CI=true a missing reference is a failure")
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def reference() -> Path:
    return _reference_dir()


@pytest.fixture(scope="session")
def araus_labels_dir() -> Path:
    return _reference_dir("araus_labels")


@pytest.fixture(scope="session")
def sample_clip_dir() -> Path:
    return _reference_dir("sample_clip")


@pytest.fixture(scope="session")
def checkpoints_dir() -> Path:
    return _reference_dir("checkpoints")


@pytest.fixture(scope="session")
def expert_jury_dir() -> Path:
    return _reference_dir("expert_jury")


@pytest.fixture(scope="session")
def araus_labels(araus_labels_dir):
    from models_zoo.data.labels import read_labels

    return read_labels(araus_labels_dir, "all")
