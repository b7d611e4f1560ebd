"""Personal functions, scripted personalities (all return shapes), tokenizer endpoints, secret redaction in errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import api_client, sse_events, write_config

WORKFLOW = '''
async def run_workflow(prompt, params, context):
    fm = context["function_manager"]
    kind = prompt.split()[0]
    if kind == "text":
        return "plain " + prompt
    if kind == "dict":
        return {"type": "json", "data": {"echo": prompt}}
    if kind == "badargs":
        ok, result = await fm.execute_function("greetings.greet", {"name": "Bob", "times": "many"})
        return [{"type": "text", "data": f"{ok}|{result}"}]
    if kind == "call":
        ok, result = await fm.execute_function("greetings.greet", {"name": "Ann", "times": 2})
        binding_text = await context["binding"].complete("from workflow")
        return [{"type": "text", "data": result}, {"type": "text", "data": binding_text},
                {"type": "info", "data": context["request_info"]["personality"]}]
    if kind == "boom":
        raise RuntimeError("workflow exploded")
    async def gen():
        yield {"type": "chunk", "content": "<thi"}
        yield {"type": "chunk", "content": "nk>hidden</think>shown"}
    return gen()
'''

FUNCS = '''
async def greet(name: str, times: int = 1) -> str:
    """Greet someone.

    Args:
        name: Who to greet.
        times: How many times.
    """
    return " ".join([f"hello {name}"] * times)

def not_async(x):
    return x
'''

SECRET_BINDING = '''
from lollms_server.core.bindings.registry import zoo_module
from lollms_server.core.errors import BackendError

class Leaky(zoo_module("dummy_binding").DummyBinding):
    binding_type_name = "dummy_binding"
    async def generate(self, task):
        raise BackendError("upstream refused key " + str(self.config.get("api_key")))
    async def generate_stream(self, task):
        yield {"type": "chunk", "content": "partial"}
        raise RuntimeError("stream broke with key " + str(self.config.get("api_key")))
'''


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    d = tmp_path / "cfg"
    write_config(d)
    wf = d / "personal_personalities" / "tester"
    (wf / "scripts").mkdir(parents=True)
    (wf / "config.yaml").write_text("name: tester\nscript_path: scripts/workflow.py\n")
    (wf / "scripts" / "workflow.py").write_text(WORKFLOW)
    (d / "personal_functions").mkdir()
    (d / "personal_functions" / "greetings.py").write_text(FUNCS)
    return d


def ask(text: str, **extra: object) -> dict[str, object]:
    return {"input_data": [{"type": "text", "role": "user_prompt", "data": text}], "personality": "tester", **extra}


async def test_personal_functions_are_listed_with_schema(cfg: Path) -> None:
    async with api_client(cfg) as c:
        body = (await c.get("/api/v1/list_functions")).json()
        assert "greetings.greet" in body["functions"] and "greetings.not_async" not in body["functions"]
        params = body["schemas"]["greetings.greet"]["parameters"]
        assert params["properties"]["times"] == {"default": 1, "description": "How many times.", "title": "Times", "type": "integer"}
        assert body["schemas"]["greetings.greet"]["description"] == "Greet someone."


async def test_workflow_return_shapes(cfg: Path) -> None:
    async with api_client(cfg) as c:
        assert (await c.post("/api/v1/generate", json=ask("text a"))).json()["output"][0]["data"] == "plain text a"
        out = (await c.post("/api/v1/generate", json=ask("dict b"))).json()["output"][0]
        assert out == {**out, "type": "json", "data": {"echo": "dict b"}}
        outs = (await c.post("/api/v1/generate", json=ask("call"))).json()["output"]
        assert [o["data"] for o in outs] == ["hello Ann hello Ann", "from workflow", "tester"]
        out = (await c.post("/api/v1/generate", json=ask("badargs"))).json()["output"][0]["data"]
        assert out.startswith("False|invalid arguments for 'greetings.greet': times:")
        gen = (await c.post("/api/v1/generate", json=ask("gen"))).json()["output"][0]
        assert gen["data"] == "shown" and gen["thoughts"] == "hidden"
        events = sse_events((await c.post("/api/v1/generate", json=ask("gen", stream=True))).text)
        assert "".join(e["content"] for e in events if e["type"] == "chunk") == "shown"
        r = await c.post("/api/v1/generate", json=ask("boom"))
        assert r.status_code == 500 and "workflow exploded" in r.json()["detail"]
        events = sse_events((await c.post("/api/v1/generate", json=ask("boom", stream=True))).text)
        assert [e["type"] for e in events] == ["error", "final"]


async def test_tokenizer_endpoints(cfg: Path) -> None:
    async with api_client(cfg) as c:
        r = await c.post("/api/v1/tokenize", json={"text": "héllo", "add_bos": True, "add_eos": True})
        tokens = r.json()["tokens"]
        assert tokens[0] == 1 and tokens[-1] == 2 and r.json()["count"] == len(tokens) == 8
        assert (await c.post("/api/v1/detokenize", json={"tokens": tokens})).json() == {"text": "héllo"}
        assert (await c.post("/api/v1/count_tokens", json={"text": "abc", "binding_name": "dummy"})).json() == {"count": 3}
        assert (await c.post("/api/v1/tokenize", json={"text": "x", "binding_name": "ghost"})).status_code == 404
        assert (await c.post("/api/v1/tokenize", json={"text": "x", "model_name": "ghost"})).status_code == 404
        assert (await c.post("/api/v1/detokenize", json={"tokens": [99999]})).status_code == 400
        assert (await c.post("/api/v1/tokenize", json={})).status_code == 422


async def test_tokenizer_without_default_and_without_support(tmp_path: Path) -> None:
    d = tmp_path / "cfg"
    write_config(d, defaults={})
    pb = d / "personal_bindings" / "notok"
    pb.mkdir(parents=True)
    (pb / "binding_card.yaml").write_text("type_name: notok\ninstance_schema: {}\n")
    (pb / "__init__.py").write_text(
        "from lollms_server.core.bindings.base import Binding\n"
        "class NoTok(Binding):\n"
        "    binding_type_name = 'notok'\n"
        "    async def list_available_models(self):\n        return []\n"
        "    async def generate(self, task):\n        return 'x'\n"
    )
    (d / "bindings" / "plain.yaml").write_text("type: notok\nbinding_instance_name: plain\n")
    import yaml

    main = d / "main_config.yaml"
    values = yaml.safe_load(main.read_text())
    values["bindings_map"]["plain"] = "notok"
    main.write_text(yaml.safe_dump(values))
    async with api_client(d) as c:
        r = await c.post("/api/v1/tokenize", json={"text": "x"})
        assert r.status_code == 400 and "ttt_binding" in r.json()["detail"]
        r = await c.post("/api/v1/count_tokens", json={"text": "x", "binding_name": "plain"})
        assert r.status_code == 501 and "tokenization" in r.json()["detail"]
        r = await c.post("/api/v1/generate", json={"input_data": [{"type": "text", "role": "user_prompt", "data": "q"}],
                                                   "binding_name": "plain", "stream": True})
        events = sse_events(r.text)  # a binding that cannot stream gets the fallback stream
        assert [e["type"] for e in events] == ["final"] and events[0]["content"][0]["data"] == "x"


async def test_secret_in_a_backend_error_is_masked(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    secret = "sk-should-never-show-123456"
    d = tmp_path / "cfg"
    write_config(d, {"dummy": ("dummy_binding", {"api_key": secret})})
    pb = d / "personal_bindings" / "dummy_binding"
    pb.mkdir(parents=True)
    (pb / "binding_card.yaml").write_text((Path(__file__).parents[1] / "zoos/bindings/dummy_binding/binding_card.yaml").read_text())
    (pb / "__init__.py").write_text(SECRET_BINDING)
    body = {"input_data": [{"type": "text", "role": "user_prompt", "data": "q"}]}
    async with api_client(d) as c:
        r = await c.post("/api/v1/generate", json=body)
        assert r.status_code == 500 and "upstream refused key ********" in r.json()["detail"]
        r = await c.post("/api/v1/generate", json={**body, "stream": True})
        assert "********" in r.text and secret not in r.text
    assert secret not in caplog.text
