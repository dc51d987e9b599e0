"""What a RIFF/WAVE header says about its audio, checked against the bytes the file holds.

libsndfile trusts the ``data`` chunk's declared size, and a WAV header is written twice: once at the
start of a take with placeholder sizes, once at the end with the real ones. A recorder that crashed,
a streaming writer, or a file over 4 GiB (the 32-bit size field cannot hold its length) leaves a
header that disagrees with the file, and libsndfile then reads less than is there, sometimes
silently:

=====================================  =================================  ==================================
header                                 libsndfile 1.2 reads               :func:`inspect_wav`'s verdict
=====================================  =================================  ==================================
data size 0, RIFF size 36 (unfinal-    0 frames                           ``unfinalised``: read what follows
ised: Python's ``wave`` before close)
data size 0xFFFFFFFF (streaming)       what follows, capped at 2^31 - 1   ``open``: read what follows
                                       frames
data size = true size mod 2^32         the remainder only (2 s of a       ``wrapped``: read what follows
(a WAV over 4 GiB)                     12-h file)
data size larger than the file         what the file holds                ``cut short``: read it, say so
(a copy or a take cut short)
=====================================  =================================  ==================================

RF64, BW64 and Sony Wave64 carry 64-bit sizes and are read by libsndfile as they are (not
inspected here). The bytes after a declared ``data`` chunk are taken as audio only when they are not
a further chunk (4 printable ASCII characters and a size that fits in the file). The format codes
and chunk layout are those of the Microsoft RIFF/WAVE specification (Multimedia Programming
Interface and Data Specifications 1.0, 1991) and its WAVE_FORMAT_EXTENSIBLE amendment.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

#: (format tag, bits per sample) -> libsndfile subtype, for reading the samples of a repaired header.
SUBTYPES = {(1, 8): "PCM_U8", (1, 16): "PCM_16", (1, 24): "PCM_24", (1, 32): "PCM_32",
            (3, 32): "FLOAT", (3, 64): "DOUBLE", (6, 8): "ALAW", (7, 8): "ULAW"}
#: The data size a streaming writer leaves open.
OPEN_SIZE = 0xFFFFFFFF
_EXTENSIBLE = 0xFFFE


@dataclass(frozen=True)
class WavData:
    """The ``data`` chunk of a WAV file: where its samples start and how many bytes are declared and present.

    Attributes:
        offset: byte offset of the first sample.
        declared: the chunk's declared size in bytes.
        present: bytes from ``offset`` to the end of the file.
        rate, channels, block_align: from the ``fmt `` chunk (bytes per frame: ``block_align``).
        subtype: the libsndfile subtype of the samples, or None when soundaq cannot read them raw.
        verdict: ``ok``, ``unfinalised``, ``open``, ``wrapped`` or ``cut short`` (see the module docstring).
    """

    offset: int
    declared: int
    present: int
    rate: int
    channels: int
    block_align: int
    subtype: str | None
    verdict: str

    @property
    def frames(self) -> int:
        """Whole frames of audio the file holds (what follows the header, or the declared part)."""
        usable = self.present if self.verdict in ("unfinalised", "open", "wrapped", "cut short") else self.declared
        return min(usable, self.present) // max(1, self.block_align)

    @property
    def declared_frames(self) -> int:
        """Whole frames the header declares (the data chunk's stated size over the block alignment)."""
        return self.declared // max(1, self.block_align)


def _is_chunk_at(fh, pos: int, size: int) -> bool:
    """Whether a RIFF chunk header (printable 4-character id, a size inside the file) starts at ``pos``."""
    fh.seek(pos)
    head = fh.read(8)
    if len(head) < 8:
        return False
    cid, length = head[:4], struct.unpack("<I", head[4:])[0]
    return all(32 <= c < 127 for c in cid) and pos + 8 + length <= size + 1


def _verdict(fh, offset: int, declared: int, present: int, size: int) -> str:
    if declared == 0 and present > 0:
        return "unfinalised"
    if declared == OPEN_SIZE:
        return "open"
    if declared > present:
        return "cut short"
    if declared < present:
        end = offset + declared + (declared & 1)    # chunks are padded to an even length
        if end < size and not _is_chunk_at(fh, end, size) and (present - declared) % 2**32 == 0:
            return "wrapped"
    return "ok"


def _fmt(body: bytes) -> tuple[int, int, int, int, str | None]:
    tag, channels, rate, _, block_align, bits = struct.unpack("<HHIIHH", body[:16])
    if tag == _EXTENSIBLE and len(body) >= 26:
        tag = struct.unpack("<H", body[24:26])[0]    # the first two bytes of the sub-format GUID
    return tag, channels, rate, block_align, SUBTYPES.get((tag, bits))


def inspect_wav(path: Path | str) -> WavData | None:
    """The ``data`` chunk of a RIFF/WAVE file with its verdict, or None for any other file (RF64, W64,
    FLAC, a file too damaged to walk): those are left to libsndfile.

    Reads the chunk headers only (a few dozen bytes), never the samples.
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            size = path.stat().st_size
            head = fh.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            pos, fmt = 12, None
            while pos + 8 <= size:
                fh.seek(pos)
                cid, length = struct.unpack("<4sI", fh.read(8))
                if cid == b"fmt " and length >= 16:
                    fmt = _fmt(fh.read(min(length, 40)))
                elif cid == b"data":
                    if fmt is None:
                        return None
                    offset = pos + 8
                    present = size - offset
                    _, channels, rate, block_align, subtype = fmt
                    return WavData(offset, length, present, rate, channels, block_align, subtype,
                                   _verdict(fh, offset, length, present, size))
                pos += 8 + length + (length & 1)
    except (OSError, struct.error):
        return None
    return None


class OffsetFile:
    """A read-only file object over the bytes of ``path`` from ``offset`` on: what libsndfile's virtual
    I/O reads as headerless (RAW) samples when a WAV header cannot be trusted.
    """

    def __init__(self, path: Path | str, offset: int):
        self._fh = open(path, "rb")
        self._offset = offset
        self._fh.seek(offset)

    def seek(self, pos: int, whence: int = 0) -> int:
        """Move to ``pos`` relative to ``whence`` (0 start, 1 current, 2 end), counted from ``offset``.

        Returns:
            The new position, counted from ``offset``.
        """
        if whence == 0:
            pos += self._offset
        self._fh.seek(pos, whence)
        return self.tell()

    def tell(self) -> int:
        """The current position, counted from ``offset``."""
        return self._fh.tell() - self._offset

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes from the current position (all that remain when ``n`` is -1)."""
        return self._fh.read(n)

    def close(self) -> None:
        """Close the underlying file."""
        self._fh.close()
