"""Fetch the paper's ARAUS label files from the public SoundSCaper release, pinned by sha256.

Sixteen text files: five per split (ids, scenes, events, 8 AQ ratings, ISOP/ISOE) for the training,
validation and test splits, plus the scene label of every source recording. The default source is
GitHub's raw-file host for the release repository's ``main`` branch; ``base`` may instead name a
mirror: an ``http(s)://`` or ``file://`` URL, or a local folder. Inside a mirror a file is looked
up at its path in the release repository first, then by its bare name (a flat folder of the 16
files works).

Downloads resume: bytes arrive in a hidden ``.<name>.part`` file beside the target; a later run
continues it with an HTTP ``Range`` request (or a seek, for local mirrors), and files already
present are kept when their hash matches the pin. A file reaches its final name only after its
sha256 matched, by an atomic rename, so a target file is never half-written or unverified.
"""
from __future__ import annotations

import os
import shutil
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from soundaq.base.errors import UserError, first_line, one_line
from soundaq.base.fileio import sha256_file

RELEASE_REPO = "Yuanbo2020/SoundSCaper"
#: GitHub's raw-file host for the release repository's main branch.
DEFAULT_BASE_URL = f"https://raw.githubusercontent.com/{RELEASE_REPO}/main/"
SPLIT_FOLDER = "Dataset_training_validation_test"
ALL_ARAUS_FOLDER = "Dataset_all_ARAUS"
CHUNK = 1 << 16


@dataclass(frozen=True)
class LabelFile:
    name: str          # file name in the destination folder
    release_path: str  # path inside the release repository
    size: int          # bytes
    sha256: str


def _split_file(name: str, size: int, sha: str) -> LabelFile:
    return LabelFile(name, f"{SPLIT_FOLDER}/{name}", size, sha)


#: The 16 label files of the release, with their sizes and sha256 pins.
LABEL_FILES: tuple[LabelFile, ...] = (
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
    LabelFile("annotated_USotW_scene_labels.txt", f"{ALL_ARAUS_FOLDER}/annotated_USotW_scene_labels.txt", 4983,
              "8a03bc3dd2bb88637341e4ee4f83396db6a92a6e539d0c3823c764cd83edd7ec"),
)


class DownloadError(UserError):
    """A file could not be fetched or failed its pin; the message names the file and the fix."""


@dataclass
class FetchResult:
    name: str
    status: str        # "present" (kept, hash ok), "downloaded", "resumed", "failed"
    fetched_bytes: int = 0
    error: str | None = None


class _NotThere(Exception):
    """This candidate location does not hold the file (HTTP 404 / no such local file)."""


def part_path(dest: Path, spec: LabelFile) -> Path:
    """The hidden partial file a download resumes from."""
    return dest / f".{spec.name}.part"


def _is_url(base: str) -> bool:
    return urllib.parse.urlsplit(base).scheme in ("http", "https", "file")


def _candidates(base: str, spec: LabelFile) -> list[str]:
    if _is_url(base):
        root = base if base.endswith("/") else base + "/"
        return [urllib.parse.urljoin(root, urllib.parse.quote(p)) for p in (spec.release_path, spec.name)]
    root = Path(base).expanduser()
    return [str(root / spec.release_path), str(root / spec.name)]


def _open_source(location: str, offset: int, timeout: float):
    """Open one candidate; returns ``(stream, resumed)``; ``resumed`` False means it starts at byte 0."""
    scheme = urllib.parse.urlsplit(location).scheme
    if scheme in ("http", "https"):
        req = urllib.request.Request(location, headers={"User-Agent": "soundaq-label-download"})
        if offset:
            req.add_header("Range", f"bytes={offset}-")
        try:
            resp = urllib.request.urlopen(req, timeout=timeout)  # noqa: S310 (http/https only)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                raise _NotThere(location) from None
            if exc.code == 416 and offset:
                # the partial file is not a prefix the server can continue: start over
                return _open_source(location, 0, timeout)
            raise DownloadError(f"{location}: HTTP {exc.code} {exc.reason}; "
                                "fix: check --base-url, or try again later") from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DownloadError(f"{location}: cannot connect ({reason}); "
                                "fix: check your network, or pass --base-url with a reachable mirror") from None
        return resp, bool(offset) and resp.status == 206
    path = Path(urllib.request.url2pathname(urllib.parse.urlsplit(location).path)) if scheme == "file" \
        else Path(location)
    if not path.is_file():
        raise _NotThere(location)
    fh = open(path, "rb")
    if offset and offset <= path.stat().st_size:
        fh.seek(offset)
        return fh, True
    return fh, False


