"""What start-up does not do: modules only some requests need are imported on first use, not before ready.

The OpenAI and Ollama surfaces are included lazily (``api/lazy_routes.py``): their first request imports
them and must be answered exactly as an eagerly built app answers it (auth, 404/405 shapes, public
routes, the schema). Start-up time itself is a figure of bench/bench_startup.py, not asserted here.
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from fastapi.routing import APIRoute
from helpers import API_KEY, api_client

from lollms_server.api import ollama, openai_compat
from lollms_server.api.lazy_routes import LazyRouters
from lollms_server.app import INFO_ROUTER, LAZY_ROUTERS, create_app

# imported by some requests only: never on the way to /health/ready with the default configuration
NOT_AT_START_UP = (
    "httpx",  # llama-server's client, web_fetch, `models pull`: on first use
    "prometheus_client",  # the first scrape of /metrics (requests are counted in plain numbers until then)
    "email_validator",  # installed beside some dev tools; FastAPI's import skips it (api/fastapi_import.py)
    "lollms_zoo_extensions.web_fetch.markdown",  # web_fetch's HTML to Markdown converter: on the first fetch
    "cryptography",  # Fernet: for encrypted configuration files only (core/configguard_import.py)
    "ascii_colors",  # ConfigGuard's console logging: its logger is the standard library's (core/configguard_import.py)
    "pydantic.v1",  # FastAPI's check for pydantic.v1 route models needs no import while none exists (same module)
    "lollms_server.api.openai_compat.routes_chat",
    "lollms_server.api.openai_compat.models",
    "lollms_server.api.ollama.routes_chat",
    "lollms_server.api.ollama.routes_models",
    "lollms_server.api.routes_jobs",
    "lollms_server.api.routes_plugins",
    "lollms_server.api.routes_usage",
    "lollms_server.api.models",  # the listings' and tokens' response models (health's: api/health_models.py)
    "lollms_server.api.routes_info",  # the listings (health and readiness are in routes_health)
)
# binding types no instance of the default configuration uses: their modules are imported by the first
# listing of the types (core/bindings/registry.py), not at start-up
UNUSED_BINDING_TYPES = ("lollms_zoo_bindings.openai_binding", "lollms_zoo_bindings.hf_binding",
                        "lollms_zoo_bindings.musicgen_binding", "lollms_zoo_bindings.gemini_binding")
NOT_AT_START_UP += UNUSED_BINDING_TYPES


def test_start_up_with_the_default_config_imports_none_of_the_first_use_modules(default_config: Path) -> None:
    """The path `lollms-server serve` takes: parse the command line, load the config, build the app, run
    its start-up (every default instance), answer /health/ready; then one OpenAI request loads its surface."""
    code = textwrap.dedent(f"""
        import asyncio, sys
        from pathlib import Path
        from lollms_server.cli.main import build_parser
        from lollms_server.app import create_app
        from lollms_server.core.config import load_server_config

        build_parser("serve").parse_args(["serve"])
        app = create_app(config=load_server_config(Path({str(default_config)!r})))

        async def start_and_ask() -> None:
            sent = []
            async def receive():
                return {{"type": "http.request", "body": b"", "more_body": False}}
            async def send(message):
                sent.append(message)
            async def get(path, headers=()):
                sent.clear()
                scope = {{"type": "http", "asgi": {{"version": "3.0"}}, "http_version": "1.1", "method": "GET",
                          "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
                          "root_path": "", "headers": [(b"host", b"127.0.0.1"), *headers], "client": ("127.0.0.1", 1),
                          "server": ("127.0.0.1", 80)}}
                await app(scope, receive, send)
                return sent[0]["status"]
            async with app.router.lifespan_context(app):
                assert await get("/health/ready") == 200
                print(sorted(m for m in {NOT_AT_START_UP!r} if m in sys.modules))
                assert await get("/v1/models", [(b"x-api-key", {_key(default_config).encode()!r})]) == 200
                print(sorted(m for m in {NOT_AT_START_UP!r} if m in sys.modules))
                assert await get("/api/v1/list_bindings", [(b"x-api-key", {_key(default_config).encode()!r})]) == 200
                print(sorted(m for m in {UNUSED_BINDING_TYPES!r} if m in sys.modules))

        asyncio.run(start_and_ask())
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    at_ready, after_openai, after_listing = out.stdout.strip().splitlines()[-3:]
    assert at_ready == "[]", f"imported before ready: {at_ready}"
    assert "lollms_server.api.openai_compat.routes_chat" in after_openai  # the check above can see an import
    assert after_listing == str(sorted(UNUSED_BINDING_TYPES))  # the listing imported every type


