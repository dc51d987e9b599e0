"""How two soundscapes differ, explained in three tiers after ADIFF (Deshmukh et al., "ADIFF: Explaining
audio difference using natural language", ICLR 2025).

ADIFF's tiers: (1) which events and objects differ; (2) a sentence on the events, the scene and the
signal's properties; (3) a full explanation that includes how a listener would feel. soundaq builds
each tier from its own predictions and features:

* **tier 1** from the event probabilities: the events each side's caption would name (the release's
  threshold cascade, :func:`soundaq.captions.prompt.kept_events`) that the other side lacks, and the
  events both have whose probability differs by at least :data:`EVENT_CHANGE`;
* **tier 2** adds the predicted scenes and the signal facts of the audio (level, N5 loudness,
  spectral balance; :mod:`soundaq.captions.signal`) when audio is at hand;
* **tier 3** adds the qualities that rise or fall by at least :data:`QUALITY_CHANGE` rating points and
  the move on the ISOPleasant/ISOEventful plane (distance, the circumplex direction it points to,
  the quadrant of each side), drawn by :func:`soundaq.captions.figures.circumplex_move`.

A side is a clip (audio with a checkpoint, or ``TABLE#CLIP``), a window of a recording
(``AUDIO@START-END`` or ``TABLE#CLIP@START-END``) or a site (a whole predictions table: the mean of
its clips' predictions). The texts come from the template (default) or from the same LLM
captioner as ``soundaq caption``, one request per tier.
"""
from __future__ import annotations

import math
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from soundaq.base.errors import UserError
from soundaq.base.predictions_table import window_label
from soundaq.base.vocab import EVENTS, QUALITIES, SCENES
from soundaq.captions.compare_texts import (  # noqa: F401 - the template texts are part of this module's API
    feelings_text,
    signal_text,
    tier1_text,
    tier2_text,
    tier3_text,
    tier_prompt,
)
from soundaq.captions.llm import ChatClient, LLMSettings, default_cache_dir
from soundaq.captions.prompt import agreement, kept_events
from soundaq.captions.replies import markdown_quote
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

#: An event present on both sides is "more" on one when its probability differs by at least this.
EVENT_CHANGE = 0.2
#: A quality "rises" or "falls" when its rating changes by at least this (1-5 scale).
QUALITY_CHANGE = 0.25
#: A move on the ISOP/ISOE plane shorter than this is "staying put".
MOVE_MIN = 0.05
#: Compass of the circumplex: the quality each direction of a move points to (degrees from +ISOPleasant).
DIRECTIONS: tuple[tuple[float, str], ...] = (
    (0, "pleasant"), (45, "vibrant"), (90, "eventful"), (135, "chaotic"), (180, "annoying"),
    (225, "monotonous"), (270, "uneventful"), (315, "calm"))
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
        clips: how many clips it pools; members: their ids (a site).
        audio, span: the audio file (and window) of its signal facts.
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


# --------------------------------------------------------------------------------------------------
# sides
# --------------------------------------------------------------------------------------------------
def site_prediction(predictions: Sequence[Prediction], name: str) -> Prediction:
    """The mean prediction of a site's whole-clip rows: mean probabilities, ratings and ISO coordinates;
    the scene is the most probable one of the mean scene probabilities.
    """
    rows = [p for p in predictions if p.window == WHOLE] or list(predictions)
    model = check_one_model(rows)

    def mean(attr, names):
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
    span = (row.start_s, row.end_s) if row.window != WHOLE and row.start_s is not None else None
    label = row.clip if row.window == WHOLE else f"{row.clip}, {row.window} s"
    return Side(name, f"{label} ({spec.path.name})", "clip" if row.window == WHOLE else "window", row,
                audio=_audio_for(row.clip, audio_dir), span=span)


