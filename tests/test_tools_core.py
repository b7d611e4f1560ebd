"""Tool calling core: schemas and choice, the /v1 shapes, the server-side loop, the capability check.

Driven through the public API (in-process) with the deterministic dummy binding in mode ``tools``,
which calls the first offered tool with the prompt's JSON object and then echoes the tool results.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, AsyncIterator

import pytest

from lollms_server.core.errors import BadRequestError
from lollms_server.core.tools import CallRecorder, ToolCall, ToolChoice, ToolSpec, parse_tools
from tests.helpers import api_client, write_config

def data_events(text: str) -> list[Any]:
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ") and line != "data: [DONE]"]


WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
CLOCK = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[Any]:
    functions = tmp_path / "personal_functions"
    functions.mkdir()
    (functions / "shaky.py").write_text(
        "async def explode(reason: str) -> str:\n"
        "    \"\"\"Always fails.\n\n    Args:\n        reason: why\n    \"\"\"\n"
        "    raise RuntimeError('boom: ' + reason)\n", encoding="utf-8")
    pers = tmp_path / "personal_personalities" / "mathbot"
    pers.mkdir(parents=True)
    (pers / "config.yaml").write_text(
        "name: mathbot\nbinding_name: toolbot\nfunctions: [math_tools.evaluate]\n"
        "personality_conditioning: You compute with the evaluate function.\n", encoding="utf-8")
    write_config(tmp_path, {"dummy": ("dummy_binding", {}), "toolbot": ("dummy_binding", {"mode": "tools"})})
    async with api_client(tmp_path) as client:
        yield client


# ---- pure core ------------------------------------------------------------------------------------
def test_tool_schema_and_choice_parsing() -> None:
    tools = parse_tools([WEATHER, {"type": "function", "name": "flat", "parameters": {"type": "object"}}])
    assert [t.name for t in tools] == ["get_weather", "flat"]
    assert tools[0].openai() == WEATHER | {"function": {**WEATHER["function"]}}
    assert ToolChoice.parse(None, tools) == ToolChoice("auto")
    assert ToolChoice.parse({"type": "function", "function": {"name": "flat"}}, tools) == ToolChoice("required", "flat")
    assert ToolChoice.parse({"type": "function", "name": "flat"}, tools).name == "flat"
    for bad_tools in ([{"type": "retrieval"}], [{"type": "function", "function": {"name": "a b"}}], [WEATHER, WEATHER], "x"):
        with pytest.raises(BadRequestError):
            parse_tools(bad_tools)
    for bad_choice in ("sometimes", {"type": "function", "function": {"name": "nope"}}, 3):
        with pytest.raises(BadRequestError):
            ToolChoice.parse(bad_choice, tools)
    with pytest.raises(BadRequestError):
        ToolChoice.parse("required", [])


def test_call_records() -> None:
    call = ToolCall.from_record({"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}})
    assert call.arguments == {"a": 1} and json.loads(call.openai()["function"]["arguments"]) == {"a": 1}
    with pytest.raises(BadRequestError):
        ToolCall.from_record({"function": {"name": "f", "arguments": "[1"}})
    rec = CallRecorder()
    rec.add({"id": "c", "name": "f", "arguments": {"a": 1}, "status": "call"})
    rec.add({"id": "c", "name": "f", "result": 3, "error": None, "status": "result"})
    assert rec.records() == [{"id": "c", "name": "f", "arguments": {"a": 1}, "result": 3, "error": None}]
    assert ToolSpec("x").parameters == {"type": "object", "properties": {}}


# ---- /v1/chat/completions -------------------------------------------------------------------------
async def test_openai_tool_call_not_streamed_and_round_trip(http: Any) -> None:
    body = {"model": "toolbot", "messages": [{"role": "user", "content": 'weather? {"city": "Paris"}'}], "tools": [WEATHER, CLOCK]}
    r = await http.post("/v1/chat/completions", json=body)
    assert r.status_code == 200, r.text
    choice = r.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call["type"] == "function" and call["function"]["name"] == "get_weather" and call["id"]
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}
    assert choice["message"]["content"] is None
    follow = {**body, "messages": body["messages"] + [
        choice["message"], {"role": "tool", "tool_call_id": call["id"], "content": '{"temp": 21}'}]}
    r2 = await http.post("/v1/chat/completions", json=follow)
    assert r2.status_code == 200, r2.text
    assert r2.json()["choices"][0]["finish_reason"] == "stop"
    assert r2.json()["choices"][0]["message"]["content"] == 'tool results: {"temp": 21}'


async def test_openai_tool_calls_streamed_in_pieces(http: Any) -> None:
    body = {"model": "toolbot", "stream": True, "tools": [WEATHER, CLOCK],
            "messages": [{"role": "user", "content": 'all tools {"city": "A very long city name to split"}'}]}
    r = await http.post("/v1/chat/completions", json=body)
    assert r.status_code == 200
    chunks = data_events(r.text)
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    pieces = [tc for d in deltas for tc in d.get("tool_calls") or []]
    assert {p["index"] for p in pieces} == {0, 1}
    heads = [p for p in pieces if "id" in p]
    assert [h["function"]["name"] for h in heads] == ["get_weather", "get_time"]
    args0 = "".join(p["function"].get("arguments", "") for p in pieces if p["index"] == 0)
    assert json.loads(args0) == {"city": "A very long city name to split"}
    assert sum(1 for p in pieces if p["index"] == 0) > 2  # arguments arrive in several pieces
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


async def test_tool_choice_and_capability(http: Any) -> None:
    msgs = [{"role": "user", "content": '{"city": "Rome"}'}]
    r = await http.post("/v1/chat/completions", json={"model": "dummy", "messages": msgs, "tools": [WEATHER]})
    assert r.status_code == 400 and r.json()["error"]["code"] == "not_supported" and r.json()["error"]["param"] == "tools"
    r = await http.post("/v1/chat/completions", json={"model": "dummy", "messages": msgs, "tools": [WEATHER], "tool_choice": "none"})
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == '{"city": "Rome"}'
    r = await http.post("/v1/chat/completions", json={"model": "toolbot", "messages": msgs, "tools": [WEATHER], "tool_choice": "none"})
    assert r.status_code == 200 and "tool_calls" not in r.json()["choices"][0]["message"]
    named = {"type": "function", "function": {"name": "get_time"}}
    r = await http.post("/v1/chat/completions", json={"model": "toolbot", "messages": msgs, "tools": [WEATHER, CLOCK], "tool_choice": named})
    assert r.json()["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "get_time"
    r = await http.post("/v1/chat/completions", json={"model": "toolbot", "messages": msgs, "tools": [WEATHER], "tool_choice": "maybe"})
    assert r.status_code == 400
    r = await http.post("/v1/chat/completions", json={"model": "toolbot", "messages": [
        {"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{oops"}}]}]})
    assert r.status_code == 400 and "tool_calls" in r.json()["error"]["param"]


# ---- server-side functions on /api/v1/generate ----------------------------------------------------
async def test_server_side_function_loop(http: Any) -> None:
    body = {"input_data": [{"type": "text", "role": "user_prompt", "data": 'compute {"expression": "6 * 7"}'}],
            "binding_name": "toolbot", "functions": ["math_tools.evaluate"]}
    r = await http.post("/api/v1/generate", json=body)
    assert r.status_code == 200, r.text
    out = r.json()["output"][0]
    assert out["data"] == "tool results: 42"
    [rec] = out["metadata"]["tool_calls"]
    assert rec["name"] == "math_tools.evaluate" and rec["arguments"] == {"expression": "6 * 7"}
    assert rec["result"] == 42 and rec["error"] is None
    r = await http.post("/api/v1/generate", json={**body, "stream": True})
    events = data_events(r.text)
    calls = [e["content"] for e in events if e["type"] == "function_call"]
    assert [c["status"] for c in calls] == ["call", "result"]
    assert calls[0]["arguments"] == {"expression": "6 * 7"} and calls[1]["result"] == 42 and calls[1]["id"] == calls[0]["id"]
    assert events[-1]["type"] == "final" and events[-1]["content"][0]["metadata"]["tool_calls"][0]["result"] == 42


async def test_function_errors_go_back_to_the_model(http: Any) -> None:
    base = {"input_data": [{"type": "text", "role": "user_prompt", "data": 'go {"reason": "testing"}'}], "binding_name": "toolbot"}
    r = await http.post("/api/v1/generate", json={**base, "functions": ["shaky.explode"]})
    assert r.status_code == 200, r.text
    out = r.json()["output"][0]
    rec = out["metadata"]["tool_calls"][0]
    assert rec["result"] is None and "boom: testing" in rec["error"]
    assert "boom: testing" in out["data"]  # the model saw the error as the tool result
    bad_args = {**base, "input_data": [{"type": "text", "role": "user_prompt", "data": '{"nope": 1}'}], "functions": ["math_tools.evaluate"]}
    r = await http.post("/api/v1/generate", json=bad_args)
    assert r.status_code == 200 and "invalid arguments" in r.json()["output"][0]["metadata"]["tool_calls"][0]["error"]
    r = await http.post("/api/v1/generate", json={**base, "functions": ["no_such.function"]})
    assert r.status_code == 404
    r = await http.post("/api/v1/generate", json={**base, "functions": ["math_tools.evaluate"], "tools": [WEATHER]})
    assert r.status_code == 400
    r = await http.post("/api/v1/generate", json={**base, "binding_name": "dummy", "functions": ["math_tools.evaluate"]})
    assert r.status_code == 400 and "tool calling" in r.json()["detail"]


async def test_personality_declares_its_functions(http: Any) -> None:
    prompt = [{"type": "text", "role": "user_prompt", "data": '{"expression": "2 ** 10"}'}]
    r = await http.post("/api/v1/generate", json={"input_data": prompt, "personality": "mathbot"})
    assert r.status_code == 200, r.text
    out = r.json()["output"][0]
    assert out["metadata"]["tool_calls"][0]["name"] == "math_tools.evaluate" and out["data"] == "tool results: 1024"
    r = await http.post("/api/v1/generate", json={"input_data": prompt, "personality": "mathbot", "functions": ["shaky.explode"]})
    assert r.status_code == 400 and "may not use" in r.json()["detail"]
