r"""Pinned, resumable downloads from the public SoundSCaper release: one mechanism for every file.

Two sets of files come through here: the paper's 16 ARAUS label files (``soundaq data download``,
:mod:`soundaq.models_zoo.data.label_download`, pinned by sha256) and the release's trained weights
and normalisation files (``soundaq models download``, :mod:`soundaq.models_zoo.pretrained_weights`,
pinned by git blob id). A file is described by a :class:`PinnedFile`: its path inside the release
repository, its name at the destination (also its name in a flat mirror), its size when known, and a
pin ``"<algorithm>:<hex digest>"``.

Sources. The default source is GitHub's raw-file host; ``base`` may instead name a mirror: an
``http(s)://`` or ``file://`` URL, or a local folder. Inside a mirror a file is looked up at its
path in the release repository first, then by its bare name (a flat folder works).

Guarantees.

* **Verified before it is named.** Bytes arrive in a hidden ``.<name>.part`` file beside the target;
  the file reaches its final name only after its pin matched, by an atomic rename. A mismatch, an
  HTML page served in place of the file, or a Git LFS pointer deletes the part file.
* **Resume.** A transfer that stops early (connection dropped, a timeout, Ctrl-C) leaves its part file;
  the next run continues it with an HTTP ``Range`` request (or a seek, for local mirrors). A server
  that ignores ``Range`` sends the whole file, which then replaces the part. A part file that does
  not verify after a resume is discarded and the file fetched once more from scratch.
* **Proxies** come from the environment (``HTTPS_PROXY``, ``HTTP_PROXY``, ``NO_PROXY``, and
  ``REQUESTS_CA_BUNDLE`` for an intercepting proxy's certificate), as :mod:`requests` reads them.

What pooch does here and what it cannot. HTTP transfers go through :class:`pooch.HTTPDownloader`
(``requests`` streaming, the proxy and certificate settings above, its progress-bar protocol) and
sha256 pins are checked with :func:`pooch.file_hash`. ``pooch.retrieve`` itself is not used, for
three reasons measured against pooch 1.9: it streams into a fresh randomly named temporary file and
deletes it on failure, so an interrupted transfer cannot resume; its pins accept only ``hashlib``
(and ``xxhash``) algorithms, while the release's weights are pinned by git blob id (SHA-1 of
``b"blob <size>\\0"`` followed by the bytes, the only identifier the repository's tree publishes);
and it has no ``file://`` or folder source for offline mirrors. The part kept here is those three:
a persistent part file with a ``Range`` header and a response hook for servers that ignore it, a
git-blob digest, and a local copy loop.
"""
from __future__ import annotations

import contextlib
import os
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from soundaq.base.errors import UserError, first_line, one_line
from soundaq.base.fileio import output_folder
from soundaq.models_zoo.data.download_faults import destination_fault, proxy_fault
from soundaq.models_zoo.data.pins import (  # noqa: F401 - SNIFF_BYTES, git_blob_id, PinnedFile: re-exported (were defined here)
    SNIFF_BYTES,
    PinnedFile,
    file_digest,
    git_blob_id,
    impostor,
    pin_matches,
)

RELEASE_REPO = "Yuanbo2020/SoundSCaper"
CHUNK = 1 << 16


class DownloadError(UserError):
    """A file could not be fetched or failed its pin; the message names the file and the fix."""


class EnvironmentFault(DownloadError):
    """The machine, not the source, stops the download (disk full, read-only or forbidden destination,
    a proxy that needs a package, a missing CA bundle): every further file would fail the same way, so
    the batch stops at once (:mod:`soundaq.models_zoo.data.download_faults`).
    """


@dataclass
class FetchResult:
    """What became of one file of a batch: its name, status, bytes fetched, error and final path."""

    name: str
    status: str        # "present" (kept, pin ok), "downloaded", "resumed", "failed"
    fetched_bytes: int = 0
    error: str | None = None
    path: Path | None = None


class _NotThere(Exception):
    """This candidate location does not hold the file (HTTP 404 / no such local file)."""


class _Interrupted(Exception):
    """The transfer stopped early; the part file keeps what arrived."""


class _RangeRefused(Exception):
    """The server cannot continue the part file (HTTP 416): start again from byte 0."""


# ---------------------------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------------------------

def part_path(dest: Path, spec: PinnedFile) -> Path:
    """The hidden partial file a download resumes from."""
    return Path(dest) / f".{spec.name}.part"


def is_url(base: str) -> bool:
    """True for ``http://``, ``https://`` and ``file://`` sources (anything else is a folder path)."""
    return urllib.parse.urlsplit(str(base)).scheme in ("http", "https", "file")


