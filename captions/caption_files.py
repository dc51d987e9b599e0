"""The files of ``soundaq caption``: ``captions.csv``, ``captions.jsonl``, ``captions.md`` and
``provenance.json``, written atomically, and the captions an earlier run left in a folder, read back so
that a rerun reuses them.

Output columns (:data:`CSV_COLUMNS`; ``captions.jsonl`` has the same fields, with ``events`` and
``qualities`` structured):

clip, window
    the clip id; ``all`` for the whole clip, ``START-END`` seconds for a window of a long recording
start_s, end_s, acoustic_model, scene
    the window's span (when known), the model that predicted, the predicted scene
events
    the events the prompt names with their rounded probabilities, ``Bird:0.91; Speech:0.55``
pleasant ... monotonous
    the agreement word of each quality (``Agree``, ``Neutral``, ...); ``rating_<quality>`` the rating
isop, isoe
    ISOPleasant and ISOEventful of the prediction
prompt, prompt_sha256
    the exact prompt (the one the ``llm`` captioner sends; the ``template`` one reads the same facts)
caption, captioner, model, served_model, base_url, temperature, max_tokens, seed, finish_reason, flags, time
    the caption; ``template`` or ``llm``; the LLM's model name as requested (empty for ``template``);
    the model that answered (the one the server lists when it lists one model and not the requested
    name, else the answer's ``model`` field); the server's endpoint (no credentials); the sampling
    settings; the server's finish reason; flags of the answer (``truncated``: cut at ``max_tokens``,
    ``reasoning``: the model's reasoning left out, ...; :data:`soundaq.captions.replies.FLAGS`),
    ``;``-separated; when the caption was made (ISO 8601). ``captions.jsonl`` also holds the
    ``reasoning`` left out of each caption.
data
    the predictions table's ``data`` column (marks the embedded synthetic set)
"""
from __future__ import annotations

import json
from pathlib import Path

from soundaq.base.fileio import atomic_write_json, atomic_write_text, output_folder, write_csv
from soundaq.base.vocab import QUALITIES
from soundaq.captions.replies import FLAGS, markdown_quote
from soundaq.captions.tables import WHOLE

#: The columns of each quality's rating (1-5) beside its agreement word.
RATING_COLUMNS = tuple(f"rating_{q}" for q in QUALITIES)
#: The columns of ``captions.csv``, in order (see the module docstring).
CSV_COLUMNS: tuple[str, ...] = (
    "clip", "window", "start_s", "end_s", "acoustic_model", "scene", "events", *QUALITIES, *RATING_COLUMNS,
    "isop", "isoe", "prompt", "caption", "captioner", "model", "served_model", "base_url", "temperature",
    "max_tokens", "seed", "prompt_sha256", "finish_reason", "flags", "time", "data")
#: Fields that must agree for an earlier caption to be reused (besides clip and window): the same
#: server too, so a caption is never credited to a server that did not write it.
REUSE_FIELDS = ("captioner", "model", "base_url", "temperature", "max_tokens", "seed", "prompt_sha256")


def reuse_key(row: dict) -> tuple:
    """What must agree for an earlier caption to be reused: clip, window and :data:`REUSE_FIELDS`
    (numbers compared as floats, empty cells and NaN as "").
    """

    def norm(v: object) -> float | str:
        if v is None or (isinstance(v, float) and v != v) or v == "":
            return ""
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)

    return (str(row["clip"]), str(row["window"]), *(norm(row.get(k)) for k in REUSE_FIELDS))


def read_previous(out: Path) -> dict[tuple, dict]:
    """Captions an earlier run wrote into ``out/captions.jsonl``, by (clip, window, settings, prompt sha256).
    A missing or damaged file gives nothing (those captions are made again; LLM ones come from the cache).
    """
    path = Path(out) / "captions.jsonl"
    found: dict[tuple, dict] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return found
    for line in lines:
        try:
            rec = json.loads(line)
            if isinstance(rec, dict) and str(rec.get("caption") or "").strip():
                found[reuse_key(rec)] = rec
        except (ValueError, KeyError, TypeError):
            continue
    return found


