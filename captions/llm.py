"""Captions from any OpenAI-compatible chat-completions server (a hosted API, vLLM, Ollama, llama.cpp's
server, LM Studio), through the official ``openai`` client.

* **The API key** is read from an environment variable only (:data:`KEY_VARIABLES`, or the variable
  named by ``LLMSettings.api_key_env``); it never appears in arguments, logs, outputs, the cache or
  provenance, and server messages are scrubbed of it. Local servers need no key.
* **The answer** is read by :func:`soundaq.captions.replies.read_reply` whatever its shape (reasoning
  fields and ``<think>`` blocks left out, content parts joined, refusals, tool calls, a cut-short answer
  kept and flagged ``truncated``).
* **Length limit**: sent as ``max_tokens`` (the release's parameter); a server that answers that the
  model wants ``max_completion_tokens`` (OpenAI's newer models) is asked again that way.
* **Start**: before the first request the server is asked for its model list and, when local, its
  slots (:mod:`soundaq.captions.llm_server`): a model name it does not list is said, with the model
  that answers; the concurrency is chosen.
* **Retries**: 408/409/429/5xx answers and network errors are tried again ``retries`` times, each
  retry said on the terminal, after the server's ``Retry-After`` (up to 60 s) or an exponential
  backoff (0.5 s doubling to 8 s, less up to 25 % jitter; the ``openai`` client's schedule). A timeout
  is retried only for a remote server: a local one is still generating the abandoned answer. Each
  try waits at most ``timeout_s``. soundaq runs the retries itself (the client's are silent and
  cannot be stopped): Ctrl-C stops waiting at once.
* **Concurrency**: at most ``concurrency`` requests in flight (daemon threads sharing one client, so an
  interrupted run does not wait for them); unset: 1 for a local server unless it reports more slots,
  4 for a remote one.
* **Budget**: at most ``max_requests`` requests reach the server in one run (a retried request
  counts once; answers from the cache count nothing); the rest wait for the next run.
* **Cache**: every answer is stored on disk (atomically) under the sha256 of (endpoint, prompt, model,
  temperature, seed, max_tokens, role): the endpoint is part of the key, so two servers serving the
  same model name never share answers. Reruns and interrupted runs never ask twice; the run says how
  many captions came from the cache and which server gave them.
* **Failures** are one line each (:class:`LLMFailure`): a refused key, an unknown model, a wrong path
  and an unreachable server stop the run (every further request would fail the same way); a refusal,
  an empty answer, a prompt too long for the context, a timeout or a server error after the retries
  lose only that caption.
"""
from __future__ import annotations

import hashlib
import json
import os
import queue
import random
import threading
import time
from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

from soundaq.base.errors import UserError, first_line
from soundaq.base.fileio import atomic_write_json
from soundaq.captions.llm_server import ErrorReader, LLMFailure, ServerInfo, is_local, probe_server, retry_after
from soundaq.captions.prompt import MAX_TOKENS, ROLE, TEMPERATURE
from soundaq.captions.replies import Reply, read_reply, reply_problem

DEFAULT_BASE_URL = "https://api.openai.com/v1"
#: Environment variables searched for the API key, in order.
KEY_VARIABLES: tuple[str, ...] = ("SOUNDAQ_LLM_API_KEY", "OPENAI_API_KEY")
#: Environment variables that give the defaults of --base-url and --llm-model.
BASE_URL_VARIABLE = "SOUNDAQ_LLM_BASE_URL"
MODEL_VARIABLE = "SOUNDAQ_LLM_MODEL"
#: The key of one prompt in :meth:`ChatClient.complete_all` (a clip's (clip, window), a tier's number).
K = TypeVar("K", bound=Hashable)
#: Sent as the key when no variable holds one (what local servers such as vLLM expect).
NO_KEY = "EMPTY"
#: Backoff of retries without Retry-After (seconds): BACKOFF_S * 2**attempt, at most BACKOFF_MAX_S.
BACKOFF_S, BACKOFF_MAX_S = 0.5, 8.0
__all__ = ["ChatClient", "Completion", "LLMFailure", "LLMSettings", "ResponseCache", "default_cache_dir"]


