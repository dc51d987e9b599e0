"""Captions from any OpenAI-compatible chat-completions server (a hosted API, vLLM, Ollama, llama.cpp's
server, LM Studio), through the official ``openai`` client.

* **The API key** is read from an environment variable only (:data:`KEY_VARIABLES`, or the variable
  named by ``LLMSettings.api_key_env``); it never appears in arguments, logs, outputs, the cache or
  provenance, and server messages are scrubbed of it. Local servers need no key.
* **Length limit**: sent as ``max_tokens`` (the release's parameter); a server that answers that the
  model wants ``max_completion_tokens`` (OpenAI's newer models) is asked again that way.
* **Retries**: the ``openai`` client retries 408/409/429/5xx answers and network errors
  ``retries`` times with exponential backoff (0.5 s doubling to 8 s, with jitter) and honours the
  server's ``Retry-After``; each try waits at most ``timeout_s``.
* **Concurrency**: at most ``concurrency`` requests in flight (threads sharing one client).
* **Budget**: at most ``max_requests`` requests reach the server in one run (a retried request
  counts once; answers from the cache count nothing); the rest wait for the next run.
* **Cache**: every answer is stored on disk (atomically) under the sha256 of (prompt, model,
  temperature, seed, max_tokens, role), so reruns and interrupted runs never ask twice.
* **Failures** are one line each (:class:`LLMFailure`): a refused key, an unknown model and an
  unreachable server stop the run (every further request would fail the same way); a refusal, an
  empty answer, a prompt too long for the context, a timeout or a server error after the retries
  lose only that caption.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Hashable, Mapping
from urllib.parse import urlsplit, urlunsplit

from soundaq.base.errors import UserError, first_line
from soundaq.base.fileio import atomic_write_json
from soundaq.captions.prompt import MAX_TOKENS, ROLE, TEMPERATURE

DEFAULT_BASE_URL = "https://api.openai.com/v1"
#: Environment variables searched for the API key, in order.
KEY_VARIABLES: tuple[str, ...] = ("SOUNDAQ_LLM_API_KEY", "OPENAI_API_KEY")
#: Environment variables that give the defaults of --base-url and --llm-model.
BASE_URL_VARIABLE = "SOUNDAQ_LLM_BASE_URL"
MODEL_VARIABLE = "SOUNDAQ_LLM_MODEL"
#: Sent as the key when no variable holds one (what local servers such as vLLM expect).
NO_KEY = "EMPTY"


@dataclass(frozen=True)
class LLMSettings:
    """One LLM captioner: the server, the model and how to ask it.

    Attributes:
        model: the server's model name (e.g. ``gpt-4o-mini``, ``llama3.1:8b``).
        base_url: the OpenAI-compatible endpoint, usually ending in ``/v1``.
        temperature, max_tokens: sampling settings (release: 1 and 250).
        seed: sent as the request's ``seed`` (servers that support it sample reproducibly); None: not sent.
        timeout_s: seconds one try may take; retries: further tries after 429/5xx/network errors.
        concurrency: requests in flight at once; max_requests: requests per run (None: no limit).
        api_key_env: the environment variable holding the key (None: :data:`KEY_VARIABLES`).
        role: the role of the single prompt message (release: ``system``; some chat templates want ``user``).
    """

    model: str
    base_url: str = DEFAULT_BASE_URL
    temperature: float = TEMPERATURE
    max_tokens: int = MAX_TOKENS
    seed: int | None = 0
    timeout_s: float = 60.0
    retries: int = 4
    concurrency: int = 4
    max_requests: int | None = None
    api_key_env: str | None = None
    role: str = ROLE

    def public(self) -> dict:
        """The settings as provenance: no key, and the URL without credentials or query."""
        out = asdict(self)
        out["base_url"] = safe_url(self.base_url)
        return out


def safe_url(url: str) -> str:
    """``url`` without user info, query or fragment (which may hold credentials)."""
    parts = urlsplit(str(url))
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def api_key_from_env(variable: str | None = None) -> tuple[str | None, str]:
    """``(key or None, the variable(s) searched)``: ``variable`` alone when given, else :data:`KEY_VARIABLES`."""
    names = (variable,) if variable else KEY_VARIABLES
    for name in names:
        value = os.environ.get(name, "").strip()
        if value:
            return value, name
    return None, " or ".join(names)


class LLMFailure(Exception):
    """One caption the server did not give; ``str()`` is one line. ``fatal``: every further request
    would fail the same way, so the run stops asking."""

    def __init__(self, kind: str, message: str, fatal: bool = False):
        super().__init__(message)
        self.kind, self.fatal = kind, fatal


@dataclass(frozen=True)
class Completion:
    """An answer: the caption text, whether it came from the cache, what the server said it ran."""

    text: str
    cached: bool
    response_model: str
    finish_reason: str
    created: str


class ResponseCache:
    """Answers on disk: ``ROOT/<k[:2]>/<k>.json`` for the request key ``k`` (sha256 hex).

    Entries hold the caption, the request settings and the prompt's sha256; never a key or a URL's
    credentials. A file that does not parse is treated as absent (and replaced on the next answer).
    """

    def __init__(self, root: Path | str | None):
        self.root = Path(root) if root is not None else None

    @staticmethod
    def key(prompt: str, settings: LLMSettings) -> str:
        request = {"prompt": prompt, "model": settings.model, "temperature": float(settings.temperature),
                   "seed": settings.seed, "max_tokens": int(settings.max_tokens), "role": settings.role}
        return hashlib.sha256(json.dumps(request, sort_keys=True).encode("utf-8")).hexdigest()

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict | None:
        if self.root is None:
            return None
        try:
            entry = json.loads(self._path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return entry if isinstance(entry, dict) and isinstance(entry.get("caption"), str) and entry["caption"] else None

    def put(self, key: str, entry: dict) -> None:
        if self.root is not None:
            atomic_write_json(self._path(key), entry)


def default_cache_dir(cache_dir: Path | str | None = None) -> Path:
    """``<soundaq cache>/llm`` (``--cache-dir``, else ``$SOUNDAQ_CACHE``, else ``~/.cache/soundaq``)."""
    from soundaq.base.paths import cache_root

    return cache_root(cache_dir) / "llm"


def _is_context_error(err) -> bool:
    body = getattr(err, "body", None)
    code = (body or {}).get("code") if isinstance(body, dict) else None
    text = str(err).lower()
    return code == "context_length_exceeded" or any(
        s in text for s in ("context length", "context_length", "maximum context", "context window",
                            "too many tokens", "prompt is too long", "exceeds the context"))


class ChatClient:
    """Caption prompts with one OpenAI-compatible server (see the module docstring).

    Args:
        settings: :class:`LLMSettings`.
        cache_dir: folder of the response cache (None: no cache).

    Raises:
        UserError: no model named, or the ``openai`` package is missing.
    """

    def __init__(self, settings: LLMSettings, cache_dir: Path | str | None = None):
        try:
            import openai
        except ImportError:
            raise UserError("the llm captioner needs the openai package; fix: pip install openai") from None
        if not str(settings.model or "").strip():
            raise UserError(f"no LLM model named; fix: pass --llm-model NAME or set ${MODEL_VARIABLE}")
        self.settings = settings
        self.url = safe_url(settings.base_url)
        key, self.key_variable = api_key_from_env(settings.api_key_env)
        self._secret = key
        self.cache = ResponseCache(cache_dir)
        self.requests = 0          # requests sent to the server in this run (cache hits not counted)
        self._lock = threading.Lock()
        # newer OpenAI models take the length limit as max_completion_tokens and reject max_tokens
        self._length_param = "max_tokens"
        self._client = openai.OpenAI(api_key=key or NO_KEY, base_url=settings.base_url,
                                     timeout=float(settings.timeout_s), max_retries=int(settings.retries))

    @property
    def has_key(self) -> bool:
        return self._secret is not None

    def _scrub(self, text: str, limit: int = 200) -> str:
        text = " ".join(str(text).split())
        if self._secret and len(self._secret) >= 4:
            text = text.replace(self._secret, "[key]")
        return text if len(text) <= limit else text[: limit - 3] + "..."

    def _server_says(self, err) -> str:
        body = getattr(err, "body", None)
        if isinstance(body, dict) and isinstance(body.get("message"), str):
            return self._scrub(body["message"])
        return self._scrub(first_line(err))

    def _classify(self, err) -> LLMFailure:
        import openai

        s, url, tries = self.settings, self.url, self.settings.retries + 1
        if isinstance(err, (openai.AuthenticationError, openai.PermissionDeniedError)):
            have = f"the key in ${self.key_variable}" if self.has_key else f"no key (${self.key_variable} is not set)"
            return LLMFailure("auth", f"{url} refused the request with {have} (HTTP {err.status_code}); "
                                      f"fix: set ${self.key_variable.split(' or ')[0]} to a valid API key", fatal=True)
        if isinstance(err, openai.NotFoundError):
            return LLMFailure("model", f"{url}: model {s.model!r} not found (HTTP 404: {self._server_says(err)}); "
                                       f"fix: pass --llm-model with a model the server lists ({url}/models), and "
                                       "check that --base-url ends in /v1", fatal=True)
        if isinstance(err, openai.BadRequestError):
            if _is_context_error(err):
                return LLMFailure("context", f"the prompt is too long for {s.model!r}'s context (HTTP 400: "
                                             f"{self._server_says(err)}); fix: use a model with a longer context")
            return LLMFailure("bad_request", f"{url} rejected the request (HTTP 400: {self._server_says(err)}); "
                                             "fix: check --llm-model and the server's supported parameters", fatal=True)
        if isinstance(err, openai.RateLimitError):
            quota = "insufficient_quota" in str(getattr(err, "body", "")) or "quota" in str(err).lower()
            return LLMFailure("rate_limit", f"{url} still rate-limits (HTTP 429) after {tries} tries"
                                            f"{' (quota exhausted)' if quota else ''}; fix: lower --concurrency, "
                                            "or rerun later (finished captions are kept)", fatal=quota)
        if isinstance(err, openai.APITimeoutError):
            return LLMFailure("timeout", f"{url} gave no answer within {s.timeout_s:g} s ({tries} tries); "
                                         "fix: raise --timeout or check the server")
        if isinstance(err, openai.APIConnectionError):
            cause = err.__cause__ or err.__context__
            why = self._scrub(first_line(cause)) if cause else "connection failed"
            return LLMFailure("connection", f"cannot reach {url} ({why}; {tries} tries); "
                                            "fix: start the server or check --base-url", fatal=True)
        if isinstance(err, openai.APIStatusError):
            return LLMFailure("server", f"{url} failed (HTTP {err.status_code}: {self._server_says(err)}) after "
                                        f"{tries} tries; fix: rerun later (finished captions are kept)")
        return LLMFailure("server", f"{url}: {type(err).__name__}: {self._server_says(err)}")

    def _ask(self, prompt: str):
        import openai

        s = self.settings
        for _ in range(2):
            param = self._length_param
            kwargs = {"model": s.model, "messages": [{"role": s.role, "content": prompt}],
                      "temperature": float(s.temperature), param: int(s.max_tokens)}
            if s.seed is not None:
                kwargs["seed"] = int(s.seed)
            try:
                return self._client.chat.completions.create(**kwargs)
            except openai.BadRequestError as err:
                if param == "max_tokens" and "max_completion_tokens" in str(err):
                    self._length_param = "max_completion_tokens"    # ask again, the way this model wants
                    continue
                raise self._classify(err) from None
            except openai.OpenAIError as err:
                raise self._classify(err) from None
        raise LLMFailure("bad_request", f"{self.url} rejected both max_tokens and max_completion_tokens", fatal=True)

    def _answer(self, response) -> tuple[str, str, str]:
        choices = getattr(response, "choices", None) or []
        if not choices:
            raise LLMFailure("empty", f"{self.url} answered without any choice; fix: check the server's logs")
        choice = choices[0]
        message = choice.message
        finish = str(choice.finish_reason or "")
        refusal = getattr(message, "refusal", None)
        if refusal or finish == "content_filter":
            why = self._scrub(refusal or "content filter", 120)
            raise LLMFailure("refusal", f"{self.settings.model!r} refused to caption ({why})")
        text = (message.content or "").strip()
        if not text:
            hint = (f"; fix: raise --max-tokens (the model spent all {self.settings.max_tokens} before answering)"
                    if finish == "length" else "; fix: try again or another model")
            raise LLMFailure("empty", f"{self.settings.model!r} returned no text (finish_reason "
                                      f"{finish or 'none'}){hint}")
        return text, str(getattr(response, "model", "") or ""), finish

    def complete(self, prompt: str) -> Completion:
        """The caption of one prompt: from the cache, else from the server (then cached).

        Raises:
            LLMFailure: the server gave no caption (kind ``budget`` when ``max_requests`` is spent).
        """
        key = self.cache.key(prompt, self.settings)
        hit = self.cache.get(key)
        if hit is not None:
            return Completion(hit["caption"], True, str(hit.get("response_model", "")),
                              str(hit.get("finish_reason", "")), str(hit.get("created", "")))
        with self._lock:
            limit = self.settings.max_requests
            if limit is not None and self.requests >= limit:
                raise LLMFailure("budget", f"--max-requests {limit} reached")
            self.requests += 1
        text, response_model, finish = self._answer(self._ask(prompt))
        created = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        self.cache.put(key, {"caption": text, "response_model": response_model, "finish_reason": finish,
                             "created": created, "prompt_sha256": hashlib.sha256(prompt.encode("utf-8")).hexdigest(),
                             "request": {k: v for k, v in self.settings.public().items()
                                         if k in ("model", "temperature", "seed", "max_tokens", "role")}})
        return Completion(text, False, response_model, finish, created)

    def complete_all(self, prompts: Mapping[Hashable, str], on_done: Callable[[Hashable, object], None] | None = None
                     ) -> tuple[dict, dict, list, LLMFailure | None]:
        """Caption many prompts, ``concurrency`` at a time.

        Args:
            prompts: key -> prompt.
            on_done: called (from this thread) with ``(key, Completion or LLMFailure)`` as each finishes.

        Returns:
            ``(completions, failures, not_asked, fatal)``: key -> :class:`Completion`, key -> :class:`LLMFailure`,
            the keys never sent (budget spent or the run stopped) and the failure that stopped the run, if any.
        """
        completions, failures, not_asked = {}, {}, []
        fatal: LLMFailure | None = None
        items = iter(prompts.items())
        stop = threading.Event()

        def run(key, prompt):
            try:
                return key, self.complete(prompt)
            except LLMFailure as failure:
                return key, failure

        with ThreadPoolExecutor(max_workers=max(1, int(self.settings.concurrency)),
                                thread_name_prefix="soundaq-llm") as pool:
            pending = set()

            def submit_next() -> None:
                for key, prompt in items:
                    if stop.is_set():
                        not_asked.append(key)
                        continue
                    pending.add(pool.submit(run, key, prompt))
                    return

            for _ in range(max(1, int(self.settings.concurrency))):
                submit_next()
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    pending.discard(future)
                    key, outcome = future.result()
                    if isinstance(outcome, Completion):
                        completions[key] = outcome
                    elif outcome.kind == "budget":
                        not_asked.append(key)
                    else:
                        failures[key] = outcome
                        if outcome.fatal and fatal is None:
                            fatal = outcome
                            stop.set()
                    if on_done:
                        on_done(key, outcome)
                    submit_next()
        return completions, failures, not_asked, fatal