def resolve_sides(a, b, *, checkpoint: Path | str | None = None, calibration=None, audio_dir: Path | str | None = None,
                  batch_size: int = 8, device: str = "cpu", signal: bool = True,
                  channels="auto") -> tuple[Side, Side]:
    """The two sides of a comparison, predicted (audio: one call of
    :func:`~soundaq.models_zoo.predict.predict_files`) and with their signal facts.

    Args:
        a, b: spec text (see :class:`Spec`), :class:`~soundaq.captions.tables.Prediction`, a ``soundaq
            predict`` object, or a predictions DataFrame (one row: a clip; more: a site).
        checkpoint: acoustic model for audio sides.
        calibration: of the audio (level, loudness); default ARAUS's.
        audio_dir: where the audio of table rows lies (``<clip>.<ext>``), for their signal facts.
        signal: compute signal facts (the ISO 532-1 loudness takes seconds per clip).
        channels: the channel policy of audio sides (default ``auto``: silent tracks left out).

    Raises:
        UserError: a bad spec or table, audio without a checkpoint, audio that cannot be predicted,
            two sides from different acoustic models.
    """
    import pandas as pd

    audio_dir = Path(audio_dir) if audio_dir else None
    sides: list[Side | None] = [None, None]
    pending: list[tuple[int, Spec]] = []
    for i, (name, item) in enumerate((("A", a), ("B", b))):
        if isinstance(item, Prediction):
            sides[i] = Side(name, item.label, "clip" if item.window == WHOLE else "window", item)
        elif isinstance(item, Mapping):
            p = predictions_from_results([item], f"side {name}")[0]
            sides[i] = Side(name, p.label, "clip", p)
        elif isinstance(item, pd.DataFrame):
            preds = predictions_from_frame(item, f"side {name}")
            sides[i] = Side(name, preds[0].label, "clip", preds[0]) if len(preds) == 1 else \
                Side(name, f"{len(preds)} clips", "site", site_prediction(preds, name), clips=len(preds),
                     members=tuple(p.clip for p in preds if p.window == WHOLE))
        else:
            spec = parse_spec(item)
            if is_table(spec.path):
                sides[i] = _table_side(name, spec, audio_dir)
            else:
                pending.append((i, spec))
    if pending:
        _predict_audio(pending, sides, checkpoint, calibration, batch_size, device, channels)
    side_a, side_b = sides
    if side_a.prediction.model != side_b.prediction.model:
        raise UserError(f"A was predicted by {side_a.prediction.model} and B by {side_b.prediction.model}; "
                        "fix: compare predictions of one acoustic model")
    if signal:
        for side in (side_a, side_b):
            _add_signal(side, calibration, audio_dir, channels)
    return side_a, side_b


def _predict_audio(pending, sides, checkpoint, calibration, batch_size, device, channels="auto") -> None:
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
        paths = []
        for i, spec in pending:
            if spec.span is None:
                paths.append(spec.path)
                continue
            import soundfile as sf

            part, rate = load_audio(spec.path, spec.span, channels)    # only the window is read
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


def _add_signal(side: Side, calibration, audio_dir: Path | None, channels="auto") -> None:
    from soundaq.base.errors import first_line

    try:
        if side.kind == "site":
            if audio_dir is None:
                side.signal_note = "no audio (pass --audio DIR holding the clips' audio)"
                return
            return _add_site_signal(side, calibration, audio_dir, channels)
        if side.audio is None:
            side.signal_note = "no audio" + ("" if audio_dir else " (pass --audio DIR holding the clips' audio)")
            return
        side.signal = audio_signal_facts(side.audio, calibration, side.span, channels)
    except (UserError, ValueError) as err:
        side.signal, side.signal_note = None, first_line(err)


def _add_site_signal(side: Side, calibration, audio_dir: Path, channels="auto") -> None:
    facts, missing = [], 0
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


# --------------------------------------------------------------------------------------------------
# facts
# --------------------------------------------------------------------------------------------------
def _round(x: float, n: int = 4) -> float:
    return round(float(x), n)


def direction_of(d_isop: float, d_isoe: float) -> str:
    """The circumplex quality a move points to: the nearest of the 8 directions of :data:`DIRECTIONS`."""
    angle = math.degrees(math.atan2(d_isoe, d_isop)) % 360.0
    return min(DIRECTIONS, key=lambda d: min(abs(angle - d[0]), 360.0 - abs(angle - d[0])))[1]


def quadrant(isop: float, isoe: float) -> str:
    """ISO/TS 12913-3's quadrant names: vibrant (+,+), chaotic (-,+), monotonous (-,-), calm (+,-)."""
    if isop >= 0:
        return "vibrant" if isoe >= 0 else "calm"
    return "chaotic" if isoe >= 0 else "monotonous"


