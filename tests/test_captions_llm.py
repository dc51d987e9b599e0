"""The LLM captioner against an OpenAI-compatible server started here on 127.0.0.1 (real HTTP, the real
``openai`` client): answers, retries, the cache, --max-requests, resume, concurrency, and one-line failures.
Nothing reaches the internet."""
from __future__ import annotations

import json

import pandas as pd
import pytest
from caption_builders import API_KEY, FakeLLMServer, free_port, offline_env, prompt_caption, random_rows, table_fixture  # noqa: F401 - autouse

from soundaq.base.errors import UserError
from soundaq.benchmark.cli import main
from soundaq.captions.llm import ChatClient, LLMSettings, ResponseCache, safe_url
from soundaq.captions.prompt import prompt_sha256

table = table_fixture(3, seed=11)


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _llm(capsys, server_url, table, out, cache, *extra):
    return _run(capsys, "caption", table, "--out", out, "--captioner", "llm", "--llm-model", "tiny-chat",
                "--base-url", server_url, "--cache-dir", cache, "--retries", "2", "--timeout", "5", "--no-progress",
                "--concurrency", "1", *extra)


def _outputs_text(out) -> str:
    return "".join(p.read_text() for p in sorted(out.iterdir()) if p.is_file())


def test_captions_come_from_the_server_and_the_key_goes_nowhere_else(tmp_path, capsys, table):
    out, cache = tmp_path / "caps", tmp_path / "cache"
    with FakeLLMServer() as server:
        code, _, err = _llm(capsys, server.url, table, out, cache)
    assert code == 0, err
    assert len(server.requests) == 3
    req = server.requests[0]
    assert req["path"] == "/v1/chat/completions" and req["auth"] == f"Bearer {API_KEY}"
    body = req["body"]
    assert body["model"] == "tiny-chat" and body["temperature"] == 1.0 and body["max_tokens"] == 250
    assert body["seed"] == 0 and len(body["messages"]) == 1 and body["messages"][0]["role"] == "system"
    csv = pd.read_csv(out / "captions.csv", keep_default_na=False)
    assert list(csv["caption"]) == [prompt_caption(p) for p in csv["prompt"]]
    assert sorted(server.prompts()) == sorted(csv["prompt"])
    assert set(csv["captioner"]) == {"llm"} and set(csv["model"]) == {"tiny-chat"}
    assert set(csv["temperature"]) == {1.0} and set(csv["seed"]) == {0} and set(csv["finish_reason"]) == {"stop"}
    assert list(csv["prompt_sha256"]) == [prompt_sha256(p) for p in csv["prompt"]]
    cached = "".join(p.read_text() for p in cache.rglob("*.json"))
    for text in (_outputs_text(out), err, cached):
        assert API_KEY not in text
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["llm"]["model"] == "tiny-chat" and prov["counts"]["requests"] == 3
    assert "api_key" not in json.dumps(prov).lower().replace("api_key_env", "")


def test_rerun_resumes_and_the_cache_answers_without_the_server(tmp_path, capsys, table):
    out, cache = tmp_path / "caps", tmp_path / "cache"
    with FakeLLMServer() as server:
        assert _llm(capsys, server.url, table, out, cache)[0] == 0
        code, _, err = _llm(capsys, server.url, table, out, cache)       # same command: from the outputs
        assert code == 0 and "3 reused" in err and "0 request(s) sent" in err
        url = server.url
    assert len(server.requests) == 3
    # a fresh output folder with the server gone: every caption comes from the cache
    code, _, err = _llm(capsys, url, table, tmp_path / "caps2", cache)
    assert code == 0 and "0 request(s) sent" in err, err
    first = pd.read_csv(out / "captions.csv")
    second = pd.read_csv(tmp_path / "caps2" / "captions.csv")
    assert list(first["caption"]) == list(second["caption"]) and list(first["time"]) == list(second["time"])
    # another temperature is another request
    with FakeLLMServer() as server:
        assert _llm(capsys, server.url, table, tmp_path / "caps3", cache, "--temperature", "0.2")[0] == 0
    assert len(server.requests) == 3 and server.requests[0]["body"]["temperature"] == 0.2


def test_rate_limits_and_server_errors_are_retried(tmp_path, capsys, table):
    script = {0: "429", 1: "429", 2: "ok", 3: "500", 4: "ok"}
    with FakeLLMServer(lambda n, body: script.get(n, "ok")) as server:
        code, _, err = _llm(capsys, server.url, table, tmp_path / "caps", tmp_path / "cache")
    assert code == 0, err
    assert len(server.requests) == 6                          # 3 + 1 tries, 1 + 1, 1
    assert len(pd.read_csv(tmp_path / "caps" / "captions.csv")) == 3


