"""The command line's one vocabulary: options shared by several commands, declared once.

Each ``*_options()`` function returns an ``argparse`` parent parser (``add_help=False``) that a command
passes as ``parents=[...]``, so every command spells and documents an option the same way:

=====================  ===================================================================
option                 meaning (commands)
=====================  ===================================================================
``--data``             data source: ``embedded``, ``araus``, ``own`` or a plug-in's (train, leaderboard)
``--labels/--audio``   label folder (ARAUS) or labels CSV (own) / audio / feature folders (train,
``--features``         leaderboard, data prepare)
``--accelerator``      Lightning trainer settings (train, leaderboard)
``--devices``
``--strategy``
``--precision``
``--cache-dir``        the soundaq cache (train, leaderboard, data, features)
``--workers``          parallel worker processes (features, data prepare, train's data loaders)
``--no-progress``      no progress bars
``--engine``           where independent units run: ``local`` pool or ``ray`` (features, leaderboard, ablation)
``--address``          the Ray cluster's head ``HOST:PORT`` or ``auto`` (with ``--engine ray``)
``--out``              where results go
``--calibration``      level calibration of audio (features, predict, data prepare)
``--dbfs-offset``
``--calibration-db-spl``
``--resamples``        bootstrap resamples (leaderboard, jury)
``--seed``             the seed of everything random in a command
``--checkpoint``       a trained model: a checkpoint file, or one of the paper's models by name,
``--model``            downloaded on first use (predict; ``--model`` in train names the net to train)
``--variant``
``--loss-weighting``   how the 12 task losses add up (train, leaderboard)
``--models``           the zoo nets a command runs: all, or a list of names, variants and import paths
                       (leaderboard, models --cost)
=====================  ===================================================================

Spellings used before this vocabulary existed (``--cache``, ``--jobs``, ``--num-workers``,
``--calibration-db``, ``--n-boot``) still work for one release as hidden aliases that print a note
naming the new spelling.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _bounded_int(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value}: must be at least {minimum}")
        return value

    parse.__name__ = f"int>={minimum}"
    return parse


#: ``type=`` of counts that must be at least 1 (batch sizes, epochs, workers, clips).
positive_int = _bounded_int(1)
#: ``type=`` of counts that may be 0 (bootstrap resamples: 0 = no intervals).
non_negative_int = _bounded_int(0)


def devices(text: str) -> Any:
    """Lightning's ``devices``: a count (``2``), a list (``0,1``) or ``auto``."""
    text = str(text).strip()
    if text == "auto":
        return "auto"
    try:
        if "," in text:
            return [int(t) for t in text.split(",") if t.strip()]
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give a count (2), a list (0,1) or auto") from None


def batch_limit(text: str) -> int | float:
    """A batch limit as Lightning takes it: an int count, or a float fraction in (0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; give a batch count (4) or a fraction (0.25)") from None
    if value <= 0 or (not value.is_integer() and value > 1):
        raise argparse.ArgumentTypeError(f"{text!r}: give a positive batch count or a fraction in (0, 1]")
    return int(value) if value.is_integer() and "." not in text else value


class _RenamedOption(argparse.Action):
    """A hidden old spelling: stores into the new option's destination and says the new name once."""

    def __init__(self, option_strings, dest, new: str = "", **kwargs):
        self.new = new
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"soundaq: note: {option_string} is now {self.new} (the old spelling goes in the next release)",
              file=sys.stderr)
        setattr(namespace, self.dest, True if self.nargs == 0 else values)


def add_renamed(parser: argparse.ArgumentParser, old: str, new: str, dest: str, **kwargs) -> None:
    """Accept ``old`` as a hidden alias of ``new`` (same destination, no help line, no default)."""
    parser.add_argument(old, dest=dest, action=_RenamedOption, new=new, help=argparse.SUPPRESS,
                        default=argparse.SUPPRESS, **kwargs)


def add_loss_weighting(parser: argparse.ArgumentParser) -> None:
    """``--loss-weighting W``: how the 12 task losses add up (train, leaderboard; the value is read by
    :func:`soundaq.models_zoo.losses.parse_loss_weighting`, which names what is wrong with a bad one).
    """
    parser.add_argument("--loss-weighting", default=None, metavar="W",
                        help="how the 12 task losses add up: equal (the default plain sum), uncertainty, the "
                             "release's fixed schemes release-1 (all 1), release-2 (ISO 1, qualities 0.5), release-3 "
                             "(scene and events 1, the rest 0.5), or 12 weights L1,...,L12 in the order scene, "
                             "events, ISOP, ISOE, pleasant, eventful, chaotic, vibrant, uneventful, calm, annoying, "
                             "monotonous; docs/ablations.md")


