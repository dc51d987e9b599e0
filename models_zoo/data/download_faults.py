"""The machine's faults during a pinned download, each as one line naming the file and the fix.

:mod:`soundaq.models_zoo.data.download` asks here what an exception that is not about the source
means: the destination cannot take the file (disk full, quota, read-only file system, no
permission), or the environment's network settings need something more (a SOCKS proxy without
PySocks, a proxy URL ``requests`` cannot use, a ``REQUESTS_CA_BUNDLE`` that is not there). These are
not interruptions: running the same command again cannot help until the fix is made, so the
messages never say "run again to resume" alone.
"""
from __future__ import annotations

import errno
import os
from pathlib import Path

#: errno values meaning "the destination cannot take the file" (never raised by reading a source).
DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS)
#: errno values meaning "no permission": the destination's when the error names no path outside it.
PERMISSION_ERRNOS = (errno.EACCES, errno.EPERM)


def _inside(path, folder: Path) -> bool:
    try:
        Path(os.fsdecode(path)).resolve().relative_to(Path(folder).resolve())
    except (ValueError, OSError, TypeError):
        return False
    return True


def destination_fault(err: OSError, target: Path, dest_option: str) -> str | None:
    """The one line for an :class:`OSError` that says the destination cannot take ``target``, or None
    when the error is about something else (the source, say).

    Args:
        err: the error raised while creating, writing, flushing or renaming the part file.
        target: the file being downloaded, at its final place.
        dest_option: the option naming the destination (``--labels-to``, ``--cache-dir``).

    Returns:
        ``"<target>: cannot be written (No space left on device); ...; fix: ..."`` or None.
    """
    code = err.errno
    if code not in DISK_ERRNOS + PERMISSION_ERRNOS:
        return None
    if err.filename is not None and not _inside(err.filename, target.parent):
        return None                   # a path outside the destination: the source's problem
    what = err.strerror or os.strerror(code)
    fix = {
        errno.ENOSPC: f"free disk space (or choose another {dest_option}), then run the same command again",
        errno.EDQUOT: f"free space in your quota (or choose another {dest_option}), then run the same command again",
        errno.EFBIG: f"choose a {dest_option} on a file system that takes files this large",
        errno.EROFS: f"{target.parent} is on a read-only file system: choose a writable {dest_option}",
    }.get(code, f"choose a {dest_option} you may write to, or fix the permissions of {target.parent}")
    return f"{target}: cannot be written ({what}); nothing half-written was kept; fix: {fix}"


def proxy_fault(exc: BaseException, url: str) -> str | None:
    """The one line for a request that could not even start because of the proxy or certificate
    settings in the environment, or None.

    Covers: ``requests``' ``InvalidSchema`` "Missing dependencies for SOCKS support" (a ``socks5://``
    or ``socks5h://`` proxy needs PySocks: ``pip install "requests[socks]"``); other proxy URLs it
    cannot use (``InvalidProxyURL``, ``InvalidSchema``, ``InvalidURL`` naming the proxy); and the
    ``OSError`` "Could not find a suitable TLS CA certificate bundle" for a ``REQUESTS_CA_BUNDLE`` or
    ``CURL_CA_BUNDLE`` that is not a file.
    """
    import requests

    text = str(exc)
    proxy = _proxy_for(url)
    if isinstance(exc, requests.exceptions.InvalidSchema) and "socks" in text.lower():
        return (f"{url}: the proxy {proxy or '(from the environment)'} is a SOCKS proxy, which needs the PySocks "
                "package; fix: pip install \"requests[socks]\" (or set HTTPS_PROXY to an http:// proxy)")
    if isinstance(exc, (requests.exceptions.InvalidProxyURL, requests.exceptions.InvalidSchema,
                        requests.exceptions.InvalidURL)) and proxy:
        return (f"{url}: the proxy URL {proxy} cannot be used ({text.splitlines()[0] if text else type(exc).__name__}); "
                "fix: set HTTPS_PROXY/HTTP_PROXY to a URL such as http://host:port")
    if isinstance(exc, OSError) and "CA certificate bundle" in text:
        bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or "the CA bundle"
        return (f"{url}: the certificate bundle {bundle} is not a readable file ({text.splitlines()[0]}); fix: point "
                "REQUESTS_CA_BUNDLE at your proxy's CA certificate file (PEM), or unset it")
    return None


def _proxy_for(url: str) -> str | None:
    """The proxy ``requests`` would use for ``url`` from the environment (honouring NO_PROXY), or None."""
    import requests.utils

    try:
        if requests.utils.should_bypass_proxies(url, no_proxy=None):
            return None
        return requests.utils.select_proxy(url, requests.utils.get_environ_proxies(url)) or None
    except Exception:  # noqa: BLE001 - only used to name the proxy in a message
        return None