def test_a_failure_costs_one_caption_and_a_rerun_asks_only_for_it(tmp_path, capsys, table):
    out, cache = tmp_path / "caps", tmp_path / "cache"
    with FakeLLMServer(lambda n, body: "500" if n < 3 else "ok") as server:
        code, _, err = _llm(capsys, server.url, table, out, cache)
        assert code == 1
        failure = [line for line in err.splitlines() if "HTTP 500" in line and "fix:" in line]
        assert len(failure) == 1 and "after 3 tries" in failure[0] and "clip00" in failure[0]
        assert "Error code" not in failure[0] and failure[0].count("HTTP 500") == 1
        retries = [line for line in err.splitlines() if "; retry " in line]   # each retry said
        assert [line.split("; ")[-1].split(" in ")[0] for line in retries] == ["retry 1 of 2", "retry 2 of 2"], err
        assert all("clip00: " in line and "answered HTTP 500" in line for line in retries)
        assert "1 without a caption" in err
        assert list(pd.read_csv(out / "captions.csv")["clip"]) == ["clip01", "clip02"]
        server.script, sent = (lambda n, body: "ok"), len(server.requests)     # the same server, mended
        code, _, err = _llm(capsys, server.url, table, out, cache)
    assert code == 0 and len(server.requests) == sent + 1 and "2 reused" in err
    assert list(pd.read_csv(out / "captions.csv")["clip"]) == ["clip00", "clip01", "clip02"]


def test_max_requests_spreads_a_run_over_reruns(tmp_path, capsys, table):
    out, cache = tmp_path / "caps", tmp_path / "cache"
    with FakeLLMServer() as server:
        code, _, err = _llm(capsys, server.url, table, out, cache, "--max-requests", "2")
        assert code == 1 and "1 without a caption (--max-requests 2 reached)" in err
        assert len(server.requests) == 2 and len(pd.read_csv(out / "captions.csv")) == 2
        code, _, err = _llm(capsys, server.url, table, out, cache, "--max-requests", "2")
        assert code == 0 and len(server.requests) == 3


@pytest.mark.parametrize("behaviour, pieces, fatal", [
    ("401", ["refused the request with the key in $SOUNDAQ_LLM_API_KEY (HTTP 401)", "set $SOUNDAQ_LLM_API_KEY"],
     True),
    ("404", ["model 'tiny-chat' not found (HTTP 404", "--llm-model", "/models"], True),
    ("context", ["too long for 'tiny-chat''s context", "maximum context length"], False),
    ("refuse", ["refused to caption (I can't help with that.)"], False),
    ("empty", ["returned no text (finish_reason stop)"], False),
    ("length", ["returned no text (finish_reason length)", "raise --max-tokens"], False),
])
def test_one_line_failures(tmp_path, capsys, table, behaviour, pieces, fatal):
    out = tmp_path / "caps"
    with FakeLLMServer(lambda n, body: behaviour if n == 0 else "ok") as server:
        code, _, err = _llm(capsys, server.url, table, out, tmp_path / "cache")
    assert code == 1 and "Traceback" not in err and API_KEY not in err
    hits = [line for line in err.splitlines() if all(p in line for p in pieces)]
    assert len(hits) == 1, err
    kept = pd.read_csv(out / "captions.csv")
    if fatal:   # the run stops asking; nothing else was sent
        assert len(server.requests) == 1 and len(kept) == 0 and "stopped:" in hits[0]
    else:       # only that caption is lost
        assert len(server.requests) == 3 and list(kept["clip"]) == ["clip01", "clip02"]


def test_fatal_failure_keeps_the_captions_already_made(tmp_path, capsys, table):
    out, cache = tmp_path / "caps", tmp_path / "cache"
    with FakeLLMServer(lambda n, body: "401" if n == 2 else "ok") as server:
        code, _, err = _llm(capsys, server.url, table, out, cache)
        assert code == 1 and "HTTP 401" in err and API_KEY not in err
        assert list(pd.read_csv(out / "captions.csv")["clip"]) == ["clip00", "clip01"]
        server.script = lambda n, body: "ok"
        assert _llm(capsys, server.url, table, out, cache)[0] == 0
    assert len(server.requests) == 4


