"""/v1/embeddings and /api/v1/embed with the shipped all-MiniLM-L6-v2 (onnx_embedding_binding), in process."""

from __future__ import annotations

import base64
import struct
from pathlib import Path
from typing import Any, AsyncIterator

import pytest

from helpers import api_client, write_config


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[Any]:
    write_config(tmp_path, {"dummy": ("dummy_binding", {}), "minilm": ("onnx_embedding_binding", {})},
                 defaults={"ttt_binding": "dummy", "embedding_binding": "minilm"},
                 main={"model_aliases": {"house-embedder": "minilm"}})
    async with api_client(tmp_path) as client:
        yield client


def _dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b))


async def test_inputs_and_encodings(http: Any) -> None:
    texts = ["A man is eating food.", "A man is eating a piece of bread.", "The girl is carrying a baby."]
    r = await http.post("/v1/embeddings", json={"model": "minilm", "input": texts})
    assert r.status_code == 200, r.text
    body = r.json()
    vecs = [d["embedding"] for d in body["data"]]
    assert [d["index"] for d in body["data"]] == [0, 1, 2] and body["object"] == "list"
    assert len(vecs[0]) == 384 and abs(_dot(vecs[0], vecs[0]) - 1) < 1e-4
    assert _dot(vecs[0], vecs[1]) > _dot(vecs[0], vecs[2]) + 0.3
    assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] > len(texts)
    b64 = (await http.post("/v1/embeddings", json={"model": "minilm", "input": texts[0], "encoding_format": "base64"})).json()
    raw = base64.b64decode(b64["data"][0]["embedding"])
    assert max(abs(a - b) for a, b in zip(struct.unpack(f"<{len(raw) // 4}f", raw), vecs[0])) < 1e-5
    single = (await http.post("/v1/embeddings", json={"model": "minilm", "input": texts[2]})).json()["data"][0]["embedding"]
    assert max(abs(a - b) for a, b in zip(single, vecs[2])) < 1e-4  # batching does not change a vector
    ids = (await http.post("/lollms/v1/tokenize", json={"model": "minilm", "text": texts[0]})).json()["tokens"]
    tok = (await http.post("/v1/embeddings", json={"model": "minilm", "input": [ids]})).json()["data"][0]["embedding"]
    assert _dot(tok, vecs[0]) > 0.99  # token ids of the model's own tokenizer


async def test_model_names(http: Any) -> None:
    base = (await http.post("/api/v1/embed", json={"input": "hello"})).json()
    assert base["binding_name"] == "minilm" and base["model_name"] == "all-MiniLM-L6-v2" and base["dimensions"] == 384
    for model in ("text-embedding-3-small", "house-embedder", "minilm/all-MiniLM-L6-v2", "no-such-thing"):
        r = await http.post("/v1/embeddings", json={"model": model, "input": "hello"})
        assert r.status_code == 200, (model, r.text)
        assert r.json()["data"][0]["embedding"] == pytest.approx(base["embeddings"][0], abs=1e-5)
    cards = {m["id"]: m for m in (await http.get("/v1/models")).json()["data"]}
    assert cards["minilm"]["lollms"]["generation_types"] == ["embed"]


async def test_refusals(http: Any) -> None:
    cases = [
        ({"model": "dummy", "input": "x"}, "not_supported"),
        ({"model": "minilm", "input": "x", "dimensions": 64}, "not_supported"),
        ({"model": "minilm", "input": []}, None),
        ({"model": "minilm", "input": ["x"] * 2049}, None),
        ({"model": "minilm", "input": [[10**9]]}, None),
        ({"model": "minilm", "input": "x", "encoding_format": "int8"}, None),
    ]
    for body, code in cases:
        r = await http.post("/v1/embeddings", json=body)
        assert r.status_code == 400, (body, r.text[:200])
        if code:
            assert r.json()["error"]["code"] == code
    r = await http.post("/api/v1/embed", json={"input": "x", "binding_name": "dummy"})
    assert r.status_code == 400
    r = await http.post("/api/v1/embed", json={"input": "x", "binding_name": "nobody"})
    assert r.status_code == 404
    r = await http.post("/api/v1/embed", json={"input": "x", "model_name": "../../etc"})
    assert r.status_code in (400, 404)