def event_facts(a: Prediction, b: Prediction) -> dict:
    """Tier 1: the kept events of each side and how they differ."""
    ka, kb = dict(kept_events(a.events)), dict(kept_events(b.events))
    changed = [{"event": e, "a": _round(a.events[e]), "b": _round(b.events[e]),
                "delta": _round(b.events[e] - a.events[e])}
               for e in ka if e in kb and abs(b.events[e] - a.events[e]) >= EVENT_CHANGE]
    changed.sort(key=lambda c: -abs(c["delta"]))
    return {
        "a_events": [{"event": e, "probability": p} for e, p in ka.items()],
        "b_events": [{"event": e, "probability": p} for e, p in kb.items()],
        "only_a": [{"event": e, "a": _round(a.events[e]), "b": _round(b.events[e])} for e in ka if e not in kb],
        "only_b": [{"event": e, "a": _round(a.events[e]), "b": _round(b.events[e])} for e in kb if e not in ka],
        "both": [e for e in ka if e in kb],
        "changed": changed,
    }


def scene_signal_facts(sa: Side, sb: Side) -> dict:
    """Tier 2: the scenes and the signal facts (differences B - A)."""
    a, b = sa.prediction, sb.prediction
    out = {"scene": {"a": a.scene, "b": b.scene, "same": a.scene == b.scene,
                     "a_probabilities": {s: _round(v) for s, v in a.scene_probabilities.items()},
                     "b_probabilities": {s: _round(v) for s, v in b.scene_probabilities.items()}},
           "signal": None,
           "signal_note": "; ".join(f"{s.name}: {s.signal_note}" for s in (sa, sb) if s.signal_note) or None}
    if sa.signal and sb.signal:
        fa, fb = sa.signal, sb.signal
        out["signal"] = {"a": fa.to_dict(), "b": fb.to_dict(),
                         "level_delta_db": _round(fb.level_db_spl - fa.level_db_spl, 2),
                         "n5_ratio": _round(fb.n5_sone / fa.n5_sone, 3) if fa.n5_sone > 0 else None,
                         "centroid_ratio": _round(fb.spectral_centroid_hz / fa.spectral_centroid_hz, 3),
                         "low_high_delta_db": _round(fb.low_high_db - fa.low_high_db, 2)}
    return out


def feeling_facts(a: Prediction, b: Prediction) -> dict:
    """Tier 3: quality changes (B - A) and the move on the ISOP/ISOE plane."""
    rows = [{"quality": q, "a": _round(a.qualities[q]), "b": _round(b.qualities[q]),
             "delta": _round(b.qualities[q] - a.qualities[q]), "a_agreement": agreement(a.qualities[q]),
             "b_agreement": agreement(b.qualities[q])} for q in QUALITIES]
    d_p, d_e = b.isop - a.isop, b.isoe - a.isoe
    dist = math.hypot(d_p, d_e)
    return {
        "qualities": rows,
        "rises": [r["quality"] for r in sorted(rows, key=lambda r: -r["delta"]) if r["delta"] >= QUALITY_CHANGE],
        "falls": [r["quality"] for r in sorted(rows, key=lambda r: r["delta"]) if r["delta"] <= -QUALITY_CHANGE],
        "circumplex": {"a": [_round(a.isop), _round(a.isoe)], "b": [_round(b.isop), _round(b.isoe)],
                       "delta": [_round(d_p), _round(d_e)], "distance": _round(dist),
                       "direction": direction_of(d_p, d_e) if dist >= MOVE_MIN else None,
                       "a_quadrant": quadrant(a.isop, a.isoe), "b_quadrant": quadrant(b.isop, b.isoe)},
    }