def test_server_down_and_hanging_server(tmp_path, capsys, table):
    code, _, err = _llm(capsys, f"http://127.0.0.1:{free_port()}/v1", table, tmp_path / "a", tmp_path / "c",
                        "--retries", "0")
    line = [x for x in err.splitlines() if "cannot reach" in x]
    assert code == 1 and len(line) == 1 and "start the server or check --base-url" in line[0]
    with FakeLLMServer(lambda n, body: "hang" if n == 0 else "ok", hang_s=3.0) as server:
        code, _, err = _llm(capsys, server.url, table, tmp_path / "b", tmp_path / "c", "--retries", "0",
                            "--timeout", "0.5")
    assert code == 1
    assert len([x for x in err.splitlines() if "no answer within 0.5 s" in x]) == 1
    assert len(pd.read_csv(tmp_path / "b" / "captions.csv")) == 2


def test_concurrency_limit(tmp_path):
    table = pd.DataFrame(random_rows(6, seed=12))
    settings_url = {}
    with FakeLLMServer(delay=0.3) as server:
        settings_url["url"] = server.url
        from soundaq.captions.run import caption

        frame = caption(table, "llm", llm=LLMSettings(model="m", base_url=server.url, concurrency=2, retries=0),
                        cache_dir=tmp_path / "cache")
    assert len(frame) == 6 and len(server.requests) == 6 and server.max_inflight == 2


def test_no_key_on_the_command_line_and_missing_model(tmp_path, capsys, table):
    for option in ("--api-key", "--key", "--api-key-env"):
        code, _, err = _run(capsys, "caption", table, "--out", tmp_path / "o", "--captioner", "llm",
                            "--llm-model", "m", option, "sk-x-secret")
        assert code == 2 and "sk-x-secret" not in err and len(err.strip().splitlines()) == 1, err
    assert "never taken from the command line" in _run(capsys, "caption", table, "--out", tmp_path / "o",
                                                         "--api-key", "sk-x")[2]
    assert not (tmp_path / "o").exists()
    code, _, err = _run(capsys, "caption", table, "--out", tmp_path / "o", "--captioner", "llm")
    assert code == 2 and "needs a model" in err


def test_key_from_a_named_variable_and_none_for_local_servers(tmp_path, monkeypatch):
    monkeypatch.setenv("MY_LLM_KEY", "sk-other-key-42")
    with FakeLLMServer() as server:
        client = ChatClient(LLMSettings(model="m", base_url=server.url, api_key_env="MY_LLM_KEY"))
        client.complete("hello")
        monkeypatch.delenv("SOUNDAQ_LLM_API_KEY")
        ChatClient(LLMSettings(model="m", base_url=server.url, seed=None)).complete("hello")
    assert server.requests[0]["auth"] == "Bearer sk-other-key-42"
    assert server.requests[1]["auth"] == "Bearer EMPTY" and "seed" not in server.requests[1]["body"]


def test_cache_entries_and_keys(tmp_path):
    s = LLMSettings(model="m", base_url="http://user:pw@example.org:8000/v1?token=abc")
    assert safe_url(s.base_url) == "http://example.org:8000/v1" and "pw" not in json.dumps(s.public())
    keys = {ResponseCache.key("p", s), ResponseCache.key("q", s),
            ResponseCache.key("p", LLMSettings(model="n")), ResponseCache.key("p", LLMSettings(model="m", seed=1)),
            ResponseCache.key("p", LLMSettings(model="m", temperature=0.5))}
    assert len(keys) == 5
    cache = ResponseCache(tmp_path)
    k = ResponseCache.key("p", s)
    (tmp_path / k[:2]).mkdir()
    (tmp_path / k[:2] / f"{k}.json").write_text("{broken")
    assert cache.get(k) is None                    # a damaged entry is a miss
    with pytest.raises(UserError, match="no LLM model"):
        ChatClient(LLMSettings(model=""))


def test_models_that_want_max_completion_tokens(tmp_path, capsys, table):
    with FakeLLMServer(lambda n, body: "mct") as server:
        code, _, err = _llm(capsys, server.url, table, tmp_path / "caps", tmp_path / "cache")
    assert code == 0, err
    bodies = [r["body"] for r in server.requests]
    assert len(bodies) == 4 and "max_tokens" in bodies[0]        # asked once the release's way, then never again
    assert all(b.get("max_completion_tokens") == 250 and "max_tokens" not in b for b in bodies[1:])
