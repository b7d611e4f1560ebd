"""POST /api/v1/generate: resolution, inputs, parameters, thoughts, errors, streaming (in-process)."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import pytest
from helpers import api_client, sse_events, write_config
from PIL import Image


def text(data: str, role: str = "user_prompt") -> dict[str, Any]:
    return {"type": "text", "role": role, "data": data}


def png_b64() -> str:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (1, 2, 3)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    d = tmp_path / "cfg"
    write_config(
        d,
        {
            "dummy": ("dummy_binding", {}),
            "thinker": ("dummy_binding", {"mode": "think"}),
            "failing": ("dummy_binding", {"mode": "fail_stream"}),
            "broken": ("dummy_binding", {"mode": "fail_load"}),
            "painter": ("dummy_binding", {"mode": "image"}),
        },
        defaults={"ttt_binding": "dummy", "tti_binding": "painter"},
    )
    return d


def dummy_history(client: Any, name: str = "dummy") -> list[Any]:
    transport = client._transport
    return transport.app.state.services.bindings.get(name).history  # type: ignore[no-any-return]


async def test_plain_generate_with_usage_and_metadata(cfg: Path) -> None:
    async with api_client(cfg) as c:
        r = await c.post("/api/v1/generate", json={"input_data": [text("What is the capital of France?")]})
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"personality", "request_id", "output", "execution_time"}
        out = body["output"][0]
        assert out["type"] == "text" and out["data"] == "What is the capital of France?"
        assert out["metadata"]["usage"] == {"prompt_tokens": 6, "completion_tokens": 6, "total_tokens": 12}
        assert out["metadata"]["binding"] == "dummy" and out["metadata"]["model"] == "dummy-echo"


async def test_deprecated_text_prompt_and_multi_turn(cfg: Path) -> None:
    async with api_client(cfg) as c:
        r = await c.post("/api/v1/generate", json={"text_prompt": "legacy prompt"})
        assert r.json()["output"][0]["data"] == "legacy prompt"
        convo = [text("Be brief.", "system_context"), text("Hi"), text("Hello!", "assistant_reply"), text("Name a colour.")]
        r = await c.post("/api/v1/generate", json={"input_data": convo, "personality": "lollms"})
        assert r.status_code == 200 and r.json()["personality"] == "lollms"
        task = dummy_history(c)[-1]
        roles = [(m.role, m.content) for m in task.messages]
        assert roles[0][0] == "system" and "You are lollms" in roles[0][1] and "Be brief." in roles[0][1]
        assert roles[1:] == [("user", "Hi"), ("assistant", "Hello!"), ("user", "Name a colour.")]
        assert task.prompt == "Name a colour."


async def test_parameters_merge_defaults_personality_request(cfg: Path) -> None:
    async with api_client(cfg) as c:
        await c.post("/api/v1/generate", json={"input_data": [text("a")], "personality": "lollms"})
        p = dummy_history(c)[-1].params
        assert p["temperature"] == 0.7 and p["top_p"] == 0.95 and p["max_tokens"] == 1024
        await c.post("/api/v1/generate", json={"input_data": [text("a")], "personality": "lollms",
                                               "parameters": {"temperature": 0.1, "max_tokens": 5, "stop": "x"}})
        p = dummy_history(c)[-1].params
        assert p["temperature"] == 0.1 and p["max_tokens"] == 5 and p["top_p"] == 0.95 and p["stop"] == ["x"]


async def test_max_tokens_limits_output(cfg: Path) -> None:
    async with api_client(cfg) as c:
        r = await c.post("/api/v1/generate", json={"input_data": [text("one two three four")], "parameters": {"max_tokens": 2}})
        assert r.json()["output"][0]["data"] == "one two"


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"input_data": []}, 400, "at least one item"),
        ({"input_data": [text("x")], "personality": "nobody"}, 404, "nobody"),
        ({"input_data": [text("x")], "binding_name": "ghost"}, 404, "ghost"),
        ({"input_data": [text("x")], "binding_name": "broken"}, 503, "fail_load"),
        ({"input_data": [text("x")], "generation_type": "telepathy"}, 400, "telepathy"),
        ({"input_data": [text("x")], "generation_type": "stt", "binding_name": "dummy"}, 501, "cannot do 'stt'"),
        ({"input_data": [text("x")], "generation_type": "ttv"}, 400, "ttv_binding"),
        ({"input_data": [text("x"), {"type": "image", "role": "user_prompt", "data": "AAAA", "mime_type": "image/png"}]}, 400, "does not accept image"),
        ({"input_data": [text("x"), {"type": "image", "role": "user_prompt", "data": "%%%", "mime_type": "image/png"}], "model_name": "dummy-vision"}, 400, "base64"),
        ({"input_data": [text("x"), {"type": "image", "role": "user_prompt", "data": "AAAA", "mime_type": "image/tiff"}], "model_name": "dummy-vision"}, 400, "image/tiff"),
        ({"input_data": [text("x"), {"type": "image", "role": "mask_image", "data": "AAAA", "mime_type": "image/png"}], "model_name": "dummy-vision"}, 400, "mask_image"),
        ({"input_data": [text("x")], "parameters": {"temperature": "hot"}}, 400, "temperature"),
        ({"input_data": [text("x")], "parameters": {"max_tokens": 0}}, 400, "max_tokens"),
        ({"input_data": [text("x")], "model_name": "no-such-model"}, 404, "no-such-model"),
        ({"input_data": [{"type": "image", "role": "user_prompt", "data": "AAAA"}]}, 422, "mime_type"),
        ({"input_data": [{"type": "smell", "role": "user_prompt", "data": "x"}]}, 422, "input_data"),
        ({"input_data": "nope"}, 422, "input_data"),
    ],
)
async def test_bad_requests_get_clear_4xx(cfg: Path, body: dict[str, Any], status: int, fragment: str) -> None:
    async with api_client(cfg) as c:
        r = await c.post("/api/v1/generate", json=body)
        assert r.status_code == status, r.text
        assert fragment in r.json()["detail"]
        stream = await c.post("/api/v1/generate", json={**body, "stream": True} if isinstance(body, dict) else body)
        assert stream.status_code == status, "input errors are reported before a stream starts"


async def test_malformed_json_is_422(cfg: Path) -> None:
    async with api_client(cfg) as c:
        r = await c.post("/api/v1/generate", content=b"{not json", headers={"Content-Type": "application/json"})
        assert r.status_code == 422


async def test_vision_model_accepts_images_per_request(cfg: Path) -> None:
    async with api_client(cfg) as c:
        img = {"type": "image", "role": "user_prompt", "data": "data:image/png;base64," + png_b64(), "mime_type": "image/png"}
        r = await c.post("/api/v1/generate", json={"input_data": [text("describe"), img], "model_name": "dummy-vision"})
        assert r.status_code == 200, r.text
        task = dummy_history(c)[-1]
        assert task.model_name == "dummy-vision" and len(task.messages[-1].images) == 1
        assert not task.messages[-1].images[0].data.startswith("data:")


async def test_thoughts_are_separated(cfg: Path) -> None:
    async with api_client(cfg) as c:
        r = await c.post("/api/v1/generate", json={"input_data": [text("the sky is blue")], "binding_name": "thinker"})
        out = r.json()["output"][0]
        assert out["data"] == "the sky is blue" and out["thoughts"] == "The user said: the sky is blue"
        r = await c.post("/api/v1/generate", json={"input_data": [text("the sky is blue")], "binding_name": "thinker", "stream": True})
        events = sse_events(r.text)
        chunks = [e for e in events if e["type"] == "chunk"]
        assert "".join(e["content"] for e in chunks) == "the sky is blue"
        assert "".join(e["thoughts"] or "" for e in chunks) == "The user said: the sky is blue"
        assert all("<think>" not in e["content"] and "</think>" not in e["content"] for e in chunks)
        final = events[-1]
        assert final["type"] == "final" and final["content"][0]["thoughts"] == "The user said: the sky is blue"


async def test_stream_has_exactly_one_final_with_full_output(cfg: Path) -> None:
    async with api_client(cfg) as c:
        r = await c.post("/api/v1/generate", json={"input_data": [text("a b c d")], "stream": True})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = sse_events(r.text)
        assert [e["type"] for e in events].count("final") == 1 and events[-1]["type"] == "final"
        assert [e["content"] for e in events[:-1]] == ["a", " b", " c", " d"]
        assert events[-1]["content"][0]["data"] == "a b c d"
        assert events[-1]["metadata"]["usage"]["completion_tokens"] == 4


async def test_stream_error_then_final(cfg: Path) -> None:
    async with api_client(cfg) as c:
        r = await c.post("/api/v1/generate", json={"input_data": [text("w1 w2 w3 w4 w5 w6")], "binding_name": "failing", "stream": True})
        events = sse_events(r.text)
        types = [e["type"] for e in events]
        assert types.count("error") == 1 and types.count("final") == 1 and types[-1] == "final"
        assert types.index("error") == len(types) - 2
        final = events[-1]["content"]
        assert final[-1]["type"] == "error" and "mid-stream" in final[-1]["data"]
        assert final[0]["metadata"]["finish_reason"] == "error"
        r = await c.post("/api/v1/generate", json={"input_data": [text("x")], "binding_name": "failing"})
        assert r.status_code == 500 and "fail_stream" in r.json()["detail"]


async def test_image_generation_returns_png(cfg: Path) -> None:
    async with api_client(cfg) as c:
        r = await c.post("/api/v1/generate", json={"input_data": [text("a red fox")], "generation_type": "tti",
                                                   "parameters": {"width": 32, "height": 16}})
        out = r.json()["output"][0]
        assert out["type"] == "image" and out["mime_type"] == "image/png"
        img = Image.open(io.BytesIO(base64.b64decode(out["data"])))
        assert img.size == (32, 16)
        r = await c.post("/api/v1/generate", json={"input_data": [text("a red fox")], "generation_type": "tti", "stream": True})
        events = sse_events(r.text)
        assert events[0]["type"] == "info" and events[-1]["content"][0]["type"] == "image"


async def test_scripted_personality_calls_function_and_binding(cfg: Path) -> None:
    async with api_client(cfg) as c:
        body = {"input_data": [text("What is 12 * (3 + 4)?")], "personality": "calculator"}
        r = await c.post("/api/v1/generate", json=body)
        assert r.status_code == 200, r.text
        outs = r.json()["output"]
        assert outs[0]["data"] == "12 * (3 + 4) = 84" and outs[0]["metadata"]["result"] == 84
        assert "84" in outs[1]["data"]  # phrased by the text binding (the dummy echoes its prompt)
        events = sse_events((await c.post("/api/v1/generate", json={**body, "stream": True})).text)
        types = [e["type"] for e in events]
        assert types[0] == "info" and "function_call" in types and types[-1] == "final"
        call = next(e for e in events if e["type"] == "function_call")["content"]
        assert call["name"] == "math_tools.evaluate" and call["result"] == 84