def jsonl_record(row: dict) -> dict:
    """``captions.jsonl`` record of a row: the CSV fields, ``events`` and ``qualities`` structured."""
    rec = {k: row.get(k) for k in CSV_COLUMNS if k not in QUALITIES and k not in RATING_COLUMNS}
    rec["reasoning"] = row.get("reasoning") or ""
    rec["events"] = [{"event": name, "probability": float(prob)} for name, prob in
                     (item.rsplit(":", 1) for item in row["events"].split("; ") if item)]
    rec["qualities"] = {q: {"rating": float(row[f"rating_{q}"]), "agreement": row[q]} for q in QUALITIES}
    return rec


def write_outputs(out: Path, rows: list[dict], summary: dict) -> list[Path]:
    """``captions.csv``, ``captions.jsonl``, ``captions.md``, ``provenance.json`` (each atomically)."""
    import pandas as pd

    out = output_folder(out)
    frame = pd.DataFrame(rows, columns=list(CSV_COLUMNS))
    write_csv(frame, out / "captions.csv")
    atomic_write_text(out / "captions.jsonl",
                      "".join(json.dumps(jsonl_record(r), ensure_ascii=False) + "\n" for r in rows))
    atomic_write_text(out / "captions.md", render_markdown(rows, summary))
    atomic_write_json(out / "provenance.json", summary)
    return [out / n for n in ("captions.csv", "captions.jsonl", "captions.md", "provenance.json")]


def render_markdown(rows: list[dict], summary: dict) -> str:
    """The readable ``captions.md``: what was captioned how, then each clip's facts and caption."""
    s = summary
    who = "template (offline, deterministic)" if s["captioner"] == "template" else \
        f"LLM `{s['llm']['model']}` at {s['llm']['base_url']} (temperature {s['llm']['temperature']:g}, " \
        f"max_tokens {s['llm']['max_tokens']}, seed {s['llm']['seed']})"
    served = (s.get("server") or {}).get("served_model")
    if served:
        who += f"; the server lists only `{served}`, which wrote these captions"
    lines = [f"# Soundscape captions ({s['acoustic_model']})", ""]
    if s.get("synthetic"):
        lines += ["> **[SYNTHETIC DATA]** these predictions come from soundaq's embedded synthetic set, not from "
                  "recordings rated by people.", ""]
    checkpoint = f" (checkpoint `{s['checkpoint']}`)" if s.get("checkpoint") else ""
    lines += [f"- acoustic model: `{s['acoustic_model']}`" + checkpoint,
              f"- captioner: {who}",
              f"- captions: {len(rows)} ({s['counts']['reused']} from an earlier run"
              + (f", {s['counts'].get('from_cache', 0)} from the LLM cache, {s['counts']['requests']} requests to "
                 "the server" if s["captioner"] == "llm" else "") + ")",
              f"- made: {s['finished']}", ""]
    problems = s.get("failures", []) + [f"{x}: not asked ({s['stop_reason']})" for x in s.get("not_asked", [])]
    if problems:
        lines += [f"**{len(problems)} without a caption** (run the same command again to retry):", ""]
        lines += [f"- {p}" for p in problems] + [""]
    cut = [r["clip"] if r["window"] == WHOLE else f"{r['clip']} ({r['window']} s)" for r in rows
           if "truncated" in str(r.get("flags") or "").split(";")]
    if cut:
        lines += [f"**{len(cut)} caption(s) cut at max_tokens** (flag `truncated` in captions.csv; they may stop "
                  f"mid-sentence; raise --max-tokens and run again in a new folder): {', '.join(cut)}", ""]
    for r in rows:
        title = r["clip"] if r["window"] == WHOLE else f"{r['clip']}, {r['window']} s"
        feel = ", ".join(f"{q}: {r[q]}" for q in QUALITIES if r[q] != "Neutral") or "all Neutral"
        lines += [f"## {title}", "",
                  f"- scene: {r['scene']}; ISOPleasant {float(r['isop']):+.2f}, ISOEventful {float(r['isoe']):+.2f}",
                  f"- events in the prompt: {r['events'] or 'none above 0.2'}",
                  f"- qualities: {feel}"]
        flags = [f for f in str(r.get("flags") or "").split(";") if f]
        if flags:
            lines.append(f"- flags: {'; '.join(f'{f} ({FLAGS.get(f, f)})' for f in flags)}")
        lines += ["", markdown_quote(r["caption"]), ""]
    if rows:
        lines += ["## The prompt of the first caption", "", "```text", rows[0]["prompt"].strip("\n"), "```", ""]
    return "\n".join(lines)