BROKEN_TYPE = """
raise ImportError("this binding module is broken on purpose")
"""


def _broken_type(config_dir: Path, type_name: str) -> None:
    folder = config_dir / "personal_bindings" / type_name
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text(BROKEN_TYPE)
    (folder / "binding_card.yaml").write_text(f"type_name: {type_name}\nsupports_streaming: false\n")


async def test_a_broken_binding_type_no_instance_uses_is_reported_by_the_first_listing(config_dir: Path) -> None:
    _broken_type(config_dir, "unused_broken_binding")
    async with api_client(config_dir) as c:
        assert (await c.get("/health/ready")).status_code == 200
        assert "lollms_personal_bindings.unused_broken_binding" not in sys.modules  # not imported to start
        r = await c.post("/api/v1/generate", json={"input_data": [{"type": "text", "role": "user_prompt", "data": "hi"}]})
        assert r.status_code == 200, r.text  # the configured instance serves
        listing = (await c.get("/api/v1/list_bindings")).json()
        assert "broken on purpose" in listing["load_errors"]["unused_broken_binding"]
        assert "unused_broken_binding" not in listing["binding_types"]
        assert "dummy_binding" in listing["binding_types"] and "openai_binding" in listing["binding_types"]


async def test_a_broken_binding_type_an_instance_uses_is_reported_at_start_up(config_dir: Path) -> None:
    _broken_type(config_dir, "used_broken_binding")
    main = yaml.safe_load((config_dir / "main_config.yaml").read_text())
    main["bindings_map"]["dummy"] = "used_broken_binding"
    (config_dir / "main_config.yaml").write_text(yaml.safe_dump(main))
    async with api_client(config_dir) as c:
        ready = await c.get("/health/ready")
        assert ready.json()["instances"]["dummy"] == "failed", ready.text  # known before any listing
        r = await c.post("/api/v1/generate", json={"input_data": [{"type": "text", "role": "user_prompt", "data": "hi"}]})
        assert r.status_code == 503 and "broken on purpose" in r.json()["detail"]


def _key(config_dir: Path) -> str:
    return str(yaml.safe_load((config_dir / "main_config.yaml").read_text())["security"]["allowed_api_keys"][0])


def _paths(routers: list) -> set[str]:  # type: ignore[type-arg]
    return {r.path for router in routers for r in router.routes}


@pytest.mark.parametrize("surface", [openai_compat, ollama], ids=["openai", "ollama"])
def test_the_declared_prefixes_cover_every_route_of_a_lazy_surface(surface) -> None:  # type: ignore[no-untyped-def]
    paths = _paths(surface.routers())
    assert paths
    outside = sorted(p for p in paths if not p.startswith(surface.PATH_PREFIXES))
    assert not outside, f"never reached before the surface is loaded: {outside}"


@pytest.mark.parametrize("module", sorted({**LAZY_ROUTERS, **INFO_ROUTER}))
def test_the_declared_prefixes_cover_every_route_of_a_lazy_api_router(module: str) -> None:
    paths = _paths([importlib.import_module(f"lollms_server.api.{module}").router])
    assert paths
    outside = sorted(p for p in paths if not p.startswith({**LAZY_ROUTERS, **INFO_ROUTER}[module]))
    assert not outside, f"never reached before {module} is loaded: {outside}"


def test_ollama_public_paths_are_those_of_its_public_router() -> None:
    from lollms_server.api.ollama import routes_models

    assert ollama.PUBLIC_PATHS == _paths([routes_models.public_router])