def _candidates(base: str, spec: PinnedFile) -> list[str]:
    if is_url(base):
        root = base if base.endswith("/") else base + "/"
        return [urllib.parse.urljoin(root, urllib.parse.quote(p)) for p in (spec.release_path, spec.name)]
    folder = Path(base).expanduser()
    return [str(folder / spec.release_path), str(folder / spec.name)]


def check_source(base: str, option: str) -> None:
    """A source must be a URL or an existing folder; otherwise one line naming ``option``."""
    if not is_url(base) and not Path(base).expanduser().is_dir():
        raise DownloadError(f"{base}: not a URL (http://, https://, file://) nor an existing folder; "
                            f"fix: pass {option} with a mirror URL or a local folder")


class _Bar:
    """Adapter from pooch's progress-bar protocol (``total``, ``update``, ``reset``, ``close``) to our
    callbacks: ``advance(n)`` moves the bar, ``learn_total(n)`` tells a size the pins did not know.
    """

    def __init__(self, advance: Callable[[int], None], learn_total: Callable[[int], None], offset: int,
                 known: int | None):
        self._advance, self._learn, self._offset, self._known = advance, learn_total, offset, known
        self._done = 0

    @property
    def total(self):
        return self._known

    @total.setter
    def total(self, remaining: int) -> None:
        if self._known is None and remaining:
            self._known = self._offset + int(remaining)
            self._learn(self._known)

    def update(self, n: int) -> None:
        self._done += int(n)
        self._advance(int(n))

    def reset(self) -> None:  # pooch: "make sure the bar gets filled" = reset(), update(total), close()
        self._advance(-self._done)
        self._done = 0

    def close(self) -> None:
        pass


def _http_append(url: str, out, offset: int, timeout: float, bar: _Bar) -> bool:
    """Stream ``url`` into the open part file ``out`` from byte ``offset``; True when the server resumed.

    Uses pooch's HTTPDownloader with a ``Range`` header; a response hook empties the part file when the
    server answers 200 (whole file) instead of 206 (the rest).
    """
    import pooch
    import requests

    state = {"resumed": False}

    def on_response(response, *args, **kwargs):
        if response.status_code == 206 and offset:
            state["resumed"] = True
        elif response.status_code == 200 and offset:
            out.seek(0)
            out.truncate()
        return response

    headers = {"User-Agent": "soundaq (pinned release download)", "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    downloader = pooch.HTTPDownloader(progressbar=bar, chunk_size=CHUNK, timeout=timeout, headers=headers,
                                      hooks={"response": on_response})
    try:
        downloader(url, out, None)
    except (requests.exceptions.InvalidSchema, requests.exceptions.InvalidURL) as exc:   # incl. InvalidProxyURL
        raise EnvironmentFault(proxy_fault(exc, url) or f"{url}: cannot be requested ({first_line(exc)}); "
                               "fix: check the URL and the proxy settings (HTTPS_PROXY)") from None
    except requests.exceptions.HTTPError as exc:
        code = exc.response.status_code if exc.response is not None else 0
        if code == 404:
            raise _NotThere(url) from None
        if code == 416 and offset:
            raise _RangeRefused(url) from None
        reason = exc.response.reason if exc.response is not None else first_line(exc)
        raise DownloadError(f"{url}: HTTP {code} {reason}") from None
    except (requests.exceptions.ConnectionError, requests.exceptions.ConnectTimeout) as exc:
        if out.tell() > offset:  # the connection broke mid-transfer
            raise _Interrupted(first_line(exc)) from None
        via = " through the proxy" if isinstance(exc, requests.exceptions.ProxyError) else ""
        raise DownloadError(f"{url}: cannot connect{via} ({_reason(exc)})") from None
    except requests.exceptions.RequestException as exc:  # ChunkedEncodingError, ReadTimeout, ...
        raise _Interrupted(_reason(exc)) from None
    except OSError as exc:                               # a CA bundle that is not there; write errors go up
        line = proxy_fault(exc, url)
        if line is None:
            raise
        raise EnvironmentFault(line) from None
    return state["resumed"]


def _reason(exc: BaseException) -> str:
    """The innermost useful one-line reason of a requests/urllib3 exception chain."""
    inner = exc
    while inner.args and isinstance(inner.args[0], BaseException):
        inner = inner.args[0]
    reason = getattr(inner, "reason", None)
    text = first_line(reason if isinstance(reason, BaseException) else inner)
    # urllib3 wraps the socket error in text: keep its last clause ("[Errno 111] Connection refused")
    text = text.rsplit("Failed to establish a new connection: ", 1)[-1].rstrip("\"')")
    return text[:200]


