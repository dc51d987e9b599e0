"""The LLM captioner against a llama.cpp-style local server (issue 26): the model it really serves, a base
URL without /v1, one request at a time unless the server reports more slots, no retry of a local timeout,
and Ctrl-C that stops at once with one line. The server runs here on 127.0.0.1."""
from __future__ import annotations

import _thread
import functools
import threading
import time

import pandas as pd
from caption_builders import (  # noqa: F401 - offline_env is autouse
    API_KEY,
    FakeLLMServer,
    offline_env,
    random_rows,
    run_llm_caption,
    table_fixture,
    write_table,
)

from soundaq.captions.llm_server import is_local, is_path_page, model_listed, path_fix, server_root

SMOL = "SmolLM2-135M-Instruct"


table = table_fixture(4, seed=5)


#: ``soundaq caption --captioner llm`` (run_llm_caption) asking for gpt-4o-mini unless a test names a model.
_caption = functools.partial(run_llm_caption, model="gpt-4o-mini")


def test_addresses_models_and_404_pages():
    assert all(is_local(u) for u in ("http://127.0.0.1:8080/v1", "http://localhost:11434/v1", "http://[::1]:8/v1",
                                     "http://192.168.1.20:8000/v1", "http://gpu.local:8000/v1"))
    assert not any(is_local(u) for u in ("https://api.openai.com/v1", "http://8.8.8.8/v1"))
    assert server_root("http://127.0.0.1:8080/v1/") == "http://127.0.0.1:8080"
    assert model_listed("llama3.1", ["llama3.1:latest"]) and model_listed("smollm2", ["models/SmolLM2.gguf"])
    assert not model_listed("gpt-4o-mini", [SMOL])
    assert is_path_page(404, "text/plain", "File Not Found") and is_path_page(404, "application/json",
                                                                               {"detail": "Not Found"})
    assert not is_path_page(404, "application/json", {"message": "The model `x` does not exist"})
    assert "/v1" in path_fix("http://127.0.0.1:8080") and "check --base-url" in path_fix("http://h:1/v1")


def test_a_model_name_the_server_does_not_serve_is_said_with_the_model_that_answers(tmp_path, capsys, table):
    """llama.cpp serves its one model under any name and echoes the name: the run says which model
    answered, and captions.csv's served_model holds it (model keeps the requested name)."""
    with FakeLLMServer(models=[SMOL], answer_model=lambda m: m) as server:
        code, err = _caption(capsys, server.url, table, tmp_path / "caps", tmp_path / "cache", "--concurrency", "2")
    assert code == 0, err
    said = [line for line in err.splitlines() if "serves one model" in line]
    assert len(said) == 1 and f"'{SMOL}', not 'gpt-4o-mini'" in said[0] and f"--llm-model {SMOL}" in said[0]
    csv = pd.read_csv(tmp_path / "caps" / "captions.csv")
    assert set(csv["model"]) == {"gpt-4o-mini"} and set(csv["served_model"]) == {SMOL}
    assert f"the server lists only `{SMOL}`" in (tmp_path / "caps" / "captions.md").read_text()
    assert server.gets[0] == "/v1/models"
    with FakeLLMServer(models=[SMOL, "gpt-4o-mini"]) as server:      # listed: nothing to say
        code, err = _caption(capsys, server.url, table, tmp_path / "caps2", tmp_path / "cache", "--concurrency", "2")
    assert code == 0 and "serves" not in err and "lists" not in err.split("caption(s) ->")[0]


def test_a_base_url_without_v1_gets_the_path_fix_not_the_model_fix(tmp_path, capsys, table):
    with FakeLLMServer(models=[SMOL]) as server:
        root = server.url.removesuffix("/v1")
        code, err = _caption(capsys, root, table, tmp_path / "caps", tmp_path / "cache", model=SMOL)
    assert code == 1 and len(server.requests) == 1                 # fatal: the rest are not sent
    lines = [line for line in err.splitlines() if "HTTP 404" in line]
    assert len(lines) == 1, err
    assert f"fix: end --base-url with /v1 ({root}/v1)" in lines[0] and "File Not Found" in lines[0]
    assert "Error code" not in err and "--llm-model" not in lines[0]


