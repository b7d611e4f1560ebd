"""llamacpp_binding: tool calls and embeddings on the shipped SmolLM2, and the tool-template path.

SmolLM2's template knows no tools, so its calls come from the grammar; the path for models whose own
template renders tools is checked on the prompt and grammar it builds (no such small model ships on PyPI).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, AsyncIterator

import pytest

from helpers import api_client, write_config
from lollms_server.core.bindings.registry import BindingRegistry
from lollms_server.core.paths import ZOOS_DIR
from lollms_server.core.tools import ToolSpec
from llama_support import llama_marks

pytestmark = llama_marks()

CITY = {"type": "function", "function": {"name": "find_city", "description": "Find a city",
                                         "parameters": {"type": "object", "properties": {
                                             "name": {"type": "string"}, "population": {"type": "integer", "minimum": 0},
                                             "capital": {"type": "boolean"}}, "required": ["name", "population", "capital"]}}}


def _tool_calls_module() -> Any:
    reg = BindingRegistry()
    reg.discover([(ZOOS_DIR / "bindings", "zoo")])
    import sys

    return sys.modules["lollms_zoo_bindings.llamacpp_binding.tool_calls"]


class TemplateLlama:
    """What ToolSetup reads from a loaded model: chat format and metadata (a Hermes-style tool template)."""

    chat_format = "chat_template.default"
    metadata = {"tokenizer.chat_template": "{% if tools %}<tools>{{ tools }}</tools> reply with <tool_call>{...}</tool_call>{% endif %}"}


def test_own_tool_template_gets_the_tools_and_a_tagged_grammar() -> None:
    tc = _tool_calls_module()
    setup = tc.ToolSetup([ToolSpec.parse(CITY)], required=False)
    messages = [{"role": "user", "content": "Paris?"},
                {"role": "assistant", "content": None, "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "find_city", "arguments": '{"name": "Paris"}'}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "ok"}]
    out, extra, tagged = setup.prepare(TemplateLlama(), messages)
    assert tagged and extra["tools"][0]["function"]["name"] == "find_city" and extra["tool_choice"] == "auto"
    assert out[1]["tool_calls"][0]["function"]["arguments"] == {"name": "Paris"}  # objects, as templates expect
    assert out[2]["role"] == "tool"
    grammar = setup.grammar_text(True)
    assert grammar.startswith('root ::= "<tool_call>" toolcalls "</tool_call>" | freetext')
    calls = tc.parse_calls('<tool_call>{"name": "find_city", "arguments": {"name": "Oslo", "population": 1, "capital": true}}</tool_call>',
                           setup.tools)
    assert calls[0].arguments == {"name": "Oslo", "population": 1, "capital": True}
    assert tc.parse_calls("plain words", setup.tools) is None
    assert tc.parse_calls('{"name": "other", "arguments": {}}', setup.tools) is None


def test_plain_template_gets_a_tools_prompt_and_plain_history() -> None:
    tc = _tool_calls_module()

    class Plain:
        chat_format = "chat_template.default"
        metadata = {"tokenizer.chat_template": "{% for m in messages %}{{ m.content }}{% endfor %}"}

    setup = tc.ToolSetup([ToolSpec.parse(CITY)], required=True)
    out, extra, tagged = setup.prepare(Plain(), [{"role": "user", "content": "x"}, {"role": "tool", "tool_call_id": "c", "content": "7"}])
    assert not tagged and "tools" not in extra and out[0]["role"] == "system" and "find_city" in out[0]["content"]
    assert out[-1] == {"role": "user", "content": "Result of the function: 7"}
    assert setup.grammar_text(False).startswith("root ::= toolcalls\n")


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[Any]:
    write_config(tmp_path, {"llm": ("llamacpp_binding", {"n_ctx": 1024})}, defaults={"ttt_binding": "llm", "embedding_binding": "llm"})
    async with api_client(tmp_path) as client:
        yield client


async def test_smollm2_calls_validate_against_the_schema(http: Any) -> None:
    import jsonschema

    schema = CITY["function"]["parameters"]
    for seed in (1, 2, 3):
        r = await http.post("/v1/chat/completions", json={
            "model": "llm", "messages": [{"role": "user", "content": "Tell me about Lisbon."}], "tools": [CITY],
            "tool_choice": "required", "max_tokens": 96, "seed": seed, "temperature": 0.8})
        assert r.status_code == 200, r.text
        call = r.json()["choices"][0]["message"]["tool_calls"][0]["function"]
        jsonschema.validate(json.loads(call["arguments"]), schema)


async def test_gguf_embeddings(http: Any) -> None:
    texts = ["The cat sat on the mat.", "Quarterly revenue grew by ten percent."]
    r = await http.post("/api/v1/embed", json={"input": texts})
    assert r.status_code == 200, r.text
    body = r.json()
    vecs = body["embeddings"]
    assert body["binding_name"] == "llm" and body["dimensions"] == 576 and len(vecs) == 2 and body["prompt_tokens"] > 0
    assert abs(sum(x * x for x in vecs[0]) - 1.0) < 1e-3 and vecs[0] != vecs[1]
    again = (await http.post("/api/v1/embed", json={"input": texts[0]})).json()["embeddings"][0]
    assert max(abs(a - b) for a, b in zip(again, vecs[0])) < 1e-4  # batching does not change a text's vector
    r = await http.post("/v1/chat/completions", json={"model": "llm", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4})
    assert r.status_code == 200  # the chat copy of the model is unaffected
