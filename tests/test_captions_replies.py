"""LLM replies that are not plain text, and whose answer a cached caption is (issue 26, field cases F3-01,
F3-03, F3-06): every reply shape read into a caption and flags, each case through the command against a
server on 127.0.0.1 (ours, and the field case's own fake server), with its right value."""
from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
from caption_builders import (  # noqa: F401 - offline_env is autouse
    API_KEY,
    THINKING,
    FakeLLMServer,
    offline_env,
    prompt_caption,
    run_llm_caption,
    table_fixture,
)

from soundaq.captions.replies import markdown_quote, read_reply, reply_problem, split_reasoning

CAPTION = "In this park, birds sing and people talk now and then; the place feels calm and pleasant."


table = table_fixture(3, seed=11)


def _caption(capsys, url, table, out, cache, *extra, model="tiny-chat"):
    return run_llm_caption(capsys, url, table, out, cache, "--retries", "0", *extra, model=model)


def _reply(message: dict, finish: str = "stop") -> dict:
    return {"choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}],
            "model": "m"}


# ------------------------------------------------------------------------------------- the reading
@pytest.mark.parametrize("message, finish, text, flags, problem", [
    ({"content": CAPTION}, "stop", CAPTION, (), None),
    ({"content": f"<think>\n{THINKING}\n</think>\n\n{CAPTION}"}, "stop", CAPTION, ("reasoning",), None),
    ({"content": f"<THINKING>{THINKING}</THINKING>{CAPTION}"}, "stop", CAPTION, ("reasoning",), None),
    ({"content": f"<reasoning>{THINKING}</reasoning>\n{CAPTION}"}, "stop", CAPTION, ("reasoning",), None),
    ({"content": f"{THINKING}\n</think>\n{CAPTION}"}, "stop", CAPTION, ("reasoning",), None),   # <think> in the prompt
    ({"content": f"<think>{THINKING}"}, "length", "", ("truncated", "reasoning"), "empty"),
    ({"content": None, "reasoning_content": THINKING}, "length", "", ("truncated", "reasoning"), "empty"),
    ({"content": CAPTION, "reasoning_content": THINKING}, "stop", CAPTION, ("reasoning",), None),
    ({"content": CAPTION, "reasoning": THINKING}, "stop", CAPTION, ("reasoning",), None),
    ({"content": [{"type": "thinking", "thinking": [{"type": "text", "text": THINKING}]},
                  {"type": "text", "text": CAPTION}]}, "stop", CAPTION, ("reasoning",), None),
    ({"content": [{"type": "text", "text": "Birds sing. "}, {"type": "text", "text": "It is calm."}]}, "stop",
     "Birds sing. It is calm.", (), None),
    ({"content": [{"type": "image_url", "image_url": {"url": "x"}}, {"type": "text", "text": CAPTION}]}, "stop",
     CAPTION, ("parts",), None),
    ({"content": [{"type": "refusal", "refusal": "I cannot."}]}, "stop", "", (), "refusal"),
    ({"content": None, "refusal": "I can't help with that."}, "stop", "", (), "refusal"),
    ({"content": None}, "content_filter", "", (), "refusal"),
    ({"content": None, "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": "{}"}}]},
     "tool_calls", "", ("tool_call",), "tool_call"),
    ({"content": CAPTION, "tool_calls": [{"type": "function", "function": {"name": "f"}}]}, "stop", CAPTION,
     ("tool_call",), None),
    ({"content": CAPTION + " and the"}, "length", CAPTION + " and the", ("truncated",), None),
    ({"content": ""}, "stop", "", (), "empty"),
    ({"content": None}, "length", "", ("truncated",), "empty"),
    ({"content": CAPTION + "<|im_end|>"}, "stop", CAPTION, ("special_tokens",), None),
    ({"content": "<|channel|>analysis<|message|>" + THINKING + "<|end|><|start|>assistant<|channel|>final"
                 "<|message|>" + CAPTION + "<|return|>"}, "stop", CAPTION, ("reasoning",), None),
])
def test_every_reply_shape_gives_the_caption_or_one_reason(message, finish, text, flags, problem):
    reply = read_reply(_reply(message, finish))
    assert reply.text == text and reply.flags == flags
    assert THINKING not in reply.text and "<think" not in reply.text.lower()
    found = reply_problem(reply, "m", 250, "http://127.0.0.1:1/v1")
    assert (found[0] if found else None) == problem
    if found:
        assert "fix:" in found[1] and "\n" not in found[1]
    if "reasoning" in flags:
        assert THINKING in reply.reasoning


def test_answers_that_are_not_chat_completions():
    for data, kind in (("<html>Not Found</html>", "not_chat"), ({"error": {"message": "upstream down"}}, "server"),
                       ({"choices": []}, "server"), ({"object": "list"}, "server")):
        found = reply_problem(read_reply(data), "m", 250, "http://127.0.0.1:1/v1")
        assert found and found[0] == kind and "fix:" in found[1]
    legacy = read_reply({"choices": [{"text": CAPTION, "finish_reason": "stop"}]})
    assert legacy.text == CAPTION