def test_a_local_server_gets_one_request_at_a_time_or_its_slots(tmp_path, capsys, table):
    with FakeLLMServer(delay=0.15) as server:
        code, err = _caption(capsys, server.url, table, tmp_path / "a", tmp_path / "cache")
    assert code == 0 and server.max_inflight == 1 and len(server.requests) == 4
    assert len([line for line in err.splitlines() if "1 request(s) at a time (a local server" in line]) == 1
    with FakeLLMServer(delay=0.3, slots=2) as server:
        code, err = _caption(capsys, server.url, table, tmp_path / "b", tmp_path / "cache", "--temperature", "0.5")
    assert code == 0 and server.max_inflight == 2 and "/props reports 2 slot(s)" in err
    with FakeLLMServer(delay=0.3) as server:                           # --concurrency is obeyed
        code, err = _caption(capsys, server.url, table, tmp_path / "c", tmp_path / "cache", "--temperature", "0.4",
                             "--concurrency", "3")
    assert code == 0 and server.max_inflight == 3 and "at a time" not in err


def test_a_one_slot_server_is_not_buried_under_queued_requests(tmp_path, capsys):
    """Issue 26's run: a one-slot server, with requests sent beside it, times out the ones that wait in its
    queue (their timeout runs there); the default for a local server sends one at a time and gets all."""
    table = write_table(tmp_path / "six.csv", random_rows(6, seed=8))
    with FakeLLMServer(delay=0.3, one_slot=True) as server:
        code, err = _caption(capsys, server.url, table, tmp_path / "piled", tmp_path / "cache", "--timeout", "1.0",
                             "--retries", "0", "--concurrency", "4")
        piled = len(pd.read_csv(tmp_path / "piled" / "captions.csv"))
        code2, err2 = _caption(capsys, server.url, table, tmp_path / "one", tmp_path / "cache2", "--timeout", "1.0",
                               "--retries", "0")
    assert code == 1 and piled < 6 and "no answer within 1 s" in err
    assert code2 == 0 and len(pd.read_csv(tmp_path / "one" / "captions.csv")) == 6, err2


def test_a_local_timeout_is_not_retried(tmp_path, capsys, table):
    """A local server keeps generating an abandoned answer: asking again only queues another."""
    with FakeLLMServer(lambda n, body: "hang" if n == 0 else "ok", hang_s=2.0) as server:
        code, err = _caption(capsys, server.url, table, tmp_path / "caps", tmp_path / "cache", "--timeout", "0.5",
                             "--retries", "3")
    assert code == 1 and len(server.requests) == 4 and "; retry " not in err
    lines = [line for line in err.splitlines() if "no answer within 0.5 s" in line]
    assert len(lines) == 1 and "not asked again" in lines[0] and "fix: raise --timeout" in lines[0]


def test_ctrl_c_stops_at_once_with_one_line(tmp_path, capsys, table):
    """Ctrl-C while a request hangs: the command returns within a second or so (it does not wait for
    the server) and says so in one line; the captions finished before are in the cache."""
    with FakeLLMServer(lambda n, body: "hang" if n == 1 else "ok", hang_s=8.0) as server:
        timer = threading.Timer(1.2, _thread.interrupt_main)
        started = time.monotonic()
        timer.start()
        try:
            code, err = _caption(capsys, server.url, table, tmp_path / "caps", tmp_path / "cache", "--timeout", "30")
        finally:
            timer.cancel()
        took = time.monotonic() - started
    assert code == 130 and took < 4.0, (took, err)
    lines = [line for line in err.splitlines() if "interrupt" in line.lower()]
    assert len(lines) == 1, err
    assert len(list((tmp_path / "cache").rglob("*.json"))) == 1       # the first caption is kept