@dataclass(frozen=True)
class LLMSettings:
    """One LLM captioner: the server, the model and how to ask it.

    Attributes:
        model: the server's model name (e.g. ``gpt-4o-mini``, ``llama3.1:8b``).
        base_url: the OpenAI-compatible endpoint, usually ending in ``/v1``.
        temperature, max_tokens: sampling settings (release: 1 and 250).
        seed: sent as the request's ``seed`` (servers that support it sample reproducibly); None: not sent.
        timeout_s: seconds one try may take; retries: further tries after 429/5xx/network errors.
        concurrency: requests in flight at once (None: chosen from the server, see the module docstring);
        max_requests: requests per run (None: no limit).
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
    concurrency: int | None = None
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


def endpoint(url: str) -> str:
    """The endpoint as the cache knows it: :func:`safe_url` without a trailing slash."""
    return safe_url(url).rstrip("/")


def api_key_from_env(variable: str | None = None) -> tuple[str | None, str]:
    """``(key or None, the variable(s) searched)``: ``variable`` alone when given, else :data:`KEY_VARIABLES`."""
    names = (variable,) if variable else KEY_VARIABLES
    for name in names:
        value = os.environ.get(name, "").strip()
        if value:
            return value, name
    return None, " or ".join(names)


@dataclass(frozen=True)
class Completion:
    """An answer: the caption text, whether it came from the cache, what the server said it ran.

    ``flags`` are :data:`soundaq.captions.replies.FLAGS` names (``truncated``...); ``reasoning`` the
    reasoning left out of the text; ``endpoint`` the server that answered; ``served_model`` the model
    that answered (the listed one when the server lists one model and not the requested name).
    """

    text: str
    cached: bool
    response_model: str
    finish_reason: str
    created: str
    flags: tuple[str, ...] = ()
    reasoning: str = ""
    endpoint: str = ""
    served_model: str = ""


class ResponseCache:
    """Answers on disk: ``ROOT/<k[:2]>/<k>.json`` for the request key ``k`` (sha256 hex).

    Entries hold the server's reply (its ``message`` and ``finish_reason``, read again on every hit, so
    a better reading applies to cached answers too), the caption, the endpoint and the request settings
    and the prompt's sha256; never a key or a URL's credentials. A file that does not parse is treated
    as absent (and replaced on the next answer).
    """

    def __init__(self, root: Path | str | None):
        self.root = Path(root) if root is not None else None

    @staticmethod
    def key(prompt: str, settings: LLMSettings) -> str:
        """The cache key of a request: sha256 of the endpoint, prompt, model and sampling settings (no key)."""
        request = {"endpoint": endpoint(settings.base_url), "prompt": prompt, "model": settings.model,
                   "temperature": float(settings.temperature), "seed": settings.seed,
                   "max_tokens": int(settings.max_tokens), "role": settings.role}
        return hashlib.sha256(json.dumps(request, sort_keys=True).encode("utf-8")).hexdigest()

    def _path(self, key: str) -> Path:
        assert self.root is not None        # get/put return before this without a cache folder
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict | None:
        """The cached entry of ``key``, or None (no cache, no entry, or an entry that does not parse)."""
        if self.root is None:
            return None
        try:
            entry = json.loads(self._path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(entry, dict):
            return None
        return entry if isinstance(entry.get("reply"), dict) or (isinstance(entry.get("caption"), str)
                                                                  and entry["caption"]) else None

    def put(self, key: str, entry: dict) -> None:
        """Store ``entry`` under ``key`` (atomically; nothing without a cache folder)."""
        if self.root is not None:
            atomic_write_json(self._path(key), entry)


def default_cache_dir(cache_dir: Path | str | None = None) -> Path:
    """``<soundaq cache>/llm`` (``--cache-dir``, else ``$SOUNDAQ_CACHE``, else ``~/.cache/soundaq``)."""
    from soundaq.base.paths import cache_root

    return cache_root(cache_dir) / "llm"




class ChatClient:
    """Caption prompts with one OpenAI-compatible server (see the module docstring).

    Args:
        settings: :class:`LLMSettings`.
        cache_dir: folder of the response cache (None: no cache).
        report: called with each line to say on the terminal (retries, cache hits, the server's model
            list and the concurrency chosen); None: nothing is said.

    Raises:
        UserError: no model named, or the ``openai`` package is missing.
    """

    def __init__(self, settings: LLMSettings, cache_dir: Path | str | None = None,
                 report: Callable[[str], None] | None = None):
        try:
            import openai
        except ImportError:
            raise UserError("the llm captioner needs the openai package; fix: pip install openai") from None
        if not str(settings.model or "").strip():
            raise UserError(f"no LLM model named; fix: pass --llm-model NAME or set ${MODEL_VARIABLE}")
        self.settings = settings
        self.url = safe_url(settings.base_url)
        self.endpoint = endpoint(settings.base_url)
        key, self.key_variable = api_key_from_env(settings.api_key_env)
        self._secret = key
        self.cache = ResponseCache(cache_dir)
        self.errors = ErrorReader(self.url, settings.model, float(settings.timeout_s), is_local(settings.base_url),
                                  self.key_variable, key)
        self.report = report or (lambda msg: None)
        self.requests = 0          # requests sent to the server in this run (cache hits not counted)
        self.cache_hits = 0
        self.server: ServerInfo | None = None
        self._lock, self._probe_lock, self._stop = threading.Lock(), threading.Lock(), threading.Event()
        # newer OpenAI models take the length limit as max_completion_tokens and reject max_tokens
        self._length_param = "max_tokens"
        self._client = openai.OpenAI(api_key=key or NO_KEY, base_url=settings.base_url,
                                     timeout=float(settings.timeout_s), max_retries=0)

    @property
    def has_key(self) -> bool:
        """Whether an API key was found in the environment (:data:`KEY_VARIABLES`)."""
        return self._secret is not None

    def prepare(self) -> ServerInfo:
        """Ask the server for its models and slots once (:func:`~soundaq.captions.llm_server.probe_server`)
        and say what it found.
        """
        with self._probe_lock:
            if self.server is None:
                self.server = probe_server(self._client, self.settings.model, self.settings.base_url, self.url,
                                           self.settings.concurrency)
                self.errors.listed = self.server.listed
                for line in self.server.notes:
                    self.report(line)
        return self.server

    def stop(self) -> None:
        """Stop asking: no new request, no further retry, connections closed (Ctrl-C)."""
        self._stop.set()
        try:
            self._client.close()
        except Exception:  # noqa: BLE001 - closing is best effort while threads still use it
            pass

    def _send(self, body: dict, label: str):
        """POST the request, retrying what is worth it (each retry said); the parsed JSON answer."""
        import openai

        tries = int(self.settings.retries) + 1
        for attempt in range(tries):
            if self._stop.is_set():
                raise LLMFailure("stopped", "the run stopped before this request")
            try:
                return self._client.post("/chat/completions", body=body, cast_to=object)
            except openai.BadRequestError:
                raise
            except openai.OpenAIError as err:
                if self._stop.is_set():
                    raise LLMFailure("stopped", "the run stopped during this request") from None
                why = self.errors.retry_reason(err)
                if why is None or attempt + 1 >= tries:
                    raise self.errors.classify(err, attempt + 1) from None
                delay = retry_after(err)
                if delay is None:
                    delay = min(BACKOFF_S * 2 ** attempt, BACKOFF_MAX_S) * (1 - 0.25 * random.random())
                self.report(f"{label + ': ' if label else ''}{why}; retry {attempt + 1} of {tries - 1} "
                            f"in {delay:.1f} s")
                if self._stop.wait(delay):
                    raise LLMFailure("stopped", "the run stopped before the retry") from None
        raise AssertionError("unreachable")

    def _ask(self, prompt: str, label: str = ""):
        import openai

        s = self.settings
        for _ in range(2):
            param = self._length_param
            body = {"model": s.model, "messages": [{"role": s.role, "content": prompt}],
                    "temperature": float(s.temperature), param: int(s.max_tokens)}
            if s.seed is not None:
                body["seed"] = int(s.seed)
            try:
                return self._send(body, label)
            except openai.BadRequestError as err:
                if param == "max_tokens" and "max_completion_tokens" in str(err):
                    self._length_param = "max_completion_tokens"    # ask again, the way this model wants
                    continue
                raise self.errors.classify(err, 1) from None
        raise LLMFailure("bad_request", f"{self.url} rejected both max_tokens and max_completion_tokens", fatal=True)

    def _read(self, data) -> Reply:
        """The reply's caption, or the one-line :class:`LLMFailure` of why there is none."""
        reply = read_reply(data)
        problem = reply_problem(reply, self.settings.model, int(self.settings.max_tokens), self.url)
        if problem is not None:
            kind, message = problem
            raise LLMFailure(kind, self.errors.scrub(message, 400), fatal=kind == "not_chat")
        return reply

    def _served(self, reply_model: str) -> str:
        listed_one = self.server.served_model if self.server else None
        return listed_one or reply_model or self.settings.model

    def cached(self, prompt: str) -> Completion | None:
        """The cached answer of ``prompt`` from this endpoint and these settings (read again), or None."""
        entry = self.cache.get(self.cache.key(prompt, self.settings))
        if entry is None:
            return None
        data = entry["reply"] if isinstance(entry.get("reply"), dict) else {
            "choices": [{"message": {"content": entry.get("caption")}, "finish_reason": entry.get("finish_reason")}],
            "model": entry.get("response_model")}
        try:
            reply = self._read(data)
        except LLMFailure:
            return None
        return Completion(reply.text, True, reply.model or str(entry.get("response_model") or ""),
                          reply.finish_reason, str(entry.get("created") or ""), reply.flags, reply.reasoning,
                          str(entry.get("endpoint") or self.endpoint), str(entry.get("served_model") or ""))

    def complete(self, prompt: str, label: str = "") -> Completion:
        """The caption of one prompt: from the cache, else from the server (then cached).

        Args:
            prompt: the prompt.
            label: names it in the lines said (a clip, a tier).

        Returns:
            The :class:`Completion` (``cached`` True when it came from the cache).

        Raises:
            LLMFailure: the server gave no caption (kind ``budget`` when ``max_requests`` is spent,
                ``stopped`` when the run stopped before asking).
        """
        hit = self.cached(prompt)
        if hit is not None:
            return hit
        self.prepare()
        with self._lock:
            limit = self.settings.max_requests
            if limit is not None and self.requests >= limit:
                raise LLMFailure("budget", f"--max-requests {limit} reached")
            self.requests += 1
        data = self._ask(prompt, label)
        reply = self._read(data)
        created = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        served = self._served(reply.model)
        choice = data["choices"][0]
        self.cache.put(self.cache.key(prompt, self.settings), {
            "caption": reply.text, "reply": {"choices": [choice], "model": data.get("model")},
            "response_model": reply.model, "served_model": served, "finish_reason": reply.finish_reason,
            "endpoint": self.endpoint, "created": created,
            "prompt_sha256": hashlib.sha256(prompt.encode("utf-8")).hexdigest(),
            "request": {k: v for k, v in self.settings.public().items()
                        if k in ("model", "temperature", "seed", "max_tokens", "role")}})
        return Completion(reply.text, False, reply.model, reply.finish_reason, created, reply.flags, reply.reasoning,
                          self.endpoint, served)

    def _say_hits(self, hits: list[Completion]) -> None:
        from collections import Counter

        groups = Counter((h.endpoint, h.served_model or h.response_model or self.settings.model) for h in hits)
        for (where, who), n in sorted(groups.items()):
            self.report(f"{n} caption(s) from the LLM cache ({self.cache.root}): answered earlier by {where} "
                        f"({who}); to ask the server again, pass another --cache-dir")

    def complete_all(self, prompts: Mapping[K, str], on_done: Callable[[K, object], None] | None = None,
                     labels: Mapping[K, str] | None = None
                     ) -> tuple[dict[K, Completion], dict[K, LLMFailure], list[K], LLMFailure | None]:
        """Caption many prompts: the cached ones first, then the rest ``concurrency`` at a time.

        Args:
            prompts: key -> prompt.
            on_done: called (from this thread) with ``(key, Completion or LLMFailure)`` as each finishes.
            labels: key -> the name said in retry lines (default ``str(key)``).

        Returns:
            ``(completions, failures, not_asked, fatal)``: key -> :class:`Completion`, key -> :class:`LLMFailure`,
            the keys never sent (budget spent or the run stopped) and the failure that stopped the run, if any.

        Raises:
            KeyboardInterrupt: after stopping the requests in flight (their threads are daemons: an
                interrupted program exits without waiting for them).
        """
        done = on_done or (lambda key, outcome: None)
        completions: dict[K, Completion] = {}
        todo: queue.SimpleQueue[tuple[K, str]] = queue.SimpleQueue()
        n_todo = 0
        for key, prompt in prompts.items():
            hit = self.cached(prompt)
            if hit is None:
                todo.put((key, prompt))
                n_todo += 1
            else:
                completions[key] = hit
                done(key, hit)
        self.cache_hits += len(completions)
        self._say_hits(list(completions.values()))
        failures: dict[K, LLMFailure] = {}
        not_asked: list[K] = []
        fatal: LLMFailure | None = None
        if n_todo:
            self._stop.clear()
            answers = self._pool(todo, min(int(self.prepare().concurrency), n_todo), labels or {})
            try:
                for key, outcome in answers:
                    if isinstance(outcome, Completion):
                        completions[key] = outcome
                    elif outcome.kind in ("budget", "stopped"):
                        not_asked.append(key)
                    else:
                        failures[key] = outcome
                        if outcome.fatal and fatal is None:
                            fatal = outcome
                            self._stop.set()
                    done(key, outcome)
            except BaseException:       # Ctrl-C: no request, retry or line more
                self.stop()
                raise
        while True:
            try:
                not_asked.append(todo.get_nowait()[0])
            except queue.Empty:
                return completions, failures, not_asked, fatal

    def _pool(self, todo: queue.SimpleQueue[tuple[K, str]], workers: int,
              labels: Mapping[K, str]) -> Iterator[tuple[K, Completion | LLMFailure]]:
        """``(key, Completion or LLMFailure)`` as ``workers`` daemon threads answer the ``todo`` queue;
        Ctrl-C (any exception here) stops them without waiting.
        """
        results: queue.SimpleQueue[tuple[K, Completion | LLMFailure]] = queue.SimpleQueue()

        def worker() -> None:
            while not self._stop.is_set():
                try:
                    key, prompt = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    outcome: Completion | LLMFailure = self.complete(prompt, labels.get(key, str(key)))
                except LLMFailure as failure:
                    outcome = failure
                except Exception as err:  # noqa: BLE001 - one caption lost and named, never a silent dead thread
                    outcome = LLMFailure("server", f"{self.url}: {type(err).__name__}: "
                                                   f"{self.errors.scrub(first_line(err))}")
                if isinstance(outcome, LLMFailure) and outcome.fatal:
                    self._stop.set()        # before this thread takes another prompt
                results.put((key, outcome))

        threads = [threading.Thread(target=worker, name=f"soundaq-llm-{i}", daemon=True) for i in range(max(1, workers))]
        for thread in threads:
            thread.start()
        try:
            while True:
                alive = any(t.is_alive() for t in threads)
                try:
                    yield results.get(timeout=0.1)
                except queue.Empty:
                    if not alive:
                        return
        except BaseException:
            self.stop()
            raise