def _local_append(location: str, out, offset: int, bar: _Bar) -> bool:
    scheme = urllib.parse.urlsplit(location).scheme
    path = Path(urllib.request.url2pathname(urllib.parse.urlsplit(location).path)) if scheme == "file" \
        else Path(location)
    if not path.is_file():
        raise _NotThere(location)
    size = path.stat().st_size
    resumed = bool(offset) and offset <= size
    if not resumed:
        out.seek(0)
        out.truncate()
    bar.total = size - (offset if resumed else 0)
    with open(path, "rb") as fh:
        if resumed:
            fh.seek(offset)
        for block in iter(lambda: fh.read(CHUNK), b""):
            out.write(block)
            bar.update(len(block))
    return resumed


# ---------------------------------------------------------------------------------------------
# One file
# ---------------------------------------------------------------------------------------------

@dataclass
class _Source:
    base: str
    option: str        # the CLI option that names the source, for the fix in messages
    timeout: float
    dest_option: str = "--cache-dir"   # the CLI option that names the destination
    release: str = "SoundSCaper release"   # what an unmodified copy is a copy of (mismatch messages)


def _transfer(spec: PinnedFile, part: Path, src: _Source, advance, learn_total) -> tuple[bool, int]:
    """Append the missing bytes to ``part`` from the first candidate that has the file.

    Returns ``(resumed, bytes fetched now)``.
    """
    offset = part.stat().st_size if part.exists() else 0
    if spec.size is not None and offset > spec.size:
        part.unlink()
        offset = 0
    if offset and (offset == spec.size or pin_matches(part, spec)):  # complete, but never renamed
        advance(offset)
        return True, 0
    tried = []
    for location in _candidates(src.base, spec):
        try:
            return _transfer_from(location, spec, part, offset, src, advance, learn_total)
        except _NotThere:
            tried.append(location)
        except _RangeRefused:
            part.unlink()
            return _transfer_from(location, spec, part, 0, src, advance, learn_total)
    raise DownloadError(f"{spec.name}: not found at {' or '.join(tried)}; fix: check {src.option} (it should "
                        "point at the release repository's root or a folder holding the files)")


def _transfer_from(location: str, spec: PinnedFile, part: Path, offset: int, src: _Source, advance,
                   learn_total) -> tuple[bool, int]:
    try:
        return _append_from(location, spec, part, offset, src, advance, learn_total)
    finally:
        with contextlib.suppress(OSError):               # (a read-only destination cannot have one anyway)
            if part.exists() and part.stat().st_size == 0:  # nothing arrived: leave no empty part file behind
                part.unlink()


def _append_from(location: str, spec: PinnedFile, part: Path, offset: int, src: _Source, advance,
                 learn_total) -> tuple[bool, int]:
    with open(part, "ab") as out:
        bar = _Bar(advance, learn_total, offset, spec.size)
        try:
            if location.startswith(("http:", "https:")):
                resumed = _http_append(location, out, offset, src.timeout, bar)
            else:
                resumed = _local_append(location, out, offset, bar)
        except EnvironmentFault:
            raise
        except DownloadError as exc:
            raise DownloadError(f"{spec.name}: {exc}; fix: check your network (behind a proxy set "
                                f"HTTPS_PROXY), or pass {src.option} with a reachable mirror") from None
        except _Interrupted as exc:
            raise DownloadError(f"{spec.name}: transfer interrupted after {out.tell():,} bytes ({one_line(exc)}); "
                                "fix: run the same command again to resume") from None
        finally:
            out.flush()
            os.fsync(out.fileno())
        if resumed:
            advance(offset)
        return resumed, out.tell() - (offset if resumed else 0)


def fetch_file(spec: PinnedFile, dest: Path, src: _Source, advance: Callable[[int], None] = lambda n: None,
               learn_total: Callable[[int], None] = lambda n: None, allow_restart: bool = True) -> FetchResult:
    """Make ``dest/spec.name`` hold the pinned file: keep it if it verifies, else fetch, verify, rename.

    Raises:
        EnvironmentFault: the destination cannot take the file (``No space left on device``, a
            read-only file system, no permission; the part file is removed where it can be) or the
            proxy settings need a fix; one line naming the file and the fix.
        DownloadError: the source failed (not found, HTTP error, pin mismatch, cut short).
    """
    try:
        return _fetch_file(spec, dest, src, advance, learn_total, allow_restart)
    except OSError as err:
        target = Path(dest) / spec.name
        line = destination_fault(err, target, src.dest_option)
        with contextlib.suppress(OSError):
            part_path(dest, spec).unlink(missing_ok=True)   # never half a file that a rerun would resume from
        if line is not None:
            raise EnvironmentFault(line) from None
        where = err.filename if err.filename is not None else spec.name
        raise DownloadError(f"{spec.name}: cannot be fetched ({where}: {err.strerror or first_line(err)}); fix: "
                            f"check {src.option} and the disk, then run the same command again") from None


