"""Read-back checks for the files a run resumes from: one place that says whether a file soundaq
wrote earlier is whole, so that a damaged one is rebuilt or reported in one line, never a traceback.

soundaq writes every such file atomically (:mod:`soundaq.base.fileio`), so a kill cannot tear one;
these checks are for what atomic writes cannot prevent: a disk that filled up or a machine that
lost power before the data reached the disk, a copy cut short, a file truncated or edited by hand.

- :func:`zip_problem`: checkpoints (``torch.save``) and feature ``.npz`` files are zip archives;
  a truncated one lacks its central directory, a corrupted one fails a member's CRC-32.
- :func:`read_record`: a JSON marker (``train.json``, ``done.json``, ``run.json``, manifests) that
  must parse to an object with the given keys.
- :func:`digest_problem`: a file whose SHA-256 was recorded when it was written (the leaderboard's
  predictions tables, recorded in ``done.json``).
- :func:`set_aside`: keep a damaged file for inspection as ``<name>.damaged`` (out of every glob
  a run uses) and report it with :class:`RebuiltWarning`.
"""
from __future__ import annotations

import json
import os
import warnings
import zipfile
from pathlib import Path

from soundaq.base.errors import SoundaqWarning, UserError, first_line
from soundaq.base.fileio import sha256_file


class DamagedFile(UserError):
    """A file soundaq wrote that cannot be read back and cannot be rebuilt here; the message names it
    and the fix (exit 2).
    """


class RebuiltWarning(SoundaqWarning):
    """A damaged file soundaq wrote earlier was set aside and is being rebuilt (one line)."""


def damaged(path: Path | str, problem: str, fix: str) -> DamagedFile:
    """The one-line error for a damaged file."""
    return DamagedFile(f"{path}: damaged ({problem}); fix: {fix}")


def zip_problem(path: Path | str, check_crc: bool = True) -> str | None:
    """Why the zip archive at ``path`` (a ``torch.save`` checkpoint, an ``.npz``) is not whole, or None.

    Checks that it exists, is not empty, has its central directory (a truncated file has none)
    and, with ``check_crc``, that every member matches its CRC-32 (reads the whole file once).
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return "missing"
    except OSError as err:
        return f"cannot be read: {err.strerror or type(err).__name__}"
    if size == 0:
        return "0 bytes: the write never happened"
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip() if check_crc else None
    except zipfile.BadZipFile as err:
        return f"cut short or not a zip archive ({size:,} bytes; {first_line(err)})"
    except (OSError, EOFError, ValueError, RuntimeError, NotImplementedError) as err:
        return f"unreadable archive ({size:,} bytes; {first_line(err)})"
    if bad is not None:
        return f"member {bad} fails its CRC-32 check: corrupted"
    return None


def read_record(path: Path | str, required: tuple[str, ...] = ()) -> tuple[dict | None, str | None]:
    """``(record, problem)`` of a JSON object file: ``(obj, None)`` when whole, ``(None, None)`` when
    absent, ``(None, why)`` when present but unreadable, not an object, or lacking a ``required`` key.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None, None
    except OSError as err:
        return None, f"cannot be read: {err.strerror or type(err).__name__}"
    if not data.strip():
        return None, f"{len(data)} bytes, no JSON"
    try:
        obj = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        return None, f"not valid JSON: {first_line(err)}"
    if not isinstance(obj, dict):
        return None, f"holds a JSON {type(obj).__name__}, not an object"
    missing = [k for k in required if k not in obj]
    if missing:
        return None, f"lacks {', '.join(missing)}"
    return obj, None


def digest_problem(path: Path | str, expected: str | None) -> str | None:
    """Why ``path`` is not the file whose SHA-256 was recorded as ``expected``, or None."""
    path = Path(path)
    if not path.is_file():
        return "missing"
    if not expected:
        return None
    try:
        actual = sha256_file(path)
    except OSError as err:
        return f"cannot be read: {err.strerror or type(err).__name__}"
    if actual != expected:
        return f"its SHA-256 {actual[:12]}... differs from the recorded {str(expected)[:12]}..."
    return None


def set_aside(path: Path | str, problem: str, action: str) -> Path:
    """Rename a damaged ``path`` to ``<name>.damaged`` (replacing an older one) and say so in one line
    (:class:`RebuiltWarning`): ``<path>: damaged (<problem>); set aside as <name>.damaged; <action>``.
    """
    path = Path(path)
    aside = path.with_name(path.name + ".damaged")
    try:
        os.replace(path, aside)
        where = f"set aside as {aside.name}"
    except FileNotFoundError:
        where = "already gone"
    except OSError:
        path.unlink(missing_ok=True)
        where = "deleted"
    warnings.warn(f"{path}: damaged ({problem}); {where}; {action}", RebuiltWarning, stacklevel=2)
    return aside
