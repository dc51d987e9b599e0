"""The paper's trained models by name: pinned downloads of the release weights into the soundaq cache.

The public SoundSCaper repository (``Yuanbo2020/SoundSCaper``) holds trained weights for seven of the
eight models (SoundAQnet in four variants) and the normalisation files every model was trained with.
Each file is pinned by the git blob id its tree lists at commit :data:`RELEASE_COMMIT`, so it is
verified before it is ever used (:mod:`soundaq.models_zoo.data.download` does the transfer: resume,
proxies, mirrors). A verified release file is then turned into a soundaq checkpoint by the one
import path, :func:`soundaq.models_zoo.checkpoints.import_original` (weights-only ``torch.load``, a
numpy-only unpickler for the ``norm_*.pickle`` files).

Cache layout (``<cache>`` = ``--cache-dir``, ``$SOUNDAQ_CACHE`` or ``~/.cache/soundaq``)::

    <cache>/pretrained/release-168a788/AD_CNN_final_model.pth, norm_log_mel.pickle, ...   verified release files
    <cache>/pretrained/AD_CNN.ckpt, SoundAQnet-PAQ1027.ckpt, PANNs.ckpt, ...               soundaq checkpoints

PANNs' weights are published only behind a file-sharing link in the release README (no pin is
possible): :func:`import_user_weights` files a user-supplied copy under the same name.

Mirrors: ``mirror=`` (or ``$SOUNDAQ_MIRROR``) names a copy of the repository's files at that commit
under the same relative paths: a folder, a ``file://`` URL or an ``http(s)://`` URL. A flat folder
holding the files under the names of :data:`RELEASES` (``AD_CNN_final_model.pth``, ...) works too.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from soundaq.base.errors import UserError
from soundaq.base.paths import cache_root
from soundaq.models_zoo.data.download import (
    RELEASE_REPO,
    DownloadError,
    FetchResult,
    PinnedFile,
    fetch_files,
    pin_matches,
)
from soundaq.models_zoo.registry import NETS as _NETS

#: The release commit every pin refers to.
RELEASE_COMMIT = "168a78817ff87f8eec9977526142a704446e04ea"
#: GitHub's raw-file host at that commit.
DEFAULT_MIRROR = f"https://raw.githubusercontent.com/{RELEASE_REPO}/{RELEASE_COMMIT}/"
#: Environment variable naming a mirror for downloads that no command line names (``--model`` on first use).
MIRROR_ENV = "SOUNDAQ_MIRROR"
_NORM_DIR = "SoundAQnet/application/Dataset/0_normalization_files"


@dataclass(frozen=True)
class ReleasedWeights:
    """One released weights file and the scores the release reports for it (ARAUS test set, 3,576 clips).

    ``variant`` names a SoundAQnet checkpoint by its PAQ MSE (``PAQ1027`` ...); None for the others.
    """

    model: str
    variant: str | None
    file: PinnedFile
    scene_acc: float | None
    event_auc: float | None
    paq_mse: float | None

    @property
    def key(self) -> str:
        """The checkpoint's name in the cache: ``AD_CNN``, ``SoundAQnet-PAQ1027``."""
        return self.model if self.variant is None else f"{self.model}-{self.variant}"


def _registry_releases() -> tuple[ReleasedWeights, ...]:
    """Every released weights file, as the registry entries declare them (``NetSpec.releases``)."""
    return tuple(ReleasedWeights(spec.name, r.variant, PinnedFile(r.name, r.path, r.size, f"gitblob:{r.blob}"),
                                 *(r.scores or (spec.paper_scene_acc, spec.paper_event_auc, spec.paper_paq_mse)))
                 for spec in _NETS.values() for r in spec.releases)


#: Every released weights file, pinned by git blob id at RELEASE_COMMIT: a view of the registry entries'
#: ``releases`` (the paper's eight, in its table order). Sizes are the tree's where the reference copies
#: confirm them (None: learnt from the server); a file's scores are the net's paper scores unless the
#: entry gives the ones the release prints for that file (SoundAQnet's variants).
RELEASES: tuple[ReleasedWeights, ...] = _registry_releases()