def _fetch_file(spec: PinnedFile, dest: Path, src: _Source, advance, learn_total, allow_restart: bool) -> FetchResult:
    target = Path(dest) / spec.name
    if pin_matches(target, spec):
        advance(target.stat().st_size)
        return FetchResult(spec.name, "present", path=target)
    part = part_path(dest, spec)
    resumed, fetched = _transfer(spec, part, src, advance, learn_total)
    if pin_matches(part, spec):
        os.replace(part, target)
        return FetchResult(spec.name, "resumed" if resumed else "downloaded", fetched, path=target)
    looks_like = impostor(part)
    size = part.stat().st_size
    if looks_like is None and spec.size is not None and size < spec.size:
        raise DownloadError(f"{spec.name}: incomplete ({size:,} of {spec.size:,} bytes arrived); "
                            "fix: run the same command again to resume")
    got = file_digest(part, spec.algorithm)
    part.unlink()
    if resumed and allow_restart and looks_like is None:
        # a stale partial file (say from another version) spoils the resumed copy: retry from scratch once
        again = _fetch_file(spec, dest, src, advance, learn_total, allow_restart=False)
        again.fetched_bytes += fetched
        return again
    if looks_like:
        raise DownloadError(f"{spec.name}: the source served {looks_like} instead of the file; nothing kept; "
                            f"fix: pass {src.option} with a mirror that serves the release files")
    label = "git blob id" if spec.algorithm == "gitblob" else spec.algorithm
    raise DownloadError(f"{spec.name}: {label} mismatch (got {got[:12]}..., pinned {spec.digest[:12]}...); "
                        f"nothing kept; fix: the source does not serve the pinned file, point {src.option} at "
                        f"an unmodified copy of the {src.release}")


def fetch_files(files: Iterable[PinnedFile], dest: Path | str, base: str, *, option: str = "--mirror",
                progress: bool = True, timeout: float = 60.0, title: str = "download",
                dest_option: str = "--cache-dir", release: str = "SoundSCaper release") -> list[FetchResult]:
    """Fetch pinned files into ``dest``; one :class:`FetchResult` per file, in order.

    Args:
        files: the files to fetch.
        dest: destination folder (created).
        base: the source: an ``http(s)://`` or ``file://`` URL, or a folder.
        option: the CLI option naming the source (messages say how to fix it).
        dest_option: the CLI option naming the destination (``--labels-to``; ``--cache-dir``).
        release: what the files are a copy of (mismatch messages say it).
        progress: show a rich progress bar on stderr.
        timeout: seconds to wait for a server.
        title: the bar's label.

    Raises:
        DownloadError: after every file was tried, when any failed: the first failure's one line and
            how many others failed. Files that verified are in place.
        EnvironmentFault: at once, when the machine stops the download (disk full, read-only
            destination, proxy settings): the files before it are in place, no part file is left.
    """
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    dest = output_folder(dest, "destination", DownloadError)
    check_source(base, option)
    src = _Source(base, option, timeout, dest_option, release)
    files = tuple(files)
    results: list[FetchResult] = []
    columns = (TextColumn("{task.description}", markup=False), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    known = sum(f.size or 0 for f in files)
    console = Console(stderr=True)
    with Progress(*columns, console=console, disable=not (progress and console.is_terminal), transient=False) as bar:
        task = bar.add_task(title, total=known or None)
        for spec in files:
            bar.update(task, description=spec.name)
            before = bar.tasks[0].completed

            def learn_total(size: int) -> None:
                bar.update(task, total=(bar.tasks[0].total or 0) + size)

            try:
                results.append(fetch_file(spec, dest, src, lambda n: bar.advance(task, n), learn_total))
            except EnvironmentFault as exc:
                done = sum(r.status != "failed" for r in results)
                raise EnvironmentFault(f"{first_line(exc)} ({done} of {len(files)} file(s) in place)") from None
            except DownloadError as exc:
                results.append(FetchResult(spec.name, "failed", error=first_line(exc)))
            if spec.size is not None:
                bar.update(task, completed=before + spec.size)
        bar.update(task, description=title)
    failed = [r for r in results if r.status == "failed"]
    if failed:
        more = f" (and {len(failed) - 1} more file(s) failed)" if len(failed) > 1 else ""
        first_error = failed[0].error
        assert first_error is not None  # a failed result always carries its one-line error
        raise DownloadError(first_error + more)
    return results
