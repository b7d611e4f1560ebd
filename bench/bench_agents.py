"""Embedding throughput and tool-call overhead, against one real lollms-server process.

    python bench/bench_agents.py                 # batch sizes 1, 16, 64; 5 tool-call rounds
    python bench/bench_agents.py --seconds 5 --rounds 10

Prints:
- the default embedding model (all-MiniLM-L6-v2, onnxruntime): load time and RSS in a fresh process, then
  texts/s through POST /v1/embeddings at batch sizes 1, 16 and 64;
- tool-call latency overhead on /v1/chat/completions: the dummy binding (the server's own tool machinery,
  no model) with and without tools, and SmolLM2 (llama.cpp) producing a grammar-constrained call versus
  plain text of the same length.
Not a test: figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))
from helpers import API_KEY, ServerProcess, write_config  # noqa: E402

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather of a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
SENTENCES = [f"Sentence {i}: the quick brown fox jumps over the lazy dog near river number {i}." for i in range(64)]

_LOAD_PROBE = """
import resource, time, sys
sys.path.insert(0, sys.argv[1])
import importlib
t0 = time.perf_counter()
from lollms_server.core.bindings.registry import BindingRegistry
from pathlib import Path
reg = BindingRegistry(); reg.discover([(Path(sys.argv[1]) / "zoos" / "bindings", "zoo")])
mod = sys.modules["lollms_zoo_bindings.onnx_embedding_binding"]
from lollms_zoo_bindings.onnx_embedding_binding.engine import load_embedder, embed_batches
from lollms_zoo_bindings.onnx_embedding_binding.models import shipped_model
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t1 = time.perf_counter()
model = load_embedder(shipped_model(), 256, None)
embed_batches(model, ["warm up"], 1, True)
t2 = time.perf_counter()
print(f"{t2 - t1:.3f} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} {before / 1024:.0f}")
"""


def load_figures() -> tuple[float, float, float]:
    out = subprocess.run([sys.executable, "-c", _LOAD_PROBE, str(ROOT)], capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    load, rss, before = out.stdout.split()[-3:]
    return float(load), float(rss), float(before)


def embed_rate(client: httpx.Client, batch: int, seconds: float) -> float:
    texts = SENTENCES[:batch]
    client.post("/v1/embeddings", json={"model": "minilm", "input": texts})  # warm-up
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        r = client.post("/v1/embeddings", json={"model": "minilm", "input": texts})
        r.raise_for_status()
        done += batch
    return done / (time.perf_counter() - started)


def timed(client: httpx.Client, body: dict[str, Any], rounds: int) -> tuple[float, dict[str, Any]]:
    client.post("/v1/chat/completions", json=body).raise_for_status()  # warm-up (grammar, caches)
    times: list[float] = []
    last: dict[str, Any] = {}
    for _ in range(rounds):
        t0 = time.perf_counter()
        r = client.post("/v1/chat/completions", json=body)
        times.append(time.perf_counter() - t0)
        r.raise_for_status()
        last = r.json()
    return statistics.median(times) * 1000, last


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0, help="seconds per embedding batch size")
    ap.add_argument("--rounds", type=int, default=5, help="requests per tool-call case")
    args = ap.parse_args()
    load, rss, before = load_figures()
    print(f"all-MiniLM-L6-v2 (int8 ONNX, onnxruntime): load {load:.2f} s, RSS {rss:.0f} MB after load ({before:.0f} MB before)")
    cfg = Path(tempfile.mkdtemp()) / "cfg"
    write_config(cfg, {"llm": ("llamacpp_binding", {"n_ctx": 2048}), "minilm": ("onnx_embedding_binding", {}),
                       "toolbot": ("dummy_binding", {"mode": "tools"})},
                 defaults={"ttt_binding": "llm", "embedding_binding": "minilm"})
    with ServerProcess(cfg) as srv, httpx.Client(base_url=srv.base_url, headers={"X-API-Key": API_KEY}, timeout=300) as client:
        for batch in (1, 16, 64):
            print(f"embeddings batch {batch:>2}: {embed_rate(client, batch, args.seconds):7.1f} texts/s")
        msgs = [{"role": "user", "content": '{"city": "Paris"}'}]
        plain, _ = timed(client, {"model": "toolbot", "messages": msgs}, args.rounds * 10)
        tools, _ = timed(client, {"model": "toolbot", "messages": msgs, "tools": [WEATHER]}, args.rounds * 10)
        print(f"dummy binding: plain {plain:.1f} ms, with a tool call {tools:.1f} ms (server tool machinery: {tools - plain:+.1f} ms)")
        ask = [{"role": "user", "content": "What is the weather in Paris?"}]
        called_ms, called = timed(client, {"model": "llm", "messages": ask, "tools": [WEATHER], "tool_choice": "required",
                                           "max_tokens": 48, "temperature": 0}, args.rounds)
        n = called["usage"]["completion_tokens"]
        text_ms, text = timed(client, {"model": "llm", "messages": ask, "max_tokens": n, "temperature": 0}, args.rounds)
        m = text["usage"]["completion_tokens"]
        call = called["choices"][0]["message"]["tool_calls"][0]["function"]
        print(f"SmolLM2 tool call ({n} tokens, {call['name']}({call['arguments']})): {called_ms:.0f} ms; "
              f"plain text ({m} tokens): {text_ms:.0f} ms; prompt tokens {called['usage']['prompt_tokens']} vs "
              f"{text['usage']['prompt_tokens']} (tool descriptions)")
        print(json.dumps({"overhead_ms": round(called_ms - text_ms)}))


if __name__ == "__main__":
    main()