#: The normalisation statistics all released models were trained with (one copy serves every model).
NORM_FILES: tuple[PinnedFile, PinnedFile] = (
    PinnedFile("norm_log_mel.pickle", f"{_NORM_DIR}/norm_log_mel.pickle", 735,
               "gitblob:edded8e778a3db71583876e5dcc9618d1be6e52b"),
    PinnedFile("norm_loudness.pickle", f"{_NORM_DIR}/norm_loudness.pickle", 233,
               "gitblob:297a95e3fa4d2fbe3b9c28e0f53c37c29407737d"),
)

#: The variant ``--model SoundAQnet`` means (the first of the entry's ``releases``: the paper's headline
#: checkpoint).
DEFAULT_VARIANT = {name: spec.releases[0].variant for name, spec in _NETS.items()
                   if spec.releases and spec.releases[0].variant is not None}
#: Where the weights of a model without pinned files are published (the entries' ``weights_elsewhere``).
UNPINNED = {name: spec.weights_elsewhere for name, spec in _NETS.items() if spec.weights_elsewhere}


class PretrainedError(UserError):
    """A name without released weights, an unknown variant, a missing checkpoint; one line and the fix."""


# ---------------------------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------------------------

def _canonical(name: str) -> str:
    from soundaq.models_zoo.registry import NETS, get_spec

    folded = {n.lower(): n for n in NETS}
    return get_spec(folded.get(str(name).strip().lower(), str(name).strip())).name


def variants(model: str) -> list[str]:
    """The released variants of ``model`` (empty for a model with one file or none)."""
    model = _canonical(model)
    return [r.variant for r in RELEASES if r.model == model and r.variant is not None]


def released(model: str, variant: str | None = None) -> ReleasedWeights:
    """The pinned release file of ``model`` (``variant`` for SoundAQnet; default :data:`DEFAULT_VARIANT`).

    Raises:
        PretrainedError: the model has no pinned release file (PANNs), or the variant is not released.
        UserError: an unknown model name.
    """
    model = _canonical(model)
    if model in UNPINNED:
        raise PretrainedError(f"{model}: the release publishes no pinned weights for it (only {UNPINNED[model]}); "
                              f"fix: download that file yourself, then `soundaq models import {model} --weights FILE`")
    choices = [r for r in RELEASES if r.model == model]
    if not choices:  # pragma: no cover - every registry name is in RELEASES or UNPINNED (tested)
        raise PretrainedError(f"{model}: no released weights; fix: train it with `soundaq train`")
    if variant is None:
        variant = DEFAULT_VARIANT.get(model)
    for r in choices:
        if (r.variant or None) == (variant.upper() if variant else None):
            return r
    if choices[0].variant is None:
        raise PretrainedError(f"{model}: released as one file, without variants; fix: leave out --variant {variant}")
    raise PretrainedError(f"{model}: no released variant {variant!r}; fix: choose one of "
                          f"{', '.join(str(r.variant) for r in choices)}")


def pretrained_dir(cache_dir: Path | str | None = None) -> Path:
    """``<cache>/pretrained``: imported checkpoints; verified release files in its ``release-<commit>``."""
    return cache_root(cache_dir) / "pretrained"


def release_dir(cache_dir: Path | str | None = None) -> Path:
    return pretrained_dir(cache_dir) / f"release-{RELEASE_COMMIT[:7]}"


def checkpoint_path(model: str, variant: str | None = None, cache_dir: Path | str | None = None) -> Path:
    """Where the soundaq checkpoint of a released (or user-imported) model lives in the cache."""
    model = _canonical(model)
    key = released(model, variant).key if model not in UNPINNED else model
    return pretrained_dir(cache_dir) / f"{key}.ckpt"


def _option(mirror) -> str:
    """How the user named the source, for the fix in messages."""
    if mirror is not None and str(mirror).strip():
        return "--mirror"
    return f"${MIRROR_ENV}" if os.environ.get(MIRROR_ENV, "").strip() else "--mirror (or $SOUNDAQ_MIRROR)"


def default_mirror(mirror: str | Path | None = None) -> str:
    """The source to download from: ``mirror``, else ``$SOUNDAQ_MIRROR``, else GitHub at the pinned commit."""
    if mirror is not None and str(mirror).strip():
        return str(mirror)
    return os.environ.get(MIRROR_ENV, "").strip() or DEFAULT_MIRROR


# ---------------------------------------------------------------------------------------------
# Download and import
# ---------------------------------------------------------------------------------------------

