"""dalle_binding against a fake OpenAI images API (generations JSON, edits multipart) over real HTTP."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from fakes.base import tiny_png
from fakes.openai_fake import FakeOpenAI
from helpers import api_client
from remote_common import fake_fixture, prompt, remote_config

KEY = "sk-images-key-0042"


fake_openai = fake_fixture(FakeOpenAI, "fake_openai")


def instance(fake: FakeOpenAI, **values: Any) -> tuple[str, dict[str, Any]]:
    return ("dalle_binding", {"base_url": f"{fake.url}/v1", "api_key": KEY, "api_key_env": None, "max_retries": 0,
                              "timeout": 5.0, **values})


async def test_generation_size_quality_style_n(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    cfg = remote_config(tmp_path, {"img": instance(fake_openai)})
    body = prompt("a red fox", generation_type="tti",
                  parameters={"size": "1792x1024", "quality": "hd", "style": "natural", "n": 2})
    async with api_client(cfg) as c:
        r = await c.post("/api/v1/generate", json=body)
    assert r.status_code == 200, r.text
    out = r.json()["output"]
    assert [o["type"] for o in out] == ["image", "image"] and out[0]["mime_type"] == "image/png"
    assert Image.open(io.BytesIO(base64.b64decode(out[0]["data"]))).format == "PNG"
    assert out[0]["metadata"]["revised_prompt"] == "revised: a red fox"
    sent = fake_openai.requests[-1]
    assert sent.path == "/v1/images/generations" and sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.body == {"model": "dall-e-3", "prompt": "a red fox", "n": 2, "size": "1792x1024", "quality": "hd",
                         "style": "natural", "response_format": "b64_json"}


async def test_edit_sends_multipart_image_and_mask(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    cfg = remote_config(tmp_path, {"img": instance(fake_openai, default_model="dall-e-2", default_size="512x512")})
    body = {"generation_type": "i2i", "binding_name": "img", "input_data": [
        {"type": "text", "role": "user_prompt", "data": "add a hat"},
        {"type": "image", "role": "input_image", "data": tiny_png(), "mime_type": "image/png"},
        {"type": "image", "role": "mask", "data": tiny_png((0, 0, 0)), "mime_type": "image/png"}]}
    async with api_client(cfg) as c:
        r = await c.post("/api/v1/generate", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["output"][0]["type"] == "image"
    sent = fake_openai.requests[-1]
    assert sent.path == "/v1/images/edits"
    assert sent.body["prompt"] == "add a hat" and sent.body["model"] == "dall-e-2" and sent.body["size"] == "512x512"
    assert sent.body["response_format"] == "b64_json"
    assert sent.body["image"][0]["size"] > 0 and sent.body["mask"][0]["size"] > 0


async def test_bad_size_is_400_and_i2i_needs_an_image(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    cfg = remote_config(tmp_path, {"img": instance(fake_openai)})
    async with api_client(cfg) as c:
        r = await c.post("/api/v1/generate", json=prompt("x", generation_type="tti", parameters={"size": "huge"}))
        assert r.status_code == 400 and "size" in r.json()["detail"]
        r = await c.post("/api/v1/generate", json=prompt("x", generation_type="i2i", binding_name="img"))
        assert r.status_code == 400 and "input image" in r.json()["detail"]
    assert not fake_openai.requests


async def test_streamed_request_gets_images_in_final(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    from helpers import sse_events

    cfg = remote_config(tmp_path, {"img": instance(fake_openai)})
    async with api_client(cfg) as c:
        r = await c.post("/api/v1/generate", json=prompt("a cat", generation_type="tti", stream=True))
    events = sse_events(r.text)
    assert events[-1]["type"] == "final" and events[-1]["content"][0]["type"] == "image"


@pytest.mark.parametrize("status,expected", [(401, 502), (429, 429), (500, 502)])
async def test_failures(tmp_path: Path, fake_openai: FakeOpenAI, status: int, expected: int) -> None:
    cfg = remote_config(tmp_path, {"img": instance(fake_openai)})
    fake_openai.behaviour.failures = [status]
    async with api_client(cfg) as c:
        r = await c.post("/api/v1/generate", json=prompt("a cat", generation_type="tti"))
    assert r.status_code == expected, r.text
    assert KEY not in r.text
