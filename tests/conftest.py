"""Shared fixtures. Reference data is read from ../shared/reference (never copied into the project).

Outside CI a missing reference folder skips the tests that need it, saying why; under CI=true it fails.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = Path(os.environ.get("SOUNDAQ_REFERENCE", ROOT.parent / "shared" / "reference"))


def _shared_dir(path: Path, what: str, where: str) -> Path:
    """``path`` when it exists; otherwise skip (outside CI) or fail (under CI=true), saying why."""
    if not path.exists():
        reason = f"{what} not found at {path} (expected {where} beside the checkout)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason + f"; under CI=true missing {what} is a failure")
        pytest.skip(reason)
    return path


def _reference_dir(sub: str = "") -> Path:
    return _shared_dir(REFERENCE / sub, "reference data", "../shared/reference")


@pytest.fixture(scope="session")
def reference() -> Path:
    return _reference_dir()


def _reference_fixture(sub: str):
    """A session fixture ``<sub>_dir``: ``../shared/reference/<sub>``, as :func:`_shared_dir` finds it."""
    def folder() -> Path:
        return _reference_dir(sub)

    folder.__doc__ = f"``../shared/reference/{sub}``: skips outside CI when absent, fails under CI=true."
    return pytest.fixture(folder, scope="session", name=f"{sub}_dir")


araus_labels_dir = _reference_fixture("araus_labels")
sample_clip_dir = _reference_fixture("sample_clip")
checkpoints_dir = _reference_fixture("checkpoints")
expert_jury_dir = _reference_fixture("expert_jury")
caption_metrics_dir = _reference_fixture("caption_metrics")


#: Field cases (inputs that reproduce faults found in use; ../shared/field-cases/README.md).
FIELD_CASES = Path(os.environ.get("SOUNDAQ_FIELD_CASES", ROOT.parent / "shared" / "field-cases"))


@pytest.fixture(scope="session")
def field_cases_dir() -> Path:
    """``../shared/field-cases``: skips outside CI when absent, fails under CI=true."""
    return _shared_dir(FIELD_CASES, "field cases", "../shared/field-cases")


@pytest.fixture(scope="session")
def ad_cnn_checkpoint(tmp_path_factory, checkpoints_dir, sample_clip_dir) -> Path:
    """The released AD_CNN weights imported (import_original) with the reference statistics, in a temp folder."""
    from soundaq.models_zoo.checkpoints import import_original

    out = tmp_path_factory.mktemp("ckpt") / "AD_CNN.ckpt"
    import_original("AD_CNN", checkpoints_dir / "AD_CNN_final_model.pth",
                    sample_clip_dir / "original_normalisation_stats.json", None, out)
    return out


@pytest.fixture(scope="session")
def araus_labels(araus_labels_dir):
    from soundaq.models_zoo.data.labels import read_labels

    return read_labels(araus_labels_dir, "all")


# -- the embedded synthetic dataset (soundaq.models_zoo.data.synthetic), prepared once and kept in a cache --
@pytest.fixture(scope="session")
def soundaq_cache() -> Path:
    """``$SOUNDAQ_CACHE`` or the repository's git-ignored ``.cache/soundaq``: generated sets persist between runs."""
    env = os.environ.get("SOUNDAQ_CACHE", "").strip()
    return Path(env) if env else ROOT / ".cache" / "soundaq"


@pytest.fixture(scope="session")
def embedded_set(soundaq_cache):
    """The default 360-clip embedded set (generated on the first run only; minutes on 2 cores)."""
    from soundaq.models_zoo.data.synthetic import DEFAULT_CLIPS, prepare_embedded

    return prepare_embedded(soundaq_cache, n_clips=DEFAULT_CLIPS, seed=0, workers=2, progress=False)


@pytest.fixture(scope="session")
def small_embedded_set(soundaq_cache):
    """A 12-clip embedded set with its FLAC audio (6 training, 3 validation, 3 test clips) for unit tests.
    Made in this process: for 12 clips, two spawned workers cost more in start-up (imports, loading the
    compiled loudness kernels) than they save (CI measured 42 s)."""
    from soundaq.models_zoo.data.synthetic import MIN_CLIPS, prepare_embedded

    return prepare_embedded(soundaq_cache, n_clips=MIN_CLIPS, seed=7, workers=1, with_audio=True, progress=False)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Run a test module's small tensors on one torch thread (``pytestmark =
    pytest.mark.usefixtures("one_torch_thread")``): two OpenMP threads spin-wait for each other, and on
    a busy 2-core machine that made small training steps several times slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)



def need_ray() -> None:
    """Skip (fail under CI=true) without Ray; does not import it (the driver's settings come first)."""
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("ray is not installed; the test extra installs it (pip install -e '.[test]')")
        pytest.skip("ray is not installed (pip install 'soundaq[ray]')")


@pytest.fixture(scope="session")
def ray_cluster():
    """One Ray cluster per session (tests/test_ray_engine.py, tests/test_ray_leaderboard.py): a head
    (`ray start --head`) and a second node (`ray start --address`), 1 CPU and 80 MB of object store
    each, on 127.0.0.1 only (soundaq.base.ray_local); this process is its driver. Both nodes are stopped,
    by process id, at the end of the session."""
    from soundaq.base.ray_local import LoopbackCluster, keep_driver_on_loopback

    need_ray()
    saved = dict(os.environ)
    keep_driver_on_loopback()     # before Ray is first imported (the test modules set it at import too)
    with LoopbackCluster(nodes=2, cpus=1, object_store_mb=80) as cluster:
        cluster.drive_from_here()
        yield cluster
    os.environ.clear()
    os.environ.update(saved)
    assert cluster.live_pids() == []
