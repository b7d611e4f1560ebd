"""ollama_binding against a fake Ollama server speaking the native API over real HTTP."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from fakes.base import tiny_png
from fakes.ollama_fake import FakeOllama
from helpers import api_client, sse_events
from remote_common import fake_fixture, prompt, remote_config


fake_ollama = fake_fixture(FakeOllama, "fake_ollama")


def instance(fake: FakeOllama, **values: Any) -> tuple[str, dict[str, Any]]:
    return ("ollama_binding", {"base_url": fake.url, "default_model": "llama-fake", "timeout": 5.0, **values})


def chats(fake: FakeOllama) -> list[Any]:
    return fake.requests_to("/api/chat")


async def test_list_and_model_info(tmp_path: Path, fake_ollama: FakeOllama) -> None:
    cfg = remote_config(tmp_path, {"ol": instance(fake_ollama)})
    async with api_client(cfg) as c:
        r = await c.get("/api/v1/list_available_models/ol")
        assert r.status_code == 200, r.text
        models = {m["name"]: m for m in r.json()["models"]}
        assert set(models) == {"llama-fake:latest", "llava-fake:latest", "qwen-tools-fake:latest", "embed-fake:latest"}
        assert models["llama-fake:latest"]["family"] == "llama"
        info = await c.get("/api/v1/get_model_info/ol", params={"model_name": "llava-fake"})
        assert info.status_code == 200, info.text
        assert info.json()["supports_vision"] is True and info.json()["context_size"] == 4096
        missing = await c.get("/api/v1/get_model_info/ol", params={"model_name": "nope"})
        assert missing.status_code == 404 and "auto_pull" in missing.json()["detail"]


async def test_stream_options_mapping_and_usage(tmp_path: Path, fake_ollama: FakeOllama) -> None:
    cfg = remote_config(tmp_path, {"ol": instance(fake_ollama, num_ctx=2048, keep_alive="5m")})
    params = {"temperature": 0.2, "top_k": 5, "top_p": 0.9, "repeat_penalty": 1.1, "seed": 42, "stop": ["###"], "max_tokens": 3}
    async with api_client(cfg) as c:
        r = await c.post("/api/v1/generate", json=prompt("alpha beta gamma delta", stream=True, parameters=params))
    events = sse_events(r.text)
    assert [e["type"] for e in events].count("final") == 1 and events[-1]["type"] == "final"
    assert "".join(e["content"] for e in events if e["type"] == "chunk") == "echo: alpha beta"
    final = events[-1]["content"][0]
    assert final["data"] == "echo: alpha beta"
    assert final["metadata"]["usage"] == {"prompt_tokens": 4, "completion_tokens": 3, "total_tokens": 7}
    sent = chats(fake_ollama)[-1].body
    assert sent["stream"] is True and sent["keep_alive"] == "5m"
    assert sent["options"] == {"num_ctx": 2048, "temperature": 0.2, "top_k": 5, "top_p": 0.9, "repeat_penalty": 1.1,
                               "seed": 42, "num_predict": 3, "stop": ["###"]}


async def test_vision_images_sent_as_base64(tmp_path: Path, fake_ollama: FakeOllama) -> None:
    cfg = remote_config(tmp_path, {"ol": instance(fake_ollama, default_model="llava-fake")})
    image = tiny_png()
    body = {"input_data": [{"type": "text", "role": "user_prompt", "data": "describe"},
                           {"type": "image", "role": "user_prompt", "data": image, "mime_type": "image/png"}]}
    async with api_client(cfg) as c:
        r = await c.post("/api/v1/generate", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["output"][0]["data"] == "echo: describe [1 image(s)]"
    sent = chats(fake_ollama)[-1].body
    assert base64.b64decode(sent["messages"][-1]["images"][0]) == base64.b64decode(image)
    assert sent["stream"] is False


async def test_text_only_model_refuses_images_once_known(tmp_path: Path, fake_ollama: FakeOllama) -> None:
    cfg = remote_config(tmp_path, {"ol": instance(fake_ollama)})
    body = {"input_data": [{"type": "text", "role": "user_prompt", "data": "describe"},
                           {"type": "image", "role": "user_prompt", "data": tiny_png(), "mime_type": "image/png"}]}
    async with api_client(cfg) as c:
        assert (await c.get("/api/v1/get_model_info/ol")).json()["supports_vision"] is False
        r = await c.post("/api/v1/generate", json=body)
    assert r.status_code == 400 and "image" in r.json()["detail"]


async def test_thinking_goes_to_thoughts(tmp_path: Path, fake_ollama: FakeOllama) -> None:
    cfg = remote_config(tmp_path, {"ol": instance(fake_ollama, think=True)})
    async with api_client(cfg) as c:
        r = await c.post("/api/v1/generate", json=prompt("q"))
        s = await c.post("/api/v1/generate", json=prompt("q", stream=True))
    assert r.json()["output"][0]["thoughts"] == "Let me think."
    assert sse_events(s.text)[-1]["content"][0]["thoughts"] == "Let me think."
    assert chats(fake_ollama)[-1].body["think"] is True


async def test_auto_pull_reports_progress_as_info(tmp_path: Path, fake_ollama: FakeOllama) -> None:
    cfg = remote_config(tmp_path, {"ol": instance(fake_ollama, default_model="newmodel", auto_pull=True)})
    async with api_client(cfg) as c:
        r = await c.post("/api/v1/generate", json=prompt("hello there", stream=True))
    events = sse_events(r.text)
    infos = [e for e in events if e["type"] == "info"]
    assert any(e["metadata"].get("percent") == 50.0 for e in infos)
    assert infos[-1]["metadata"]["status"] == "success"
    assert events[-1]["content"][0]["data"] == "echo: hello there"
    assert [q.path for q in fake_ollama.requests] == ["/api/chat", "/api/pull", "/api/chat"]


async def test_missing_model_without_auto_pull_is_404(tmp_path: Path, fake_ollama: FakeOllama) -> None:
    cfg = remote_config(tmp_path, {"ol": instance(fake_ollama, default_model="newmodel")})
    async with api_client(cfg) as c:
        r = await c.post("/api/v1/generate", json=prompt("hi"))
    assert r.status_code == 404, r.text
    assert not fake_ollama.requests_to("/api/pull")


@pytest.mark.parametrize("status,expected", [(429, 429), (500, 502)])
async def test_status_mapping(tmp_path: Path, fake_ollama: FakeOllama, status: int, expected: int) -> None:
    cfg = remote_config(tmp_path, {"ol": instance(fake_ollama)})
    fake_ollama.behaviour.failures = [status]
    async with api_client(cfg) as c:
        r = await c.post("/api/v1/generate", json=prompt("hi"))
    assert r.status_code == expected, r.text


async def test_401_with_key_does_not_leak(tmp_path: Path, fake_ollama: FakeOllama) -> None:
    cfg = remote_config(tmp_path, {"ol": instance(fake_ollama, api_key="ollama-secret-key-31337")})
    fake_ollama.behaviour.required_key = "another-key-entirely"
    async with api_client(cfg) as c:
        r = await c.post("/api/v1/generate", json=prompt("hi"))
        s = await c.post("/api/v1/generate", json=prompt("hi", stream=True))
    assert r.status_code == 502 and "rejected the API key" in r.json()["detail"]
    assert "ollama-secret-key-31337" not in r.text + s.text
    assert chats(fake_ollama)[0].headers["authorization"] == "Bearer ollama-secret-key-31337"


async def test_dropped_stream_is_an_error(tmp_path: Path, fake_ollama: FakeOllama) -> None:
    cfg = remote_config(tmp_path, {"ol": instance(fake_ollama)})
    fake_ollama.behaviour.drop_after = 2
    async with api_client(cfg) as c:
        r = await c.post("/api/v1/generate", json=prompt("one two three four", stream=True))
    events = sse_events(r.text)
    assert [e["type"] for e in events][-2:] == ["error", "final"]
    assert events[-1]["content"][-1]["type"] == "error"
    assert events[-1]["content"][0]["metadata"]["finish_reason"] == "error"


async def test_dropped_stream_error_comes_after_every_piece_of_text(tmp_path: Path, fake_ollama: FakeOllama) -> None:
    """A held-back tail (it could start a known secret) is streamed before the error event, never after it."""
    from lollms_server.core.secrets import REDACTOR

    REDACTOR.add("e-held-back-secret-0123456789")  # " one" ends with "e": the last letter waits for the next piece
    cfg = remote_config(tmp_path, {"ol": instance(fake_ollama)})
    fake_ollama.behaviour.drop_after = 2
    async with api_client(cfg) as c:
        r = await c.post("/api/v1/generate", json=prompt("one two three four", stream=True))
    events = sse_events(r.text)
    assert [e["type"] for e in events][-2:] == ["error", "final"]
    streamed = "".join(e["content"] for e in events if e["type"] == "chunk")
    assert streamed == events[-1]["content"][0]["data"] and streamed.endswith("one")


async def test_timeout(tmp_path: Path, fake_ollama: FakeOllama) -> None:
    cfg = remote_config(tmp_path, {"ol": instance(fake_ollama, timeout=1.0)})
    fake_ollama.behaviour.delay = 3.0
    async with api_client(cfg) as c:
        r = await c.post("/api/v1/generate", json=prompt("slow"))
    assert r.status_code == 502 and "timed out" in r.json()["detail"]
