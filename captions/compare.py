"""How two soundscapes differ, explained in three tiers after ADIFF (Deshmukh et al., "ADIFF: Explaining
audio difference using natural language", ICLR 2025).

ADIFF's tiers: (1) which events and objects differ; (2) a sentence on the events, the scene and the
signal's properties; (3) a full explanation that includes how a listener would feel. soundaq builds
each tier from its own predictions and features; the homes:

* the two sides (clips, windows of a recording, sites; predicted, with their signal facts):
  :mod:`soundaq.captions.compare_sides`;
* each tier's facts (events, scene and signal, qualities and the circumplex move):
  :mod:`soundaq.captions.compare_facts`;
* the template's words and the LLM prompts: :mod:`soundaq.captions.compare_texts`;
* here: the comparison itself (:class:`Comparison`, one typed record per tier with its texts), the
  Python API (:func:`compare`, a dict as ``compare.json`` holds it), ``compare.md`` and the run that
  writes them (:func:`compare_run`), the move drawn by :func:`soundaq.captions.figures.circumplex_move`.

The texts come from the template (default) or from the same LLM captioner as ``soundaq caption``, one
request per tier.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from soundaq.base.errors import UserError
from soundaq.captions.compare_facts import (
    EVENT_CHANGE,
    MOVE_MIN,
    QUALITY_CHANGE,
    EventFacts,
    FeelingFacts,
    SceneSignalFacts,
    TierFacts,
    rounded,
    tier_facts,
)
from soundaq.captions.compare_sides import Channels, Side, resolve_sides
from soundaq.captions.compare_texts import tier1_text, tier2_text, tier3_text, tier_prompt
from soundaq.captions.llm import ChatClient, LLMSettings, default_cache_dir
from soundaq.captions.replies import markdown_quote
from soundaq.captions.signal import SignalFacts

if TYPE_CHECKING:
    from soundaq.models_zoo.features import Calibration

F = TypeVar("F", EventFacts, SceneSignalFacts, FeelingFacts)


@dataclass
class Tier(Generic[F]):
    """One tier of a comparison: its facts and its text.

    Attributes:
        facts: the tier's facts (:mod:`soundaq.captions.compare_facts`).
        text: the captioner's text (None: the LLM gave none; ``Comparison.failures`` says why).
        template_text: the template's text, always there (for reference beside the LLM's).
        prompt: the LLM prompt (None with the template captioner).
        answered: whether the LLM answered (then ``flags`` and ``served_model`` are meaningful).
        flags: :data:`soundaq.captions.replies.FLAGS` of the LLM's answer (``truncated``...).
        served_model: the model that wrote the answer (the server's, else the response's).
    """

    facts: F
    text: str | None
    template_text: str
    prompt: str | None = None
    answered: bool = False
    flags: list[str] = field(default_factory=list)
    served_model: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The tier as ``compare.json`` holds it: the facts, then the texts (and the LLM's details)."""
        out = {**self.facts.to_dict(), "text": self.text, "template_text": self.template_text}
        if self.prompt is not None:
            out["prompt"] = self.prompt
            if self.answered:
                out.update(flags=list(self.flags), served_model=self.served_model)
        return out


@dataclass(frozen=True)
class SideSummary:
    """What ``compare.json`` says of one side: what it is and its prediction (rounded to 4 decimals).

    Attributes:
        name: ``A`` or ``B``.
        label: what it is, for people.
        kind: ``clip``, ``window`` or ``site``.
        clips: how many clips it pools.
        clip: the clip id (a site: the table's name).
        window: the window label (``whole`` for a whole clip).
        acoustic_model: the model that predicted it.
        scene: the predicted scene.
        isop: predicted ISOPleasant.
        isoe: predicted ISOEventful.
        qualities: the 8 predicted ratings (1-5).
        events: the 15 event probabilities.
        signal: the signal facts, or None.
        signal_note: why the signal facts are missing or partial, or None.
        data: the data the acoustic model was trained on (as its checkpoint says).
    """

    name: str
    label: str
    kind: str
    clips: int
    clip: str
    window: str
    acoustic_model: str
    scene: str
    isop: float
    isoe: float
    qualities: dict[str, float]
    events: dict[str, float]
    signal: SignalFacts | None
    signal_note: str | None
    data: Any

    @classmethod
    def of(cls, side: Side) -> SideSummary:
        """The summary of a resolved side."""
        p = side.prediction
        return cls(side.name, side.label, side.kind, side.clips, p.clip, p.window, p.model, p.scene, rounded(p.isop),
                   rounded(p.isoe), {q: rounded(v) for q, v in p.qualities.items()},
                   {e: rounded(v) for e, v in p.events.items()}, side.signal, side.signal_note or None, p.data)

    def to_dict(self) -> dict[str, Any]:
        """The side as ``compare.json`` holds it."""
        out = dict(vars(self))
        out["qualities"], out["events"] = dict(self.qualities), dict(self.events)
        out["signal"] = self.signal.to_dict() if self.signal else None
        return out