# --------------------------------------------------------------------------------------------------
# the comparison
# --------------------------------------------------------------------------------------------------
def compare_sides(sa: Side, sb: Side, captioner: str = "template", llm: LLMSettings | None = None,
                  cache_dir: Path | str | None = None, report: Callable[[str], None] | None = None) -> dict:
    """The three tiers for two resolved sides (facts, template texts and, with ``llm``, the LLM's texts;
    a tier the LLM gave no text has ``text`` None and its failure in ``failures``). ``report`` gets the
    LLM client's lines (retries, cache hits, the server's model list).
    """
    a, b = sa.prediction, sb.prediction
    facts = {"tier1": event_facts(a, b), "tier2": scene_signal_facts(sa, sb), "tier3": feeling_facts(a, b)}
    templates = {1: tier1_text(facts["tier1"]), 2: tier2_text(facts["tier1"], facts["tier2"]),
                 3: tier3_text(facts["tier1"], facts["tier2"], facts["tier3"])}
    tiers, failures = {}, []
    prompts = {k: tier_prompt(k, sa, sb, facts) for k in (1, 2, 3)} if captioner == "llm" else {}
    answers, server = {}, None
    if captioner == "llm":
        if llm is None:
            raise UserError("the llm captioner needs LLM settings; fix: pass --llm-model (and --base-url)")
        client = ChatClient(llm, default_cache_dir(cache_dir), report=report)
        answers, failed, not_asked, _ = client.complete_all(prompts, labels={k: f"tier {k}" for k in prompts})
        failures = [f"tier {k}: {err}" for k, err in failed.items()] + \
                   [f"tier {k}: not asked (--max-requests reached or the run stopped)" for k in not_asked]
        server = client.server.to_dict() if client.server else None
    for k, name in ((1, "tier1"), (2, "tier2"), (3, "tier3")):
        text = templates[k] if captioner == "template" else (answers[k].text if k in answers else None)
        tiers[name] = {**facts[name], "text": text, "template_text": templates[k]}
        if captioner == "llm":
            tiers[name]["prompt"] = prompts[k]
            if k in answers:
                tiers[name].update(flags=list(answers[k].flags), served_model=answers[k].served_model or
                                   answers[k].response_model)
    return {"a": _side_summary(sa), "b": _side_summary(sb), **tiers, "captioner": captioner,
            "llm": llm.public() if captioner == "llm" and llm else None, "server": server, "failures": failures,
            "settings": {"event_change": EVENT_CHANGE, "quality_change": QUALITY_CHANGE, "move_min": MOVE_MIN}}


def _side_summary(side: Side) -> dict:
    p = side.prediction
    return {"name": side.name, "label": side.label, "kind": side.kind, "clips": side.clips, "clip": p.clip,
            "window": p.window, "acoustic_model": p.model, "scene": p.scene,
            "isop": _round(p.isop), "isoe": _round(p.isoe),
            "qualities": {q: _round(v) for q, v in p.qualities.items()},
            "events": {e: _round(v) for e, v in p.events.items()},
            "signal": side.signal.to_dict() if side.signal else None, "signal_note": side.signal_note or None,
            "data": p.data}


def compare(a, b, *, checkpoint: Path | str | None = None, calibration=None, audio_dir: Path | str | None = None,
            captioner: str = "template", llm: LLMSettings | None = None, cache_dir: Path | str | None = None,
            signal: bool = True, batch_size: int = 8, device: str = "cpu", channels="auto",
            report: Callable[[str], None] | None = None) -> dict:
    """How B differs from A, in ADIFF's three tiers (the Python API of ``soundaq compare``; writes nothing
    but the LLM cache).

    Args:
        a, b: ``AUDIO``, ``AUDIO@START-END``, ``TABLE``, ``TABLE#CLIP``, ``TABLE#CLIP@START-END`` (text or
            path), a :class:`~soundaq.captions.tables.Prediction`, a ``soundaq predict`` object or a
            predictions DataFrame (see :func:`resolve_sides`).
        checkpoint: acoustic model for audio sides; calibration: of the audio.
        audio_dir: audio of table rows, for their signal facts.
        captioner: ``template`` or ``llm`` (with ``llm`` settings; one request per tier).
        signal: compute level, N5 and spectral balance when audio is at hand.
        report: called with the LLM client's lines (retries, cache hits, the server's model list).
        channels: the channel policy of audio sides (``auto``, ``mean``, ``1,2``;
            :func:`soundaq.models_zoo.features.opener.parse_channels`).

    Returns:
        ``{"a": {...}, "b": {...}, "tier1": {facts..., "text"}, "tier2": {...}, "tier3": {...},
        "captioner", "llm", "failures", "settings"}``; numbers are B - A where a difference is given.

    Raises:
        UserError: see :func:`resolve_sides`; an unknown captioner.
    """
    if captioner not in ("template", "llm"):
        raise UserError(f"unknown captioner {captioner!r}; fix: use template or llm")
    sa, sb = resolve_sides(a, b, checkpoint=checkpoint, calibration=calibration, audio_dir=audio_dir,
                           batch_size=batch_size, device=device, signal=signal, channels=channels)
    return compare_sides(sa, sb, captioner, llm, cache_dir, report)


