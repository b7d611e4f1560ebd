"""Extensions (routes, tools, filters, ctx.llm), filters with valves (encrypted, per key) through a real server."""

from __future__ import annotations

import json
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
from cryptography.fernet import Fernet
from helpers import API_KEY, server, sse_events, write_config

from lollms_server.core.paths import ZOOS_DIR

pytestmark = pytest.mark.e2e
H = {"X-API-Key": API_KEY}
BOB = "bob-key-1234567890"
SECRET_VALVE = "internal-token-zz9"

DEMO = '''
"""Demo extension of the tests."""
from typing import Any
from fastapi import Request
from pydantic import BaseModel

__version__ = "0.1"


class Greeting(BaseModel):
    greeting: str = "hello"


class Shouter:
    """Upper-cases answers."""
    name = "shouter"

    def outlet(self, outputs, ctx):
        for o in outputs:
            if o["type"] == "text":
                o["data"] = o["data"].upper()
        return outputs


class Boom:
    name = "boom"

    async def stream(self, event, ctx):
        if event["type"] == "chunk" and "w3" in (event.get("content") or ""):
            raise RuntimeError("boom at w3")
        return event

    def outlet(self, outputs, ctx):
        raise ValueError("outlet exploded")


def shout(text: str) -> str:
    """Upper-case a text.

    Args:
        text: What to shout.
    """
    return text.upper() + "!"


STATE = {"started": False}


async def start(ctx):
    STATE["started"] = True
    STATE["models"] = sorted(ctx.services.bindings.instances)  # the running server is reachable from start()


async def stop(ctx):
    (ctx.path / "stopped.txt").write_text("stopped")


def install(ctx):
    async def hello() -> dict:
        return {"hello": ctx.name, **STATE}

    async def public() -> dict:
        return {"public": True}

    async def ask(request: Request) -> dict:
        body = await request.json()
        answer = await ctx.llm.complete([{"role": "user", "content": body["q"]}], request=request)
        data = await ctx.llm.complete([{"role": "user", "content": '{"n": 42}'}], response_format="json")
        pieces = [p async for p in ctx.llm.stream([{"role": "user", "content": "one two three"}])]
        return {"answer": answer, "json": data, "pieces": pieces}

    ctx.get("hello", hello)
    ctx.get("public", public, public=True)
    ctx.post("ask", ask)
    ctx.add_tool(shout)
    ctx.add_filter(Shouter())
    ctx.add_filter(Boom())
    ctx.add_binding("echo_binding")
'''

EXT_BINDING = '''
from lollms_server.core.bindings.registry import zoo_module


class ExtEcho(zoo_module("dummy_binding").DummyBinding):
    binding_type_name = "ext_echo"
'''

DUPLICATE = '''
class Shouter:
    name = "shouter"
    def outlet(self, outputs, ctx):
        return outputs

def install(ctx):
    ctx.add_filter(Shouter())
'''


def prompt(text: str, **extra: Any) -> dict[str, Any]:
    return {"input_data": [{"type": "text", "role": "user_prompt", "data": text}], **extra}


