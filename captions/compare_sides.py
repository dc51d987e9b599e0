"""The two sides of ``soundaq compare``: what each command-line side names, predicted and with its signal facts.

A side is a clip (audio with a checkpoint, or ``TABLE#CLIP``), a window of a recording
(``AUDIO@START-END`` or ``TABLE#CLIP@START-END``) or a site (a whole predictions table: the mean of
its clips' predictions). :func:`resolve_sides` turns two of them into :class:`Side` records (one call
of :func:`~soundaq.models_zoo.predict.predict_files` for the audio ones) and adds each side's signal
facts (:mod:`soundaq.captions.signal`) when its audio is at hand.
"""
from __future__ import annotations

import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from soundaq.base.errors import UserError
from soundaq.base.predictions_table import window_label
from soundaq.base.vocab import EVENTS, QUALITIES, SCENES
from soundaq.captions.signal import SignalFacts, audio_signal_facts, pool
from soundaq.captions.tables import (
    WHOLE,
    Prediction,
    audio_suffixes,
    check_one_model,
    is_table,
    parse_window,
    predictions_from_frame,
    predictions_from_results,
    read_predictions_file,
)

if TYPE_CHECKING:
    from soundaq.models_zoo.features import Calibration

#: A channel policy (:func:`soundaq.models_zoo.features.opener.parse_channels`): ``auto``, ``mean`` or tracks.
Channels = str | tuple[int, ...]

_SPEC_WINDOW = re.compile(r"@(\d+(?:\.\d+)?-\d+(?:\.\d+)?)$")


@dataclass
class Side:
    """One of the two soundscapes compared.

    Attributes:
        name: ``A`` or ``B``.
        label: what it is, for people (``6.flac``, ``rec.wav, 30-60 s``, ``siteA.csv (12 clips)``).
        kind: ``clip``, ``window`` or ``site``.
        prediction: the (for a site: mean) prediction.
        signal: signal facts, or None when no audio was at hand (``signal_note`` says why).
        signal_note: why ``signal`` is missing or partial ("" when it is complete).
        clips: how many clips it pools.
        audio: the audio file of its signal facts (None: no audio at hand).
        span: the window of ``audio`` in seconds (None: the whole file).
        members: the ids of the clips it pools (a site).
    """

    name: str
    label: str
    kind: str
    prediction: Prediction
    signal: SignalFacts | None = None
    signal_note: str = ""
    clips: int = 1
    audio: Path | None = None
    span: tuple[float, float] | None = None
    members: tuple[str, ...] = ()


@dataclass(frozen=True)
class Spec:
    """A command-line side: ``PATH``, ``PATH@START-END``, ``TABLE#CLIP`` or ``TABLE#CLIP@START-END``."""

    text: str
    path: Path
    clip: str | None = None
    span: tuple[float, float] | None = None


def parse_spec(text: str) -> Spec:
    """Split a side's text into path, clip and window (see :class:`Spec`).

    Args:
        text: ``PATH``, ``PATH@START-END``, ``TABLE#CLIP`` or ``TABLE#CLIP@START-END`` (seconds).

    Returns:
        The :class:`Spec` (an existing path is taken whole, even with ``@`` or ``#`` in its name).

    Raises:
        UserError: a malformed window, a ``#CLIP`` on audio, a missing file.
    """
    text = str(text)
    if Path(text).exists():
        return Spec(text, Path(text))
    base, span = text, None
    m = _SPEC_WINDOW.search(text)
    if m:
        base = text[:m.start()]
        try:
            span = parse_window(m.group(1))
        except ValueError as err:
            raise UserError(f"{text}: {err}; fix: write the window as @START-END in seconds, e.g. @30-60") from None
    path, clip = Path(base), None
    if not path.exists() and "#" in base:
        head, _, clip = base.rpartition("#")
        path = Path(head)
    if not path.exists():
        raise UserError(f"{path}: file not found; fix: check the path (a table row is TABLE.csv#CLIP, "
                        "a window is FILE@START-END)")
    if clip is not None and not is_table(path):
        raise UserError(f"{text}: #CLIP selects a row of a predictions table, and {path.name} is not one; "
                        "fix: pass the audio file itself (with --checkpoint)")
    return Spec(text, path, clip or None, span)


def site_prediction(predictions: Sequence[Prediction], name: str) -> Prediction:
    """The mean prediction of a site's whole-clip rows: mean probabilities, ratings and ISO coordinates;
    the scene is the most probable one of the mean scene probabilities.

    Args:
        predictions: the site's rows (windows are left out when whole clips are there).
        name: the site's name (the mean prediction's ``clip``).

    Returns:
        One :class:`~soundaq.captions.tables.Prediction`, ``source`` saying how many clips it averages.

    Raises:
        UserError: rows of more than one acoustic model.
    """
    rows = [p for p in predictions if p.window == WHOLE] or list(predictions)
    model = check_one_model(rows)

    def mean(attr: str, names: Sequence[str]) -> dict[str, float]:
        return {n: float(np.mean([getattr(p, attr)[n] for p in rows])) for n in names}

    scene_p = mean("scene_probabilities", SCENES)
    return Prediction(clip=name, window=WHOLE, model=model, scene=max(SCENES, key=lambda s: scene_p[s]),
                      scene_probabilities=scene_p, events=mean("events", EVENTS), qualities=mean("qualities", QUALITIES),
                      isop=float(np.mean([p.isop for p in rows])), isoe=float(np.mean([p.isoe for p in rows])),
                      source=f"mean of {len(rows)} clips", data=rows[0].data)


