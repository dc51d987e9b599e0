"""Test helpers for soundaq.captions: predictions tables written by hand, and a small OpenAI-compatible
chat-completions server on 127.0.0.1 that answers, rate-limits, fails, hangs and refuses on script."""
from __future__ import annotations

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from soundaq.base.vocab import (
    EVENT_PROB_COLUMNS,
    EVENTS,
    PREDICTION_COLUMNS,
    QUALITIES,
    SCENE_PROB_COLUMNS,
    SCENES,
    iso_coordinates,
)

API_KEY = "sk-test-0123456789-secret"


@pytest.fixture(autouse=True)
def offline_env(monkeypatch):
    """For the LLM tests (imported into their modules, where it applies to every test): the key in the
    environment, no proxies (the servers are local), no stray LLM defaults."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy",
                 "OPENAI_API_KEY", "OPENAI_BASE_URL", "SOUNDAQ_LLM_BASE_URL", "SOUNDAQ_LLM_MODEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("SOUNDAQ_LLM_API_KEY", API_KEY)


def prediction_row(clip: str, scene: str = "park", events: dict | None = None, qualities=None, model: str = "AD_CNN",
                   **extra) -> dict:
    """One predictions-table row: ``events`` maps event names to probabilities (others 0.05),
    ``qualities`` is 8 ratings in QUALITIES order (default all 3: neutral)."""
    probs = {e: 0.05 for e in EVENTS}
    probs.update(events or {})
    ratings = list(qualities) if qualities is not None else [3.0] * 8
    row = {"clip": clip, "model": model, "scene": scene}
    row.update({c: (0.8 if s == scene else 0.1) for c, s in zip(SCENE_PROB_COLUMNS, SCENES)})
    row.update({c: probs[e] for c, e in zip(EVENT_PROB_COLUMNS, EVENTS)})
    row.update(dict(zip(QUALITIES, ratings)))
    row["isop"], row["isoe"] = (float(v) for v in iso_coordinates(*ratings))
    row.update(extra)
    return row


def random_rows(n: int, seed: int = 0, model: str = "AD_CNN") -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        events = dict(zip(EVENTS, rng.beta(0.6, 1.2, len(EVENTS))))
        rows.append(prediction_row(f"clip{i:02d}", SCENES[i % 3], events, rng.uniform(1, 5, 8), model))
    return rows


def write_table(path: Path, rows: list[dict], columns=None) -> Path:
    frame = pd.DataFrame(rows)
    frame = frame[[c for c in (columns or frame.columns)]]
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


def table_fixture(n: int, seed: int):
    """A test module's ``table`` fixture (``table = table_fixture(3, seed=11)``): a predictions table of
    :func:`random_rows` ``(n, seed)`` written to ``tmp_path / "pred.csv"``."""
    def table(tmp_path: Path) -> Path:
        return write_table(tmp_path / "pred.csv", random_rows(n, seed=seed))

    return pytest.fixture(table)


def predict_object(clip: str, windows: list[tuple[float, float, dict]], model: str = "AD_CNN") -> dict:
    """A ``soundaq predict`` JSON object whose windows are ``(start_s, end_s, row)`` (rows from
    :func:`prediction_row`); the whole-clip values are the window means."""
    def record(row):
        return {"scene": row["scene"],
                "scene_probabilities": {s: row[c] for c, s in zip(SCENE_PROB_COLUMNS, SCENES)},
                "events": {e: row[c] for c, e in zip(EVENT_PROB_COLUMNS, EVENTS)},
                "qualities": {q: row[q] for q in QUALITIES}, "isop": row["isop"], "isoe": row["isoe"]}

    rows = [w[2] for w in windows]
    mean = {c: float(np.mean([r[c] for r in rows])) for c in PREDICTION_COLUMNS[3:]}
    mean["scene"] = max(SCENES, key=lambda s: mean[f"scene_prob_{s}"])
    return {"clip": clip, "model": model, **record(mean),
            "windows": [{"index": i, "start_s": a, "end_s": b, **record(r)} for i, (a, b, r) in enumerate(windows)]}


def prompt_caption(prompt: str) -> str:
    """What the fake server answers for a prompt: the same text for the same prompt."""
    return f"LLM caption {hashlib.sha256(prompt.encode()).hexdigest()[:10]}."


THINKING = "Okay, so I need to write a soundscape caption. The events are listed; I should not mention numbers."

#: Reply shapes of real servers: name -> (caption -> (message fields, finish_reason)).
SHAPES = {
    # Ollama's deepseek-r1 without a reasoning parser (field case F3-01)
    "think": lambda c: ({"content": f"<think>\n{THINKING}\n</think>\n\n{c}"}, "stop"),
    # Mistral's magistral: content as a list of chunks (F3-03)
    "parts": lambda c: ({"content": [{"type": "thinking", "thinking": [{"type": "text", "text": THINKING}]},
                                     {"type": "text", "text": c}]}, "stop"),
    # vLLM / SGLang with a reasoning parser
    "reasoning_field": lambda c: ({"content": c, "reasoning_content": THINKING}, "stop"),
    # a reasoning model cut inside its reasoning, with and without a parser
    "unclosed": lambda c: ({"content": f"<think>{THINKING}"}, "length"),
    "reasoning_only": lambda c: ({"content": None, "reasoning": THINKING}, "length"),
    # a caption cut at max_tokens
    "truncated": lambda c: ({"content": c.rstrip(".") + " and then the"}, "length"),
    "tool_call": lambda c: ({"content": None, "tool_calls": [{"id": "call_1", "type": "function", "function": {
        "name": "describe_sound", "arguments": "{}"}}]}, "tool_calls"),
    "paragraphs": lambda c: ({"content": f"{c}\n\nIt feels calm.\n\n- birds\n- voices"}, "stop"),
    "refusal_part": lambda c: ({"content": [{"type": "refusal", "refusal": "I cannot describe this."}]}, "stop"),
    "filtered": lambda c: ({"content": None}, "content_filter"),
}


class FakeLLMServer:
    """An OpenAI-compatible ``POST /v1/chat/completions`` on 127.0.0.1 (real HTTP).

    ``script(n, body) -> behaviour`` picks the answer to the n-th request (0-based): ``ok``, ``429``,
    ``500``, ``hang``, ``refuse``, ``empty``, ``401``, ``404``, ``context``, ``length``, ``mct``
    (a model that takes only ``max_completion_tokens``), or a reply shape of :data:`SHAPES`
    (``think``, ``parts``, ``truncated``, ``tool_call``...).
    ``requests`` records every request (its body and Authorization header); ``max_inflight`` the
    most requests handled at once. ``delay`` seconds are spent on every answer.
    ``models``: what ``GET /v1/models`` lists (None: 404); ``slots``: llama.cpp's ``GET /props``
    ``total_slots`` (None: 404); ``text(prompt)``: the caption; ``answer_model(model)``: the answer's
    ``model`` field (llama.cpp echoes the request's). A path outside ``/v1/`` gets llama.cpp's plain-text
    404 ``File Not Found``. ``one_slot``: answers one request at a time (the others wait in its queue,
    as on a llama.cpp server with one slot).
    """

    def __init__(self, script=None, delay: float = 0.0, hang_s: float = 3.0, models: list[str] | None = None,
                 slots: int | None = None, text=None, answer_model=None, one_slot: bool = False):
        self.script = script or (lambda n, body: "ok")
        self.delay, self.hang_s = delay, hang_s
        self.models, self.slots = models, slots
        self.text = text or prompt_caption
        self.answer_model = answer_model or (lambda model: f"{model}-served")
        self.gets: list[str] = []
        self.slot = threading.Lock() if one_slot else None
        self.requests: list[dict] = []
        self.inflight = self.max_inflight = 0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def prompts(self) -> list[str]:
        return [r["body"]["messages"][0]["content"] for r in self.requests]

    def __enter__(self):  # noqa: C901  (a test server's routes)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status: int, payload: dict, headers: dict | None = None):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _error(self, status: int, message: str, code: str, kind: str, headers=None):
                self._send(status, {"error": {"message": message, "type": kind, "code": code, "param": None}}, headers)

            def _plain(self, status: int, text: str):
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                server.gets.append(self.path)
                if self.path == "/v1/models" and server.models is not None:
                    return self._send(200, {"object": "list", "data": [{"id": m, "object": "model", "owned_by": "me"}
                                                                       for m in server.models]})
                if self.path == "/props" and server.slots is not None:
                    return self._send(200, {"total_slots": server.slots, "chat_template": "..."})
                return self._plain(404, "File Not Found")

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                if not self.path.startswith("/v1/"):
                    server.requests.append({"path": self.path, "body": body, "auth": ""})
                    return self._plain(404, "File Not Found")
                with server.lock:
                    n = len(server.requests)
                    server.requests.append({"path": self.path, "body": body,
                                            "auth": self.headers.get("Authorization", "")})
                    server.inflight += 1
                    server.max_inflight = max(server.max_inflight, server.inflight)
                try:
                    if server.slot is not None:
                        with server.slot:
                            self._answer(n, body)
                    else:
                        self._answer(n, body)
                finally:
                    with server.lock:
                        server.inflight -= 1

            def _answer(self, n: int, body: dict):
                what = server.script(n, body)
                if server.delay:
                    time.sleep(server.delay)
                fast = {"retry-after-ms": "1"}
                if what == "429":
                    return self._error(429, "Rate limit reached for requests", "rate_limit_exceeded", "requests", fast)
                if what == "500":
                    return self._error(500, "The server had an error while processing your request", "server_error",
                                       "server_error", fast)
                if what == "401":
                    key = self.headers.get("Authorization", "").removeprefix("Bearer ")
                    return self._error(401, f"Incorrect API key provided: {key}.", "invalid_api_key",
                                       "invalid_request_error")
                if what == "404":
                    return self._error(404, f"The model `{body.get('model')}` does not exist", "model_not_found",
                                       "invalid_request_error")
                if what == "context":
                    return self._error(400, "This model's maximum context length is 16 tokens. However, your "
                                            "messages resulted in 900 tokens.", "context_length_exceeded",
                                       "invalid_request_error")
                if what == "mct" and "max_tokens" in body:
                    return self._error(400, "Unsupported parameter: 'max_tokens' is not supported with this model. "
                                            "Use 'max_completion_tokens' instead.", "unsupported_parameter",
                                       "invalid_request_error")
                if what == "hang":
                    time.sleep(server.hang_s)
                prompt = body["messages"][0]["content"]
                message = {"role": "assistant", "content": server.text(prompt), "refusal": None}
                finish = "stop"
                if what == "refuse":
                    message.update(content=None, refusal="I can't help with that.")
                elif what == "empty":
                    message["content"] = ""
                elif what == "length":
                    message["content"], finish = None, "length"
                elif what in SHAPES:
                    extra, finish = SHAPES[what](server.text(prompt))
                    message.update(extra)
                self._send(200, {"id": f"chatcmpl-{n}", "object": "chat.completion", "created": 1700000000,
                                 "model": server.answer_model(body.get("model")),
                                 "choices": [{"index": 0, "message": message, "finish_reason": finish,
                                              "logprobs": None}],
                                 "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        return False


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_llm_caption(capsys, url, table, out, cache, *extra, model: str) -> tuple[int, str]:
    """``soundaq caption TABLE --captioner llm`` against ``url`` (5-s timeout, no progress); returns the exit
    code and stderr, and checks that nothing printed a traceback."""
    from soundaq.benchmark.cli import main

    code = main([str(a) for a in ("caption", table, "--out", out, "--captioner", "llm", "--llm-model", model,
                                  "--base-url", url, "--cache-dir", cache, "--timeout", "5", "--no-progress",
                                  *extra)])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    return code, captured.err