@dataclass
class Comparison:
    """How B differs from A: both sides, the three tiers and how they were written.

    Attributes:
        a: side A.
        b: side B.
        tier1: which events differ.
        tier2: events, scene and signal.
        tier3: the full explanation, with how it feels.
        captioner: ``template`` or ``llm``.
        llm: the LLM settings without secrets (``LLMSettings.public()``), or None.
        server: what the LLM server said of itself, or None.
        failures: one line per tier the LLM gave no text.
        figure: the circumplex figure's files, once :func:`compare_run` drew it.
    """

    a: SideSummary
    b: SideSummary
    tier1: Tier[EventFacts]
    tier2: Tier[SceneSignalFacts]
    tier3: Tier[FeelingFacts]
    captioner: str
    llm: dict[str, Any] | None = None
    server: dict[str, Any] | None = None
    failures: list[str] = field(default_factory=list)
    figure: list[str] | None = None

    @property
    def tiers(self) -> tuple[Tier[Any], Tier[Any], Tier[Any]]:
        """The three tiers in order."""
        return self.tier1, self.tier2, self.tier3

    def to_dict(self) -> dict[str, Any]:
        """The comparison as ``compare.json`` holds it (and :func:`compare` returns it)."""
        out: dict[str, Any] = {
            "a": self.a.to_dict(), "b": self.b.to_dict(), "tier1": self.tier1.to_dict(),
            "tier2": self.tier2.to_dict(), "tier3": self.tier3.to_dict(), "captioner": self.captioner,
            "llm": self.llm, "server": self.server, "failures": list(self.failures),
            "settings": {"event_change": EVENT_CHANGE, "quality_change": QUALITY_CHANGE, "move_min": MOVE_MIN}}
        if self.figure is not None:
            out["figure"] = list(self.figure)
        return out


def compare_sides(sa: Side, sb: Side, captioner: str = "template", llm: LLMSettings | None = None,
                  cache_dir: Path | str | None = None, report: Callable[[str], None] | None = None) -> Comparison:
    """The three tiers for two resolved sides: facts, template texts and, with ``llm``, the LLM's texts.

    Args:
        sa: side A.
        sb: side B.
        captioner: ``template`` or ``llm`` (one request per tier).
        llm: the LLM settings (required with ``llm``).
        cache_dir: the LLM cache's folder (default :func:`soundaq.captions.llm.default_cache_dir`).
        report: gets the LLM client's lines (retries, cache hits, the server's model list).

    Returns:
        The :class:`Comparison`; a tier the LLM gave no text has ``text`` None and its failure in
        ``failures``.

    Raises:
        UserError: the llm captioner without LLM settings.
    """
    facts = tier_facts(sa, sb)
    templates = {1: tier1_text(facts.tier1), 2: tier2_text(facts.tier1, facts.tier2),
                 3: tier3_text(facts.tier1, facts.tier2, facts.tier3)}
    tiers = (Tier(facts.tier1, templates[1], templates[1]), Tier(facts.tier2, templates[2], templates[2]),
             Tier(facts.tier3, templates[3], templates[3]))
    result = Comparison(SideSummary.of(sa), SideSummary.of(sb), *tiers, captioner=captioner)
    if captioner == "llm":
        if llm is None:
            raise UserError("the llm captioner needs LLM settings; fix: pass --llm-model (and --base-url)")
        _ask_llm(result, sa, sb, facts, llm, cache_dir, report)
    return result


