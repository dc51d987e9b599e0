"""Atomic writes and content hashes: nothing we write is ever left half-written.

Every file soundaq writes goes through :func:`atomic_path`: the content is written to a temporary
file beside the target (named ``.<target>.<pid>-<random><suffix>``), flushed to disk, and renamed
over the target, so a kill, a power cut or a full disk leaves either the old file or the new one,
never a torn one. A temporary file left by a killed writer is removed by the next write of the
same target (its process is gone). A write that fails for want of space or permission raises
:class:`WriteFailed`: one line naming the file and the fix (exit 2), the target untouched.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import tempfile
from pathlib import Path

from soundaq.base.errors import UserError

#: errno values that mean "this disk or folder cannot take the file", with the fix to print.
_WRITE_FIXES = {
    errno.ENOSPC: "free disk space (or write elsewhere), then run the same command again",
    errno.EDQUOT: "free space in your quota (or write elsewhere), then run the same command again",
    errno.EFBIG: "write to a file system that takes large files, then run the same command again",
    errno.EROFS: "write to a writable folder",
    errno.EACCES: "write to a folder you may write to, or fix its permissions",
    errno.EPERM: "write to a folder you may write to, or fix its permissions",
    errno.ENOTDIR: "a file stands where a folder of the path should be: write to another folder",
    errno.EEXIST: "a file stands where a folder of the path should be: write to another folder",
}


def _umask() -> int:
    """The process's umask (read from /proc where it can be, else set and restored once)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: Mode of every file written here: what ``open(path, "w")`` would give (0o666 less the umask), not the
#: owner-only 0o600 of a bare ``tempfile.mkstemp``, so colleagues sharing results or a cache can read them.
FILE_MODE = 0o666 & ~_umask()


class WriteFailed(UserError, OSError):
    """A file could not be written (disk full, read-only, no permission). Also an :class:`OSError`,
    so code that tolerates an unwritable optional file (a cache entry) still does.
    """


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True   # exists (another user's), or cannot tell: leave its file alone
    return True


def remove_stale_temporaries(target: Path | str) -> list[Path]:
    """Delete the temporary files of ``target`` left by writers that no longer run; returns them."""
    target = Path(target)
    prefix = f".{target.name}."
    removed: list[Path] = []
    try:
        entries = list(target.parent.iterdir())
    except OSError:
        return removed
    for p in entries:
        if not p.name.startswith(prefix):
            continue
        pid_text = p.name[len(prefix):].split("-", 1)[0]
        if not pid_text.isdigit() or _pid_alive(int(pid_text)):
            continue
        with contextlib.suppress(OSError):
            p.unlink()
            removed.append(p)
    return removed


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (no-op where directories cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_failed(target: Path, err: OSError) -> OSError:
    fix = _WRITE_FIXES.get(err.errno) if err.errno is not None else None
    if fix is None or err.errno is None or isinstance(err, WriteFailed):
        return err
    return WriteFailed(f"{target}: cannot be written ({err.strerror or os.strerror(err.errno)}); fix: {fix}")


def os_error_line(err: OSError) -> str:
    """One line for an operating-system error on a path: ``PATH: what went wrong; fix: ...`` (the commands'
    last resort for a file error no earlier check caught, instead of a traceback).
    """
    where = err.filename if err.filename is not None else "a file"
    what = err.strerror or (os.strerror(err.errno) if err.errno else type(err).__name__)
    fix = _WRITE_FIXES.get(err.errno or 0, "check that path (does it exist, may you read or write it?) "
                                           "and run the same command again")
    return f"{where}: {what}; fix: {fix}"


def output_folder(path: Path | str, option: str = "--out", error: type[Exception] = UserError,
                  create: bool = True) -> Path:
    """``path`` as an output folder: refused in one line when it exists as a file, else created with its
    parents (``create``; without it, only checked by :func:`check_output_folder`).

    Raises:
        ``error`` (default :class:`UserError`): a file in the way, or a folder that cannot be created.
    """
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise error(f"{option} {path}: exists and is not a folder; fix: pass a folder path")
    if not create:
        return check_output_folder(path, option, error)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise error(f"{option} {path}: cannot create the folder ({err.strerror}); "
                    "fix: pass a writable folder") from None
    return path


def check_output_folder(path: Path | str, option: str = "--out", error: type[Exception] = UserError) -> Path:
    """Refuse, without creating anything, an output folder that cannot be made: a file standing at it or
    at one of its parents, or a nearest existing parent that this user may not write to. Commands call it
    before their work, so that a run which would write nothing (bad input) leaves no empty folder behind
    and a good one is not lost at the end; :func:`output_folder` still creates it when the files are written.

    Raises:
        ``error`` (default :class:`UserError`): one line naming the folder and the fix.
    """
    path = Path(path).expanduser()
    probe = path
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        raise error(f"{option} {path}: {probe} is a file, not a folder; fix: pass a folder path")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise error(f"{option} {path}: cannot create the folder ({probe} is not writable); "
                    "fix: pass a writable folder")
    return path


@contextlib.contextmanager
def atomic_path(target: Path | str, suffix: str | None = None):
    """Yield a temporary path beside ``target``; on success it replaces ``target`` atomically.

    On any exception the temporary file is removed and ``target`` keeps its old content.

    Raises:
        WriteFailed: the folder cannot take the file (no space, read-only, no permission).
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(target)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}-", suffix=suffix or target.suffix or ".tmp",
                                        dir=target.parent)
        try:
            os.chmod(tmp_name, FILE_MODE)
        finally:
            os.close(fd)
    except OSError as err:
        raise _write_failed(target, err) from None
    tmp = Path(tmp_name)
    try:
        try:
            yield tmp
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except OSError as err:
            failed = _write_failed(target, err)
            if failed is err:
                raise
            raise failed from None
        _fsync_dir(target.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_bytes(target: Path | str, data: bytes) -> Path:
    """Write ``data`` to ``target`` atomically (a temporary file renamed over it); returns the path."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def atomic_write_text(target: Path | str, text: str) -> Path:
    """Write ``text`` as UTF-8 to ``target`` atomically; returns the path."""
    return atomic_write_bytes(target, text.encode("utf-8"))


def atomic_write_json(target: Path | str, obj) -> Path:
    """Write ``obj`` as indented JSON (non-JSON values as ``str()``) plus a newline to ``target`` atomically; returns
    the path.
    """
    return atomic_write_text(target, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def write_csv(frame, target: Path | str, float_format: str | None = None) -> Path:
    """Write a pandas DataFrame as CSV (header, no index), atomically: every CSV table soundaq writes
    goes through here (predictions tables through :func:`soundaq.base.predictions_table.write`).

    Args:
        frame: the table.
        target: the ``.csv`` file; replaced only once the new one is complete (:func:`atomic_path`).
        float_format: ``None`` writes each float's shortest repr, which reads back bit-identical (with
            ``float_precision="round_trip"``); e.g. ``"%.6g"`` for 6 significant digits.

    Returns:
        ``target`` as a Path.

    Raises:
        WriteFailed: the folder cannot take the file (no space, read-only, no permission).
    """
    with atomic_path(target) as tmp:
        frame.to_csv(tmp, index=False, float_format=float_format)
    return Path(target)


def sha256_file(path: Path | str, chunk: int = 1 << 20) -> str:
    """The SHA-256 hex digest of a file, read ``chunk`` bytes at a time."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()
