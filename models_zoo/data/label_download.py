"""The ARAUS label files of the SoundSCaper release: their pins, their download and their check.

The paper's 16 label files (15 of the training/validation/test split plus the scene labels of the
whole of ARAUS) are pinned by size and sha256 (:data:`LABEL_FILES`) and fetched by ``soundaq data
download`` through the one download mechanism of :mod:`soundaq.models_zoo.data.download` (verified
before they are named, resumable, from GitHub's raw-file host or a mirror).
"""
from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

from soundaq.base.fileio import output_folder
from soundaq.models_zoo.data.download import RELEASE_REPO, DownloadError, FetchResult, fetch_files
from soundaq.models_zoo.data.pins import PinnedFile, pin_matches

#: GitHub's raw-file host for the release repository's main branch (the label files).
DEFAULT_BASE_URL = f"https://raw.githubusercontent.com/{RELEASE_REPO}/main/"
SPLIT_FOLDER = "Dataset_training_validation_test"
ALL_ARAUS_FOLDER = "Dataset_all_ARAUS"


def _split_file(name: str, size: int, sha: str) -> PinnedFile:
    return PinnedFile(name, f"{SPLIT_FOLDER}/{name}", size, f"sha256:{sha}")


#: The 16 label files of the release, with their sizes and sha256 pins.
LABEL_FILES: tuple[PinnedFile, ...] = (
    _split_file("training_set_audio_file_ids.txt", 727776,
                "45b053a8873bc8a436279dec8d7d2593ac96cc9b6428b41e57b8bcac749fbfea"),
    _split_file("training_set_acoustic_scene_labels.txt", 248010,
                "bb7bc1a2983305dcd9877c2eba8bf201fc87c3adbbc814da1ee7fd42dd6040e9"),
    _split_file("training_set_audio_event_labels.txt", 1410267,
                "38ad7afde5aa6f21bb8336cf5c6688d5cd55e221081c44d19f2f176bdbf89e3d"),
    _split_file("training_set_PAQ_8D_AQs.txt", 3849552,
                "db7df87cb2a01cb3ce1f2d1e58b563264c35d2f51ed5f0f4fa401f2b738603fa"),
    _split_file("training_set_ISOP_ISOE.txt", 995849,
                "d603dde4b7f97e09160b9ae9723dcd05912097e1f90b862956ad8418381e5a66"),
    _split_file("validation_set_audio_file_ids.txt", 95760,
                "670e9d2052f3eb36b298d8adff164aec8a0549ac2bea49637ec505682c0e2e83"),
    _split_file("validation_set_acoustic_scene_labels.txt", 29324,
                "71f6f5a892970a3d90b7e41e75a0184592fed84cb7d274bb0a83fd72df3685b1"),
    _split_file("validation_set_audio_event_labels.txt", 190256,
                "0a23867c159df92d5bb3374a409ca2b624f886ad461688c26c5c32f296baea2d"),
    _split_file("validation_set_PAQ_8D_AQs.txt", 506520,
                "0b4d003b4b40315aa279b96520853d86909e90883a9ff43e5b475bf46b005cd4"),
    _split_file("validation_set_ISOP_ISOE.txt", 131043,
                "bdd3a7758994270fb7b41d70b3c0d52a6490c26aaaa1edfb53ac15c9a13c9fd7"),
    _split_file("test_set_audio_file_ids.txt", 135888,
                "cb78c9bee50a067e0e05639669f12a6588d87d465091b5aca818c51dc4db2af3"),
    _split_file("test_set_acoustic_scene_labels.txt", 43633,
                "c4f01a8ac43db48fae5353710a2340648e1c3c4420ed2e6bacda3feaa43c2c55"),
    _split_file("test_set_audio_event_labels.txt", 265362,
                "f16beae61229ad04d9fb77703f218b5201fb83b9f6bc207d93f9f9eca6bd0aaa"),
    _split_file("test_set_PAQ_8D_AQs.txt", 718776,
                "44871718978f6c7c70e26a601309f75cecf7604fd11aded8de31d0a1bf70d344"),
    _split_file("test_set_ISOP_ISOE.txt", 185925,
                "fbc23045e95cb1a39a1dfa711716ab6b7bd730b8544a3fc3778a5e1bcceb0dfc"),
    PinnedFile("annotated_USotW_scene_labels.txt", f"{ALL_ARAUS_FOLDER}/annotated_USotW_scene_labels.txt", 4983,
               "sha256:8a03bc3dd2bb88637341e4ee4f83396db6a92a6e539d0c3823c764cd83edd7ec"),
)


def download_labels(dest: Path | str, base: str | None = None, *, progress: bool = True,
                    timeout: float = 60.0, files: Iterable[PinnedFile] = LABEL_FILES) -> list[FetchResult]:
    """Fetch the label files into ``dest``; returns one :class:`FetchResult` per file.

    Keeps going past a failing file; when any failed, raises :class:`DownloadError` at the end, whose
    one-line message names the first failing file and how many others failed.
    """
    dest = output_folder(dest, "--labels-to", DownloadError, create=False)
    return fetch_files(files, dest, base or DEFAULT_BASE_URL, option="--base-url", progress=progress,
                       timeout=timeout, title="ARAUS labels", dest_option="--labels-to")


def verify_labels(folder: Path | str, files: Iterable[PinnedFile] = LABEL_FILES) -> dict[str, bool]:
    """``{name: pin matches}`` for the files present in ``folder`` (missing ones map to False)."""
    folder = Path(folder)
    return {f.name: pin_matches(folder / f.name, f) for f in files}


def copy_tree_mirror(src: Path | str, dest: Path | str, layout: str = "release",
                     files: Iterable[PinnedFile] = LABEL_FILES) -> Path:
    """Lay out a mirror of the files found flat in ``src`` (for tests and offline installs).

    ``layout="release"`` reproduces the release repository's folders; ``"flat"`` puts all in one folder.
    """
    src, dest = Path(src), Path(dest)
    for spec in files:
        rel = spec.release_path if layout == "release" else spec.name
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / spec.name, dest / rel)
    return dest