def _find_row(predictions: Sequence[Prediction], spec: Spec) -> Prediction:
    window = window_label(*spec.span) if spec.span else WHOLE
    for p in predictions:
        if p.clip == spec.clip and p.window == window:
            return p
    have = sorted({p.window for p in predictions if p.clip == spec.clip})
    if not have:
        raise UserError(f"{spec.path}: no clip {spec.clip!r}; fix: pick one of its clips "
                        f"({', '.join(sorted({p.clip for p in predictions})[:5])}, ...)")
    raise UserError(f"{spec.path}: clip {spec.clip!r} has no window {window}; fix: use one of "
                    f"{', '.join(('@' + w) if w != WHOLE else '(whole clip)' for w in have)}")


def _audio_for(clip: str, audio_dir: Path | None) -> Path | None:
    if audio_dir is None:
        return None
    suffixes = audio_suffixes()
    for path in sorted(Path(audio_dir).glob(f"{glob_escape(clip)}.*")):
        if path.suffix.lower() in suffixes:
            return path
    return None


def glob_escape(text: str) -> str:
    """``text`` with the glob metacharacters ``*``, ``?`` and ``[`` escaped, for :meth:`Path.glob`."""
    return re.sub(r"([*?\[])", r"[\1]", text)


def _table_side(name: str, spec: Spec, audio_dir: Path | None) -> Side:
    predictions = read_predictions_file(spec.path)
    if spec.clip is None:
        if spec.span is not None:
            raise UserError(f"{spec.text}: a window needs a clip; fix: write TABLE#CLIP@START-END")
        whole = [p for p in predictions if p.window == WHOLE]
        site = site_prediction(predictions, spec.path.stem)
        return Side(name, f"{spec.path.name} ({len(whole)} clips)", "site", site, clips=len(whole),
                    members=tuple(p.clip for p in whole))
    row = _find_row(predictions, spec)
    span = ((row.start_s, row.end_s) if row.window != WHOLE and row.start_s is not None and row.end_s is not None
            else None)
    label = row.clip if row.window == WHOLE else f"{row.clip}, {row.window} s"
    return Side(name, f"{label} ({spec.path.name})", "clip" if row.window == WHOLE else "window", row,
                audio=_audio_for(row.clip, audio_dir), span=span)


def resolve_sides(a: Any, b: Any, *, checkpoint: Path | str | None = None, calibration: Calibration | None = None,
                  audio_dir: Path | str | None = None, batch_size: int = 8, device: str = "cpu", signal: bool = True,
                  channels: Channels = "auto") -> tuple[Side, Side]:
    """The two sides of a comparison, predicted (audio: one call of
    :func:`~soundaq.models_zoo.predict.predict_files`) and with their signal facts.

    Args:
        a: side A: spec text (see :class:`Spec`), :class:`~soundaq.captions.tables.Prediction`, a ``soundaq
            predict`` object, or a predictions DataFrame (one row: a clip; more: a site).
        b: side B, the same kinds.
        checkpoint: acoustic model for audio sides.
        calibration: of the audio (level, loudness); default ARAUS's.
        audio_dir: where the audio of table rows lies (``<clip>.<ext>``), for their signal facts.
        batch_size: clips per forward pass of the acoustic model.
        device: torch device of the acoustic model.
        signal: compute signal facts (the ISO 532-1 loudness takes seconds per clip).
        channels: the channel policy of audio sides (default ``auto``: silent tracks left out).

    Returns:
        ``(A, B)`` as :class:`Side` records.

    Raises:
        UserError: a bad spec or table, audio without a checkpoint, audio that cannot be predicted,
            two sides from different acoustic models.
    """
    folder = Path(audio_dir) if audio_dir else None
    sides: list[Side | None] = [None, None]
    pending: list[tuple[int, Spec]] = []
    for i, (name, item) in enumerate((("A", a), ("B", b))):
        given = _given_side(name, item, folder)
        if isinstance(given, Spec):
            pending.append((i, given))
        else:
            sides[i] = given
    if pending:
        _predict_audio(pending, sides, checkpoint, calibration, batch_size, device, channels)
    side_a, side_b = sides
    assert side_a is not None and side_b is not None     # every side is given or predicted (or raised)
    if side_a.prediction.model != side_b.prediction.model:
        raise UserError(f"A was predicted by {side_a.prediction.model} and B by {side_b.prediction.model}; "
                        "fix: compare predictions of one acoustic model")
    if signal:
        for side in (side_a, side_b):
            _add_signal(side, calibration, folder, channels)
    return side_a, side_b