def _fetch_one(spec: LabelFile, dest: Path, base: str, timeout: float,
               advance: Callable[[int], None], allow_restart: bool = True) -> FetchResult:
    target = dest / spec.name
    if target.exists() and target.stat().st_size == spec.size and sha256_file(target) == spec.sha256:
        advance(spec.size)
        return FetchResult(spec.name, "present")
    part = part_path(dest, spec)
    offset = part.stat().st_size if part.exists() else 0
    if offset > spec.size:
        part.unlink()
        offset = 0
    fetched = 0
    resumed = False
    if offset < spec.size:
        tried = []
        for location in _candidates(base, spec):
            try:
                stream, resumed = _open_source(location, offset, timeout)
            except _NotThere:
                tried.append(location)
                continue
            break
        else:
            raise DownloadError(f"{spec.name}: not found at {' or '.join(tried)}; "
                                "fix: check --base-url (it should point at the release repository's root "
                                "or a folder holding the 16 label files)")
        if not resumed:
            offset = 0
        advance(offset)
        with stream, open(part, "ab" if resumed else "wb") as out:
            while True:
                try:
                    block = stream.read(CHUNK)
                except (OSError, TimeoutError) as exc:
                    raise DownloadError(f"{spec.name}: transfer interrupted ({one_line(exc)}); "
                                        "fix: run the same command again to resume") from None
                if not block:
                    break
                out.write(block)
                fetched += len(block)
                advance(len(block))
            out.flush()
            os.fsync(out.fileno())
    else:
        advance(spec.size)
        resumed = True
    got = sha256_file(part)
    if got != spec.sha256:
        part.unlink()
        if resumed and allow_restart:
            # a stale partial file (say from another version) spoils the resumed copy: retry from scratch once
            again = _fetch_one(spec, dest, base, timeout, advance, allow_restart=False)
            again.fetched_bytes += fetched
            return again
        raise DownloadError(f"{spec.name}: sha256 mismatch (got {got[:12]}..., pinned {spec.sha256[:12]}...); "
                            "fix: the source does not serve the release file, point --base-url at an "
                            "unmodified copy of the SoundSCaper release")
    os.replace(part, target)
    return FetchResult(spec.name, "resumed" if resumed else "downloaded", fetched)


def download_labels(dest: Path | str, base: str | None = None, *, progress: bool = True,
                    timeout: float = 60.0, files: Iterable[LabelFile] = LABEL_FILES) -> list[FetchResult]:
    """Fetch the label files into ``dest``; returns one :class:`FetchResult` per file.

    Keeps going past a failing file; when any failed, raises :class:`DownloadError` at the end, whose
    one-line message names the first failing file and how many others failed.
    """
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    dest = Path(dest).expanduser()
    if dest.exists() and not dest.is_dir():
        raise DownloadError(f"{dest}: exists and is not a folder; fix: pass a folder for --labels-to")
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"{dest}: cannot create the folder ({exc.strerror}); fix: pass a writable folder") from None
    base = base or DEFAULT_BASE_URL
    if not _is_url(base) and not Path(base).expanduser().is_dir():
        raise DownloadError(f"{base}: not a URL (http://, https://, file://) nor an existing folder; "
                            "fix: pass --base-url with a mirror URL or a local folder")
    files = tuple(files)
    results: list[FetchResult] = []
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, disable=not progress, transient=False) as bar:
        task = bar.add_task("ARAUS labels", total=sum(f.size for f in files))
        for spec in files:
            bar.update(task, description=spec.name)
            done_before = bar.tasks[0].completed
            try:
                results.append(_fetch_one(spec, dest, base, timeout, lambda n: bar.advance(task, n)))
            except DownloadError as exc:
                results.append(FetchResult(spec.name, "failed", error=first_line(exc)))
            bar.update(task, completed=done_before + spec.size)
        bar.update(task, description="ARAUS labels")
    failed = [r for r in results if r.status == "failed"]
    if failed:
        more = f" (and {len(failed) - 1} more file(s) failed)" if len(failed) > 1 else ""
        raise DownloadError(failed[0].error + more)
    return results


def verify_labels(folder: Path | str, files: Iterable[LabelFile] = LABEL_FILES) -> dict[str, bool]:
    """``{name: hash matches}`` for the files present in ``folder`` (missing ones map to False)."""
    folder = Path(folder)
    return {f.name: (folder / f.name).is_file() and sha256_file(folder / f.name) == f.sha256 for f in files}


def copy_tree_mirror(src: Path | str, dest: Path | str, layout: str = "release",
                     files: Iterable[LabelFile] = LABEL_FILES) -> Path:
    """Lay out a mirror of the label files found flat in ``src`` (for tests and offline installs).

    ``layout="release"`` reproduces the release repository's folders; ``"flat"`` puts all in one folder.
    """
    src, dest = Path(src), Path(dest)
    for spec in files:
        rel = spec.release_path if layout == "release" else spec.name
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / spec.name, dest / rel)
    return dest