class _Page(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        body = (b"<html><head><title>Test page</title><script>x()</script></head><body><h1>Hi</h1>"
                b"<p>Some <b>bold</b> text and <a href='/x'>a link</a>.</p><ul><li>one</li><li>two</li></ul></body></html>")
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def page_server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/page"
    httpd.shutdown()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Any:
    d = tmp_path_factory.mktemp("ext") / "cfg"
    exts = d / "personal_extensions"
    for name, code in (("demo_ext", DEMO), ("dup_ext", DUPLICATE), ("broken_ext", "raise RuntimeError('cannot start')\n")):
        (exts / name).mkdir(parents=True)
        (exts / name / "__init__.py").write_text(textwrap.dedent(code), encoding="utf-8")
    echo = exts / "demo_ext" / "echo_binding"
    echo.mkdir()
    (echo / "__init__.py").write_text(EXT_BINDING, encoding="utf-8")
    card = (ZOOS_DIR / "bindings" / "dummy_binding" / "binding_card.yaml").read_text(encoding="utf-8")
    (echo / "binding_card.yaml").write_text(card.replace("type_name: dummy_binding", "type_name: ext_echo"), encoding="utf-8")
    key = Fernet.generate_key()
    write_config(
        d, {"dummy": ("dummy_binding", {}), "toolbot": ("dummy_binding", {"mode": "tools"})},
        api_keys=[{"key": API_KEY, "name": "ops", "admin": True}, {"key": BOB, "name": "bob"}],  # type: ignore[list-item]
        main={"extensions": {"extensions_folder": str(exts), "filters_folder": str(d / "personal_filters")},
              "bindings_map": {"extbot": "ext_echo"}},
        key=key,
    )
    (d / "bindings" / "extbot.yaml").write_text("type: ext_echo\nbinding_instance_name: extbot\n", encoding="utf-8")
    with server(d, env={"LOLLMS_ENCRYPTION_KEY": key.decode()}) as s:
        s.config_dir = d
        yield s


def test_extensions_are_listed_with_what_they_registered_and_errors(live: Any) -> None:
    r = httpx.get(f"{live.base_url}/api/v1/list_extensions", headers=H)
    assert r.status_code == 200
    body = r.json()
    exts = {e["name"]: e for e in body["extensions"]}
    demo = exts["demo_ext"]
    assert demo["version"] == "0.1" and demo["tools"] == ["demo_ext.shout"] and demo["filters"] == ["shouter", "boom"]
    assert {"path": "/ext/demo_ext/public", "methods": ["GET"], "public": True} in demo["routes"]
    assert {"web_fetch", "prompt_library"} <= set(exts)  # the zoo
    assert exts["prompt_library"]["ui_module"] == "/ext/prompt_library/ui/index.js"
    errors = body["load_errors"]
    assert "cannot start" in errors["broken_ext"]
    assert "extension 'demo_ext'" in errors["dup_ext"] and "extension 'dup_ext'" in errors["dup_ext"]
    assert "dup_ext" not in exts and "broken_ext" not in exts
    assert demo["bindings"] == ["ext_echo"]


def test_an_extension_brings_a_binding_type(live: Any) -> None:
    r = httpx.post(f"{live.base_url}/api/v1/generate", headers=H, json=prompt("from the extension", binding_name="extbot"))
    assert r.status_code == 200, r.text
    assert r.json()["output"][0]["data"] == "from the extension"


def test_extension_routes_auth_static_and_docs(live: Any) -> None:
    base = live.base_url
    assert httpx.get(f"{base}/ext/demo_ext/hello").status_code == 403
    assert httpx.get(f"{base}/ext/demo_ext/hello", headers={"X-API-Key": "wrong"}).status_code == 401
    assert httpx.get(f"{base}/ext/demo_ext/hello", headers=H).json() == {
        "hello": "demo_ext", "started": True, "models": ["dummy", "extbot", "toolbot"]}
    assert httpx.get(f"{base}/ext/demo_ext/public").json() == {"public": True}
    js = httpx.get(f"{base}/ext/prompt_library/ui/index.js")
    assert js.status_code == 200 and "export function install" in js.text
    paths = httpx.get(f"{base}/openapi.json").json()["paths"]
    assert "/ext/demo_ext/hello" in paths and "/ext/prompt_library/prompts" in paths


def test_ctx_llm_runs_through_the_pipeline_and_is_recorded(live: Any) -> None:
    base = live.base_url
    r = httpx.post(f"{base}/ext/demo_ext/ask", headers={"X-API-Key": BOB}, json={"q": "echo this please"})
    assert r.status_code == 200, r.text
    assert r.json() == {"answer": "echo this please", "json": {"n": 42}, "pieces": ["one", " two", " three"]}
    rows = httpx.get(f"{base}/api/v1/usage", headers=H, params={"surface": "ext:demo_ext"}).json()["items"]
    assert len(rows) == 3 and {"bob", None} == {r["key_name"] for r in rows}


def test_extension_tool_runs_in_the_tool_loop(live: Any) -> None:
    base = live.base_url
    names = httpx.get(f"{base}/api/v1/list_functions", headers=H).json()
    assert "demo_ext.shout" in names["functions"] and "web_fetch.fetch_page" in names["functions"]
    assert names["schemas"]["demo_ext.shout"]["parameters"]["properties"]["text"]["description"] == "What to shout."
    r = httpx.post(f"{base}/api/v1/generate", headers=H, json=prompt('{"text": "quiet"}', binding_name="toolbot",
                                                                     functions=["demo_ext.shout"]))
    assert r.status_code == 200, r.text
    assert r.json()["output"][0]["data"] == "tool results: QUIET!"


def test_filter_valves_edited_over_the_api_persist_encrypted_and_masked(live: Any) -> None:
    base = live.base_url
    r = httpx.put(f"{base}/api/v1/filters/pii_redaction", headers=H,
                  json={"enabled": True, "valves": {"known_secrets": SECRET_VALVE, "kinds": ["email"]}})
    assert r.status_code == 200, r.text
    assert r.json()["valves"]["known_secrets"] == "********" and r.json()["enabled"] is True
    listed = {f["name"]: f for f in httpx.get(f"{base}/api/v1/list_filters", headers=H).json()["filters"]}
    assert listed["pii_redaction"]["valves"]["known_secrets"] == "********"
    assert listed["pii_redaction"]["valves_schema"]["properties"]["known_secrets"]["secret"] is True
    raw = (Path(live.config_dir) / "plugin_settings.yaml").read_bytes()
    assert raw.startswith(b"gAAAAA") and SECRET_VALVE.encode() not in raw  # Fernet token, no clear text
    text = f"write to ann@example.org about {SECRET_VALVE} now"
    r = httpx.post(f"{base}/api/v1/generate", headers=H, json=prompt(text))
    assert r.json()["output"][0]["data"] == "write to [email redacted] about [secret redacted] now"
    r = httpx.post(f"{base}/api/v1/generate", headers=H, json=prompt(text, stream=True))
    events = sse_events(r.text)
    streamed = "".join(e["content"] for e in events if e["type"] == "chunk")
    assert streamed == "write to [email redacted] about [secret redacted] now" and SECRET_VALVE not in r.text
    # a masked value sent back keeps the stored secret; a bad valve is a 400 naming it
    r = httpx.put(f"{base}/api/v1/filters/pii_redaction", headers=H, json={"valves": {"known_secrets": "********"}})
    assert r.status_code == 200
    assert "[secret redacted]" in httpx.post(f"{base}/api/v1/generate", headers=H, json=prompt(text)).json()["output"][0]["data"]
    r = httpx.put(f"{base}/api/v1/filters/pii_redaction", headers=H, json={"valves": {"priority": "high"}})
    assert r.status_code == 400 and "priority" in r.json()["detail"]
    assert httpx.put(f"{base}/api/v1/filters/nope", headers=H, json={"enabled": True}).status_code == 404
    httpx.put(f"{base}/api/v1/filters/pii_redaction", headers=H, json={"enabled": False})


def test_filter_scope_priority_and_per_key_user_valves(live: Any) -> None:
    base = live.base_url
    r = httpx.put(f"{base}/api/v1/filters/word_limit", headers=H,
                  json={"enabled": True, "applies_globally": False, "bindings": ["dummy"]})
    assert r.status_code == 200
    r = httpx.put(f"{base}/api/v1/filters/word_limit/user_valves", headers={"X-API-Key": BOB}, json={"max_prompt_words": 3})
    assert r.status_code == 200 and r.json()["key_id"] == "bob"
    long = "one two three four five"
    r = httpx.post(f"{base}/api/v1/generate", headers={"X-API-Key": BOB}, json=prompt(long))
    assert r.status_code == 400 and "word_limit" in r.json()["detail"] and "limit is 3" in r.json()["detail"]
    ok = httpx.post(f"{base}/api/v1/generate", headers=H, json=prompt(long))  # other key: no per-user limit
    assert ok.status_code == 200 and ok.json()["output"][0]["metadata"]["word_count"] == 5
    other_binding = httpx.post(f"{base}/api/v1/generate", headers={"X-API-Key": BOB},
                               json=prompt(long, binding_name="toolbot"))
    assert other_binding.status_code == 200  # scoped to the 'dummy' instance only
    # OpenAI surface goes through the same filters
    r = httpx.post(f"{base}/v1/chat/completions", headers={"Authorization": f"Bearer {BOB}"},
                   json={"model": "dummy", "messages": [{"role": "user", "content": long}]})
    assert r.status_code == 400 and "limit is 3" in r.json()["error"]["message"]
    httpx.put(f"{base}/api/v1/filters/word_limit", headers=H, json={"enabled": False})


def test_only_admin_keys_manage_filters_and_read_everyones_usage(live: Any) -> None:
    base = live.base_url
    bob = {"X-API-Key": BOB}
    r = httpx.put(f"{base}/api/v1/filters/word_limit", headers=bob, json={"enabled": True})
    assert r.status_code == 403 and "admin" in r.json()["detail"]
    assert httpx.put(f"{base}/api/v1/extensions/web_fetch/valves", headers=bob, json={"enabled": True}).status_code == 403
    assert httpx.get(f"{base}/api/v1/list_filters", headers=bob).status_code == 200  # reading is fine (secrets masked)
    httpx.post(f"{base}/api/v1/generate", headers=bob, json=prompt("mine"))
    httpx.post(f"{base}/api/v1/generate", headers=H, json=prompt("theirs"))
    own = httpx.get(f"{base}/api/v1/usage", headers=bob).json()["items"]
    assert own and {r["key_name"] for r in own} == {"bob"}
    assert httpx.get(f"{base}/api/v1/usage", headers=bob, params={"key": "ops"}).status_code == 403
    everyone = {r["key_name"] for r in httpx.get(f"{base}/api/v1/usage", headers=H).json()["items"]}
    assert {"bob", "ops"} <= everyone


def test_a_raising_filter_gives_a_clear_error_or_is_skipped(live: Any) -> None:
    base = live.base_url
    assert httpx.put(f"{base}/api/v1/filters/boom", headers=H, json={"enabled": True}).status_code == 200
    words = " ".join(f"w{i}" for i in range(6))
    r = httpx.post(f"{base}/api/v1/generate", headers=H, json=prompt(words))
    assert r.status_code == 424 and "filter 'boom' failed in outlet" in r.json()["detail"]
    r = httpx.post(f"{base}/api/v1/generate", headers=H, json=prompt(words, stream=True), timeout=10)
    events = sse_events(r.text)
    assert [e["type"] for e in events].count("final") == 1 and events[-1]["type"] == "final"
    errors = [e["content"] for e in events if e["type"] == "error"]
    assert errors and "filter 'boom' failed in stream" in errors[0]
    httpx.put(f"{base}/api/v1/filters/boom", headers=H, json={"valves": {"on_error": "skip"}})
    httpx.put(f"{base}/api/v1/filters/shouter", headers=H, json={"enabled": True, "valves": {"priority": 5}})
    r = httpx.post(f"{base}/api/v1/generate", headers=H, json=prompt(words))
    assert r.status_code == 200 and r.json()["output"][0]["data"] == words.upper()
    r = httpx.post(f"{base}/api/v1/generate", headers=H, json=prompt(words, stream=True))
    assert sse_events(r.text)[-1]["content"][0]["data"] == words.upper()
    for name in ("boom", "shouter"):
        httpx.put(f"{base}/api/v1/filters/{name}", headers=H, json={"enabled": False})


def test_web_fetch_only_fetches_when_enabled(live: Any, page_server: str) -> None:
    base = live.base_url
    r = httpx.post(f"{base}/ext/web_fetch/fetch", headers=H, json={"url": page_server})
    assert r.status_code == 400 and "disabled" in r.json()["detail"]
    httpx.put(f"{base}/api/v1/extensions/web_fetch/valves", headers=H, json={"enabled": True})
    r = httpx.post(f"{base}/ext/web_fetch/fetch", headers=H, json={"url": page_server})
    assert r.status_code == 400 and "private address" in r.json()["detail"]  # loopback refused by default
    r = httpx.put(f"{base}/api/v1/extensions/web_fetch/valves", headers=H, json={"allow_private_networks": True})
    assert r.status_code == 200 and r.json()["valves"]["allow_private_networks"] is True
    r = httpx.post(f"{base}/ext/web_fetch/fetch", headers=H, json={"url": page_server})
    assert r.status_code == 200, r.text
    page = r.json()
    assert page["title"] == "Test page"
    assert "# Hi" in page["markdown"] and "**bold**" in page["markdown"] and "[a link](/x)" in page["markdown"]
    assert "- one" in page["markdown"] and "x()" not in page["markdown"]
    assert httpx.post(f"{base}/ext/web_fetch/fetch", headers=H, json={"url": "file:///etc/passwd"}).status_code == 400


def test_prompt_library_stores_and_runs_prompts(live: Any) -> None:
    base = live.base_url
    r = httpx.post(f"{base}/ext/prompt_library/prompts", headers=H,
                   json={"name": "greet", "template": "Say hello to {who}", "description": "greeting"})
    assert r.status_code == 200 and r.json()["placeholders"] == ["who"]
    listed = httpx.get(f"{base}/ext/prompt_library/prompts", headers=H).json()["prompts"]
    assert [p["name"] for p in listed] == ["greet"]
    r = httpx.post(f"{base}/ext/prompt_library/prompts/greet/run", headers=H, json={"variables": {"who": "Ada"}})
    assert r.status_code == 200 and r.json()["answer"] == "Say hello to Ada"
    r = httpx.post(f"{base}/ext/prompt_library/prompts/greet/run", headers=H, json={"variables": {}})
    assert r.status_code == 400 and "who" in r.json()["detail"]
    assert httpx.post(f"{base}/ext/prompt_library/prompts", headers=H,
                      json={"name": "../escape", "template": "x"}).status_code == 400
    assert httpx.delete(f"{base}/ext/prompt_library/prompts/greet", headers=H).status_code == 200
    assert httpx.delete(f"{base}/ext/prompt_library/prompts/greet", headers=H).status_code == 404


def test_settings_survive_a_restart(live: Any) -> None:
    # the module's server wrote encrypted settings; a fresh process reads them back with the key
    listed = {f["name"]: f for f in httpx.get(f"{live.base_url}/api/v1/list_filters", headers=H).json()["filters"]}
    assert listed["pii_redaction"]["valves"]["kinds"] == ["email"]
    live.stop()
    assert (Path(live.config_dir) / "personal_extensions" / "demo_ext" / "stopped.txt").read_text() == "stopped"
    live.start()
    listed = {f["name"]: f for f in httpx.get(f"{live.base_url}/api/v1/list_filters", headers=H).json()["filters"]}
    assert listed["pii_redaction"]["valves"]["kinds"] == ["email"] and listed["pii_redaction"]["valves"]["known_secrets"] == "********"
    ext = {e["name"]: e for e in httpx.get(f"{live.base_url}/api/v1/list_extensions", headers=H).json()["extensions"]}
    assert ext["web_fetch"]["valves"]["enabled"] is True
    assert json.dumps(ext).find(SECRET_VALVE) == -1


async def test_the_wizard_sets_filter_and_extension_valves_encrypted(tmp_path: Path) -> None:
    from helpers import api_client, run_cli

    d = tmp_path / "cfg"
    key = Fernet.generate_key()
    write_config(d, key=key)
    env = {"LOLLMS_ENCRYPTION_KEY": key.decode()}
    out = run_cli("wizard", "--config-dir", str(d), "--yes", "--set", "filter.word_limit.enabled=true",
                  "--set", "filter.word_limit.valves.max_prompt_words=4", "--set", "filter.pii_redaction.bindings=dummy",
                  "--set", "filter.pii_redaction.applies_globally=false", "--set", f"filter.pii_redaction.valves.known_secrets={SECRET_VALVE}",
                  "--set", "extension.web_fetch.enabled=true", env=env)
    assert out.returncode == 0, out.stderr
    raw = (d / "plugin_settings.yaml").read_bytes()
    assert raw.startswith(b"gAAAAA") and SECRET_VALVE.encode() not in raw
    for bad, message in (("filter.word_limit.valves.max_prompt_words=-1", "max_prompt_words"),
                         ("filter.nope.enabled=true", "no such filter"),
                         ("extension.web_fetch.colour=red", "colour")):
        out = run_cli("wizard", "--config-dir", str(d), "--yes", "--set", bad, env=env)
        assert out.returncode == 2 and message in out.stderr, (bad, out.stderr)
    import os

    os.environ["LOLLMS_ENCRYPTION_KEY"] = key.decode()
    try:
        async with api_client(d) as client:
            filters = {f["name"]: f for f in (await client.get("/api/v1/list_filters")).json()["filters"]}
            assert filters["word_limit"]["enabled"] and filters["word_limit"]["valves"]["max_prompt_words"] == 4
            assert filters["pii_redaction"]["bindings"] == ["dummy"] and not filters["pii_redaction"]["applies_globally"]
            r = await client.post("/api/v1/generate", json=prompt("one two three four five"))
            assert r.status_code == 400 and "limit is 4" in r.json()["detail"]
            exts = {e["name"]: e for e in (await client.get("/api/v1/list_extensions")).json()["extensions"]}
            assert exts["web_fetch"]["valves"]["enabled"] is True
    finally:
        del os.environ["LOLLMS_ENCRYPTION_KEY"]
