"""``soundaq caption``: predictions (or audio) -> soundscape captions, written as CSV, JSONL and Markdown.

:func:`caption` is the Python API (a DataFrame back, nothing written); :func:`caption_run` is what the
command runs: it reads every input first (tables and, with a checkpoint, audio through
:func:`soundaq.models_zoo.predict.predict_files`, the code path of ``soundaq predict``), builds each prompt,
reuses every caption an earlier run of the same settings wrote into the output folder, asks for the
rest and writes ``captions.csv``, ``captions.jsonl``, ``captions.md`` and ``provenance.json`` atomically
(:mod:`soundaq.captions.caption_files`: the files, their columns, and reading an earlier run's back).
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from soundaq.base import predictions_table
from soundaq.base.errors import UserError
from soundaq.base.fileio import sha256_file
from soundaq.base.vocab import QUALITIES
from soundaq.captions.caption_files import CSV_COLUMNS, read_previous, reuse_key, write_outputs
from soundaq.captions.llm import ChatClient, Completion, LLMFailure, LLMSettings, default_cache_dir, endpoint
from soundaq.captions.prompt import build_prompt, prompt_facts, prompt_sha256
from soundaq.captions.tables import (
    Prediction,
    PredictionTableError,
    check_one_model,
    predictions_from_frame,
    predictions_from_results,
    read_predictions_file,
    split_inputs,
)
from soundaq.captions.template import template_caption

if TYPE_CHECKING:
    from soundaq.models_zoo.features import Calibration

CAPTIONERS = ("template", "llm")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def as_predictions(predictions, source: str = "predictions") -> list[Prediction]:
    """Whatever the API was given as a list of :class:`~soundaq.captions.tables.Prediction`: a DataFrame
    (predictions table), a path (CSV/JSON), ``soundaq predict`` objects, or Predictions already.
    """
    import pandas as pd

    if isinstance(predictions, pd.DataFrame):
        return predictions_from_frame(predictions, source)
    if isinstance(predictions, (str, Path)):
        return read_predictions_file(predictions)
    items = list(predictions)
    if items and all(isinstance(p, Prediction) for p in items):
        return items
    return predictions_from_results(items, source)


@dataclass
class CaptionJob:
    """One caption to make: the prediction, its prompt and the row that will hold the answer."""

    prediction: Prediction
    prompt: str
    row: dict = field(default_factory=dict)


def _base_row(p: Prediction, captioner: str, seed: int, settings: LLMSettings | None) -> tuple[str, dict]:
    facts = prompt_facts(p.scene, p.events, p.qualities)
    prompt = build_prompt(facts)
    row: dict[str, Any] = {"clip": p.clip, "window": p.window, "start_s": p.start_s, "end_s": p.end_s,
                           "acoustic_model": p.model, "scene": p.scene,
                           "events": "; ".join(f"{e}:{prob:.2f}" for e, prob in facts.events)}
    row.update({q: facts.agreements[q] for q in QUALITIES})
    row.update({f"rating_{q}": p.qualities[q] for q in QUALITIES})
    row.update({"isop": p.isop, "isoe": p.isoe, "prompt": prompt, "caption": "", "captioner": captioner,
                "model": settings.model if settings else "", "served_model": "",
                "base_url": endpoint(settings.base_url) if settings else "",
                "temperature": float(settings.temperature) if settings else None,
                "max_tokens": int(settings.max_tokens) if settings else None,
                "seed": seed if settings is None else settings.seed,
                "prompt_sha256": prompt_sha256(prompt), "finish_reason": "", "flags": "", "time": "", "data": p.data,
                "reasoning": ""})
    row["_facts"] = facts
    return prompt, row


def make_captions(predictions: Sequence[Prediction], captioner: str = "template", *, seed: int = 0,
                  llm: LLMSettings | None = None, cache_dir: Path | str | None = None,
                  previous: dict[tuple, dict] | None = None,
                  on_done: Callable[[str, object], None] | None = None,
                  report: Callable[[str], None] | None = None) -> dict:
    """Caption every prediction; the engine of :func:`caption` and :func:`caption_run`.

    ``report`` is called with the lines the LLM client says (retries, cache hits and the server they
    came from, the server's model list, the concurrency chosen).

    Returns:
        ``{"rows": [...], "failures": [one-line str], "not_asked": [labels], "fatal": str | None,
        "requests": int, "reused": int, "from_cache": int, "server": dict | None}``; rows are dicts with
        :data:`CSV_COLUMNS` and ``reasoning`` (captioned ones only, in input order).
    """
    if captioner not in CAPTIONERS:
        raise UserError(f"unknown captioner {captioner!r}; fix: use one of {', '.join(CAPTIONERS)}")
    if captioner == "llm" and llm is None:
        raise UserError("the llm captioner needs LLM settings; fix: pass --llm-model (and --base-url)")
    settings = llm if captioner == "llm" else None
    previous = previous or {}
    jobs: dict[tuple[str, str], CaptionJob] = {}
    for p in predictions:
        prompt, row = _base_row(p, captioner, seed, settings)
        jobs[p.key] = CaptionJob(p, prompt, row)
    reused = 0
    todo: dict[tuple[str, str], str] = {}
    for key, job in jobs.items():
        old = previous.get(reuse_key(job.row))
        if old is not None:
            job.row.update({k: old.get(k) or "" for k in ("time", "finish_reason", "served_model", "flags",
                                                          "reasoning")}, caption=old["caption"])
            reused += 1
        elif captioner == "template":
            job.row.update(caption=template_caption(job.row["_facts"], job.prediction.clip, job.prediction.window,
                                                    seed), time=_now())
        else:
            todo[key] = job.prompt
    failures, not_asked, fatal, requests, from_cache, server = [], [], None, 0, 0, None
    if todo:
        assert settings is not None         # only the llm captioner leaves captions to ask for
        client = ChatClient(settings, cache_dir, report=report)

        def done(key, outcome):
            if on_done:
                on_done(jobs[key].prediction.label, outcome)

        completions, failed, skipped, stop = client.complete_all(
            todo, on_done=done, labels={k: jobs[k].prediction.label for k in todo})
        for key, comp in completions.items():
            jobs[key].row.update(caption=comp.text, time=comp.created or _now(), finish_reason=comp.finish_reason,
                                 served_model=comp.served_model or comp.response_model,
                                 flags=";".join(comp.flags), reasoning=comp.reasoning)
        failures = [f"{jobs[k].prediction.label}: {err}" for k, err in failed.items()]
        not_asked = [jobs[k].prediction.label for k in skipped]
        fatal = str(stop) if stop else None
        requests, from_cache = client.requests, client.cache_hits
        server = client.server.to_dict() if client.server else None
    rows = []
    for job in jobs.values():
        job.row.pop("_facts", None)
        if job.row["caption"]:
            rows.append(job.row)
    return {"rows": rows, "failures": failures, "not_asked": not_asked, "fatal": fatal, "requests": requests,
            "reused": reused, "from_cache": from_cache, "server": server}


def caption(predictions, captioner: str = "template", *, llm: LLMSettings | None = None, seed: int = 0,
            cache_dir: Path | str | None = None):
    """Soundscape captions of predictions (the Python API of ``soundaq caption``; writes nothing but the
    LLM response cache).

    Args:
        predictions: a predictions table (DataFrame or CSV path), ``soundaq predict`` JSON (path or the
            list of objects, e.g. from :func:`soundaq.models_zoo.predict.predict_files`), or
            :class:`~soundaq.captions.tables.Prediction` rows. One acoustic model.
        captioner: ``template`` (offline, deterministic) or ``llm`` (needs ``llm``).
        llm: :class:`~soundaq.captions.llm.LLMSettings` of the server and model.
        seed: picks the template's sentence shapes; the LLM's seed is ``llm.seed``.
        cache_dir: the LLM response cache (default ``<soundaq cache>/llm``).

    Returns:
        DataFrame with :data:`CSV_COLUMNS`, one row per captioned clip and window;
        ``frame.attrs["failures"]`` lists the one-line failures (LLM), ``attrs["not_asked"]`` the
        captions left for a later run.

    Raises:
        PredictionTableError: bad predictions (one line naming file, row, column).
        UserError: an unknown captioner, ``llm`` without settings.
    """
    import pandas as pd

    preds = as_predictions(predictions)
    if preds:
        check_one_model(preds)
    result = make_captions(preds, captioner, seed=seed, llm=llm,
                           cache_dir=default_cache_dir(cache_dir) if captioner == "llm" else None)
    frame = pd.DataFrame(result["rows"], columns=list(CSV_COLUMNS))
    frame.attrs.update(failures=result["failures"], not_asked=result["not_asked"], fatal=result["fatal"])
    return frame


# --------------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------------
def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for name in ("soundaq", "openai"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def caption_run(inputs: Sequence[Path | str], out: Path | str, *, captioner: str = "template",
                checkpoint: Path | str | None = None, calibration: Calibration | None = None, batch_size: int = 8,
                device: str = "cpu",
                llm: LLMSettings | None = None, seed: int = 0, cache_dir: Path | str | None = None,
                report: Callable[[str], None] | None = None, progress: bool = True) -> dict:
    """Caption predictions tables and/or audio into ``out`` (the library call of ``soundaq caption``).

    Args:
        inputs: predictions tables (``.csv``/``.json``), audio files or folders of them.
        out: output folder (created); a rerun reuses the captions it already holds.
        captioner: ``template`` or ``llm``.
        checkpoint: the acoustic model for audio inputs (``soundaq train`` / ``soundaq import-original``).
        calibration: the audio's calibration, as ``soundaq predict`` (default ARAUS's).
        batch_size: clips per forward pass of the acoustic model.
        device: torch device of the acoustic model.
        llm: LLM settings (``captioner="llm"``).
        seed: the template's shape seed (the LLM's seed is ``llm.seed``).
        cache_dir: soundaq cache root (the LLM response cache is its ``llm/`` folder).
        report: called with each one-line problem as it happens (skipped audio, failed captions).
        progress: a rich progress bar while the LLM works.

    Returns:
        The summary written to ``provenance.json`` (counts, failures, settings without any key).

    Raises:
        UserError: bad input (nothing is written), audio without ``--checkpoint``, a mix of acoustic
            models, no input that could be predicted.
    """
    out = Path(out)
    say = report or (lambda msg: None)
    got = _read_inputs(inputs, checkpoint, calibration, batch_size, device, say)
    predictions = got.predictions
    model = check_one_model(predictions)
    _check_each_clip_once(predictions)
    import pandas as pd

    from soundaq.base.predictions_table import is_synthetic

    synthetic = is_synthetic(pd.DataFrame({"data": [p.data for p in predictions]}))
    previous = read_previous(out)
    bar = _Progress(progress and captioner == "llm", len(predictions))
    started = _now()
    with bar:       # Ctrl-C: the requests in flight are dropped; the CLI says "interrupted" once
        result = make_captions(predictions, captioner, seed=seed, llm=llm,
                               cache_dir=default_cache_dir(cache_dir) if captioner == "llm" else None,
                               previous=previous, on_done=lambda label, outcome: bar.advance(label, outcome, say),
                               report=say)   # rich prints stderr lines above its bar
    if result["fatal"]:
        say(f"stopped: {result['fatal']}")
    thought = sum("reasoning" in str(r.get("flags") or "").split(";") for r in result["rows"])
    if thought:
        say(f"{thought} answer(s) held the model's reasoning (<think> blocks or reasoning fields): left out of the "
            "captions, kept in captions.jsonl's reasoning field")
    summary = {
        "command": "soundaq caption", "started": started, "finished": _now(), "inputs": got.sources,
        "acoustic_model": model, "checkpoint": str(checkpoint) if got.audio else None, "captioner": captioner,
        "template_seed": seed if captioner == "template" else None,
        "llm": llm.public() if captioner == "llm" and llm else None,
        "llm_cache": str(default_cache_dir(cache_dir)) if captioner == "llm" else None,
        "synthetic": synthetic,
        "server": result["server"],
        "counts": _counts(len(predictions), result, len(got.skipped)),
        "failures": result["failures"], "not_asked": result["not_asked"], "audio_skipped": got.skipped,
        "fatal": result["fatal"],
        "stop_reason": result["fatal"] or (f"--max-requests {llm.max_requests} reached"
                                           if result["not_asked"] and llm else None),
        "versions": _versions(),
    }
    if got.audio:
        from soundaq.models_zoo.predict import results_frame

        predictions_table.write(results_frame(got.results), out / "predictions.csv")
    write_outputs(out, result["rows"], summary)
    return summary


@dataclass
class _Inputs:
    """What :func:`caption_run` read: the predictions, where they came from, the audio predicted (and skipped)."""

    predictions: list[Prediction] = field(default_factory=list)
    sources: list[dict[str, Any]] = field(default_factory=list)
    audio: list[Path] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _read_inputs(inputs: Sequence[Path | str], checkpoint: Path | str | None, calibration: Calibration | None,
                 batch_size: int, device: str, say: Callable[[str], None]) -> _Inputs:
    """Read every table and predict every audio input (through ``soundaq predict``'s code path).

    Raises:
        UserError: audio without a checkpoint, tables of several acoustic models, no audio that could be
            predicted (exit 1).
    """
    tables, audio = split_inputs(inputs)
    if audio and checkpoint is None:
        raise UserError(f"{audio[0]}: audio input needs an acoustic model; fix: pass --checkpoint CKPT "
                        "(or caption a predictions table)")
    got = _Inputs(audio=list(audio))
    for t in tables:
        got.predictions.extend(read_predictions_file(t))
        got.sources.append({"path": str(t), "sha256": sha256_file(t)})
    if tables:
        check_one_model(got.predictions)
    if audio:
        assert checkpoint is not None
        from soundaq.models_zoo.predict import predict_files

        got.results, got.skipped = predict_files(audio, Path(checkpoint), calibration, batch_size, device,
                                                 report=lambda msg: say(f"skipped {msg}"))
        if not got.results:
            raise UserError(f"no audio input could be predicted ({len(got.skipped)} skipped); see the messages "
                            "above", exit_code=1)
        got.predictions.extend(predictions_from_results(got.results, f"predictions of {Path(checkpoint).name}"))
        got.sources.append({"audio": [str(a) for a in audio], "checkpoint": str(checkpoint),
                            "checkpoint_sha256": sha256_file(checkpoint)})
    return got


def _check_each_clip_once(predictions: Sequence[Prediction]) -> None:
    """Raise PredictionTableError when a clip (and window) comes from two inputs."""
    seen: dict[tuple[str, str], str] = {}
    for p in predictions:
        if p.key in seen:
            raise PredictionTableError(f"{p.source}: clip {p.clip!r} (window {p.window}) also comes from "
                                       f"{seen[p.key]}; fix: caption each clip once (rename one of the files)")
        seen[p.key] = p.source


def _counts(n_predictions: int, result: dict[str, Any], n_skipped: int) -> dict[str, int]:
    """``provenance.json``'s counts of a run."""
    rows = result["rows"]
    return {"predictions": n_predictions, "captions": len(rows), "reused": result["reused"],
            "from_cache": result["from_cache"], "requests": result["requests"],
            "failed": len(result["failures"]),
            "truncated": sum("truncated" in str(r.get("flags") or "").split(";") for r in rows),
            "not_asked": len(result["not_asked"]), "audio_skipped": n_skipped}


class _Progress:
    """A rich progress bar over the captions (only for the LLM; the template is instant)."""

    def __init__(self, enabled: bool, total: int):
        # only on a terminal: elsewhere rich would leave an empty line among the messages
        self.enabled = enabled and total > 0 and sys.stderr.isatty()
        self.total, self._bar, self._task = total, None, None

    def __enter__(self):
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(TextColumn("captions"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                                 console=Console(file=sys.stderr), transient=True)
            self._bar.__enter__()
            self._task = self._bar.add_task("captions", total=self.total)
        return self

    def __exit__(self, *exc):
        if self._bar is not None:
            self._bar.__exit__(*exc)
        return False

    def advance(self, label: str, outcome, say: Callable[[str], None]) -> None:
        if isinstance(outcome, LLMFailure) and outcome.kind not in ("budget", "stopped") and not outcome.fatal:
            say(f"{label}: {outcome}")
        if isinstance(outcome, Completion) and "truncated" in outcome.flags:
            say(f"{label}: the answer was cut at --max-tokens (finish_reason length); the caption is kept, flagged "
                "'truncated' in captions.csv and captions.md; fix: raise --max-tokens")
        if self._bar is not None:
            self._bar.advance(self._task)

