"""Auth, health and the listing endpoints of spec section 7 (in-process client)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from helpers import API_KEY, api_client, write_config

SECRET = "sk-dummy-SECRET-value-4242"


@pytest.fixture
def rich_config(tmp_path: Path) -> Path:
    d = tmp_path / "cfg"
    write_config(
        d,
        {
            "dummy": ("dummy_binding", {"api_key": SECRET}),
            "vision": ("dummy_binding", {"default_model": "dummy-vision"}),
            "broken": ("dummy_binding", {"mode": "fail_load"}),
        },
        defaults={"ttt_binding": "dummy", "tti_binding": "vision"},
    )
    (d / "models" / "gguf").mkdir(parents=True)
    (d / "models" / "gguf" / "tiny.gguf").write_bytes(b"GGUF")
    (d / "models" / "diffusers_models" / "sd-tiny").mkdir(parents=True)
    return d


async def test_health_needs_no_key(config_dir: Path) -> None:
    async with api_client(config_dir, api_key=None) as c:
        for path in ("/health", "/api/v1/health"):
            r = await c.get(path)
            assert r.status_code == 200
            assert r.json() == {"status": "ok", "version": r.json()["version"], "api_key_required": True,
                                "auth": "required", "warnings": []}


async def test_missing_key_403_wrong_key_401(config_dir: Path) -> None:
    async with api_client(config_dir, api_key=None) as c:
        r = await c.get("/api/v1/list_bindings")
        assert r.status_code == 403 and "X-API-Key" in r.json()["detail"]
        r = await c.get("/api/v1/list_bindings", headers={"X-API-Key": "nope"})
        assert r.status_code == 401
        r = await c.post("/api/v1/generate", json={"input_data": []}, headers={"X-API-Key": API_KEY + "x"})
        assert r.status_code == 401
        r = await c.get("/api/v1/list_bindings", headers={"X-API-Key": API_KEY})
        assert r.status_code == 200


async def test_empty_key_list_turns_auth_off(tmp_path: Path) -> None:
    d = tmp_path / "cfg"
    write_config(d, api_keys=[])
    async with api_client(d, api_key=None) as c:
        assert (await c.get("/health")).json()["api_key_required"] is False
        assert (await c.get("/api/v1/list_bindings")).status_code == 200


async def test_list_bindings_masks_secrets_and_reports_load_errors(rich_config: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with api_client(rich_config) as c:
        r = await c.get("/api/v1/list_bindings")
        assert r.status_code == 200
        body = r.json()
        assert "dummy_binding" in body["binding_types"]
        t = body["binding_types"]["dummy_binding"]
        assert t["supports_streaming"] is True and "text" in t["supported_input_modalities"]
        inst = body["binding_instances"]
        assert set(inst) == {"dummy", "vision", "broken"}
        assert inst["dummy"]["api_key"] == "********"
        assert inst["dummy"]["type"] == "dummy_binding" and inst["dummy"]["binding_instance_name"] == "dummy"
        assert inst["vision"]["api_key"] is None
        assert "fail_load" in body["load_errors"]["broken"]
        active = (await c.get("/api/v1/list_active_bindings")).json()["bindings"]
        assert set(active) == {"dummy", "vision"}
        for path in ("/api/v1/list_bindings", "/api/v1/list_active_bindings", "/api/v1/get_model_info/dummy",
                     "/api/v1/list_available_models/dummy"):
            assert SECRET not in (await c.get(path)).text
    assert SECRET not in caplog.text


async def test_list_personalities_functions_models_defaults(rich_config: Path) -> None:
    async with api_client(rich_config) as c:
        pers = (await c.get("/api/v1/list_personalities")).json()["personalities"]
        assert pers["lollms"]["is_scripted"] is False and pers["lollms"]["icon"] == "icon.png"
        assert pers["calculator"]["is_scripted"] is True
        assert pers["lollms"]["path"].endswith("lollms")
        icon = await c.get("/api/v1/personality_icon/lollms")
        assert icon.status_code == 200 and icon.content[:4] == b"\x89PNG"
        funcs = (await c.get("/api/v1/list_functions")).json()
        assert "math_tools.evaluate" in funcs["functions"]
        schema = funcs["schemas"]["math_tools.evaluate"]["parameters"]
        assert schema["required"] == ["expression"] and schema["properties"]["expression"]["type"] == "string"
        assert "Numbers with" in schema["properties"]["expression"]["description"]
        models = (await c.get("/api/v1/list_models")).json()["models"]
        assert models["gguf"] == ["tiny.gguf"] and models["diffusers_models"] == ["sd-tiny"] and models["tts"] == []
        d = (await c.get("/api/v1/get_default_bindings")).json()["defaults"]
        assert d["ttt_binding"] == "dummy" and d["tti_binding"] == "vision" and d["tts_binding"] is None
        assert d["default_context_size"] == 4096 and d["default_max_output_tokens"] == 1024


async def test_available_models_and_model_info(rich_config: Path) -> None:
    async with api_client(rich_config) as c:
        r = await c.get("/api/v1/list_available_models/dummy")
        assert r.status_code == 200
        names = [m["name"] for m in r.json()["models"]]
        assert names == ["dummy-echo", "dummy-vision"]
        assert r.json()["models"][1]["supports_vision"] is True
        assert (await c.get("/api/v1/list_available_models/nope")).status_code == 404
        assert (await c.get("/api/v1/list_available_models/broken")).status_code == 404
        info = (await c.get("/api/v1/get_model_info/dummy")).json()
        assert info["model_name"] == "dummy-echo" and info["context_size"] == 4096 and info["supports_streaming"] is True
        info = (await c.get("/api/v1/get_model_info/dummy", params={"model_name": "dummy-vision"})).json()
        assert info["supports_vision"] is True
        r = await c.get("/api/v1/get_model_info/dummy", params={"model_name": "missing"})
        assert r.status_code == 404 and "missing" in r.json()["detail"]


async def test_personalities_config_disables_and_code_execution_off_by_default(tmp_path: Path) -> None:
    d = tmp_path / "cfg"
    write_config(d, main={"personalities_config": {"calculator": {"enabled": False}, "runner": {"enabled": True}}})
    pp = d / "personal_personalities"
    (pp / "coder").mkdir(parents=True)
    (pp / "coder" / "config.yaml").write_text("name: coder\nexecutes_code: true\npersonality_conditioning: x\n")
    (pp / "runner").mkdir(parents=True)
    (pp / "runner" / "config.yaml").write_text("name: runner\nexecutes_code: true\n")
    (pp / "escape").mkdir(parents=True)
    (pp / "escape" / "config.yaml").write_text("name: escape\nscript_path: ../../outside.py\n")
    (d / "outside.py").write_text("async def run_workflow(p, q, c):\n    return 'escaped'\n")
    async with api_client(d) as c:
        body = (await c.get("/api/v1/list_personalities")).json()
        assert "calculator" not in body["personalities"] and "coder" not in body["personalities"]
        assert "runner" in body["personalities"]
        assert "escape" not in body["personalities"] and "outside" in body["load_errors"]["escape"]
        r = await c.post("/api/v1/generate", json={"personality": "calculator", "input_data": [
            {"type": "text", "role": "user_prompt", "data": "1+1"}]})
        assert r.status_code == 404 and "disabled" in r.json()["detail"]


async def test_resources_state_endpoint(config_dir: Path) -> None:
    async with api_client(config_dir) as c:
        s = (await c.get("/api/v1/resources")).json()
        assert s == {"strategy": "semaphore", "limit": 1, "active": 0, "waiting": 0, "queue_timeout": 120.0, "max_queue": 512,
                     "backend": "memory"}


async def test_docs_document_every_endpoint(config_dir: Path) -> None:
    async with api_client(config_dir) as c:
        spec = (await c.get("/openapi.json")).json()
    paths = spec["paths"]
    for p in ("/health", "/api/v1/health", "/api/v1/list_bindings", "/api/v1/list_active_bindings",
              "/api/v1/list_personalities", "/api/v1/list_functions", "/api/v1/list_models",
              "/api/v1/list_available_models/{binding_instance_name}", "/api/v1/get_default_bindings",
              "/api/v1/get_model_info/{binding_instance_name}", "/api/v1/generate", "/api/v1/tokenize",
              "/api/v1/detokenize", "/api/v1/count_tokens"):
        assert p in paths, p
        op = next(iter(paths[p].values()))
        assert op.get("summary"), p
    gen_schema = spec["components"]["schemas"]["GenerateRequest"]
    assert gen_schema.get("examples"), "generate request has examples for /docs"
    assert spec["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "X-API-Key"


async def test_cors_allows_configured_origins_only(tmp_path: Path) -> None:
    d = tmp_path / "cfg"
    write_config(d, main={"server": {"allowed_origins": ["http://localhost:5173"]}})
    async with api_client(d) as c:
        ok = await c.options("/api/v1/list_bindings", headers={"Origin": "http://localhost:5173", "Access-Control-Request-Method": "GET"})
        assert ok.headers.get("access-control-allow-origin") == "http://localhost:5173"
        bad = await c.options("/api/v1/list_bindings", headers={"Origin": "null", "Access-Control-Request-Method": "GET"})
        assert "access-control-allow-origin" not in bad.headers
        evil = await c.get("/health", headers={"Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in evil.headers


async def test_personality_with_missing_dependencies_is_reported_not_installed(tmp_path: Path) -> None:
    d = tmp_path / "cfg"
    write_config(d)
    pp = d / "personal_personalities"
    (pp / "needy").mkdir(parents=True)
    (pp / "needy" / "config.yaml").write_text("name: needy\ndependencies: [lollms-no-such-package-xyz>=1.0]\n")
    (pp / "needy_script" / "scripts").mkdir(parents=True)
    (pp / "needy_script" / "config.yaml").write_text(
        "name: needy_script\nscript_path: scripts/workflow.py\ndependencies: [lollms-no-such-package-xyz>=1.0]\n")
    (pp / "needy_script" / "scripts" / "workflow.py").write_text("async def run_workflow(prompt, params, context):\n    return 'x'\n")
    (pp / "content").mkdir(parents=True)
    (pp / "content" / "config.yaml").write_text("name: content\ndependencies: [pyyaml, 'fastapi>=0.1']\n")
    async with api_client(d) as c:
        body = (await c.get("/api/v1/list_personalities")).json()
    # a config-only personality loads (nothing of it needs the package) and reports what is missing
    assert body["personalities"]["content"]["missing_dependencies"] == []
    assert body["personalities"]["needy"]["missing_dependencies"] == ["lollms-no-such-package-xyz>=1.0"]
    # a workflow that needs it does not load, and says how to fix it (nothing is installed at run time)
    assert "needy_script" not in body["personalities"]
    assert "lollms-no-such-package-xyz>=1.0" in body["load_errors"]["needy_script"]
    assert "pip install" in body["load_errors"]["needy_script"]
