"""POST /v1/responses with the deterministic dummy binding: items in and out, streamed events, stored conversations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, AsyncIterator

import pytest

from helpers import api_client, write_config

TOOL = {"type": "function", "name": "lookup", "description": "Look a word up",
        "parameters": {"type": "object", "properties": {"word": {"type": "string"}}, "required": ["word"]}}


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[Any]:
    write_config(tmp_path, {"echo": ("dummy_binding", {}), "toolbot": ("dummy_binding", {"mode": "tools"})},
                 defaults={"ttt_binding": "echo"})
    async with api_client(tmp_path) as client:
        yield client


def _events(text: str) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]


async def test_text_in_text_out_and_unknown_model_names(http: Any) -> None:
    r = await http.post("/v1/responses", json={"model": "gpt-4.1", "input": "hello there", "instructions": "be brief"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "response" and body["status"] == "completed" and body["model"] == "gpt-4.1"
    [item] = body["output"]
    assert item["type"] == "message" and item["role"] == "assistant"
    assert item["content"][0] == {"type": "output_text", "text": "hello there", "annotations": []}
    assert body["usage"]["input_tokens"] == 2 and body["usage"]["output_tokens"] == 2
    assert (await http.get(f"/v1/responses/{body['id']}")).json() == body


async def test_function_call_round_trip_with_previous_response(http: Any) -> None:
    first = (await http.post("/v1/responses", json={"model": "toolbot", "input": '{"word": "ukulele"}', "tools": [TOOL]})).json()
    [call] = first["output"]
    assert call["type"] == "function_call" and call["name"] == "lookup" and json.loads(call["arguments"]) == {"word": "ukulele"}
    follow = await http.post("/v1/responses", json={
        "model": "toolbot", "previous_response_id": first["id"], "tools": [TOOL],
        "input": [{"type": "function_call_output", "call_id": call["call_id"], "output": "a small guitar"}]})
    assert follow.status_code == 200, follow.text
    assert follow.json()["output"][0]["content"][0]["text"] == "tool results: a small guitar"
    # the same conversation sent as items, without the store
    items = [{"role": "user", "content": [{"type": "input_text", "text": '{"word": "ukulele"}'}]},
             {"type": "function_call", "call_id": call["call_id"], "name": "lookup", "arguments": call["arguments"]},
             {"type": "function_call_output", "call_id": call["call_id"], "output": "a small guitar"}]
    again = await http.post("/v1/responses", json={"model": "toolbot", "input": items, "tools": [TOOL], "store": False})
    assert again.json()["output"][0]["content"][0]["text"] == "tool results: a small guitar"
    assert (await http.get(f"/v1/responses/{again.json()['id']}")).status_code == 404
    assert (await http.delete(f"/v1/responses/{first['id']}")).json()["deleted"] is True
    r = await http.post("/v1/responses", json={"model": "toolbot", "previous_response_id": first["id"], "input": "x"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "previous_response_not_found"


async def test_streamed_events(http: Any) -> None:
    r = await http.post("/v1/responses", json={"model": "toolbot", "input": '{"word": "x"}', "tools": [TOOL], "stream": True})
    events = _events(r.text)
    kinds = [e["type"] for e in events]
    assert kinds == ["response.created", "response.in_progress", "response.output_item.added",
                     "response.function_call_arguments.delta", "response.function_call_arguments.done",
                     "response.output_item.done", "response.completed"]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert events[-1]["response"]["output"][0]["name"] == "lookup"
    r = await http.post("/v1/responses", json={"model": "echo", "input": "one two three", "stream": True})
    events = _events(r.text)
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert deltas == "one two three"
    done = next(e for e in events if e["type"] == "response.output_text.done")
    assert done["text"] == deltas and events[-1]["response"]["output"][0]["content"][0]["text"] == deltas


async def test_bad_requests(http: Any) -> None:
    cases = [
        {"model": "echo", "input": [{"type": "mystery"}]},
        {"model": "echo", "input": [{"role": "robot", "content": "x"}]},
        {"model": "echo", "input": [{"type": "function_call", "name": "f", "call_id": "c", "arguments": "{bad"}]},
        {"model": "echo", "input": "x", "tools": [TOOL]},  # echo cannot take tools
        {"model": "echo", "input": [{"role": "assistant", "content": "only me"}]},
    ]
    for body in cases:
        r = await http.post("/v1/responses", json=body)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["error"]["type"] == "invalid_request_error"
    r = await http.post("/v1/responses", json={"model": "echo", "input": "x", "tools": [TOOL], "tool_choice": "none"})
    assert r.status_code == 200


async def test_a_stored_response_is_its_key_s_own_and_expires(tmp_path: Path) -> None:
    """Another API key neither reads, continues nor deletes it (404, as if it did not exist); ttl_seconds forgets it."""
    import asyncio

    from helpers import API_KEY

    other = "other-key-0123456789"
    write_config(tmp_path, {"echo": ("dummy_binding", {})}, api_keys=[API_KEY, other],
                 main={"responses": {"ttl_seconds": 1}})
    async with api_client(tmp_path) as mine:
        first = (await mine.post("/v1/responses", json={"model": "echo", "input": "mine"})).json()
        theirs = {"Authorization": f"Bearer {other}"}
        assert (await mine.get(f"/v1/responses/{first['id']}")).status_code == 200
        assert (await mine.get(f"/v1/responses/{first['id']}", headers=theirs)).status_code == 404
        assert (await mine.delete(f"/v1/responses/{first['id']}", headers=theirs)).status_code == 404
        cont = await mine.post("/v1/responses", headers=theirs,
                               json={"model": "echo", "input": "x", "previous_response_id": first["id"]})
        assert cont.status_code == 404 and cont.json()["error"]["code"] == "previous_response_not_found"
        again = await mine.post("/v1/responses", json={"model": "echo", "input": "x", "previous_response_id": first["id"]})
        assert again.status_code == 200, again.text
        await asyncio.sleep(1.2)
        assert (await mine.get(f"/v1/responses/{first['id']}")).status_code == 404
