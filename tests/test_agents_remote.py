"""Tool calls and embeddings through the remote bindings, each against a fake speaking its provider's wire protocol.

The OpenAI-compatible surface is used as clients use it; the fakes check what reaches the provider.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fakes.gemini_fake import FakeGemini
from fakes.ollama_fake import FakeOllama
from fakes.openai_fake import FakeOpenAI
from helpers import api_client
from remote_common import fake_fixture, remote_config

fake_openai = fake_fixture(FakeOpenAI, "fake_openai")
fake_ollama = fake_fixture(FakeOllama, "fake_ollama")
fake_gemini = fake_fixture(FakeGemini, "fake_gemini")

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


def openai_instance(fake: FakeOpenAI) -> tuple[str, dict[str, Any]]:
    return ("openai_binding", {"base_url": f"{fake.url}/v1", "api_key": "sk-fake-instance-key-77", "api_key_env": None,
                               "default_model": "gpt-fake", "embedding_model": "text-embedding-fake", "timeout": 5.0})


def ollama_instance(fake: FakeOllama) -> tuple[str, dict[str, Any]]:
    return ("ollama_binding", {"base_url": fake.url, "default_model": "qwen-tools-fake", "embedding_model": "embed-fake",
                               "timeout": 5.0})


def gemini_instance(fake: FakeGemini) -> tuple[str, dict[str, Any]]:
    return ("gemini_binding", {"base_url": fake.url, "api_key": "gm-key-fake-123", "api_key_env": None,
                               "default_model": "gemini-fake-flash", "embedding_model": "embedding-fake", "timeout": 5.0})


def _chunks(text: str) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ") and line != "data: [DONE]"]


async def _round_trip(c: Any, model: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A tool call (not streamed, then streamed) and the answer after sending the tool result back."""
    msgs = [{"role": "user", "content": "Lyon"}]
    r = await c.post("/v1/chat/completions", json={"model": model, "messages": msgs, "tools": [WEATHER]})
    assert r.status_code == 200, r.text
    choice = r.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls", choice
    call = choice["message"]["tool_calls"][0]
    assert call["function"]["name"] == "get_weather" and json.loads(call["function"]["arguments"]) == {"city": "Lyon"}
    r = await c.post("/v1/chat/completions", json={"model": model, "messages": msgs, "tools": [WEATHER], "stream": True})
    pieces = [tc for ch in _chunks(r.text) if ch["choices"] for tc in ch["choices"][0]["delta"].get("tool_calls") or []]
    assert pieces[0]["function"]["name"] == "get_weather" and pieces[0]["id"]
    assert json.loads("".join(p["function"].get("arguments") or "" for p in pieces)) == {"city": "Lyon"}
    assert _chunks(r.text)[-1]["choices"][0]["finish_reason"] == "tool_calls"
    follow = msgs + [choice["message"], {"role": "tool", "tool_call_id": call["id"], "name": "get_weather", "content": "sunny 24C"}]
    r = await c.post("/v1/chat/completions", json={"model": model, "messages": follow, "tools": [WEATHER]})
    assert r.status_code == 200, r.text
    return call, r.json()["choices"][0]


async def _embeddings(c: Any, model: str, dims: int) -> None:
    r = await c.post("/v1/embeddings", json={"model": model, "input": ["alpha", "beta", "alpha"]})
    assert r.status_code == 200, r.text
    vecs = [d["embedding"] for d in r.json()["data"]]
    assert len(vecs) == 3 and len(vecs[0]) == dims and vecs[0] == vecs[2] and vecs[0] != vecs[1]
    r = await c.post("/api/v1/embed", json={"input": "alpha", "binding_name": model})
    assert r.status_code == 200 and r.json()["embeddings"][0] == vecs[0]


async def test_openai_binding_passes_tools_through(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    async with api_client(remote_config(tmp_path, {"oa": openai_instance(fake_openai)})) as c:
        call, answer = await _round_trip(c, "oa")
        assert answer["message"]["content"] == "echo: tool said sunny 24C"
        sent = fake_openai.requests_to("/v1/chat/completions")[-1].body
        assert sent["tools"] == [WEATHER] and sent["tool_choice"] == "auto"
        assert sent["messages"][1]["tool_calls"][0]["id"] == call["id"]
        assert sent["messages"][2] == {"role": "tool", "content": "sunny 24C", "tool_call_id": call["id"], "name": "get_weather"}
        await _embeddings(c, "oa", 8)
        assert fake_openai.requests_to("/v1/embeddings")[0].body["model"] == "text-embedding-fake"


async def test_ollama_binding_passes_tools_through(tmp_path: Path, fake_ollama: FakeOllama) -> None:
    async with api_client(remote_config(tmp_path, {"ol": ollama_instance(fake_ollama)})) as c:
        _, answer = await _round_trip(c, "ol")
        assert answer["message"]["content"] == "echo: tool get_weather said sunny 24C"
        sent = fake_ollama.requests_to("/api/chat")[-1].body
        assert sent["tools"][0]["function"]["name"] == "get_weather"
        assert sent["messages"][1]["tool_calls"] == [{"function": {"name": "get_weather", "arguments": {"city": "Lyon"}}}]
        await _embeddings(c, "ol", 4)


async def test_gemini_binding_passes_tools_through(tmp_path: Path, fake_gemini: FakeGemini) -> None:
    async with api_client(remote_config(tmp_path, {"gm": gemini_instance(fake_gemini)})) as c:
        _, answer = await _round_trip(c, "gm")
        assert answer["message"]["content"] == 'function get_weather returned {"result": "sunny 24C"}'
        sent = fake_gemini.requests_to(":generateContent")[-1].body
        decl = sent["tools"][0]["functionDeclarations"][0]
        schema = decl.get("parametersJsonSchema") or decl.get("parameters_json_schema")  # proto JSON: either spelling
        assert decl["name"] == "get_weather" and schema == WEATHER["function"]["parameters"]
        assert sent["contents"][1]["parts"][0]["functionCall"]["name"] == "get_weather"
        await _embeddings(c, "gm", 6)


@pytest.mark.parametrize("choice", ["required", {"type": "function", "function": {"name": "get_weather"}}])
async def test_forced_tool_choice_reaches_openai_and_gemini(tmp_path: Path, fake_openai: FakeOpenAI, fake_gemini: FakeGemini,
                                                           choice: Any) -> None:
    cfg = remote_config(tmp_path, {"oa": openai_instance(fake_openai), "gm": gemini_instance(fake_gemini)})
    async with api_client(cfg) as c:
        for model in ("oa", "gm"):
            r = await c.post("/v1/chat/completions", json={"model": model, "messages": [{"role": "user", "content": "x"}],
                                                           "tools": [WEATHER], "tool_choice": choice})
            assert r.json()["choices"][0]["finish_reason"] == "tool_calls", r.text
        assert fake_openai.requests_to("/v1/chat/completions")[-1].body["tool_choice"] == choice
        fcc = fake_gemini.requests_to(":generateContent")[-1].body["toolConfig"]["functionCallingConfig"]
        assert fcc["mode"] == "ANY" and (fcc.get("allowedFunctionNames") == ["get_weather"]) == isinstance(choice, dict)
