"""What soundaq asks an OpenAI-compatible server before captioning, and how it reads its errors.

* **Model list**: ``GET <base>/models`` (OpenAI's list-models endpoint, served by vLLM, Ollama,
  llama.cpp, LM Studio). llama.cpp's server answers to any model name and echoes the name back, so a
  wrong ``--llm-model`` is only visible here: when the requested name is not listed, the run says
  which model answers (:attr:`ServerInfo.served_model` when the server lists exactly one).
* **Concurrency**: a local server (loopback, private or link-local address, ``localhost``) often has
  one slot; requests sent beside it wait in its queue while their timeout runs, and an abandoned
  request keeps the server generating. Unless ``--concurrency`` is given, a local server gets as many
  requests at once as llama.cpp's ``GET /props`` reports slots (``total_slots``), else one; a remote
  server gets :data:`REMOTE_CONCURRENCY`.
* **404s**: a 404 whose body is the web server's page for an unknown path (plain text or HTML such
  as llama.cpp's ``File Not Found`` or Ollama's ``404 page not found``, or FastAPI's
  ``{"detail": "Not Found"}``) means the URL's path is wrong (usually a missing ``/v1``), not the model.
* **Errors** (:class:`ErrorReader`): each ``openai`` error becomes one line with the fix, the server's
  own words without the client's "Error code: N" wrapper and without the API key; and whether it is
  worth another try.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from soundaq.base.errors import first_line

#: Requests in flight for a remote server when --concurrency is not given.
REMOTE_CONCURRENCY = 4
#: The most requests in flight that a local server's reported slots may give.
MAX_LOCAL_CONCURRENCY = 8
#: Seconds a start-up question (model list, slots) may take.
PROBE_TIMEOUT_S = 10.0
_PATH_PAGES = ("not found", "file not found", "404 page not found", "404 not found", "cannot post", "no route")


def is_local(url: str) -> bool:
    """Whether ``url``'s host is this machine or the local network (loopback, private, link-local,
    unspecified addresses; ``localhost``, ``*.local``, ``host.docker.internal``).
    """
    host = (urlsplit(str(url)).hostname or "").lower()
    if host in ("localhost", "host.docker.internal") or host.endswith((".localhost", ".local")):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_unspecified


def server_root(base_url: str) -> str:
    """The server's root URL: ``base_url`` less a trailing ``/v1`` (where llama.cpp's ``/props`` lives)."""
    parts = urlsplit(str(base_url))
    path = parts.path.rstrip("/")
    if path.endswith("/v1"):
        path = path[:-3]
    return f"{parts.scheme}://{parts.netloc}{path}"


def model_listed(model: str, listed: list[str]) -> bool:
    """Whether the server lists ``model``: the same id, Ollama's ``NAME:latest``, or a listed file path
    whose name is the model (llama-cpp-python lists the path of its ``.gguf``).
    """
    want = model.strip().lower()
    for item in listed:
        got = item.strip().lower()
        base = got.rsplit("/", 1)[-1].removesuffix(".gguf")
        if want in (got, base) or f"{want}:latest" == got:
            return True
    return False


@dataclass
class ServerInfo:
    """What the server said at the start of a run (``provenance.json``'s ``server``).

    Attributes:
        url: the endpoint (no credentials).
        local: :func:`is_local`.
        listed: model ids of ``GET /models`` (None: the server gave no list; ``models_status`` says why).
        served_model: the model that answers when the requested one is not listed and the server lists
            exactly one (llama.cpp serves its one model under any name); None otherwise.
        slots: llama.cpp's ``total_slots`` (None: not reported).
        concurrency: requests in flight in this run; concurrency_source: why that many.
        notes: lines said on the terminal about it.
    """

    url: str
    local: bool
    listed: list[str] | None = None
    models_status: str = ""
    served_model: str | None = None
    slots: int | None = None
    concurrency: int = 1
    concurrency_source: str = ""
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """What provenance files and ``compare.json`` say of the server (its URL has no credentials)."""
        return {"url": self.url, "local": self.local, "models_listed": self.listed,
                "models_status": self.models_status, "served_model": self.served_model, "slots": self.slots,
                "concurrency": self.concurrency, "concurrency_source": self.concurrency_source}


def _get(client, path: str):
    """``GET path`` (relative to the base URL, or absolute) as parsed JSON, no retries, a short timeout."""
    return client.with_options(timeout=PROBE_TIMEOUT_S, max_retries=0).get(path, cast_to=object)


def list_models(client) -> tuple[list[str] | None, str]:
    """``(model ids or None, status)`` of ``GET /models``."""
    import openai

    try:
        data = _get(client, "/models")
    except openai.APIStatusError as err:
        return None, f"HTTP {err.status_code}"
    except openai.OpenAIError as err:
        return None, type(err).__name__
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list):
        return None, "not a model list"
    return [str(m["id"]) for m in items if isinstance(m, dict) and m.get("id")], "ok"


def total_slots(client, base_url: str) -> int | None:
    """llama.cpp's ``total_slots`` from ``GET <root>/props`` (None when the server does not say)."""
    import openai

    try:
        data = _get(client, server_root(base_url) + "/props")
    except openai.OpenAIError:
        return None
    slots = data.get("total_slots") if isinstance(data, dict) else None
    return slots if isinstance(slots, int) and not isinstance(slots, bool) and slots > 0 else None


def probe_server(client, model: str, base_url: str, url: str, concurrency: int | None) -> ServerInfo:
    """Ask the server for its models (and, local and without ``--concurrency``, its slots).

    Args:
        client: an ``openai.OpenAI`` client of the server.
        model: the requested model name.
        base_url: the endpoint (``--base-url``).
        url: the endpoint without credentials (what is said and recorded).
        concurrency: ``--concurrency`` (None: choose, see the module docstring).

    Returns:
        :class:`ServerInfo`, its ``notes`` the lines to say. Never raises: a server that does not
        answer these questions is captioned all the same.
    """
    info = ServerInfo(url=url, local=is_local(base_url))
    info.listed, info.models_status = list_models(client)
    if info.listed and not model_listed(model, info.listed):
        if len(info.listed) == 1:
            info.served_model = info.listed[0]
            info.notes.append(f"{url} serves one model, {info.served_model!r}, not {model!r}: the answers are "
                              f"{info.served_model}'s (servers such as llama.cpp answer to any model name), "
                              f"recorded as served_model (name it rightly with --llm-model {info.served_model})")
        else:
            shown = ", ".join(info.listed[:6]) + (", ..." if len(info.listed) > 6 else "")
            info.notes.append(f"{model!r} is not among the {len(info.listed)} models {url} lists ({shown}); "
                              "served_model records the model each answer names")
    if concurrency:
        info.concurrency, info.concurrency_source = int(concurrency), "--concurrency"
    elif not info.local:
        info.concurrency, info.concurrency_source = REMOTE_CONCURRENCY, "the default for a remote server"
    else:
        info.slots = total_slots(client, base_url)
        if info.slots:
            info.concurrency = min(info.slots, MAX_LOCAL_CONCURRENCY)
            info.concurrency_source = f"its /props reports {info.slots} slot(s)"
        else:
            info.concurrency, info.concurrency_source = 1, "a local server: one request at a time"
        info.notes.append(f"{url}: {info.concurrency} request(s) at a time ({info.concurrency_source}; "
                          "--concurrency N for a server that runs N at once)")
    return info


def is_path_page(status: int, content_type: str, body) -> bool:
    """Whether a 404 is the web server's answer to an unknown path (not an API's "model not found"):
    a plain-text or HTML body, or FastAPI's ``{"detail": "Not Found"}``.
    """
    if status != 404:
        return False
    if "json" not in (content_type or "").lower():
        return True
    if isinstance(body, dict):
        said = body.get("detail", body.get("message", body.get("error")))
        if isinstance(said, dict):
            said = said.get("message")
        return isinstance(said, str) and said.strip().lower() in _PATH_PAGES
    return isinstance(body, str) and body.strip().lower() in _PATH_PAGES


def path_fix(url: str) -> str:
    """The fix for a base URL whose path the server does not know."""
    if not urlsplit(url).path.rstrip("/").endswith("/v1"):
        return f"end --base-url with /v1 ({url.rstrip('/')}/v1)"
    return "check --base-url: the server's OpenAI-compatible endpoint, e.g. http://127.0.0.1:8080/v1"


# --------------------------------------------------------------------------------------------------
# the server's errors, read
# --------------------------------------------------------------------------------------------------
#: The longest Retry-After honoured (seconds); longer ones fall back to the backoff.
RETRY_AFTER_MAX_S = 60.0


class LLMFailure(Exception):
    """One caption the server did not give; ``str()`` is one line. ``fatal``: every further request
    would fail the same way, so the run stops asking.
    """

    def __init__(self, kind: str, message: str, fatal: bool = False):
        super().__init__(message)
        self.kind, self.fatal = kind, fatal


def is_context_error(err) -> bool:
    """Whether a 400 says the prompt is too long for the model's context."""
    body = getattr(err, "body", None)
    code = (body or {}).get("code") if isinstance(body, dict) else None
    text = str(err).lower()
    return code == "context_length_exceeded" or any(
        s in text for s in ("context length", "context_length", "maximum context", "context window",
                            "too many tokens", "prompt is too long", "exceeds the context"))


def retry_after(err) -> float | None:
    """The server's ``retry-after-ms`` / ``retry-after`` (seconds), when given and at most 60 s."""
    response = getattr(err, "response", None)
    headers = getattr(response, "headers", None) or {}
    for name, scale in (("retry-after-ms", 1e-3), ("retry-after", 1.0)):
        try:
            value = float(str(headers.get(name))) * scale     # absent: "None", not a number
        except ValueError:
            continue
        if 0 <= value <= RETRY_AFTER_MAX_S:
            return value
    return None


def _is_quota(err) -> bool:
    return "insufficient_quota" in str(getattr(err, "body", "")) or "quota" in str(err).lower()


@dataclass
class ErrorReader:
    """Reads the ``openai`` client's errors of one server as one-line :class:`LLMFailure` s (with the fix)
    and as retry reasons; scrubs the API key from everything the server says.

    Attributes:
        url: the endpoint without credentials; model, timeout_s: the request's; local: :func:`is_local`.
        key_variable: the variable(s) the key is read from; secret: the key (None: none).
        listed: the server's model ids, when known (named in an unknown model's fix).
    """

    url: str
    model: str
    timeout_s: float
    local: bool
    key_variable: str
    secret: str | None = None
    listed: list[str] | None = None

    def scrub(self, text: str, limit: int = 200) -> str:
        """``text`` on one line, the key replaced by ``[key]``, at most ``limit`` characters."""
        text = " ".join(str(text).split())
        if self.secret and len(self.secret) >= 4:
            text = text.replace(self.secret, "[key]")
        return text if len(text) <= limit else text[: limit - 3] + "..."

    def says(self, err) -> str:
        """What the server's error says, in one line (an HTML page as text; never the client's
        "Error code: N" wrapper, which would double the status).
        """
        body = getattr(err, "body", None)
        said = ""
        if isinstance(body, dict):
            inner = body.get("error")
            said = body.get("message") or (inner.get("message") if isinstance(inner, dict) else inner) \
                or body.get("detail") or ""
        elif isinstance(body, str):
            said = body
        if not isinstance(said, str) or not said.strip():
            response = getattr(err, "response", None)
            said = str(getattr(response, "text", "") or "") if response is not None else first_line(err)
        said = re.sub(r"<[^>]+>", " ", said)
        said = re.sub(r"^\s*Error code: \d+\s*-?\s*", "", said)
        return self.scrub(said) or "no message"

    def retry_reason(self, err) -> str | None:
        """Why ``err`` is worth another try (said on the terminal), or None when it is not: a timeout of a
        local server (it still generates the abandoned answer), a quota, a 4xx other than 408/409/429.
        """
        import openai

        url = self.url
        if isinstance(err, openai.APITimeoutError):
            return None if self.local else f"no answer from {url} within {self.timeout_s:g} s"
        if isinstance(err, openai.APIConnectionError):
            cause = err.__cause__ or err.__context__
            return f"cannot reach {url} ({self.scrub(first_line(cause)) if cause else 'connection failed'})"
        if isinstance(err, openai.RateLimitError):
            return None if _is_quota(err) else f"{url} rate-limits (HTTP 429)"
        if isinstance(err, openai.APIStatusError) and (err.status_code in (408, 409) or err.status_code >= 500):
            return f"{url} answered HTTP {err.status_code} ({self.says(err)})"
        return None

    def _not_found(self, err) -> LLMFailure:
        response = getattr(err, "response", None)
        ctype = str(getattr(response, "headers", {}).get("content-type", "")) if response is not None else ""
        if is_path_page(404, ctype, getattr(err, "body", None)):
            return LLMFailure("path", f"{self.url}/chat/completions: no such path on this server (HTTP 404: "
                                      f"{self.says(err)}); fix: {path_fix(self.url)}", fatal=True)
        where = f"{self.url}/models lists {', '.join(self.listed[:6])}" if self.listed else f"see {self.url}/models"
        return LLMFailure("model", f"{self.url}: model {self.model!r} not found (HTTP 404: {self.says(err)}); "
                                   f"fix: pass --llm-model with a model the server lists ({where})", fatal=True)

    def classify(self, err, tries: int) -> LLMFailure:
        """The one-line failure of ``err`` after ``tries`` tries (``fatal`` when every request would fail so)."""
        import openai

        url, model = self.url, self.model
        if isinstance(err, (openai.AuthenticationError, openai.PermissionDeniedError)):
            have = f"the key in ${self.key_variable}" if self.secret else f"no key (${self.key_variable} is not set)"
            return LLMFailure("auth", f"{url} refused the request with {have} (HTTP {err.status_code}); "
                                      f"fix: set ${self.key_variable.split(' or ')[0]} to a valid API key", fatal=True)
        if isinstance(err, openai.NotFoundError):
            return self._not_found(err)
        if isinstance(err, openai.BadRequestError):
            if is_context_error(err):
                return LLMFailure("context", f"the prompt is too long for {model!r}'s context (HTTP 400: "
                                             f"{self.says(err)}); fix: use a model with a longer context")
            return LLMFailure("bad_request", f"{url} rejected the request (HTTP 400: {self.says(err)}); "
                                             "fix: check --llm-model and the server's supported parameters", fatal=True)
        if isinstance(err, openai.RateLimitError):
            quota = _is_quota(err)
            return LLMFailure("rate_limit", f"{url} still rate-limits (HTTP 429) after {tries} tries"
                                            f"{' (quota exhausted)' if quota else ''}; fix: lower --concurrency, "
                                            "or rerun later (finished captions are kept)", fatal=quota)
        if isinstance(err, openai.APITimeoutError):
            if self.local:
                return LLMFailure("timeout", f"{url} gave no answer within {self.timeout_s:g} s (not asked again: "
                                             "a local server keeps generating an abandoned answer); fix: raise "
                                             "--timeout, or lower --max-tokens")
            return LLMFailure("timeout", f"{url} gave no answer within {self.timeout_s:g} s ({tries} tries); "
                                         "fix: raise --timeout or check the server")
        if isinstance(err, openai.APIConnectionError):
            cause = err.__cause__ or err.__context__
            why = self.scrub(first_line(cause)) if cause else "connection failed"
            return LLMFailure("connection", f"cannot reach {url} ({why}; {tries} tries); "
                                            "fix: start the server or check --base-url", fatal=True)
        if isinstance(err, openai.APIStatusError):
            return LLMFailure("server", f"{url} failed (HTTP {err.status_code}: {self.says(err)}) after "
                                        f"{tries} tries; fix: rerun later (finished captions are kept)")
        return LLMFailure("server", f"{url}: {type(err).__name__}: {self.says(err)}")