async def test_a_surfaces_first_request_is_answered_as_every_later_one(config_dir: Path) -> None:
    """Each request below is the first of its surface in a new app: public route, 405, 404, key checks."""
    firsts = [
        ("GET", "/api/version", None, 200, "version"),  # Ollama's public route: no key needed
        ("GET", "/api/chat", API_KEY, 405, "detail"),  # a path served with other methods
        ("GET", "/v1/chat/completions", API_KEY, 404, "error"),  # OpenAI's catch-all matches before the 405
        ("POST", "/v1/no/such/route", API_KEY, 404, "error"),  # OpenAI's 404 shape
        ("GET", "/v1/models", "wrong", 401, "error"),
        ("GET", "/v1/models", API_KEY, 200, "data"),
        ("POST", "/api/show", API_KEY, 400, "error"),  # Ollama's error shape for a bad body
        ("GET", "/api/tags", API_KEY, 200, "models"),
        ("GET", "/api/v1/jobs", None, 403, "detail"),  # lollms' own surface: key checked before any import
        ("GET", "/api/v1/jobs", API_KEY, 200, "jobs"),
        ("GET", "/api/v1/jobs/nope", API_KEY, 404, "detail"),
        ("DELETE", "/api/v1/usage", API_KEY, 405, "detail"),
        ("POST", "/api/v1/count_tokens", API_KEY, 422, "detail"),
        ("GET", "/api/v1/list_filters", API_KEY, 200, "filters"),
        ("GET", "/api/v1/list_bindings", None, 403, "detail"),  # the listings: key checked before any import
        ("GET", "/api/v1/list_bindings", API_KEY, 200, "binding_types"),
        ("POST", "/api/v1/list_models", API_KEY, 405, "detail"),
        ("GET", "/api/v1/get_model_info/nope", API_KEY, 404, "detail"),
        ("GET", "/api/v1/get_default_bindings", API_KEY, 200, "defaults"),
        ("GET", "/api/v1/resources", API_KEY, 200, "waiting"),
        ("POST", "/api/v1/embed", API_KEY, 422, "detail"),
    ]
    for method, path, key, status, field in firsts:
        async with api_client(config_dir, api_key=key) as c:
            r = await c.request(method, path, json={} if method == "POST" else None)
            assert r.status_code == status, (path, r.text)
            assert field in r.json(), (path, r.text)
            again = await c.request(method, path, json={} if method == "POST" else None)
            assert (again.status_code, again.json().keys()) == (r.status_code, r.json().keys())


async def test_the_schema_lists_lazy_routes_before_any_request_and_the_route_order_is_kept(config_dir: Path) -> None:
    app = create_app(config_dir)
    placeholders = [i for i, r in enumerate(app.router.routes) if isinstance(r, LazyRouters)]
    assert len(placeholders) == len(LAZY_ROUTERS) + len(INFO_ROUTER) + 2
    tail = app.router.routes[placeholders[-1] + 1:]  # web UI and the JSON 404 catch-all stay last
    schema = app.openapi()
    assert "/v1/chat/completions" in schema["paths"] and "/api/chat" in schema["paths"]
    assert not any(isinstance(r, LazyRouters) for r in app.router.routes)
    assert app.router.routes[-len(tail):] == tail
    native = [importlib.import_module(f"lollms_server.api.{module}").router for module in {**LAZY_ROUTERS, **INFO_ROUTER}]
    eager = {f"{m} {re.sub(r':[a-z]+}', '}', r.path)}" for router in openai_compat.routers() + ollama.routers() + native
             for r in router.routes
             if isinstance(r, APIRoute) and r.include_in_schema for m in r.methods}
    listed = {f"{m.upper()} {p}" for p, ops in schema["paths"].items() for m in ops}
    assert eager <= listed


async def test_start_up_runs_without_the_collector_and_turns_it_back_on_when_done(config_dir: Path) -> None:
    import gc

    from lollms_server.core import start_up_gc

    assert gc.isenabled()
    start_up_gc.relax()  # what `serve` does before its imports
    try:
        assert not gc.isenabled()
        async with api_client(config_dir) as c:
            assert gc.isenabled()  # the app's start-up settled it
            assert gc.get_freeze_count() > 0  # what start-up built is out of later collections
            assert (await c.get("/health/ready")).status_code == 200
    finally:
        gc.enable()
        gc.unfreeze()


