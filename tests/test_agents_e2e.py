"""Agents and retrieval end to end: a real server process, the shipped SmolLM2 (llama.cpp) and all-MiniLM-L6-v2
(onnxruntime), driven by the clients people use, as their documentation shows.

- the official ``openai`` SDK: a tool call round trip (plain and with its streaming helper), embeddings, Responses API;
- ``litellm``: tool calling and embeddings through its OpenAI-compatible provider;
- ``lollms-client``: ``embed``;
- a personality that declares a zoo function, run through the server-side tool loop;
- the OpenAI Agents SDK: an agent with one function tool.
"""

from __future__ import annotations

import json
import math
from typing import Any, Iterator

import httpx
import openai
import pytest
from pydantic import BaseModel

from helpers import API_KEY, ServerProcess, write_config

pytestmark = [pytest.mark.e2e, pytest.mark.llama]

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather of a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name"},
                                                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
                   "required": ["city", "unit"], "additionalProperties": False}}}


class GetWeather(BaseModel):
    """Get the current weather of a city."""

    city: str
    unit: str


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    cfg = tmp_path_factory.mktemp("agents") / "cfg"
    write_config(cfg, {"llm": ("llamacpp_binding", {"n_ctx": 2048}), "minilm": ("onnx_embedding_binding", {})},
                 defaults={"ttt_binding": "llm", "embedding_binding": "minilm"})
    calc = cfg / "personal_personalities" / "calc_agent"
    calc.mkdir(parents=True)
    (calc / "config.yaml").write_text(
        "name: calc_agent\nfunctions: [math_tools.evaluate]\ntool_choice: required\n"
        "personality_conditioning: You compute arithmetic with the evaluate function.\n", encoding="utf-8")
    with ServerProcess(cfg) as server:
        yield server


@pytest.fixture
def client(srv: ServerProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{srv.base_url}/v1", api_key=API_KEY, timeout=120)


def _cos(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b)) / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


# ---- openai SDK ------------------------------------------------------------------------------------
def test_openai_tool_round_trip(client: openai.OpenAI) -> None:
    messages: list[Any] = [{"role": "user", "content": "What is the weather in Paris, in celsius?"}]
    first = client.chat.completions.create(model="llm", messages=messages, tools=[WEATHER], tool_choice="required",
                                           max_tokens=64, temperature=0)
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    args = json.loads(call.function.arguments)
    assert call.function.name == "get_weather" and set(args) == {"city", "unit"} and args["unit"] in ("celsius", "fahrenheit")
    messages += [choice.message, {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"temperature": 21})}]
    second = client.chat.completions.create(model="llm", messages=messages, tools=[WEATHER], tool_choice="none",
                                            max_tokens=24, temperature=0)
    assert second.choices[0].finish_reason in ("stop", "length") and second.choices[0].message.content
    assert not second.choices[0].message.tool_calls


def test_openai_stream_helper_parses_tool_calls(client: openai.OpenAI) -> None:
    tool = openai.pydantic_function_tool(GetWeather, name="get_weather")
    with client.chat.completions.stream(model="llm", messages=[{"role": "user", "content": "Weather in Oslo?"}],
                                        tools=[tool], tool_choice={"type": "function", "function": {"name": "get_weather"}},
                                        max_tokens=64, temperature=0) as stream:
        done_events = [e for e in stream if e.type == "tool_calls.function.arguments.done"]
        final = stream.get_final_completion()
    assert len(done_events) == 1 and isinstance(done_events[0].parsed_arguments, GetWeather)
    parsed = final.choices[0].message.tool_calls[0].function.parsed_arguments
    assert isinstance(parsed, GetWeather) and final.choices[0].finish_reason == "tool_calls"


def test_openai_embeddings(client: openai.OpenAI) -> None:
    texts = ["A man is eating food.", "A man is eating a piece of bread.", "The new movie is awful."]
    resp = client.embeddings.create(model="minilm", input=texts)  # the SDK asks for base64 and decodes it
    vecs = [d.embedding for d in resp.data]
    assert [len(v) for v in vecs] == [384] * 3 and resp.usage.prompt_tokens > 0
    assert _cos(vecs[0], vecs[1]) > _cos(vecs[0], vecs[2]) + 0.2
    plain = client.embeddings.create(model="text-embedding-3-small", input=texts[0], encoding_format="float")
    assert _cos(plain.data[0].embedding, vecs[0]) > 0.999  # unknown OpenAI names use defaults.embedding_binding
    models = [m.id for m in client.models.list()]
    assert "minilm" in models and "minilm/all-MiniLM-L6-v2" in models


