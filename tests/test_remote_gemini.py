"""gemini_binding against a fake Gemini v1beta API over real HTTP."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from fakes.base import tiny_png
from fakes.gemini_fake import FakeGemini
from helpers import api_client, sse_events
from remote_common import fake_fixture, prompt, remote_config

KEY_A, KEY_B = "gemini-key-instance-a-111", "gemini-key-instance-b-222"


fake_gemini = fake_fixture(FakeGemini, "fake_gemini")


def instance(fake: FakeGemini, **values: Any) -> tuple[str, dict[str, Any]]:
    return ("gemini_binding", {"base_url": fake.url, "api_key": KEY_A, "api_key_env": None,
                               "default_model": "gemini-fake-flash", "timeout": 5.0, **values})


def calls(fake: FakeGemini, method: str) -> list[Any]:
    return fake.requests_to(f":{method}")


async def test_models_listing_and_info(tmp_path: Path, fake_gemini: FakeGemini) -> None:
    cfg = remote_config(tmp_path, {"gm": instance(fake_gemini)})
    async with api_client(cfg) as c:
        r = await c.get("/api/v1/list_available_models/gm")
        assert r.status_code == 200, r.text
        names = [m["name"] for m in r.json()["models"]]
        assert names == ["gemini-fake-flash", "gemini-fake-pro"]  # embedding-only model left out
        info = await c.get("/api/v1/get_model_info/gm", params={"model_name": "gemini-fake-pro"})
        assert info.status_code == 200, info.text
        assert info.json()["context_size"] == 2097152 and info.json()["max_output_tokens"] == 65536
        missing = await c.get("/api/v1/get_model_info/gm", params={"model_name": "gemini-nope"})
        assert missing.status_code == 404


async def test_each_instance_sends_its_own_key(tmp_path: Path, fake_gemini: FakeGemini) -> None:
    cfg = remote_config(tmp_path, {"ga": instance(fake_gemini), "gb": instance(fake_gemini, api_key=KEY_B)})
    async with api_client(cfg) as c:
        for name in ("ga", "gb", "ga"):
            r = await c.post("/api/v1/generate", json=prompt(f"from {name}", binding_name=name))
            assert r.status_code == 200, r.text
            assert r.json()["output"][0]["data"] == f"echo: from {name}"
        listed = await c.get("/api/v1/list_bindings")
    assert [q.headers["x-goog-api-key"] for q in calls(fake_gemini, "generateContent")] == [KEY_A, KEY_B, KEY_A]
    assert KEY_A not in listed.text and KEY_B not in listed.text


async def test_stream_vision_system_and_config(tmp_path: Path, fake_gemini: FakeGemini) -> None:
    cfg = remote_config(tmp_path, {"gm": instance(fake_gemini)})
    image = tiny_png()
    body = {"input_data": [{"type": "text", "role": "system_context", "data": "Answer briefly."},
                           {"type": "text", "role": "user_prompt", "data": "what colour"},
                           {"type": "image", "role": "user_prompt", "data": image, "mime_type": "image/png"}],
            "stream": True, "parameters": {"temperature": 0.5, "top_k": 3, "max_tokens": 64, "stop": ["END"]}}
    async with api_client(cfg) as c:
        r = await c.post("/api/v1/generate", json=body)
    events = sse_events(r.text)
    chunks = [e for e in events if e["type"] == "chunk"]
    assert len(chunks) >= 3 and events[-1]["type"] == "final" and not [e for e in events if e["type"] == "error"]
    final = events[-1]["content"][0]
    assert final["data"] == "echo: what colour [1 image(s)]" == "".join(e["content"] for e in chunks)
    assert final["metadata"]["usage"]["prompt_tokens"] == 2
    sent = calls(fake_gemini, "streamGenerateContent")[-1]
    assert sent.query.get("alt") == "sse"
    assert sent.body["systemInstruction"]["parts"][0]["text"] == "Answer briefly."
    parts = sent.body["contents"][-1]["parts"]
    assert parts[0] == {"text": "what colour"}
    inline = parts[1]["inlineData"]
    assert (inline.get("mimeType") or inline.get("mime_type")) == "image/png"
    assert base64.b64decode(inline["data"]) == base64.b64decode(image)
    gc = sent.body["generationConfig"]
    assert gc["temperature"] == 0.5 and gc["topK"] == 3 and gc["maxOutputTokens"] == 64 and gc["stopSequences"] == ["END"]


async def test_thought_parts_become_thoughts(tmp_path: Path, fake_gemini: FakeGemini) -> None:
    cfg = remote_config(tmp_path, {"gm": instance(fake_gemini, include_thoughts=True)})
    async with api_client(cfg) as c:
        r = await c.post("/api/v1/generate", json=prompt("hmm"))
        s = await c.post("/api/v1/generate", json=prompt("hmm", stream=True))
    assert r.json()["output"][0]["thoughts"] == "Considering the request."
    assert r.json()["output"][0]["data"] == "echo: hmm"
    assert sse_events(s.text)[-1]["content"][0]["thoughts"] == "Considering the request."


async def test_invalid_key_is_502_without_the_key(tmp_path: Path, fake_gemini: FakeGemini) -> None:
    cfg = remote_config(tmp_path, {"gm": instance(fake_gemini)})
    fake_gemini.behaviour.required_key = "the-real-key-somewhere"
    async with api_client(cfg) as c:
        r = await c.post("/api/v1/generate", json=prompt("hi"))
        s = await c.post("/api/v1/generate", json=prompt("hi", stream=True))
    assert r.status_code == 502, r.text
    assert "rejected the API key" in r.json()["detail"]
    assert KEY_A not in r.text and KEY_A not in s.text
    assert [e["type"] for e in sse_events(s.text)] == ["error", "final"]


@pytest.mark.parametrize("status,expected", [(429, 429), (500, 502), (403, 502)])
async def test_status_mapping(tmp_path: Path, fake_gemini: FakeGemini, status: int, expected: int) -> None:
    cfg = remote_config(tmp_path, {"gm": instance(fake_gemini)})
    fake_gemini.behaviour.failures = [status]
    async with api_client(cfg) as c:
        r = await c.post("/api/v1/generate", json=prompt("hi"))
    assert r.status_code == expected, r.text


async def test_dropped_stream_is_an_error(tmp_path: Path, fake_gemini: FakeGemini) -> None:
    cfg = remote_config(tmp_path, {"gm": instance(fake_gemini)})
    fake_gemini.behaviour.drop_after = 2
    async with api_client(cfg) as c:
        r = await c.post("/api/v1/generate", json=prompt("a b c d e f", stream=True))
    events = sse_events(r.text)
    assert [e["type"] for e in events][-2:] == ["error", "final"]
    assert events[-1]["content"][-1]["type"] == "error"


async def test_timeout(tmp_path: Path, fake_gemini: FakeGemini) -> None:
    cfg = remote_config(tmp_path, {"gm": instance(fake_gemini, timeout=1.0)})
    fake_gemini.behaviour.delay = 3.0
    async with api_client(cfg) as c:
        r = await c.post("/api/v1/generate", json=prompt("slow"))
    assert r.status_code == 502, r.text
    assert "timed out" in r.json()["detail"]