def _paths(results: Iterable[FetchResult]) -> list[Path]:
    """The local paths of fetched files (``fetch_files`` raises when one failed, so each has one)."""
    paths = []
    for r in results:
        assert r.path is not None, "fetch_files returns only when every file is in place"
        paths.append(r.path)
    return paths


def fetch_norm_files(cache_dir: Path | str | None = None, mirror: str | Path | None = None, *,
                     progress: bool = True, timeout: float = 60.0) -> tuple[Path, Path]:
    """The release's ``norm_log_mel.pickle`` and ``norm_loudness.pickle``, verified, in the cache."""
    results = fetch_files(NORM_FILES, release_dir(cache_dir), default_mirror(mirror), option=_option(mirror),
                          progress=progress, timeout=timeout, title="normalisation files")
    norm_mel, norm_loud = _paths(results)
    return norm_mel, norm_loud


def download(model: str, variant: str | None = None, *, cache_dir: Path | str | None = None,
             mirror: str | Path | None = None, progress: bool = True, timeout: float = 60.0,
             force: bool = False, option: str | None = None) -> dict:
    """Fetch, verify and import one released model; returns a summary.

    Args:
        model: registry name (case-insensitive), e.g. ``AD_CNN`` or ``SoundAQnet``.
        variant: SoundAQnet's ``PAQ1027`` (default), ``PAQ1039``, ``PAQ1041`` or ``PAQ1052``.
        cache_dir: the soundaq cache (default ``$SOUNDAQ_CACHE`` or ``~/.cache/soundaq``).
        mirror: folder, ``file://`` or ``http(s)://`` copy of the release at :data:`RELEASE_COMMIT`.
        progress: rich progress bars on stderr.
        timeout: seconds to wait for a server.
        force: import again even when the checkpoint is already in the cache.
        option: how the user can name a mirror, for the fix in messages (default: ``--mirror`` of
            ``soundaq models download``, or ``$SOUNDAQ_MIRROR``).

    Returns:
        ``{"model", "variant", "key", "checkpoint", "status" ("present"|"downloaded"|"resumed"),
        "weights", "bytes", "source"}``.

    Raises:
        PretrainedError: no pinned release file (PANNs) or no such variant.
        DownloadError: a transfer failed or a file did not match its pin (one line, the file and fix);
            nothing unverified is left under a final name.
        CheckpointError: the verified file does not fit the net (would mean a registry bug).
    """
    from soundaq.models_zoo.checkpoints import import_original

    rel = released(model, variant)
    out = checkpoint_path(rel.model, rel.variant, cache_dir)
    source = default_mirror(mirror)
    if out.is_file() and not force:
        return _summary(rel, out, "present", source)
    files = (rel.file, *NORM_FILES)
    results = fetch_files(files, release_dir(cache_dir), source, option=option or _option(mirror),
                          progress=progress, timeout=timeout, title=rel.key)
    weights, norm_mel, norm_loud = _paths(results)
    import_original(rel.model, weights, norm_mel, norm_loud, out,
                    extra_provenance={"release_commit": RELEASE_COMMIT, "release_path": rel.file.release_path,
                                      "git_blob_id": rel.file.digest, "variant": rel.variant,
                                      "downloaded_from": _public(source)})
    status = {"present": "imported"}.get(results[0].status, results[0].status)
    return _summary(rel, out, status, source, results[0].fetched_bytes)


