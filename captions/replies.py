"""What a chat-completions answer says as a caption: one reading of every reply shape the
OpenAI-compatible servers produce.

The same request comes back in many shapes. :func:`read_reply` turns any of them into a
:class:`Reply` (the caption text, the reasoning left out of it, and flags); :func:`reply_problem`
says, in one line with the fix, why a reply gives no caption. The shapes (sources: OpenAI's Chat
Completions reference; the servers' documentation and the bug reports named in docs/captions.md):

* ``message.content`` a string (OpenAI, vLLM, Ollama, llama.cpp), ``null`` with ``message.refusal``
  (OpenAI's refusals), or a list of parts: ``{"type": "text", "text": ...}``, ``{"type": "thinking",
  "thinking": str | [parts]}`` (Mistral's magistral), ``{"type": "refusal", "refusal": ...}``, other
  types (images, audio: left out, flagged ``parts``);
* reasoning beside the answer in ``message.reasoning_content`` (vLLM, SGLang, DeepSeek's API),
  ``message.reasoning`` (Ollama, OpenRouter), ``message.thinking`` or ``message.reasoning_details``:
  never part of the caption;
* reasoning inside the text, when the server has no reasoning parser: ``<think>...</think>``
  (DeepSeek-R1, QwQ, Qwen3), ``<thinking>``, ``<reasoning>``, ``<thought>``; an opening tag never
  closed (the answer was cut inside its reasoning); a closing tag without an opening one (the chat
  template put ``<think>`` into the prompt); gpt-oss's harmony channels
  (``<|channel|>analysis<|message|>...<|channel|>final<|message|>CAPTION``);
* end-of-turn tokens a server forgot to strip (``<|im_end|>``, ``<|eot_id|>``, ``</s>``...);
* ``message.tool_calls`` / ``function_call`` (a model that answers with a tool call);
* ``finish_reason`` ``length`` (cut at the length limit: the caption is kept, flagged
  ``truncated``) and ``content_filter``; a legacy ``choices[0].text``; an ``error`` object in a
  200 answer; no choices at all.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

#: What each flag of a kept caption means (the ``flags`` column of captions.csv).
FLAGS: dict[str, str] = {
    "truncated": "the answer reached the length limit (finish_reason length): the caption may stop mid-sentence",
    "reasoning": "the model's reasoning (a <think> block or a reasoning field) was left out of the caption",
    "tool_call": "the answer also held a tool call, ignored",
    "parts": "content parts that are not text (images, audio...) were left out",
    "special_tokens": "end-of-turn tokens the server left in the text were removed",
}

NOT_CHAT = "the answer is not a chat completion"
_TAG = r"think|thinking|reasoning|thought"
_BLOCK = re.compile(rf"<({_TAG})>(.*?)</\1\s*>", re.S | re.I)
_OPEN = re.compile(rf"<({_TAG})>", re.I)
_CLOSE = re.compile(rf"</({_TAG})\s*>", re.I)
_HARMONY_FINAL = "<|channel|>final<|message|>"
_HARMONY_END = re.compile(r"<\|(?:end|return|call)\|>")
_HARMONY_ANY = re.compile(r"<\|(?:start|channel)\|>\w*|<\|message\|>")
_END_TOKENS = re.compile(r"(?:\s*(?:<\|im_end\|>|<\|eot_id\|>|<\|end\|>|<\|endoftext\|>|</s>|<end_of_turn>|"
                         r"<\|end_of_text\|>))+\s*$")
_TEXT_PARTS = {"text", "output_text", "input_text"}
_REASONING_PARTS = {"thinking", "reasoning", "reasoning_text", "thought", "redacted_thinking", "summary_text"}
_REASONING_FIELDS = ("reasoning_content", "reasoning", "thinking", "reasoning_details")


@dataclass(frozen=True)
class Reply:
    """One chat-completions answer, read.

    Attributes:
        text: the caption (stripped; empty when the answer holds none).
        reasoning: the reasoning left out of it (empty when none).
        finish_reason: the server's (empty when it gave none).
        flags: names from :data:`FLAGS`.
        refusal: the model's refusal text (a refusal gives no caption).
        tool_calls: names of the tools the model called.
        unclosed: the text opened a reasoning block it never closed.
        other_parts: types of content parts left out (``image_url``...).
        error: an ``error`` object's message in a 200 answer, or why the body is not a chat completion.
        model: the answer's ``model`` field (what the server says answered).
    """

    text: str
    reasoning: str = ""
    finish_reason: str = ""
    flags: tuple[str, ...] = ()
    refusal: str = ""
    tool_calls: tuple[str, ...] = ()
    unclosed: bool = False
    other_parts: tuple[str, ...] = ()
    error: str = ""
    model: str = ""


def _flat(value) -> str:
    """The text of a field that may be a string, a part, or a list of either (nested)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        for key in ("text", "thinking", "reasoning", "content", "summary", "refusal"):
            if key in value and value[key] is not None:
                return _flat(value[key])
        return ""
    if isinstance(value, (list, tuple)):
        return "\n".join(t for t in (_flat(v) for v in value) if t)
    return str(value)