def test_serve_runs_uvicorn_without_its_command_line_and_the_package_stays_whole(config_dir: Path) -> None:
    """`serve` in a real process: uvicorn's command line (click, multiprocessing) is not imported before ready,
    a generation is served, and uvicorn's package still gives every name it has (its __init__ then runs)."""
    from helpers import free_port

    port = free_port()
    code = textwrap.dedent(f"""
        import json, os, sys, threading, time, urllib.request
        WATCH = ("click", "multiprocessing", "uvicorn.main")

        def ask(path, body=None):
            req = urllib.request.Request(f"http://127.0.0.1:{port}" + path, data=body,
                                         headers={{"X-API-Key": {API_KEY!r}, "Content-Type": "application/json"}})
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, r.read()

        def watch():
            for _ in range(600):
                try:
                    if ask("/health/ready")[0] == 200:
                        break
                except OSError:
                    time.sleep(0.05)
            print(sorted(m for m in WATCH if m in sys.modules))
            body = json.dumps({{"input_data": [{{"type": "text", "role": "user_prompt", "data": "hi"}}]}}).encode()
            print(ask("/api/v1/generate", body)[0])
            import uvicorn
            print(callable(uvicorn.run), uvicorn.Config.__name__, bool(uvicorn.__version__))
            print(sorted(m for m in WATCH if m in sys.modules))
            sys.stdout.flush()
            os._exit(0)

        threading.Thread(target=watch, daemon=True).start()
        from lollms_server.cli.main import main
        main(["serve", "--config-dir", {str(config_dir)!r}, "--port", "{port}"])
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    at_ready, generated, names, after = out.stdout.strip().splitlines()[-4:]
    assert at_ready == "[]", f"imported before ready: {at_ready}"
    assert generated == "200"
    assert names == "True Config True"
    assert after == "['click', 'multiprocessing', 'uvicorn.main']"  # the package's own __init__ ran on first use


def test_builtin_default_factories_are_answered_without_parsing_their_signature() -> None:
    """pydantic asks whether a default_factory takes the validated data; for list/dict, inspect would tokenize
    their text signature (compiling tokenize's large pattern) for an answer known in advance
    (api/pydantic_import.py). Factories are still called as pydantic calls them, data-taking ones included."""
    code = textwrap.dedent("""
        import tokenize
        import lollms_server.api  # FastAPI and pydantic, imported as the server imports them
        from pydantic import BaseModel, Field

        class M(BaseModel):
            a: list[int] = Field(default_factory=list)
            b: dict[str, int] = Field(default_factory=dict)
            c: int = 1
            d: int = Field(default_factory=lambda data: data["c"] + 1)

        m = M(c=5)
        print(m.a, m.b, m.d, M().a is not M().a, M.model_json_schema()["properties"]["a"], tokenize._compile.cache_info().currsize)

        from pydantic._internal import _fields
        from lollms_server.api.pydantic_import import NO_ARGUMENT_TYPES
        own_check = _fields.takes_validated_data_argument.__wrapped__
        assert not any(own_check(t) for t in NO_ARGUMENT_TYPES)  # the answer pydantic itself gives them
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["[]", "{}", "6", "True", *"{'items': {'type': 'integer'}, 'title': 'A', 'type': 'array'}".split(), "0"]


def test_configguard_without_ascii_colors_and_cryptography_until_a_file_is_encrypted(tmp_path: Path) -> None:
    """core/configguard_import.py: ConfigGuard logs through the standard library and gets Fernet on first use;
    an encrypted file is still written by ConfigGuard and read back, a wrong key still refused."""
    code = textwrap.dedent(f"""
        import logging, sys
        from pathlib import Path
        from lollms_server.core import guarded_config as g
        assert "cryptography" not in sys.modules and "ascii_colors" not in sys.modules
        import configguard
        assert isinstance(sys.modules["configguard.log"].log, logging.Logger)
        schema = {{"__version__": "1.0.0", "name": {{"type": "str", "default": "x", "help": "a name"}}}}
        path = Path({str(tmp_path / "inst.yaml")!r})
        key = configguard.generate_encryption_key()
        g.save_guarded_atomic(path, schema, {{"name": "secret-name"}}, key)
        assert b"secret-name" not in path.read_bytes() and g.looks_encrypted(path)
        print(g.load_guarded(path, schema, key).values["name"])
        try:
            g.load_guarded(path, schema, configguard.generate_encryption_key())
        except g.ConfigFileError as exc:
            print("refused:", type(exc).__name__)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["secret-name", "refused: ConfigFileError"]
