"""A broken upstream is an error, never a success (issue "Fail closed", item 5).

Each remote binding talks to a fake of its provider over real HTTP; the fake answers with status 200 but
a broken body (text, `{}`, an HTML page) or a stream cut before its protocol's end marker (`[DONE]` and a
finish reason, `done: true`, a `finishReason`). Non-streaming requests must get a 502 saying what was wrong;
streams an `error` event and exactly one `final` holding an error output, never a clean `stop`.
Truncation by max_tokens is `finish_reason: "length"` on /api/v1/generate and /v1 alike.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterator

import pytest

from fakes.base import FAULTS, FakeServer
from fakes.gemini_fake import FakeGemini
from fakes.ollama_fake import FakeOllama
from fakes.openai_fake import FakeOpenAI
from helpers import api_client, sse_events
from remote_common import prompt, remote_config, running

PYTHON_EXCEPTION = re.compile(r"\b[A-Z][A-Za-z]+(Error|Exception)\b")


def _openai(fake: FakeServer) -> tuple[str, dict[str, Any]]:
    return ("openai_binding", {"base_url": f"{fake.url}/v1", "api_key": "sk-fake-1234567", "api_key_env": None,
                               "default_model": "gpt-fake", "max_retries": 0, "timeout": 5.0})


def _ollama(fake: FakeServer) -> tuple[str, dict[str, Any]]:
    return ("ollama_binding", {"base_url": fake.url, "default_model": "llama-fake", "timeout": 5.0})


def _gemini(fake: FakeServer) -> tuple[str, dict[str, Any]]:
    return ("gemini_binding", {"base_url": fake.url, "api_key": "gm-fake-key-123456", "api_key_env": None,
                               "default_model": "gemini-fake-flash", "timeout": 5.0})


CHAT_BINDINGS = {"openai": (FakeOpenAI, _openai), "ollama": (FakeOllama, _ollama), "gemini": (FakeGemini, _gemini)}


@pytest.fixture(params=sorted(CHAT_BINDINGS))
def remote(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[FakeServer, Path]]:
    fake_type, make = CHAT_BINDINGS[request.param]
    with running(fake_type) as fake:
        yield fake, remote_config(tmp_path, {"up": make(fake)})


def _assert_clear_502(r: Any) -> None:
    assert r.status_code == 502, r.text
    detail = r.json()["detail"]
    assert "binding instance 'up'" in detail and not PYTHON_EXCEPTION.search(detail), detail


@pytest.mark.parametrize("fault", [f for f in FAULTS if f != "no_end"])
async def test_a_broken_200_answer_is_a_502(remote: tuple[FakeServer, Path], fault: str) -> None:
    fake, cfg = remote
    fake.behaviour.fault = fault
    async with api_client(cfg) as c:
        r = await c.post("/api/v1/generate", json=prompt("hello there"))
        o = await c.post("/v1/chat/completions", json={"model": "up", "messages": [{"role": "user", "content": "hi"}]})
    _assert_clear_502(r)
    assert o.status_code == 502 and o.json()["error"]["type"] == "server_error", o.text


def _assert_stream_failed(events: list[dict[str, Any]]) -> None:
    types = [e["type"] for e in events]
    assert types.count("final") == 1 and types[-1] == "final" and "error" in types, types
    final = events[-1]["content"]
    assert any(o["type"] == "error" for o in final), final
    assert all((o.get("metadata") or {}).get("finish_reason") != "stop" for o in final), final
    error = next(e for e in events if e["type"] == "error")["content"]
    assert "binding instance 'up'" in error and not PYTHON_EXCEPTION.search(error), error


@pytest.mark.parametrize("fault", FAULTS)
async def test_a_broken_stream_ends_with_an_error_never_a_stop(remote: tuple[FakeServer, Path], fault: str) -> None:
    fake, cfg = remote
    fake.behaviour.fault = fault
    async with api_client(cfg) as c:
        r = await c.post("/api/v1/generate", json=prompt("one two three four", stream=True))
        o = await c.post("/v1/chat/completions", json={"model": "up", "stream": True, "messages": [{"role": "user", "content": "hi"}]})
    _assert_stream_failed(sse_events(r.text))
    frames = sse_events(o.text.replace("data: [DONE]", ""))
    assert any("error" in f for f in frames) and not any(
        c.get("finish_reason") == "stop" for f in frames for c in f.get("choices", [])), o.text


async def test_the_same_fakes_serve_well_without_a_fault(remote: tuple[FakeServer, Path]) -> None:
    """The faults above are what fails: the same request without one succeeds and ends with stop."""
    _, cfg = remote
    async with api_client(cfg) as c:
        r = await c.post("/api/v1/generate", json=prompt("one two three"))
        s = sse_events((await c.post("/api/v1/generate", json=prompt("one two three", stream=True))).text)
    out = r.json()["output"][0]
    assert r.status_code == 200 and out["data"] == "echo: one two three" and out["metadata"]["finish_reason"] == "stop"
    assert s[-1]["type"] == "final" and s[-1]["content"][0]["metadata"]["finish_reason"] == "stop"


async def test_truncation_by_max_tokens_is_length_everywhere(remote: tuple[FakeServer, Path]) -> None:
    _, cfg = remote
    ask = prompt("one two three four five six", parameters={"max_tokens": 2})
    async with api_client(cfg) as c:
        r = await c.post("/api/v1/generate", json=ask)
        s = sse_events((await c.post("/api/v1/generate", json={**ask, "stream": True})).text)
        o = await c.post("/v1/chat/completions", json={"model": "up", "max_tokens": 2, "messages": [{"role": "user", "content": "one two three four"}]})
    assert r.status_code == 200 and r.json()["output"][0]["metadata"]["finish_reason"] == "length", r.text
    assert s[-1]["content"][0]["metadata"]["finish_reason"] == "length", s[-1]
    assert o.json()["choices"][0]["finish_reason"] == "length", o.text


async def test_dummy_truncation_is_length_too(tmp_path: Path) -> None:
    cfg = remote_config(tmp_path, {"dummy": ("dummy_binding", {})})
    async with api_client(cfg) as c:
        r = await c.post("/api/v1/generate", json=prompt("a b c d", parameters={"max_tokens": 2}))
        whole = await c.post("/api/v1/generate", json=prompt("a b c d", parameters={"max_tokens": 9}))
    assert r.json()["output"][0]["metadata"]["finish_reason"] == "length"
    assert whole.json()["output"][0]["metadata"]["finish_reason"] == "stop"


@pytest.mark.parametrize("fault", [f for f in FAULTS if f != "no_end"])
async def test_dalle_broken_answer_is_a_502(tmp_path: Path, fault: str) -> None:
    with running(FakeOpenAI) as fake:
        cfg = remote_config(tmp_path, {"up": ("dalle_binding", {"base_url": f"{fake.url}/v1", "api_key": "sk-img-12345678",
                                                                "api_key_env": None, "max_retries": 0, "timeout": 5.0})})
        fake.behaviour.fault = fault
        async with api_client(cfg) as c:
            r = await c.post("/api/v1/generate", json=prompt("a red fox", generation_type="tti"))
            o = await c.post("/v1/images/generations", json={"model": "up", "prompt": "a red fox"})
    _assert_clear_502(r)
    assert o.status_code == 502, o.text


async def test_tokenizing_with_a_model_that_has_no_tokenizer_is_a_400_on_lollms_routes(tmp_path: Path) -> None:
    with running(FakeOpenAI) as fake:
        cfg = remote_config(tmp_path, {"up": _openai(fake)})
        async with api_client(cfg) as c:
            r = await c.post("/lollms/v1/tokenize", json={"model": "up", "text": "hello"})
            d = await c.post("/lollms/v1/detokenize", json={"model": "up", "tokens": [1, 2]})
    for resp in (r, d):
        assert resp.status_code == 400 and resp.json()["error"]["param"] == "model", resp.text