def split_reasoning(text: str) -> tuple[str, str, bool]:
    r"""``(answer, reasoning, unclosed)`` of a text that may carry its reasoning inline.

    Closed ``<think>``/``<thinking>``/``<reasoning>``/``<thought>`` blocks are taken out wherever they
    are; the text before a closing tag that has no opening one is reasoning; the text after an opening
    tag never closed is reasoning (``unclosed``); gpt-oss's harmony output keeps its ``final`` channel.

    >>> split_reasoning("<think>hm, a park</think>\n\nBirds sing.")
    ('Birds sing.', 'hm, a park', False)
    >>> split_reasoning("Okay, the user wants... </think> Birds sing.")
    ('Birds sing.', 'Okay, the user wants...', False)
    >>> split_reasoning("<think>Okay, so I need to")
    ('', 'Okay, so I need to', True)
    """
    reasoning: list[str] = []
    unclosed = False
    if "<|channel|>" in text or "<|message|>" in text:
        head, sep, tail = text.rpartition(_HARMONY_FINAL)
        if sep:
            reasoning.append(_HARMONY_ANY.sub(" ", _HARMONY_END.sub(" ", head)))
            text = _HARMONY_END.split(tail)[0]
        else:                   # only the analysis channel: the answer never started
            reasoning.append(_HARMONY_ANY.sub(" ", _HARMONY_END.sub(" ", text)))
            text, unclosed = "", True

    def keep(match: re.Match) -> str:
        reasoning.append(match.group(2))
        return ""

    text = _BLOCK.sub(keep, text)
    closes = list(_CLOSE.finditer(text))
    if closes:                  # the opening tag was in the prompt (or lost): all before the last close
        reasoning.append(_CLOSE.sub(" ", text[:closes[-1].start()]))
        text = text[closes[-1].end():]
    opened = _OPEN.search(text)
    if opened:
        reasoning.append(text[opened.end():])
        text, unclosed = text[:opened.start()], True
    found = "\n\n".join(r.strip() for r in reasoning if r.strip())
    return text.strip(), found, unclosed


def _content(content) -> tuple[list[str], list[str], list[str], list[str]]:
    """``(texts, reasoning, refusals, other part types)`` of ``message.content`` in any shape."""
    texts: list[str] = []
    reasoning: list[str] = []
    refusals: list[str] = []
    other: list[str] = []
    if content is None:
        return texts, reasoning, refusals, other
    if isinstance(content, str):
        return [content], reasoning, refusals, other
    parts = content if isinstance(content, (list, tuple)) else [content]
    for part in parts:
        if isinstance(part, str):
            texts.append(part)
            continue
        if not isinstance(part, dict):
            other.append(type(part).__name__)
            continue
        kind = str(part.get("type") or ("text" if "text" in part else "")).lower()
        if kind in _TEXT_PARTS:
            texts.append(_flat(part.get("text")))
        elif kind in _REASONING_PARTS:
            reasoning.append(_flat(part.get(kind, part.get("thinking", part.get("text", part.get("summary"))))))
        elif kind == "refusal":
            refusals.append(_flat(part.get("refusal", part.get("text"))))
        else:
            other.append(kind or "untyped")
    return texts, reasoning, refusals, other


def _tool_names(message: dict) -> tuple[str, ...]:
    calls = message.get("tool_calls") or []
    if isinstance(message.get("function_call"), dict):
        calls = [*calls, {"function": message["function_call"]}]
    names = []
    for call in calls if isinstance(calls, list) else []:
        fn = call.get("function") if isinstance(call, dict) else None
        names.append(str((fn or {}).get("name") or "unnamed") if isinstance(fn, dict) else "unnamed")
    return tuple(names)


