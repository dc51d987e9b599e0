"""``soundaq caption``: soundscape captions of predictions, the language stage of SoundSCaper.

Each INPUT is a predictions table (the leaderboard's predictions/<model>.csv, `soundaq predict`'s CSV
or JSON) or audio files / folders with --checkpoint (predicted first, as `soundaq predict` does).
Long recordings get a caption per 30-s window and one for the whole. The prompt is the release's
(event threshold cascade 0.4/0.3/0.2, agreement words, neutral qualities dropped). Writes
OUT/captions.csv, captions.jsonl, captions.md and provenance.json; the same command again reuses
every caption already there. The `llm` captioner talks to any OpenAI-compatible server; its API key
is read from $SOUNDAQ_LLM_API_KEY (or $OPENAI_API_KEY, or the variable --api-key-env names), never
from the command line.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path


class _RefuseKey(argparse.Action):
    """``--api-key`` exists only to say no: a key on the command line ends up in shell histories and
    process lists. The value is never echoed."""

    def __call__(self, parser, namespace, values, option_string=None):
        from soundaq.captions.llm import KEY_VARIABLES

        parser.error(f"{option_string}: an API key is never taken from the command line; put it in "
                     f"${KEY_VARIABLES[0]} (or name your variable with --api-key-env)")


def _variable_name(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", text):
        raise argparse.ArgumentTypeError("give the NAME of an environment variable (like MY_LLM_KEY), not a key")
    return text


def llm_options() -> argparse.ArgumentParser:
    """The LLM captioner's options (shared by `soundaq caption` and `soundaq compare`)."""
    from soundaq.benchmark import options as o
    from soundaq.captions.llm import BASE_URL_VARIABLE, DEFAULT_BASE_URL, KEY_VARIABLES, MODEL_VARIABLE
    from soundaq.captions.prompt import MAX_TOKENS, TEMPERATURE

    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("LLM captioner (--captioner llm)")
    g.add_argument("--captioner", choices=("template", "llm"), default="template",
                   help="template: offline and deterministic (default); llm: an OpenAI-compatible server")
    g.add_argument("--base-url", default=os.environ.get(BASE_URL_VARIABLE) or DEFAULT_BASE_URL, metavar="URL",
                   help=f"chat-completions endpoint, e.g. http://localhost:11434/v1 for Ollama "
                        f"(default ${BASE_URL_VARIABLE}, else {DEFAULT_BASE_URL})")
    g.add_argument("--llm-model", default=os.environ.get(MODEL_VARIABLE), metavar="NAME",
                   help=f"the server's model name, e.g. gpt-4o-mini or llama3.1:8b (default ${MODEL_VARIABLE})")
    g.add_argument("--api-key", "--key", action=_RefuseKey, help=argparse.SUPPRESS)
    g.add_argument("--api-key-env", type=_variable_name, default=None, metavar="VAR",
                   help=f"environment variable holding the API key (default {' then '.join(KEY_VARIABLES)}; "
                        "local servers need none)")
    g.add_argument("--temperature", type=float, default=TEMPERATURE,
                   help=f"sampling temperature (default {TEMPERATURE:g}, the release's)")
    g.add_argument("--max-tokens", type=o.positive_int, default=MAX_TOKENS,
                   help=f"answer length limit in tokens (default {MAX_TOKENS}, the release's)")
    g.add_argument("--timeout", type=float, default=60.0, metavar="S", help="seconds per try (default 60)")
    g.add_argument("--retries", type=o.non_negative_int, default=4,
                   help="further tries after 429/5xx/network errors, with backoff (default 4)")
    g.add_argument("--concurrency", type=o.positive_int, default=4, help="requests in flight (default 4)")
    g.add_argument("--max-requests", type=o.non_negative_int, default=None, metavar="N",
                   help="send at most N requests in this run (cached answers are free); the rest wait for a rerun")
    g.add_argument("--prompt-role", choices=("system", "user"), default="system",
                   help="role of the prompt message (default system, as the release; some chat templates want user)")
    return p


def llm_settings_from_args(args):
    """:class:`~soundaq.captions.llm.LLMSettings` of the parsed options (None for the template captioner)."""
    from soundaq.base.errors import UserError
    from soundaq.captions.llm import MODEL_VARIABLE, LLMSettings

    if args.captioner != "llm":
        return None
    if not args.llm_model:
        raise UserError(f"--captioner llm needs a model; fix: pass --llm-model NAME (or set ${MODEL_VARIABLE})")
    if args.timeout <= 0:
        raise UserError(f"--timeout {args.timeout:g}: must be positive")
    return LLMSettings(model=args.llm_model, base_url=args.base_url, temperature=args.temperature,
                       max_tokens=args.max_tokens, seed=args.seed, timeout_s=args.timeout, retries=args.retries,
                       concurrency=args.concurrency, max_requests=args.max_requests, api_key_env=args.api_key_env,
                       role=args.prompt_role)


def register(sub) -> None:
    from soundaq.benchmark import options as o

    p = sub.add_parser("caption", help="soundscape captions of predictions or audio (template or any LLM server)",
                       allow_abbrev=False,
                       description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
                       parents=[o.output_options(help="output folder (created; a rerun resumes)"), llm_options(),
                                o.seed_options("the template's sentence shapes and the LLM request"),
                                o.cache_options(), o.progress_options(), o.calibration_options()])
    p.add_argument("inputs", nargs="+", type=Path, metavar="INPUT",
                   help="predictions tables (.csv/.json) or audio files/folders (with --checkpoint)")
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="acoustic model for audio inputs (a .ckpt from `soundaq train` or `soundaq import-original`)")
    p.add_argument("--batch-size", type=o.positive_int, default=8, help="windows per forward pass (default 8)")
    p.add_argument("--device", default="cpu", help="torch device for audio inputs (default cpu)")
    p.set_defaults(handler=_caption)


def _caption(args) -> int:
    from soundaq.benchmark.options import calibration_from_args
    from soundaq.captions.run import caption_run

    def say(msg: str) -> None:
        print(f"soundaq caption: {msg}", file=sys.stderr)

    summary = caption_run(args.inputs, args.out, captioner=args.captioner, checkpoint=args.checkpoint,
                          calibration=calibration_from_args(args), batch_size=args.batch_size, device=args.device,
                          llm=llm_settings_from_args(args), seed=args.seed, cache_dir=args.cache_dir, report=say,
                          progress=not args.no_progress)
    c = summary["counts"]
    missing = c["failed"] + c["not_asked"]
    tail = []
    if summary["captioner"] == "llm":
        tail.append(f"{c['requests']} request(s) sent")
    if c["reused"]:
        tail.append(f"{c['reused']} reused")
    if missing:
        why = "see above" if summary["fatal"] or not summary["stop_reason"] else summary["stop_reason"]
        tail.append(f"{missing} without a caption ({why}); rerun to retry")
    if c["audio_skipped"]:
        tail.append(f"{c['audio_skipped']} audio file(s) skipped")
    say(f"{c['captions']} caption(s) -> {args.out}/captions.csv" + (f"; {'; '.join(tail)}" if tail else ""))
    return 1 if missing or c["audio_skipped"] else 0