def test_reasoning_tags_and_markdown_quotes():
    assert split_reasoning("Birds <think>hm</think>sing.") == ("Birds sing.", "hm", False)
    assert split_reasoning("no tags here") == ("no tags here", "", False)
    quoted = markdown_quote("One.\r\n\r\nTwo.\n- a list")
    assert quoted == "> One.\n>\n> Two.\n> - a list"


# ------------------------------------------------------------------------------- F3-01 and F3-03
@pytest.mark.parametrize("shape", ["think", "parts", "reasoning_field"])
def test_f3_01_f3_03_the_caption_is_the_answer_not_the_reasoning(tmp_path, capsys, table, shape):
    """F3-01 (a <think> block before the caption) and F3-03 (content as thinking and text chunks): the
    caption is the text alone, the reasoning is in captions.jsonl's own field, exit 0."""
    out = tmp_path / "caps"
    with FakeLLMServer(lambda n, body: shape) as server:
        code, err = _caption(capsys, server.url, table, out, tmp_path / "cache", model="deepseek-r1:8b")
        assert code == 0, err
        # the cache keeps the reply and reads it again the same way, without asking
        code, again = _caption(capsys, server.url, table, tmp_path / "caps2", tmp_path / "cache",
                               model="deepseek-r1:8b")
    assert code == 0 and len(server.requests) == 3 and "3 caption(s) from the LLM cache" in again
    assert (tmp_path / "caps2" / "captions.csv").read_text() == (out / "captions.csv").read_text()
    csv = pd.read_csv(out / "captions.csv", keep_default_na=False)
    assert list(csv["caption"]) == [prompt_caption(p) for p in csv["prompt"]]
    assert set(csv["flags"]) == {"reasoning"}
    records = [json.loads(line) for line in (out / "captions.jsonl").read_text().splitlines()]
    assert all(r["reasoning"] == THINKING for r in records)
    assert THINKING not in (out / "captions.md").read_text()
    assert "3 answer(s) held the model's reasoning" in err


def test_field_cases_f3_01_and_f3_03_with_their_own_servers(field_cases_dir, tmp_path, capsys):
    """The handed cases against the case's own fake server: the caption is the text after </think>
    (F3-01) and the text chunk (F3-03), exit 0."""
    for case, mode, model in (("F3-01", "think_closed", "deepseek-r1:8b"), ("F3-03", "list_content",
                                                                             "magistral-small-2509")):
        here = field_cases_dir / case
        with _case_server(here, mode, tmp_path / case) as url:
            code, err = _caption(capsys, url, here / "pred.csv", tmp_path / case / "caps", tmp_path / case / "c",
                                 model=model)
        assert code == 0, err
        rows = pd.read_csv(tmp_path / case / "caps" / "captions.csv", keep_default_na=False)
        assert list(rows["caption"]) == [CAPTION] * 3, case
        assert set(rows["served_model"]) == {"fake-model"}      # the case's server lists one model
        assert "serves one model, 'fake-model'" in err


# ------------------------------------------------------------------------------------------ F3-06
def test_f3_06_two_servers_with_one_model_name_do_not_share_answers(tmp_path, capsys, table):
    """Server B is asked although server A answered the same prompts with the same model name; a rerun
    against A says its captions come from the cache, and from server A."""
    cache = tmp_path / "cache"
    with FakeLLMServer() as a, FakeLLMServer(text=lambda p: "[server B] " + prompt_caption(p)) as b:
        assert _caption(capsys, a.url, table, tmp_path / "caps_A", cache, model="llama3.1:8b")[0] == 0
        code, err = _caption(capsys, b.url, table, tmp_path / "caps_B", cache, model="llama3.1:8b")
        assert code == 0 and len(b.requests) == 3 and "from the LLM cache" not in err, err
        code, err = _caption(capsys, a.url, table, tmp_path / "caps_A2", cache, model="llama3.1:8b")
    assert code == 0 and len(a.requests) == 3
    said = [line for line in err.splitlines() if "from the LLM cache" in line]
    assert len(said) == 1 and said[0].startswith("soundaq caption: 3 caption(s)") and a.url in said[0], err
    caps_b = pd.read_csv(tmp_path / "caps_B" / "captions.csv")
    assert all(c.startswith("[server B]") for c in caps_b["caption"]) and set(caps_b["base_url"]) == {b.url}
    caps_a2 = pd.read_csv(tmp_path / "caps_A2" / "captions.csv")
    assert not any(c.startswith("[server B]") for c in caps_a2["caption"]) and set(caps_a2["base_url"]) == {a.url}
    prov = json.loads((tmp_path / "caps_A2" / "provenance.json").read_text())
    assert prov["counts"]["from_cache"] == 3 and prov["counts"]["requests"] == 0
    # the output folder's own captions are not credited to another server either
    code, err = _caption(capsys, b.url, table, tmp_path / "caps_A", cache, model="llama3.1:8b")
    assert "reused" not in err.split("caption(s) ->")[-1]