def add_head_init(parser: argparse.ArgumentParser) -> None:
    """``--zero-head-bias``: start the output heads as the original does (train, leaderboard, ablation share
    the default, the heads at the training base rates: :mod:`soundaq.models_zoo.head_init`).
    """
    parser.add_argument("--zero-head-bias", action="store_true",
                        help="start the output heads as the original (zero biases, random weights); default, as "
                             "the leaderboard: at the training base rates with zero weights, see "
                             "models_zoo/head_init.py")


def _parent() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(add_help=False)


def data_options(required: bool = False, default: str | None = "embedded") -> argparse.ArgumentParser:
    """``--data`` (a data source of the registry, soundaq.models_zoo.data.sources) and its folders.

    Each source checks its own options and says in one line what it needs; the parser only offers them.
    """
    from soundaq.models_zoo.data.sources import SOURCES, source_names

    p = _parent()
    g = p.add_argument_group("data")
    plugins = [n for n in source_names() if n not in SOURCES]
    g.add_argument("--data", required=required, default=None if required else default,
                   choices=tuple(source_names()),
                   help="embedded: the bundled synthetic set (generated on first use)"
                        + ("" if required else ", the default") + "; araus: your ARAUS copy (--labels DIR with "
                        "--audio DIR or --features DIR); own: your own data (--labels LABELS.csv --audio DIR, "
                        "docs/data.md)" + (f"; installed plug-ins: {', '.join(plugins)}" if plugins else ""))
    g.add_argument("--labels", type=Path, default=None, metavar="PATH",
                   help="ARAUS label folder (--data araus) or labels CSV file (--data own)")
    g.add_argument("--audio", type=Path, default=None, metavar="DIR", help="audio folder (--data araus or own)")
    g.add_argument("--features", type=Path, default=None, metavar="DIR",
                   help="ARAUS features in the release layout (with --data araus, instead of --audio)")
    g.add_argument("--araus", type=Path, default=None, metavar="DIR",
                   help="ARAUS's own download (soundscapes/, maskers/, data/; with --data araus, instead of "
                        "--audio/--features): stimuli mixed in memory, ARAUS's folds and columns kept")
    return p


def embedded_options() -> argparse.ArgumentParser:
    """``--embedded-clips N``: the size of the embedded synthetic set (``--data embedded``; another source
    refuses it in one line). Its numbers are soundaq.models_zoo.data.synthetic's DEFAULT_CLIPS and
    MIN_CLIPS, spelt out so that ``--help`` does not import the generator.
    """
    p = _parent()
    p.add_argument("--embedded-clips", type=positive_int, default=None, metavar="N",
                   help="size of the embedded set (default 360; at least 12, the fewest that give every split each "
                        "scene: a quick trial)")
    return p


def data_from_args(args) -> dict:
    """The data module's source keyword arguments that :func:`data_options` (and, when the command has
    them, the calibration options) parsed: ``source``, ``labels_dir``, ``audio_dir``, ``features_dir``,
    ``calibration``, ``araus_dir``.
    """
    calibration = (calibration_from_args(args) if getattr(args, "calibration", None) is not None
                   or getattr(args, "dbfs_offset", None) is not None else None)
    return {"source": args.data, "labels_dir": args.labels, "audio_dir": args.audio,
            "features_dir": args.features, "calibration": calibration, "araus_dir": getattr(args, "araus", None)}


def trainer_options() -> argparse.ArgumentParser:
    """Lightning's own scaling options: no launcher of ours."""
    p = _parent()
    g = p.add_argument_group("trainer (Lightning)")
    g.add_argument("--accelerator", default="auto", help="cpu, gpu, auto (default auto)")
    g.add_argument("--devices", type=devices, default=1, help="a count, a list like 0,1, or auto (default 1)")
    g.add_argument("--strategy", default="auto", help="auto, ddp, ddp_spawn, ... (default auto)")
    g.add_argument("--precision", default=None, help="e.g. 32, bf16-mixed (default: 32, or the model's preset)")
    return p


def cache_options() -> argparse.ArgumentParser:
    """Parent parser of ``--cache-dir DIR`` (the soundaq cache; ``--cache`` is its old name)."""
    p = _parent()
    p.add_argument("--cache-dir", type=Path, default=None, metavar="DIR",
                   help="soundaq cache (default $SOUNDAQ_CACHE, else ~/.cache/soundaq)")
    add_renamed(p, "--cache", "--cache-dir", "cache_dir", type=Path)
    return p


def help_text(doc: str | None) -> str | None:
    """A command module's docstring, less its first paragraph, as ``--help`` prose: RST's ``double
    backticks`` become single ones (what a terminal reader expects).
    """
    if not doc or "\n\n" not in doc:
        return None
    return doc.split("\n\n", 1)[1].replace("``", "`")


