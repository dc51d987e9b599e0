"""Pins of release files: git blob ids and hashlib digests, and what a wrong file looks like.

Split from :mod:`soundaq.models_zoo.data.download` (which re-exports these names).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PinnedFile:
    """One release file: where it lives in the release, what it is called here, and its pin.

    Attributes:
        name: file name at the destination, and in a flat mirror.
        release_path: path inside the release repository.
        size: bytes, or None when only the pin is known (the size then comes from the server).
        pin: ``"sha256:<64 hex>"`` or ``"gitblob:<40 hex>"`` (git's object id of the file's bytes).
    """

    name: str
    release_path: str
    size: int | None
    pin: str

    @property
    def algorithm(self) -> str:
        """The pin's algorithm: ``sha256`` or ``gitblob``."""
        return self.pin.partition(":")[0]

    @property
    def digest(self) -> str:
        """The pin's hex digest."""
        return self.pin.partition(":")[2]

    @property
    def sha256(self) -> str | None:
        """The sha256 pin, when the file is pinned by sha256."""
        return self.digest if self.algorithm == "sha256" else None


#: Bytes of a finished transfer inspected to tell an HTML page or an LFS pointer from the real file.
SNIFF_BYTES = 512



def git_blob_id(path: Path | str, chunk: int = 1 << 20) -> str:
    r"""Git's object id of a file's bytes: SHA-1 of ``b"blob <size>\\0"`` then the bytes (hex, 40 chars).

    Source: the git object format (``git hash-object``); it is the id a repository's tree lists
    for each file, so a release file can be pinned before it is ever downloaded.
    """
    path = Path(path)
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode(), usedforsecurity=False)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def file_digest(path: Path | str, algorithm: str) -> str:
    """Hex digest of a file: ``gitblob`` (:func:`git_blob_id`) or any ``hashlib`` name (via pooch)."""
    if algorithm == "gitblob":
        return git_blob_id(path)
    import pooch

    return pooch.file_hash(str(path), alg=algorithm)


def pin_matches(path: Path | str, spec: PinnedFile) -> bool:
    """True when ``path`` exists, has the pinned size (when known) and the pinned digest."""
    path = Path(path)
    if not path.is_file() or (spec.size is not None and path.stat().st_size != spec.size):
        return False
    return file_digest(path, spec.algorithm) == spec.digest


def impostor(path: Path) -> str | None:
    """What a wrong file looks like, from its first bytes: an HTML page or a Git LFS pointer."""
    with open(path, "rb") as fh:
        head = fh.read(SNIFF_BYTES).lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        return "an HTML page (an error, login or proxy page?)"
    if head.startswith(b"version https://git-lfs"):
        return "a Git LFS pointer, not the file's content"
    return None