def test_field_case_f3_06_with_its_own_servers(field_cases_dir, tmp_path, capsys):
    here = field_cases_dir / "F3-06"
    with _case_server(here, "ok", tmp_path / "A") as url_a, _case_server(here, "ok_b", tmp_path / "B") as url_b:
        for name, url in (("A", url_a), ("B", url_b)):
            code, err = _caption(capsys, url, here / "pred.csv", tmp_path / f"caps_{name}", tmp_path / "c",
                                 model="llama3.1:8b")
            assert code == 0, err
    asked_b = (tmp_path / "B" / "log").read_text().count("chat/completions")
    caps_b = pd.read_csv(tmp_path / "caps_B" / "captions.csv")
    assert asked_b == 3 and all(c.startswith("[server B]") for c in caps_b["caption"])


# ----------------------------------------------------------------------- flags, failures, quoting
def test_a_caption_cut_at_max_tokens_is_kept_and_flagged(tmp_path, capsys, table):
    out = tmp_path / "caps"
    with FakeLLMServer(lambda n, body: "truncated" if n == 1 else "ok") as server:
        code, err = _caption(capsys, server.url, table, out, tmp_path / "cache")
    assert code == 0, err
    csv = pd.read_csv(out / "captions.csv", keep_default_na=False)
    assert list(csv["flags"]) == ["", "truncated", ""] and list(csv["finish_reason"]) == ["stop", "length", "stop"]
    said = [line for line in err.splitlines() if "--max-tokens" in line]
    assert len(said) == 1 and "clip01" in said[0] and "truncated" in said[0]
    md = (out / "captions.md").read_text()
    assert "**1 caption(s) cut at max_tokens**" in md and "- flags: truncated" in md


@pytest.mark.parametrize("shape, pieces", [
    ("unclosed", ["spent all 250 tokens reasoning", "raise --max-tokens"]),
    ("reasoning_only", ["spent all 250 tokens reasoning", "raise --max-tokens"]),
    ("tool_call", ["answered with a tool call (describe_sound)", "fix:"]),
    ("refusal_part", ["refused to caption (I cannot describe this.)", "fix:"]),
    ("filtered", ["content filter", "fix:"]),
])
def test_replies_without_a_caption_cost_that_caption_with_one_line(tmp_path, capsys, table, shape, pieces):
    out = tmp_path / "caps"
    with FakeLLMServer(lambda n, body: shape if n == 0 else "ok") as server:
        code, err = _caption(capsys, server.url, table, out, tmp_path / "cache")
    assert code == 1 and len(server.requests) == 3
    hits = [line for line in err.splitlines() if all(p in line for p in pieces)]
    assert len(hits) == 1 and "clip00" in hits[0], err
    assert list(pd.read_csv(out / "captions.csv")["clip"]) == ["clip01", "clip02"]
    assert THINKING not in (out / "captions.md").read_text()


def test_answers_of_several_paragraphs_stay_inside_the_quote(tmp_path, capsys, table):
    out = tmp_path / "caps"
    with FakeLLMServer(lambda n, body: "paragraphs") as server:
        assert _caption(capsys, server.url, table, out, tmp_path / "cache")[0] == 0
    md = (out / "captions.md").read_text().split("\n")
    start = md.index("> " + prompt_caption(pd.read_csv(out / "captions.csv")["prompt"][0]))
    assert md[start:start + 5] == [md[start], ">", "> It feels calm.", ">", "> - birds"]
    assert "- voices" not in md                              # never a bare list item out of the quote


# --------------------------------------------------------------------- helpers for the case servers
class _case_server:
    """The field case's fake_llm.py on 127.0.0.1 (a free port), stopped on exit."""

    def __init__(self, here, mode, work):
        self.here, self.mode, self.work = here, mode, work

    def __enter__(self) -> str:
        import time

        self.work.mkdir(parents=True, exist_ok=True)
        port = self.work / "port"
        self.proc = subprocess.Popen([sys.executable, str(self.here / "fake_llm.py"), self.mode, str(port),
                                      str(self.work / "log")], stderr=subprocess.DEVNULL)
        for _ in range(150):
            if port.exists() and port.read_text().strip():
                return f"http://127.0.0.1:{port.read_text().strip()}/v1"
            time.sleep(0.05)
        self.proc.kill()
        raise RuntimeError("the field case's fake server did not start")

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()
        return False


def test_docstring_examples_of_the_reply_reader():
    import doctest

    import soundaq.captions.replies as replies

    result = doctest.testmod(replies, verbose=False)
    assert result.failed == 0 and result.attempted >= 4