def render_markdown(result: dict) -> str:
    """``compare.md``: the two sides, the three tiers and the figure."""
    a, b = result["a"], result["b"]
    lines = ["# How B differs from A", ""]
    if (a.get("data") and "synthetic" in str(a["data"]).lower()) or (b.get("data") and "synthetic" in str(b["data"]).lower()):
        lines += ["> **[SYNTHETIC DATA]** predictions of soundaq's embedded synthetic set.", ""]
    lines += ["| | A | B |", "|---|---|---|",
              f"| what | {a['label']} | {b['label']} |",
              f"| acoustic model | {a['acoustic_model']} | {b['acoustic_model']} |",
              f"| scene | {a['scene']} | {b['scene']} |",
              f"| ISOPleasant, ISOEventful | {a['isop']:+.2f}, {a['isoe']:+.2f} | {b['isop']:+.2f}, {b['isoe']:+.2f} |"]
    sa, sb = a.get("signal"), b.get("signal")
    if sa and sb:
        lines += [f"| level (dB SPL) | {sa['level_db_spl']:.1f} | {sb['level_db_spl']:.1f} |",
                  f"| N5 loudness (sone) | {sa['n5_sone']:.1f} | {sb['n5_sone']:.1f} |",
                  f"| spectral centroid (Hz) | {sa['spectral_centroid_hz']:.0f} | {sb['spectral_centroid_hz']:.0f} |",
                  f"| low/high balance (dB) | {sa['low_high_db']:+.1f} | {sb['low_high_db']:+.1f} |"]
    events_a = "; ".join(f"{e['event']}:{e['probability']:.2f}" for e in result["tier1"]["a_events"]) or "none"
    events_b = "; ".join(f"{e['event']}:{e['probability']:.2f}" for e in result["tier1"]["b_events"]) or "none"
    lines += [f"| events kept | {events_a} | {events_b} |", ""]
    note = result["tier2"].get("signal_note")
    if note:
        lines += [f"Signal facts: {note}.", ""]
    who = "template" if result["captioner"] == "template" else f"LLM `{result['llm']['model']}`"
    served = (result.get("server") or {}).get("served_model")
    if served:
        who += f" (the server lists only `{served}`, which wrote them)"
    for k, title in ((1, "Tier 1: which events differ"), (2, "Tier 2: events, scene and signal"),
                     (3, "Tier 3: the full explanation, with how it feels")):
        t = result[f"tier{k}"]
        lines += [f"## {title}", "", markdown_quote(t["text"] if t["text"] else "(no text: see the failures below)"),
                  ""]
        if "truncated" in t.get("flags", []):
            lines += ["*Cut at max_tokens (finish_reason length): the text may stop mid-sentence; raise --max-tokens.*",
                      ""]
        if result["captioner"] == "llm":
            lines += [f"Template, for reference: {t['template_text']}", ""]
    lines += [f"Texts by the {who} captioner. Thresholds: an event differs when one side's caption names it and "
              f"the other's does not, or its probability changes by at least {EVENT_CHANGE}; a quality rises or "
              f"falls by at least {QUALITY_CHANGE} rating points.", ""]
    rows = result["tier3"]["qualities"]
    lines += ["| quality | A | B | B - A |", "|---|---|---|---|"]
    lines += [f"| {r['quality']} | {r['a']:.2f} ({r['a_agreement']}) | {r['b']:.2f} ({r['b_agreement']}) | "
              f"{r['delta']:+.2f} |" for r in rows]
    lines.append("")
    if result.get("figure"):
        lines += [f"![A and B on the circumplex]({Path(result['figure'][0]).name})", ""]
    if result["failures"]:
        lines += ["## Failures", ""] + [f"- {f}" for f in result["failures"]] + [""]
    return "\n".join(lines)


def compare_run(a, b, out: Path | str, **kwargs) -> dict:
    """:func:`compare`, then write ``compare.json``, ``compare.md`` and ``circumplex_move.png/.pdf`` into
    ``out`` (atomically); the library call of ``soundaq compare``.
    """
    from soundaq.base.fileio import atomic_write_json, atomic_write_text
    from soundaq.captions.figures import write_circumplex_move

    result = compare(a, b, **kwargs)
    out = Path(out)
    c = result["tier3"]["circumplex"]
    paths = write_circumplex_move(out, tuple(c["a"]), tuple(c["b"]), f"A: {result['a']['label']}",
                                  f"B: {result['b']['label']}", title="ISOPleasant x ISOEventful: A to B",
                                  note=f"predicted by {result['a']['acoustic_model']} (ISO/TS 12913-3 coordinates)")
    result["figure"] = [str(p) for p in paths]
    atomic_write_json(out / "compare.json", result)
    atomic_write_text(out / "compare.md", render_markdown(result))
    return result