def test_responses_api_with_a_tool_and_previous_response(client: openai.OpenAI) -> None:
    tool = {"type": "function", "name": "get_weather", "description": "Weather of a city",
            "parameters": WEATHER["function"]["parameters"], "strict": True}
    resp = client.responses.create(model="gpt-4.1", input="Weather in Rome?", instructions="Use tools.",
                                   tools=[tool], tool_choice="required", max_output_tokens=64)
    calls = [o for o in resp.output if o.type == "function_call"]
    assert resp.status == "completed" and calls and calls[0].name == "get_weather"
    assert set(json.loads(calls[0].arguments)) == {"city", "unit"}
    follow = client.responses.create(model="gpt-4.1", previous_response_id=resp.id, max_output_tokens=16,
                                     input=[{"type": "function_call_output", "call_id": calls[0].call_id, "output": "sunny"}])
    alone = client.responses.create(model="gpt-4.1", input="sunny", max_output_tokens=1)
    assert follow.status == "completed" and follow.output[0].type == "message"
    assert follow.usage.input_tokens > alone.usage.input_tokens + 10  # the stored question and call came along
    with client.responses.stream(model="gpt-4.1", input="Say hi", max_output_tokens=8) as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == final.output_text and final.output_text
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="llm", input="x", previous_response_id="resp_unknown")


# ---- litellm, lollms-client -------------------------------------------------------------------------
def test_litellm_tools_and_embeddings(srv: ServerProcess) -> None:
    import litellm

    common = {"api_base": f"{srv.base_url}/v1", "api_key": API_KEY}
    resp = litellm.completion(model="openai/llm", messages=[{"role": "user", "content": "Weather in Berlin?"}],
                              tools=[WEATHER], tool_choice="required", max_tokens=64, temperature=0, **common)
    call = resp.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather" and "city" in json.loads(call.function.arguments)
    emb = litellm.embedding(model="openai/minilm", input=["hello world", "hi world"], **common)
    assert len(emb.data) == 2 and len(emb.data[0]["embedding"]) == 384


def test_lollms_client_embed(srv: ServerProcess) -> None:
    from lollms_client import LollmsClient

    lc = LollmsClient(llm_binding_name="lollms", llm_binding_config={
        "host_address": srv.base_url, "service_key": API_KEY, "model_name": "llm"})
    vectors = lc.embed(["The cat sits on the mat.", "A cat is sitting on a mat.", "Stock markets fell today."])
    assert len(vectors) == 3 and len(vectors[0]) == 384
    assert _cos(vectors[0], vectors[1]) > _cos(vectors[0], vectors[2])


# ---- server-side functions, personality ---------------------------------------------------------------
def test_personality_runs_a_zoo_function_through_the_loop(srv: ServerProcess) -> None:
    body = {"personality": "calc_agent", "stream": True, "parameters": {"max_tokens": 48, "temperature": 0, "max_tool_rounds": 1},
            "input_data": [{"type": "text", "role": "user_prompt", "data": "What is 12 * 7?"}]}
    with httpx.stream("POST", f"{srv.base_url}/api/v1/generate", json=body, headers={"X-API-Key": API_KEY}, timeout=120) as r:
        events = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: ")]
    calls = [e["content"] for e in events if e["type"] == "function_call"]
    assert [c["status"] for c in calls] == ["call", "result"]
    assert calls[0]["name"] == "math_tools.evaluate" and isinstance(calls[0]["arguments"].get("expression"), str)
    assert (calls[1]["result"] is None) != (calls[1]["error"] is None)  # ran: a number, or a tool error went back
    final = events[-1]
    assert final["type"] == "final"
    record = final["content"][0]["metadata"]["tool_calls"][0]
    assert record["id"] == calls[0]["id"] and record["arguments"] == calls[0]["arguments"]


# ---- OpenAI Agents SDK -------------------------------------------------------------------------------
async def test_agents_sdk_agent_with_one_tool(srv: ServerProcess) -> None:
    from agents import Agent, ModelSettings, Runner, function_tool, set_default_openai_client, set_tracing_disabled

    set_tracing_disabled(True)
    set_default_openai_client(openai.AsyncOpenAI(base_url=f"{srv.base_url}/v1", api_key=API_KEY), use_for_tracing=False)
    seen: list[str] = []

    @function_tool
    def get_weather(city: str) -> str:
        """Get the current weather of a city.

        Args:
            city: The city.
        """
        seen.append(city)
        return f"The weather in {city} is sunny, 24C."

    # the tiny model calls the tool reliably when asked to; its answer after that is its own business,
    # so the agent ends with the tool's result (a documented tool_use_behavior)
    agent = Agent(name="Weather agent", instructions="Answer with the weather tool.", tools=[get_weather],
                  tool_use_behavior="stop_on_first_tool",
                  model_settings=ModelSettings(tool_choice="required", max_tokens=48, temperature=0))
    result = await Runner.run(agent, "What is the weather in Tokyo?", max_turns=3)
    assert len(seen) == 1 and seen[0]
    assert result.final_output == f"The weather in {seen[0]} is sunny, 24C."
    items = [type(i).__name__ for i in result.new_items]
    assert items == ["ToolCallItem", "ToolCallOutputItem"]
    streamed = Runner.run_streamed(agent, "Weather in Lima?", max_turns=3)
    kinds = [e.item.type async for e in streamed.stream_events() if e.type == "run_item_stream_event"]
    assert kinds == ["tool_call_item", "tool_call_output_item"] and streamed.final_output.startswith("The weather in ")