def _ask_llm(result: Comparison, sa: Side, sb: Side, facts: TierFacts, llm: LLMSettings,
             cache_dir: Path | str | None, report: Callable[[str], None] | None) -> None:
    """Put the LLM's text of each tier (or its failure) on ``result``."""
    prompts = {k: tier_prompt(k, sa, sb, facts) for k in (1, 2, 3)}
    client = ChatClient(llm, default_cache_dir(cache_dir), report=report)
    answers, failed, not_asked, _ = client.complete_all(prompts, labels={k: f"tier {k}" for k in prompts})
    result.failures = [f"tier {k}: {err}" for k, err in failed.items()] + \
                      [f"tier {k}: not asked (--max-requests reached or the run stopped)" for k in not_asked]
    result.server = client.server.to_dict() if client.server else None
    result.llm = llm.public()
    for k, tier in zip((1, 2, 3), result.tiers):
        tier.prompt = prompts[k]
        tier.text = answers[k].text if k in answers else None
        if k in answers:
            tier.answered = True
            tier.flags = list(answers[k].flags)
            tier.served_model = answers[k].served_model or answers[k].response_model


def comparison(a: Any, b: Any, *, checkpoint: Path | str | None = None, calibration: Calibration | None = None,
               audio_dir: Path | str | None = None, captioner: str = "template", llm: LLMSettings | None = None,
               cache_dir: Path | str | None = None, signal: bool = True, batch_size: int = 8, device: str = "cpu",
               channels: Channels = "auto", report: Callable[[str], None] | None = None) -> Comparison:
    """How B differs from A, as a typed :class:`Comparison` (:func:`compare` gives it as a dict).

    Args: as :func:`compare`.

    Returns:
        The :class:`Comparison` of the two sides.

    Raises:
        UserError: see :func:`~soundaq.captions.compare_sides.resolve_sides`; an unknown captioner.
    """
    if captioner not in ("template", "llm"):
        raise UserError(f"unknown captioner {captioner!r}; fix: use template or llm")
    sa, sb = resolve_sides(a, b, checkpoint=checkpoint, calibration=calibration, audio_dir=audio_dir,
                           batch_size=batch_size, device=device, signal=signal, channels=channels)
    return compare_sides(sa, sb, captioner, llm, cache_dir, report)


def compare(a: Any, b: Any, **kwargs: Any) -> dict[str, Any]:
    """How B differs from A, in ADIFF's three tiers (the Python API of ``soundaq compare``; writes nothing
    but the LLM cache).

    Args:
        a: ``AUDIO``, ``AUDIO@START-END``, ``TABLE``, ``TABLE#CLIP``, ``TABLE#CLIP@START-END`` (text or
            path), a :class:`~soundaq.captions.tables.Prediction`, a ``soundaq predict`` object or a
            predictions DataFrame (see :func:`~soundaq.captions.compare_sides.resolve_sides`).
        b: side B, the same kinds.
        **kwargs: keyword arguments of :func:`comparison`: ``checkpoint`` (acoustic model for audio
            sides), ``calibration`` (of the audio), ``audio_dir`` (audio of table rows, for their signal
            facts), ``captioner`` (``template`` or ``llm``, with ``llm`` settings; one request per tier),
            ``cache_dir``, ``signal`` (compute level, N5 and spectral balance when audio is at hand),
            ``batch_size``, ``device``, ``channels`` (``auto``, ``mean``, ``1,2``;
            :func:`soundaq.models_zoo.features.opener.parse_channels`) and ``report`` (called with the
            LLM client's lines: retries, cache hits, the server's model list).

    Returns:
        ``{"a": {...}, "b": {...}, "tier1": {facts..., "text"}, "tier2": {...}, "tier3": {...},
        "captioner", "llm", "failures", "settings"}``; numbers are B - A where a difference is given.

    Raises:
        UserError: see :func:`~soundaq.captions.compare_sides.resolve_sides`; an unknown captioner.
    """
    return comparison(a, b, **kwargs).to_dict()


def _synthetic(side: SideSummary) -> bool:
    return bool(side.data) and "synthetic" in str(side.data).lower()