def workers_options(default: int = 1, what: str = "parallel worker processes") -> argparse.ArgumentParser:
    """Parent parser of ``--workers N`` (``--jobs`` and ``--num-workers`` are its old names).

    Args:
        default: the default count; below 1 the option also accepts 0.
        what: what the workers are, for the help text.
    """
    p = _parent()
    p.add_argument("--workers", type=positive_int if default >= 1 else non_negative_int, default=default,
                   metavar="N", help=f"{what} (default {default})")
    add_renamed(p, "--jobs", "--workers", "workers", type=positive_int)
    add_renamed(p, "--num-workers", "--workers", "workers", type=non_negative_int)
    return p


def engine_options(local: str = "a process pool of --workers on this machine") -> argparse.ArgumentParser:
    """``--engine local|ray`` and ``--address``: see soundaq.base.engine and docs/scaling.md."""
    p = _parent()
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help=f"local: {local} (default); ray: one Ray task per "
                        "unit, on the cluster at --address or a private one-machine Ray (pip install 'soundaq[ray]')")
    p.add_argument("--address", default=None, metavar="HOST:PORT",
                   help="with --engine ray: the head node's address as `ray start --head` prints it, or auto "
                        "($RAY_ADDRESS, else the cluster started on this machine); default: a private Ray")
    return p


def progress_options() -> argparse.ArgumentParser:
    """Parent parser of ``--no-progress`` (no progress bars)."""
    p = _parent()
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def output_options(required: bool = True, help: str = "output folder") -> argparse.ArgumentParser:
    """Parent parser of ``--out``, the output folder.

    Args:
        required: whether ``--out`` must be given.
        help: the option's help text.
    """
    p = _parent()
    p.add_argument("--out", type=Path, required=required, default=None, help=help)
    return p


def seed_options(what: str = "everything random") -> argparse.ArgumentParser:
    """Parent parser of ``--seed`` (default 0); ``what`` names what it seeds in the help text."""
    p = _parent()
    p.add_argument("--seed", type=int, default=0, help=f"seed for {what} (default 0)")
    return p


def bootstrap_options(default: int = 1000, minimum: int = 0) -> argparse.ArgumentParser:
    """Parent parser of ``--resamples N`` (bootstrap resamples for the CIs; ``--n-boot`` is its old name).

    Args:
        default: the default number of resamples.
        minimum: the smallest accepted value (0: no intervals allowed).
    """
    p = _parent()
    kind = _bounded_int(minimum)
    p.add_argument("--resamples", type=kind, default=default, metavar="N",
                   help=f"bootstrap resamples for the confidence intervals (default {default}"
                        + (", 0: no intervals)" if minimum == 0 else ")"))
    add_renamed(p, "--n-boot", "--resamples", "resamples", type=kind)
    return p


def calibration_options() -> argparse.ArgumentParser:
    """How sample values map to pascals (the loudness feature needs absolute levels)."""
    p = _parent()
    g = p.add_argument_group("calibration")
    cal = g.add_mutually_exclusive_group()
    cal.add_argument("--calibration", type=Path, default=None, metavar="WAV",
                     help="recording of a calibration tone made with the same chain (see --calibration-db-spl)")
    cal.add_argument("--dbfs-offset", type=float, default=None, metavar="DB",
                     help="dB SPL of a full-scale RMS of 1.0 (default: the ARAUS calibration, 103.03 dB)")
    g.add_argument("--calibration-db-spl", type=float, default=60.0, metavar="DB",
                   help="level of the --calibration tone in dB SPL (default 60)")
    add_renamed(p, "--calibration-db", "--calibration-db-spl", "calibration_db_spl", type=float)
    return p


def calibration_from_args(args):
    """The :class:`~soundaq.models_zoo.features.Calibration` the calibration options ask for."""
    from soundaq.models_zoo.features import Calibration

    if getattr(args, "calibration", None) is not None:
        return Calibration.from_recording(args.calibration, args.calibration_db_spl)
    if getattr(args, "dbfs_offset", None) is not None:
        return Calibration.from_dbfs_offset(args.dbfs_offset)
    return Calibration.default()


def channels_options() -> argparse.ArgumentParser:
    """How the channels of a recording become the models' mono signal (``--channels``)."""
    p = _parent()
    p.add_argument("--channels", default="auto", metavar="auto|mean|1,2",
                   help="channel policy: auto (default) averages the channels that carry signal and leaves out "
                        "digitally silent tracks (unused inputs of a multitrack recorder), naming them; mean "
                        "averages every channel (the SoundSCaper release); 1,2 averages the named tracks")
    return p


