"""Streamed OpenAI chunks are exactly the JSON text ``json.dumps`` gives for their dict (the shape the chat route
always sent: key order, ``", "`` separators, ASCII escapes), also now that a chat chunk is written from a head
made once per stream; and every stream ends with one ``[DONE]``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers import api_client, write_config

from lollms_server.api.openai_compat.chunks import ChatChunks, CompletionChunks, sse_encoder
from lollms_server.api.openai_compat.textgen import Delta, Finish, TextEvents, ToolCallEvent
from lollms_server.api.sse import Final, Last
from lollms_server.core.contract import StreamChunk
from lollms_server.core.tools import ToolCall

TEXTS = ["hello", " world", "", 'quote " backslash \\ slash /', "new\nline\ttab\r\x00\x1f\x7f",
         "naïve café — 東京 🚀", "\u2028\u2029", "lone \ud800 surrogate", "</script><!--"]
MODELS = ["dummy", "gw/up@persona", 'we"ird\\mo\x00del', "\x00delta\x00", "ünïcode/模型"]


def _shape(chunk_id: str, created: int, model: str, delta: dict[str, Any], finish: str | None,
           include_usage: bool) -> str:
    """The chunk as the chat route built it before: a dict given to json.dumps."""
    out: dict[str, Any] = {"id": chunk_id, "created": created, "model": model, "object": "chat.completion.chunk",
                           "system_fingerprint": None,
                           "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]}
    return json.dumps({**out, "usage": None} if include_usage else out)


@pytest.mark.parametrize("include_usage", [False, True])
@pytest.mark.parametrize("model", MODELS)
def test_chat_chunks_are_the_json_of_their_dict(model: str, include_usage: bool) -> None:
    make = ChatChunks("chatcmpl-abc", 1795897061, model, include_usage)
    shape = lambda delta, finish=None: _shape("chatcmpl-abc", 1795897061, model, delta, finish, include_usage)  # noqa: E731
    assert make.text(TEXTS[0]) == shape({"role": "assistant", "content": TEXTS[0]})
    for text in TEXTS[1:]:
        assert make.text(text) == shape({"content": text})
        assert make(Delta(text)) == [shape({"content": text})]
    assert make(Delta("", "some thought")) == [shape({"reasoning_content": "some thought"})]
    assert make(Delta("answer", "why \"so\"")) == [shape({"reasoning_content": 'why "so"'}), shape({"content": "answer"})]
    call = ToolCall("get_weather", {"city": "Zürich", "days": [1, 2], "note": "x" * 40}, "call_1")
    pieces = make(ToolCallEvent(0, call))
    args = call.arguments_json
    assert pieces[0] == shape({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                               "function": {"name": "get_weather", "arguments": ""}}]})
    assert pieces[1:] == [shape({"tool_calls": [{"index": 0, "function": {"arguments": args[i:i + 24]}}]})
                          for i in range(0, len(args), 24)]
    for reason in ("stop", "length", "tool_calls"):
        assert make(Finish(reason)) == [shape({}, reason)]
    usage = {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
    expected = json.dumps({"id": "chatcmpl-abc", "created": 1795897061, "model": model,
                           "object": "chat.completion.chunk", "choices": [], "usage": usage})
    assert make.usage(usage) == (expected if include_usage else None)


@pytest.mark.parametrize("first", [Delta("", "thinking first"), Finish("stop"), ToolCallEvent(0, ToolCall("f", {}, "c"))])
def test_the_first_chat_delta_of_any_kind_says_role_assistant_once(first: Any) -> None:
    make = ChatChunks("chatcmpl-x", 1, "m", False)
    deltas = [json.loads(text)["choices"][0]["delta"] for text in make(first) + [make.text("a"), make.text("b")]]
    assert list(deltas[0])[0] == "role" and deltas[0]["role"] == "assistant"
    assert all("role" not in d for d in deltas[1:])


def _final(text: str, usage: dict[str, int] | None = None) -> StreamChunk:
    meta = {"finish_reason": "stop", **({"usage": usage} if usage else {})}
    return StreamChunk(type="final", content=[{"type": "text", "data": text, "mime_type": None, "thoughts": None,
                                                "metadata": meta}], metadata={"usage": usage} if usage else {})


class _Plan:  # what TextEvents reads of a GenerationPlan
    class task:  # noqa: N801
        usage = None


def test_the_encoder_ends_with_done_and_says_whether_to_read_on() -> None:
    encode = sse_encoder(TextEvents(_Plan(), []), ChatChunks("chatcmpl-x", 1, "m", True))  # type: ignore[arg-type]
    first = encode(StreamChunk(type="chunk", content="hi"))
    assert first == _shape("chatcmpl-x", 1, "m", {"role": "assistant", "content": "hi"}, None, True)
    assert encode(StreamChunk(type="chunk", content="")) == []
    last = encode(_final("hi", {"prompt_tokens": 1, "completion_tokens": 1}))
    assert type(last) is Final and last[-1] == "[DONE]" and json.loads(last[-2])["usage"]["total_tokens"] == 2
    # a stop sequence ends the stream before the final event: closed at once, not read on
    encode = sse_encoder(TextEvents(_Plan(), ["STOP"]), ChatChunks("chatcmpl-x", 1, "m", False))  # type: ignore[arg-type]
    assert encode(StreamChunk(type="chunk", content="ab ST")) == [_shape("chatcmpl-x", 1, "m", {"role": "assistant", "content": "ab "}, None, False)]
    ended = encode(StreamChunk(type="chunk", content="OP more"))
    assert type(ended) is Last and ended == [_shape("chatcmpl-x", 1, "m", {}, "stop", False), "[DONE]"]
    # an error before the final event: OpenAI's error object, then [DONE]
    encode = sse_encoder(TextEvents(_Plan(), []), ChatChunks("chatcmpl-x", 1, "m", False))  # type: ignore[arg-type]
    assert encode(StreamChunk(type="error", content="boom")) == []
    failed = encode(_final(""))
    assert json.loads(failed[0])["error"]["message"] == "boom" and failed[1:] == ["[DONE]"]


def test_completion_chunks_are_the_json_of_their_dict() -> None:
    base = {"id": "cmpl-1", "object": "text_completion", "created": 3, "model": "m"}
    make = CompletionChunks(base, "echoed: ", True)

    def shape(text: str, finish: str | None = None) -> str:
        return json.dumps({**base, "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish}], "usage": None})

    assert make.text("a\u00e9") == [shape("echoed: a\u00e9")]
    assert make(Delta("b")) == [shape("b")]
    assert make(Finish("length")) == [shape("", "length")]
    assert make.usage({"prompt_tokens": 1}) == json.dumps({**base, "choices": [], "usage": {"prompt_tokens": 1}})


def _data_lines(body: str) -> list[str]:
    return [line[6:] for line in body.split("\r\n") if line.startswith("data: ")]


def _is_dumps_of_itself(text: str) -> bool:
    return json.dumps(json.loads(text)) == text


async def test_streams_through_the_app_send_json_dumps_text_and_one_done(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg"
    write_config(cfg, {"dummy": ("dummy_binding", {}), "thinker": ("dummy_binding", {"mode": "think"}),
                       "tools": ("dummy_binding", {"mode": "tools"})})
    weather = {"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}}}}
    bodies = [
        {"model": "dummy", "messages": [{"role": "user", "content": 'é "q" \\ 🚀 alpha beta'}], "stream": True},
        {"model": "thinker", "messages": [{"role": "user", "content": "one two"}], "stream": True,
         "stream_options": {"include_usage": True}},
        {"model": "tools", "messages": [{"role": "user", "content": '{"city": "Zürich"}'}], "stream": True, "tools": [weather]},
        {"model": "dummy", "messages": [{"role": "user", "content": "alpha beta gamma"}], "stream": True, "stop": "beta"},
    ]
    async with api_client(cfg) as c:
        for body in bodies:
            r = await c.post("/v1/chat/completions", json=body)
            assert r.status_code == 200, r.text
            lines = _data_lines(r.text)
            assert lines[-1] == "[DONE]" and lines.count("[DONE]") == 1, lines
            chunks = [json.loads(x) for x in lines[:-1]]
            assert all(_is_dumps_of_itself(x) for x in lines[:-1]), lines
            for chunk in chunks:
                expected = ["id", "created", "model", "object"] + (["system_fingerprint"] if chunk["choices"] else [])
                assert list(chunk)[:len(expected)] == expected and chunk["model"] == body["model"], chunk
            finishes = [ch["choices"][0]["finish_reason"] for ch in chunks if ch["choices"]]
            assert finishes[:-1] == [None] * (len(finishes) - 1) and finishes[-1] in ("stop", "tool_calls")
            if body.get("stream_options"):
                assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0
                assert all("usage" in ch for ch in chunks)
            if body["model"] == "thinker":
                assert any(ch["choices"] and ch["choices"][0]["delta"].get("reasoning_content") for ch in chunks)
            if body["model"] == "tools":
                calls = [d for ch in chunks for d in ch["choices"][0]["delta"].get("tool_calls", [])]
                assert calls[0]["function"]["name"] == "get_weather" and finishes[-1] == "tool_calls"
                assert json.loads("".join(d["function"]["arguments"] for d in calls)) == {"city": "Zürich"}
            if body.get("stop"):
                text = "".join(ch["choices"][0]["delta"].get("content") or "" for ch in chunks)
                assert text == "alpha "
        r = await c.post("/v1/completions", json={"model": "dummy", "prompt": "x y", "stream": True, "echo": True})
        lines = _data_lines(r.text)
        assert lines[-1] == "[DONE]" and lines.count("[DONE]") == 1
        assert all(_is_dumps_of_itself(x) for x in lines[:-1])
        assert "".join(json.loads(x)["choices"][0]["text"] for x in lines[:-1]) == "x yx y"


async def test_plain_answers_are_compact_utf8_json_as_before(tmp_path: Path) -> None:
    """The JSON text a JSONResponse gives (compact, UTF-8 unescaped), key order included; text that is not valid
    Unicode (a lone surrogate a backend may send) is escaped rather than failing the answer."""
    from lollms_server.api.openai_compat.routes_chat import _json

    cfg = tmp_path / "cfg"
    write_config(cfg, {"thinker": ("dummy_binding", {"mode": "think"})})
    async with api_client(cfg) as c:
        r = await c.post("/v1/chat/completions", json={"model": "thinker", "messages": [
            {"role": "user", "content": 'naïve "q" \\ 東京\n\t\u2028 🚀'}]})
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        body = r.json()
        assert r.content == json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        assert list(body) == ["id", "created", "model", "object", "system_fingerprint", "choices", "usage"]
        assert body["choices"][0]["message"]["content"] == 'naïve "q" \\ 東京\n\t\u2028 🚀'
        r = await c.post("/v1/completions", json={"model": "thinker", "prompt": "é x"})
        assert r.content == json.dumps(r.json(), ensure_ascii=False, separators=(",", ":")).encode()
    odd = _json({"text": "lone \ud800 surrogate"})
    assert json.loads(odd.body) == {"text": "lone \ud800 surrogate"}