def read_reply(data) -> Reply:
    """The caption of one chat-completions answer (the parsed JSON body), whatever its shape (see the
    module docstring). Never raises: a body that is not a chat completion gives a :class:`Reply`
    whose ``error`` says so.
    """
    if not isinstance(data, dict):
        return Reply("", error=f"{NOT_CHAT} ({type(data).__name__}: "
                               f"{' '.join(str(data).split())[:80]!r})")
    model = str(data.get("model") or "")
    if data.get("error") and not data.get("choices"):
        err = data["error"]
        said = str(err.get("message") or err) if isinstance(err, dict) else str(err)
        return Reply("", error=f"the server sent an error: {' '.join(said.split())[:160]}", model=model)
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return Reply("", error="the answer holds no choice", model=model)
    choice = choices[0]
    finish = str(choice.get("finish_reason") or "")
    message = choice.get("message") or choice.get("delta") or {}
    if not isinstance(message, dict):
        message = {"content": message}
    content = message.get("content")
    if content is None and isinstance(choice.get("text"), str):          # a legacy completions answer
        content = choice["text"]
    texts, reasoning, refusals, other = _content(content)
    reasoning += [_flat(message.get(f)) for f in _REASONING_FIELDS if message.get(f)]
    text, inline, unclosed = split_reasoning("".join(texts))
    flags = []
    stripped = _END_TOKENS.sub("", text)
    if stripped != text:
        text = stripped.strip()
        flags.append("special_tokens")
    reasoning_text = "\n\n".join(r.strip() for r in (*reasoning, inline) if r and r.strip())
    refusal = " ".join(r.strip() for r in (_flat(message.get("refusal")), *refusals) if r and r.strip())
    tools = _tool_names(message)
    if finish == "length":
        flags.insert(0, "truncated")
    if reasoning_text:
        flags.append("reasoning")
    if tools:
        flags.append("tool_call")
    if other:
        flags.append("parts")
    return Reply(text, reasoning_text, finish, tuple(flags), refusal, tools, unclosed, tuple(other), "", model)


def reply_problem(reply: Reply, model: str, max_tokens: int, url: str) -> tuple[str, str] | None:
    """``(kind, one line with the fix)`` when ``reply`` gives no caption, else None.

    Kinds: ``refusal`` (a refusal or the content filter), ``tool_call``, ``empty`` (no text: nothing,
    reasoning only, a cut-short answer), ``server`` (an ``error`` object in the answer), ``not_chat``
    (a body that is not a chat completion: every request would get one).
    """
    name = repr(model)
    if reply.error:
        kind = "not_chat" if reply.error.startswith(NOT_CHAT) else "server"
        return kind, f"{url}: {reply.error}; fix: check that --base-url is the server's OpenAI-compatible /v1 endpoint"
    if reply.refusal:
        why = " ".join(reply.refusal.split())[:120]
        return "refusal", f"{name} refused to caption ({why}); fix: rerun (a sampled answer may differ) or use another model"
    if reply.finish_reason == "content_filter" and not reply.text:
        return "refusal", (f"{url}'s content filter withheld {name}'s answer (finish_reason content_filter); "
                           "fix: rerun, or use another model or server")
    if reply.text:
        return None
    if reply.tool_calls:
        return "tool_call", (f"{name} answered with a tool call ({', '.join(reply.tool_calls)}) instead of text; "
                             "fix: use a model without tool use, or --prompt-role user")
    if reply.reasoning and (reply.finish_reason == "length" or reply.unclosed):
        return "empty", (f"{name} spent all {max_tokens} tokens reasoning and was cut off before the caption "
                         f"(finish_reason {reply.finish_reason or 'none'}); fix: raise --max-tokens (reasoning "
                         "models often need 1000 or more)")
    if reply.reasoning:
        return "empty", (f"{name} gave its reasoning but no caption (finish_reason {reply.finish_reason or 'none'}); "
                         "fix: rerun, or use a model without reasoning")
    if reply.other_parts:
        return "empty", (f"{name} answered with {', '.join(reply.other_parts)} part(s) and no text; "
                         "fix: use a text model")
    if reply.finish_reason == "length":
        return "empty", (f"{name} returned no text (finish_reason length); fix: raise --max-tokens (the model "
                         f"spent all {max_tokens} before answering)")
    return "empty", f"{name} returned no text (finish_reason {reply.finish_reason or 'none'}); fix: try again or another model"


def markdown_quote(text: str) -> str:
    r"""``text`` as one Markdown block quote: every line behind ``> `` (an empty line as ``>``), so an
    answer of several paragraphs stays inside the quote.

    >>> print(markdown_quote("Birds sing.\n\nIt feels calm."))
    > Birds sing.
    >
    > It feels calm.
    """
    lines = str(text).replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(f"> {line}".rstrip() for line in lines)
