"""Regression tests for inputs that once gave a 500 (found by schemathesis), and for the documented error shapes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import API_KEY, api_client, write_config


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    d = tmp_path / "cfg"
    write_config(
        d,
        {"dummy": ("dummy_binding", {}), "imager": ("dummy_binding", {"mode": "image"})},
        defaults={"ttt_binding": "dummy", "tti_binding": "imager"},
    )
    return d


def _openai_error(body: dict[str, Any]) -> dict[str, Any]:
    assert set(body) == {"error"}, body
    return dict(body["error"])


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/completions", "/v1/audio/speech", "/lollms/v1/context_size"])
async def test_unparsable_json_body_is_a_400_in_openai_shape(cfg: Path, path: str) -> None:
    async with api_client(cfg) as c:
        r = await c.post(path, content=b"5\xff", headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    err = _openai_error(r.json())
    assert err["type"] == "invalid_request_error" and "internal" not in err["message"]


@pytest.mark.parametrize("path", ["/v1/audio/transcriptions", "/v1/audio/translations"])
async def test_multipart_without_boundary_is_a_400(cfg: Path, path: str) -> None:
    async with api_client(cfg) as c:
        r = await c.post(path, content=b"", headers={"Content-Type": "multipart/form-data"})
    assert r.status_code == 400, r.text
    assert "boundary" in _openai_error(r.json())["message"].lower()


@pytest.mark.parametrize("value", ["abc", [], {}, "\x00", 1.5, 0])
async def test_image_width_of_wrong_type_is_a_400_naming_the_parameter(cfg: Path, value: Any) -> None:
    body = {"binding_name": "imager", "generation_type": "tti", "input_data": [{"type": "text", "role": "user_prompt", "data": "x"}],
            "parameters": {"width": value, "height": 8}}
    async with api_client(cfg) as c:
        r = await c.post("/api/v1/generate", json=body)
    assert r.status_code == 400, r.text
    assert "parameters.width" in r.json()["detail"]


async def test_malformed_image_size_is_a_400(cfg: Path) -> None:
    body = {"binding_name": "imager", "generation_type": "tti", "input_data": [{"type": "text", "role": "user_prompt", "data": "x"}],
            "parameters": {"image_size": "axb"}}
    async with api_client(cfg) as c:
        r = await c.post("/api/v1/generate", json=body)
        ok = await c.post("/api/v1/generate", json={**body, "parameters": {"image_size": "8x4"}})
    assert r.status_code == 400 and "512x512" in r.json()["detail"], r.text
    assert ok.status_code == 200 and ok.json()["output"][0]["metadata"]["width"] == 8


async def test_openapi_declares_the_error_bodies_actually_sent(cfg: Path) -> None:
    async with api_client(cfg) as c:
        spec = (await c.get("/openapi.json")).json()
        invalid = await c.post("/api/v1/tokenize", json={"text": 5})
    declared = spec["components"]["schemas"]["HTTPValidationError"]
    body = invalid.json()
    assert invalid.status_code == 422 and isinstance(body["detail"], str) and isinstance(body["errors"], list)
    assert declared["properties"]["detail"]["type"] == "string" and set(declared["required"]) == {"detail", "errors"}
    assert "422" in spec["paths"]["/api/v1/tokenize"]["post"]["responses"]
    # OpenAI-style routes answer bad input with 400 {"error": ...}, never 422
    for path in ("/v1/chat/completions", "/v1/audio/transcriptions", "/lollms/v1/tokenize"):
        assert "422" not in spec["paths"][path]["post"]["responses"], path
    event = spec["paths"]["/api/v1/generate"]["post"]["responses"]["200"]["content"]["text/event-stream"]["schema"]
    assert event["properties"]["data"]["type"] == "string"
    assert event["properties"]["data"]["contentSchema"]["title"] == "StreamChunk"