def _given_side(name: str, item: Any, audio_dir: Path | None) -> Side | Spec:
    """The side ``item`` gives without predicting anything, or the :class:`Spec` of audio to predict."""
    import pandas as pd

    if isinstance(item, Prediction):
        return Side(name, item.label, "clip" if item.window == WHOLE else "window", item)
    if isinstance(item, Mapping):
        p = predictions_from_results([item], f"side {name}")[0]
        return Side(name, p.label, "clip", p)
    if isinstance(item, pd.DataFrame):
        preds = predictions_from_frame(item, f"side {name}")
        if len(preds) == 1:
            return Side(name, preds[0].label, "clip", preds[0])
        return Side(name, f"{len(preds)} clips", "site", site_prediction(preds, name), clips=len(preds),
                    members=tuple(p.clip for p in preds if p.window == WHOLE))
    spec = parse_spec(item)
    return _table_side(name, spec, audio_dir) if is_table(spec.path) else spec


def _predict_audio(pending: list[tuple[int, Spec]], sides: list[Side | None], checkpoint: Path | str | None,
                   calibration: Calibration | None, batch_size: int, device: str, channels: Channels = "auto") -> None:
    """Predict the audio sides ``pending`` (index into ``sides``, spec) in one call and fill ``sides``."""
    from soundaq.base.filekinds import KINDS, sniff
    from soundaq.models_zoo.features import load_audio
    from soundaq.models_zoo.predict import predict_files

    for _, spec in pending:      # a file in the wrong role is named before anything is predicted
        kind = sniff(spec.path)
        if kind in KINDS and kind not in ("audio", "missing", "binary", "empty", "text"):
            raise UserError(f"{spec.path}: this looks like {KINDS[kind].looks_like}, not audio or a predictions "
                            f"table; fix: {KINDS[kind].goes_to}; compare takes audio files (with --checkpoint or "
                            "--model) or predictions tables")
    if checkpoint is None:
        raise UserError(f"{pending[0][1].path}: audio needs an acoustic model; fix: pass --checkpoint CKPT "
                        "(or compare rows of predictions tables)")
    with tempfile.TemporaryDirectory(prefix="soundaq-compare-") as tmp:
        paths: list[Path] = []
        for i, spec in pending:
            if spec.span is None:
                paths.append(spec.path)
                continue
            import soundfile as sf

            # only the window is read; load_audio's annotation says str, and it takes parse_channels' tuples too
            part, rate = load_audio(spec.path, spec.span, channels)  # type: ignore[arg-type]
            target = Path(tmp) / f"{'AB'[i]}-{spec.path.stem}.wav"
            sf.write(str(target), part, rate, subtype="DOUBLE")   # the very samples, no requantisation
            paths.append(target)
        results, failures = predict_files(paths, Path(checkpoint), calibration, batch_size, device, channels=channels)
    if failures or len(results) != len(paths):
        raise UserError(failures[0] if failures else "the audio could not be predicted")
    for (i, spec), result in zip(pending, results):
        p = predictions_from_results([{**result, "windows": []}], str(spec.path))[0]
        if spec.span is not None:
            label = window_label(*spec.span)
            p = Prediction(**{**p.to_dict(), "clip": spec.path.stem, "window": label,
                              "start_s": spec.span[0], "end_s": spec.span[1]})
            sides[i] = Side("AB"[i], f"{spec.path.name}, {label} s", "window", p, audio=spec.path, span=spec.span)
        else:
            sides[i] = Side("AB"[i], spec.path.name, "clip", p, audio=spec.path)


def _add_signal(side: Side, calibration: Calibration | None, audio_dir: Path | None, channels: Channels = "auto") -> None:
    """Put the signal facts of ``side`` (or why there are none: ``signal_note``) on it."""
    from soundaq.base.errors import first_line

    try:
        if side.kind == "site":
            if audio_dir is None:
                side.signal_note = "no audio (pass --audio DIR holding the clips' audio)"
                return
            _add_site_signal(side, calibration, audio_dir, channels)
            return
        if side.audio is None:
            side.signal_note = "no audio" + ("" if audio_dir else " (pass --audio DIR holding the clips' audio)")
            return
        side.signal = audio_signal_facts(side.audio, calibration, side.span, channels)
    except (UserError, ValueError) as err:
        side.signal, side.signal_note = None, first_line(err)


def _add_site_signal(side: Side, calibration: Calibration | None, audio_dir: Path, channels: Channels = "auto") -> None:
    """Pool the signal facts of a site's clips whose audio is in ``audio_dir``; say how many were found."""
    facts: list[SignalFacts] = []
    missing = 0
    clips = side.members
    for clip in clips:
        path = _audio_for(clip, audio_dir)
        if path is None:
            missing += 1
            continue
        facts.append(audio_signal_facts(path, calibration, channels=channels))
    if facts:
        side.signal = pool(facts)
    if missing:
        side.signal_note = (f"audio of {len(facts)} of {len(clips)} clips found in {audio_dir}" if facts
                            else f"none of its clips' audio is in {audio_dir}")