def channels_from_args(args):
    """The channel policy ``--channels`` names (``"auto"``, ``"mean"`` or a tuple of 1-based tracks).

    Raises:
        UserError: a malformed policy (one line with the accepted forms).
    """
    from soundaq.models_zoo.features.opener import parse_channels

    return parse_channels(getattr(args, "channels", "auto"))


#: What ``--models`` takes wherever a command runs several zoo nets (leaderboard, models --cost).
MODELS_HELP = ("all (default: the paper's eight and installed plug-ins) or a comma-separated list of registry names, "
               "SoundAQnet variants (SoundAQnet[blocks=2,dilation=1-1-1], SoundAQnet_AFF: commas inside brackets "
               "stay with the variant) and plug-in import paths package.module:Class")


def models_from_arg(text: str | None) -> list[str]:
    """The nets a ``--models`` value names (:data:`MODELS_HELP`): every registered one
    (:func:`~soundaq.models_zoo.registry.list_nets`) for ``all`` or None (the option not given), else the
    list as given, commas inside a variant's brackets kept (:func:`~soundaq.models_zoo.registry.split_model_list`).

    Raises:
        UserError: unbalanced brackets; a value that names no model (``--models ""``, ``--models ,``): an
            empty value is a mistake (an unset shell variable, say), not a request for the whole zoo.
    """
    from soundaq.base.errors import UserError
    from soundaq.models_zoo.registry import list_nets, split_model_list

    if text is None or text.strip() == "all":
        return list_nets()
    names = split_model_list(text.strip())
    if not names:
        raise UserError(f"--models {text!r} names no model; fix: give registry names (see `soundaq models`), "
                        "e.g. --models AD_CNN,SoundAQnet, or --models all")
    return names


def checkpoint_options(required: bool = True) -> argparse.ArgumentParser:
    """Which trained model to use: ``--checkpoint FILE`` or ``--model NAME`` (``--variant`` for SoundAQnet).

    A name of the paper's models is resolved by
    :func:`soundaq.models_zoo.pretrained_weights.resolve_checkpoint` (downloaded from the release, pinned,
    on first use; ``$SOUNDAQ_MIRROR`` names an offline mirror). Use with :func:`checkpoint_from_args`.
    """
    p = _parent()
    g = p.add_argument_group("model")
    which = g.add_mutually_exclusive_group(required=required)
    which.add_argument("--checkpoint", default=None, metavar="FILE",
                       help="a .ckpt from `soundaq train`, `soundaq import-original` or `soundaq models download`")
    which.add_argument("--model", default=None, metavar="NAME",
                       help="one of the paper's trained models by name (see `soundaq models`), downloaded "
                            "from the release on first use (offline: set $SOUNDAQ_MIRROR to a mirror)")
    g.add_argument("--variant", default=None, metavar="V",
                   help="SoundAQnet's released variant: PAQ1027 (default, the paper's), PAQ1039, PAQ1041, PAQ1052")
    return p


def checkpoint_from_args(args, progress: bool = True) -> Path:
    """The checkpoint path that ``--checkpoint``/``--model``/``--variant`` (and ``--cache-dir``) name."""
    from soundaq.models_zoo.pretrained_weights import resolve_checkpoint

    return resolve_checkpoint(args.checkpoint if args.checkpoint is not None else args.model, variant=args.variant,
                              cache_dir=getattr(args, "cache_dir", None), progress=progress)


def inference_options() -> argparse.ArgumentParser:
    """How a trained model runs: windows per forward pass and the torch device."""
    p = _parent()
    p.add_argument("--batch-size", type=positive_int, default=8, help="30-s windows per forward pass (default 8)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default cpu)")
    return p


# -- the LLM captioner (soundaq caption, soundaq compare) ------------------------------------------------
class _RefuseKey(argparse.Action):
    """``--api-key`` exists only to say no: a key on the command line ends up in shell histories and
    process lists. The value is never echoed.
    """

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
    g.add_argument("--max-tokens", type=positive_int, default=MAX_TOKENS,
                   help=f"answer length limit in tokens (default {MAX_TOKENS}, the release's)")
    g.add_argument("--timeout", type=float, default=60.0, metavar="S", help="seconds per try (default 60)")
    g.add_argument("--retries", type=non_negative_int, default=4,
                   help="further tries after 429/5xx/network errors (and timeouts of a remote server), with "
                        "backoff, each said on the terminal (default 4)")
    g.add_argument("--concurrency", type=positive_int, default=None, metavar="N",
                   help="requests in flight (default: 1 for a local server, or the slots its /props reports; "
                        "4 for a remote one)")
    g.add_argument("--max-requests", type=non_negative_int, default=None, metavar="N",
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
