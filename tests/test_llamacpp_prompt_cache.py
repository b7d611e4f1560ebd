"""llamacpp_binding keeps each conversation's KV prefix (prompt_cache_mb), on the real SmolLM2 model.

Two conversations interleaved on one model: without the cache each turn evicts the other conversation's
history from the live context, so its next turn recomputes it; with the cache the history is restored from
a snapshot and only the new tokens are computed. ``prompt_tokens_evaluated`` (output metadata) counts the
prompt tokens llama.cpp really computed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import api_client, write_config
from llama_support import llama_marks

pytestmark = llama_marks()

GREEDY = {"temperature": 0.0, "repeat_penalty": 1.0, "seed": 1, "max_tokens": 12}
SYSTEM = "You are a careful assistant for a shipping company. Answer briefly and politely. " * 12
HISTORY = {
    "a": "Here are my notes about lighthouses along the northern coast, their keepers and their lamps. " * 10,
    "b": "Here is a long description of a mountain village, its bakery, its school and its old bridge. " * 10,
}


def text(role: str, data: str) -> dict[str, str]:
    return {"type": "text", "role": role, "data": data}


async def turn(c: httpx.AsyncClient, instance: str, inputs: list[dict[str, str]]) -> dict[str, Any]:
    r = await c.post("/api/v1/generate", json={"binding_name": instance, "input_data": inputs, "parameters": GREEDY})
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()["output"][0]
    return out


async def interleave(c: httpx.AsyncClient, instance: str) -> dict[str, dict[str, Any]]:
    """Turn 1 of a, turn 1 of b, then turn 2 of a and of b; returns the second turns' outputs."""
    convo = {k: [text("system_context", SYSTEM), text("user_prompt", h)] for k, h in HISTORY.items()}
    for k in convo:
        convo[k].append(text("assistant_reply", (await turn(c, instance, convo[k]))["data"]))
        convo[k].append(text("user_prompt", "Summarise that in one sentence."))
    return {k: await turn(c, instance, convo[k]) for k in convo}


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    d = tmp_path / "cfg"
    # one slot (server engine): the live context holds one conversation, as with the in-process engine
    common = {"n_ctx": 2048, "preload_default_model": True, "parallel": 1}
    write_config(d, {"cached": ("llamacpp_binding", {**common}),  # prompt_cache_mb: the card's default
                     "plain": ("llamacpp_binding", {**common, "prompt_cache_mb": 0}),
                     # two slots, no RAM cache: each conversation must keep its own slot (slot affinity)
                     "slots": ("llamacpp_binding", {**common, "parallel": 2, "prompt_cache_mb": 0})})
    return d


async def test_interleaved_conversations_each_keep_their_prefix(cfg: Path) -> None:
    async with api_client(cfg) as c:
        cached = await interleave(c, "cached")
        plain = await interleave(c, "plain")
        alone: dict[str, str] = {}
        for k, h in HISTORY.items():  # each conversation on its own, no other in between, no snapshot needed
            first = [text("system_context", SYSTEM), text("user_prompt", h)]
            answer = (await turn(c, "plain", first))["data"]
            alone[k] = (await turn(c, "plain", first + [text("assistant_reply", answer),
                                                        text("user_prompt", "Summarise that in one sentence.")]))["data"]
    for k in HISTORY:
        total = cached[k]["metadata"]["usage"]["prompt_tokens"]
        assert plain[k]["metadata"]["usage"]["prompt_tokens"] == total > 300
        # without snapshots the other conversation evicted this one's history: recomputed (all but the system part)
        assert plain[k]["metadata"]["prompt_tokens_evaluated"] > 100
        # with them only the last answer and the new question (and the template around them) are computed
        assert 0 < cached[k]["metadata"]["prompt_tokens_evaluated"] < 40
        # restoring a snapshot changes nothing in the answer: same text as the conversation run on its own
        assert cached[k]["data"] == alone[k]


async def test_interleaved_conversations_keep_their_own_slot(cfg: Path) -> None:
    """llama-server alone would put both conversations (alike: same long system prompt) on one slot, so each
    second turn would recompute its history; pinned to its own slot, only the new tokens are computed."""
    async with api_client(cfg) as c:
        slots = await interleave(c, "slots")
    for k in HISTORY:
        assert slots[k]["metadata"]["usage"]["prompt_tokens"] > 300
        assert 0 < slots[k]["metadata"]["prompt_tokens_evaluated"] < 40
