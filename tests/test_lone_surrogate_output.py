"""A backend's text holding a lone UTF-16 surrogate is answered, never a 500 (issue "Fail closed").

A provider that cuts a string inside an emoji sends valid JSON (``"\\ud83d"``) that is not valid Unicode; the
server's inbound side refuses such strings from clients (400, `strict_json`), but a backend's text is not
the client's fault. Each surface answers 200 with well-formed UTF-8 JSON / SSE in which the lone half is the
replacement character U+FFFD (what a UTF-8 decoder gives for an invalid sequence), the rest of the text intact.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pytest

from fakes.openai_fake import FakeOpenAI
from helpers import api_client, sse_events
from remote_common import remote_config, running

WANT = "echo: say hi\ufffd"


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[tuple[FakeOpenAI, Path]]:
    with running(FakeOpenAI) as fake:
        fake.behaviour.lone_surrogate = True
        cfg = remote_config(tmp_path, {"up": ("openai_binding", {
            "base_url": f"{fake.url}/v1", "api_key": "sk-fake-1234567", "api_key_env": None,
            "default_model": "gpt-fake", "max_retries": 0, "timeout": 5.0})})
        yield fake, cfg


def _utf8_json(raw: bytes) -> Any:
    return json.loads(raw.decode("utf-8"))  # strict: a surrogate encoded as UTF-8 bytes would raise here


GENERATE = {"input_data": [{"type": "text", "role": "user_prompt", "data": "say hi"}], "binding_name": "up"}


async def test_generate_plain(upstream: tuple[FakeOpenAI, Path]) -> None:
    async with api_client(upstream[1]) as c:
        r = await c.post("/api/v1/generate", json=GENERATE)
    assert r.status_code == 200, r.text
    out = _utf8_json(r.content)["output"]
    assert [o["data"] for o in out if o["type"] == "text"] == [WANT]


async def test_generate_stream(upstream: tuple[FakeOpenAI, Path]) -> None:
    async with api_client(upstream[1]) as c:
        r = await c.post("/api/v1/generate", json={**GENERATE, "stream": True})
    assert r.status_code == 200, r.text
    r.content.decode("utf-8")
    events = sse_events(r.text)
    assert "".join(e["content"] for e in events if e["type"] == "chunk") == WANT
    finals = [e for e in events if e["type"] == "final"]
    assert len(finals) == 1 and [o["data"] for o in finals[0]["content"] if o["type"] == "text"] == [WANT]
    assert not [e for e in events if e["type"] == "error"]


@pytest.mark.parametrize("stream", [False, True])
async def test_openai_chat(upstream: tuple[FakeOpenAI, Path], stream: bool) -> None:
    body = {"model": "up/gpt-fake", "messages": [{"role": "user", "content": "say hi"}], "stream": stream}
    async with api_client(upstream[1]) as c:
        r = await c.post("/v1/chat/completions", json=body)
    assert r.status_code == 200, r.text
    if not stream:
        assert _utf8_json(r.content)["choices"][0]["message"]["content"] == WANT
        return
    frames = [line[6:] for line in r.content.decode("utf-8").splitlines() if line.startswith("data: ")]
    assert frames[-1] == "[DONE]"
    text = "".join((c.get("delta") or {}).get("content") or "" for f in frames[:-1] for c in json.loads(f)["choices"])
    assert text == WANT


@pytest.mark.parametrize("stream", [False, True])
async def test_ollama_chat(upstream: tuple[FakeOpenAI, Path], stream: bool) -> None:
    body = {"model": "up/gpt-fake", "messages": [{"role": "user", "content": "say hi"}], "stream": stream}
    async with api_client(upstream[1]) as c:
        r = await c.post("/api/chat", json=body)
    assert r.status_code == 200, r.text
    lines = [_utf8_json(line.encode()) for line in r.content.decode("utf-8").splitlines() if line.strip()]
    assert "".join(x["message"]["content"] for x in lines) == WANT
    assert lines[-1]["done"] is True


def test_valid_value_repairs_only_what_needs_it() -> None:
    from lollms_server.core.unicode_text import valid_value

    clean = {"model": "m", "n": 3, "ok": True, "none": None, "x": 1.5, "tags": ["a", ("é", 2)], "nested": {"k": "v"}}
    assert valid_value(clean) is clean
    broken = {"a": ["fine", {"deep\ud83d": ("x\ude00y", 1)}], "b": 2}
    assert valid_value(broken) == {"a": ["fine", {"deep\ufffd": ("x\ufffdy", 1)}], "b": 2}

    class Sub(str):
        pass

    assert valid_value([Sub("a\ud83d")]) == ["a\ufffd"]
    assert valid_value("pair \ud83d\ude00 joined") == "pair \U0001f600 joined"