def render_markdown(result: Comparison) -> str:
    """``compare.md``: the two sides, the three tiers and the figure.

    Args:
        result: the comparison (with ``figure`` once drawn).

    Returns:
        The Markdown text.
    """
    a, b = result.a, result.b
    lines = ["# How B differs from A", ""]
    if _synthetic(a) or _synthetic(b):
        lines += ["> **[SYNTHETIC DATA]** predictions of soundaq's embedded synthetic set.", ""]
    lines += ["| | A | B |", "|---|---|---|",
              f"| what | {a.label} | {b.label} |",
              f"| acoustic model | {a.acoustic_model} | {b.acoustic_model} |",
              f"| scene | {a.scene} | {b.scene} |",
              f"| ISOPleasant, ISOEventful | {a.isop:+.2f}, {a.isoe:+.2f} | {b.isop:+.2f}, {b.isoe:+.2f} |"]
    sa, sb = a.signal.to_dict() if a.signal else None, b.signal.to_dict() if b.signal else None
    if sa and sb:
        lines += [f"| level (dB SPL) | {sa['level_db_spl']:.1f} | {sb['level_db_spl']:.1f} |",
                  f"| N5 loudness (sone) | {sa['n5_sone']:.1f} | {sb['n5_sone']:.1f} |",
                  f"| spectral centroid (Hz) | {sa['spectral_centroid_hz']:.0f} | {sb['spectral_centroid_hz']:.0f} |",
                  f"| low/high balance (dB) | {sa['low_high_db']:+.1f} | {sb['low_high_db']:+.1f} |"]
    events_a = "; ".join(f"{e.event}:{e.probability:.2f}" for e in result.tier1.facts.a_events) or "none"
    events_b = "; ".join(f"{e.event}:{e.probability:.2f}" for e in result.tier1.facts.b_events) or "none"
    lines += [f"| events kept | {events_a} | {events_b} |", ""]
    note = result.tier2.facts.signal_note
    if note:
        lines += [f"Signal facts: {note}.", ""]
    lines += _tier_sections(result)
    rows = result.tier3.facts.qualities
    lines += ["| quality | A | B | B - A |", "|---|---|---|---|"]
    lines += [f"| {r.quality} | {r.a:.2f} ({r.a_agreement}) | {r.b:.2f} ({r.b_agreement}) | {r.delta:+.2f} |"
              for r in rows]
    lines.append("")
    if result.figure:
        lines += [f"![A and B on the circumplex]({Path(result.figure[0]).name})", ""]
    if result.failures:
        lines += ["## Failures", ""] + [f"- {f}" for f in result.failures] + [""]
    return "\n".join(lines)


def _tier_sections(result: Comparison) -> list[str]:
    """``compare.md``'s three tier sections and the line on who wrote them (with the thresholds)."""
    who = "template" if result.captioner == "template" else f"LLM `{(result.llm or {}).get('model')}`"
    served = (result.server or {}).get("served_model")
    if served:
        who += f" (the server lists only `{served}`, which wrote them)"
    lines: list[str] = []
    titles = ("Tier 1: which events differ", "Tier 2: events, scene and signal",
              "Tier 3: the full explanation, with how it feels")
    for title, tier in zip(titles, result.tiers):
        lines += [f"## {title}", "", markdown_quote(tier.text if tier.text else "(no text: see the failures below)"),
                  ""]
        if "truncated" in tier.flags:
            lines += ["*Cut at max_tokens (finish_reason length): the text may stop mid-sentence; raise --max-tokens.*",
                      ""]
        if result.captioner == "llm":
            lines += [f"Template, for reference: {tier.template_text}", ""]
    lines += [f"Texts by the {who} captioner. Thresholds: an event differs when one side's caption names it and "
              f"the other's does not, or its probability changes by at least {EVENT_CHANGE}; a quality rises or "
              f"falls by at least {QUALITY_CHANGE} rating points.", ""]
    return lines


def compare_run(a: Any, b: Any, out: Path | str, **kwargs: Any) -> dict[str, Any]:
    """:func:`compare`, then write ``compare.json``, ``compare.md`` and ``circumplex_move.png/.pdf`` into
    ``out`` (atomically); the library call of ``soundaq compare``.

    Args:
        a: side A (see :func:`compare`).
        b: side B.
        out: the output folder.
        **kwargs: keyword arguments of :func:`comparison`.

    Returns:
        The comparison as ``compare.json`` holds it, with ``figure`` (the figure's files).

    Raises:
        UserError: see :func:`compare`.
    """
    from soundaq.base.fileio import atomic_write_json, atomic_write_text
    from soundaq.captions.figures import write_circumplex_move

    result = comparison(a, b, **kwargs)
    out = Path(out)
    c = result.tier3.facts.circumplex
    paths = write_circumplex_move(out, c.a, c.b, f"A: {result.a.label}", f"B: {result.b.label}",
                                  title="ISOPleasant x ISOEventful: A to B",
                                  note=f"predicted by {result.a.acoustic_model} (ISO/TS 12913-3 coordinates)")
    result.figure = [str(p) for p in paths]
    as_dict = result.to_dict()
    atomic_write_json(out / "compare.json", as_dict)
    atomic_write_text(out / "compare.md", render_markdown(result))
    return as_dict