def _public(source: str) -> str:
    """A source as it may be recorded: no user:password part of a URL."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(source)
    if parts.username or parts.password:
        host = parts.hostname or ""
        return urlunsplit((parts.scheme, host + (f":{parts.port}" if parts.port else ""), parts.path, "", ""))
    return source


def _summary(rel: ReleasedWeights, out: Path, status: str, source: str, fetched: int = 0) -> dict:
    return {"model": rel.model, "variant": rel.variant, "key": rel.key, "checkpoint": str(out), "status": status,
            "weights": rel.file.release_path, "bytes": fetched, "source": _public(source)}


def download_many(names: Iterable[str] | str, variant: str | None = None, *, cache_dir=None, mirror=None,
                  progress: bool = True, timeout: float = 60.0, force: bool = False,
                  report: Callable[[dict], None] | None = None) -> list[dict]:
    """:func:`download` for several names, or ``"all"`` (every model with pinned weights, SoundAQnet in
    ``variant`` or its default; ``variant="all"`` takes its four). Keeps going past a failing model.

    Raises:
        DownloadError / PretrainedError: after every model was tried, when any failed: the first
            failure's one line and how many others failed.
    """
    if isinstance(names, str):
        names = [n for n in names.split(",") if n.strip()]
    names = list(names)
    wanted: list[tuple[str, str | None]] = []
    if [n.strip().lower() for n in names] == ["all"]:
        for model in dict.fromkeys(r.model for r in RELEASES):
            vs = variants(model)
            if not vs:
                wanted.append((model, None))
            elif variant is not None and variant.lower() == "all":
                wanted.extend((model, v) for v in vs)
            else:
                wanted.append((model, variant))
    else:
        for name in names:
            model = _canonical(name)
            if variant is not None and variant.lower() == "all" and variants(model):
                wanted.extend((model, v) for v in variants(model))
            else:
                wanted.append((model, variant))
    done, errors = [], []
    for model, var in wanted:
        try:
            summary = download(model, var, cache_dir=cache_dir, mirror=mirror, progress=progress, timeout=timeout,
                               force=force)
        except UserError as exc:
            errors.append(exc)
            summary = {"model": model, "variant": var, "status": "failed", "error": str(exc)}
        done.append(summary)
        if report:
            report(summary)
    if errors:
        more = f" (and {len(errors) - 1} more model(s) failed)" if len(errors) > 1 else ""
        raise type(errors[0])(str(errors[0]) + more)
    return done


def import_user_weights(model: str, weights: Path | str, norm_mel: Path | str | None = None,
                        norm_loudness: Path | str | None = None, *, cache_dir=None, mirror=None,
                        progress: bool = True, timeout: float = 60.0) -> dict:
    """File a user-supplied release weights file (e.g. PANNs') as ``--model NAME`` in the cache.

    Without ``norm_mel``/``norm_loudness`` the release's own pinned normalisation files are fetched
    (every released model shares them).

    Returns:
        :func:`soundaq.models_zoo.checkpoints.import_original`'s summary plus ``checkpoint``.
    """
    from soundaq.models_zoo.checkpoints import import_original

    model = _canonical(model)
    if model not in UNPINNED and variants(model):
        raise PretrainedError(f"{model}: its released variants are downloaded by name; fix: `soundaq models download "
                              f"{model} --variant V`, or import the file elsewhere with `soundaq import-original`")
    from soundaq.models_zoo.checkpoints import read_state_dict

    read_state_dict(weights)   # a missing or wrong file is named before anything is downloaded
    if norm_mel is None:
        norm_mel, default_loud = fetch_norm_files(cache_dir, mirror, progress=progress, timeout=timeout)
        norm_loudness = norm_loudness or default_loud
    out = checkpoint_path(model, None, cache_dir) if model in UNPINNED else pretrained_dir(cache_dir) / f"{model}.ckpt"
    summary = import_original(model, weights, norm_mel, norm_loudness, out,
                              extra_provenance={"source": "soundaq models import (user-supplied weights)"})
    summary["checkpoint"] = str(out)
    return summary


def resolve_checkpoint(name_or_path: str | Path, *, variant: str | None = None, cache_dir: Path | str | None = None,
                       mirror: str | Path | None = None, progress: bool = True, timeout: float = 60.0) -> Path:
    """A checkpoint path for a file path or a model name, downloading released weights on first use.

    Args:
        name_or_path: an existing checkpoint file, or a registry name (``AD_CNN``, ``SoundAQnet``, ...).
        variant: SoundAQnet's variant (default PAQ1027).
        cache_dir: the soundaq cache (default ``$SOUNDAQ_CACHE`` or ``~/.cache/soundaq``).
        mirror: folder, ``file://`` or ``http(s)://`` copy of the release (default ``$SOUNDAQ_MIRROR``).
        progress: show a download progress bar.
        timeout: seconds to wait for a server (as :func:`download`).

    Returns:
        The path of a soundaq checkpoint (``.ckpt``) to give to ``load_checkpoint``.

    Raises:
        PretrainedError: a name without released weights that was not imported, or a missing file.
        DownloadError: the first-use download failed (one line, the fix).
    """
    from soundaq.models_zoo.registry import NETS

    text = str(name_or_path).strip()
    path = Path(text).expanduser()
    if path.is_file():
        if variant is not None:
            raise PretrainedError(f"{path}: --variant goes with a model name, not a checkpoint file; fix: leave it out")
        return path
    if text.lower() not in {n.lower() for n in NETS}:
        if path.suffix or os.sep in text or "/" in text:
            raise PretrainedError(f"{path}: no such checkpoint file; fix: check the path, or pass a model name "
                                  f"({', '.join(NETS)})")
        _canonical(text)  # raises the registry's one line: unknown model, valid names
    model = _canonical(text)
    if model in UNPINNED:
        out = checkpoint_path(model, None, cache_dir)
        if variant is None and out.is_file():
            return out
        released(model)  # raises: how to import the user's own file
    out = checkpoint_path(model, variant, cache_dir)
    if out.is_file():
        return out
    # commands that take a model name (predict, leaderboard, caption, compare) have no --mirror option
    option = None if mirror is not None and str(mirror).strip() else (
        f"${MIRROR_ENV} (or run `soundaq models download {model} --mirror DIR|URL` first)")
    return Path(download(model, variant, cache_dir=cache_dir, mirror=mirror, progress=progress,
                         timeout=timeout, option=option)["checkpoint"])


# ---------------------------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------------------------

def pretrained_rows(cache_dir: Path | str | None = None) -> list[dict]:
    """One row per released file (and per name without pinned weights), for ``soundaq models``.

    Keys: ``model``, ``variant``, ``name`` (what ``--model`` takes), ``released`` ("pinned" or how it is
    published), ``release_path``, ``git_blob_id``, ``size`` (bytes or None), ``params``, the release's
    ``scene_acc``/``event_auc``/``paq_mse``, ``downloaded`` and ``checkpoint``.
    """
    from soundaq.models_zoo.registry import NETS

    rows = []
    for model, spec in NETS.items():
        rels = [r for r in RELEASES if r.model == model]
        if not rels:
            out = checkpoint_path(model, None, cache_dir) if model in UNPINNED else None
            rows.append({"model": model, "variant": None, "name": model,
                         "released": UNPINNED.get(model, "not released"), "release_path": None, "git_blob_id": None,
                         "size": None, "params": spec.params, "scene_acc": spec.paper_scene_acc,
                         "event_auc": spec.paper_event_auc, "paq_mse": spec.paper_paq_mse,
                         "downloaded": bool(out and out.is_file()), "checkpoint": str(out) if out else None})
            continue
        for r in rels:
            out = checkpoint_path(r.model, r.variant, cache_dir)
            default = r.variant is None or DEFAULT_VARIANT.get(r.model) == r.variant
            raw = release_dir(cache_dir) / r.file.name
            rows.append({"model": r.model, "variant": r.variant,
                         "name": r.model + ("" if default else f" --variant {r.variant}"),
                         "released": "pinned", "release_path": r.file.release_path, "git_blob_id": r.file.digest,
                         "size": r.file.size if r.file.size is not None else (raw.stat().st_size if raw.is_file()
                                                                              else None),
                         "params": spec.params, "scene_acc": r.scene_acc, "event_auc": r.event_auc,
                         "paq_mse": r.paq_mse, "downloaded": out.is_file(), "checkpoint": str(out)})
    return rows


def models_with_weights(cache_dir: Path | str | None = None) -> list[str]:
    """Registry names ``--model`` can resolve: pinned release weights, or a user import in the cache."""
    return list(dict.fromkeys(r["model"] for r in pretrained_rows(cache_dir)
                              if r["released"] == "pinned" or r["downloaded"]))


def verify_cached(cache_dir: Path | str | None = None) -> dict[str, bool]:
    """``{release file name: pin matches}`` for the release files present in the cache."""
    folder = release_dir(cache_dir)
    return {f.name: pin_matches(folder / f.name, f) for f in (*(r.file for r in RELEASES), *NORM_FILES)
            if (folder / f.name).exists()}


__all__ = [
    "DEFAULT_MIRROR",
    "DEFAULT_VARIANT",
    "MIRROR_ENV",
    "NORM_FILES",
    "RELEASES",
    "RELEASE_COMMIT",
    "UNPINNED",
    "DownloadError",
    "PretrainedError",
    "ReleasedWeights",
    "checkpoint_path",
    "download",
    "download_many",
    "fetch_norm_files",
    "import_user_weights",
    "models_with_weights",
    "pretrained_dir",
    "pretrained_rows",
    "released",
    "resolve_checkpoint",
    "variants",
]
