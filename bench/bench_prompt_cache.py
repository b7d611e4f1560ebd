"""Interleaved multi-turn conversations on llama.cpp with and without the per-conversation prompt cache.

    python bench/bench_prompt_cache.py               # 2 conversations x 6 turns, ~1,000-token shared history
    python bench/bench_prompt_cache.py --turns 4
    python bench/bench_prompt_cache.py --engine inprocess     # default: server (llama-server's --cache-ram)

One in-process server with llamacpp_binding instances on SmolLM2: "cached" and "plain" (prompt_cache_mb 256 and 0)
with one slot (``parallel: 1``), so the RAM prompt cache alone keeps the other conversation; with the server
engine also "slots" (4 parallel slots, no RAM cache: each conversation keeps its slot's KV). Each turn
of conversation a is followed by a turn of conversation b (so without snapshots each evicts the other's
history). A turn asks for one token (max_tokens 1), so its time is the time to first token. Both instances
take their turns alternately, so machine load falls on both alike; compare the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from helpers import api_client, write_config  # noqa: E402

GREEDY = {"temperature": 0.0, "repeat_penalty": 1.0, "seed": 1, "max_tokens": 1}


def text(role: str, data: str) -> dict[str, str]:
    return {"type": "text", "role": role, "data": data}


async def run(turns: int, engine: str) -> None:
    with tempfile.TemporaryDirectory(prefix="lollms-pcache-") as tmp:
        cfg = Path(tmp) / "cfg"
        common = {"n_ctx": 4096, "preload_default_model": True, "engine": engine, "parallel": 1}
        instances = {"cached": ("llamacpp_binding", common), "plain": ("llamacpp_binding", {**common, "prompt_cache_mb": 0})}
        if engine == "server":
            instances["slots"] = ("llamacpp_binding", {**common, "parallel": 4, "prompt_cache_mb": 0})
        write_config(cfg, instances)
        async with api_client(cfg) as c:
            convos: dict[tuple[str, str], list[dict[str, str]]] = {}
            times: dict[str, list[float]] = {name: [] for name in instances}
            evaluated: dict[str, list[int]] = {name: [] for name in instances}
            prompt_tokens: list[int] = []
            for turn in range(turns):
                for conv in ("a", "b"):
                    for inst in instances:
                        history = convos.setdefault((inst, conv), [text("system_context", f"Conversation {conv}. " + "Keep every detail of the shipping records in mind. " * 90)])
                        history.append(text("user_prompt", f"Turn {turn}: what is item {turn} of list {conv}?"))
                        t0 = time.perf_counter()
                        r = await c.post("/api/v1/generate", json={"binding_name": inst, "input_data": history, "parameters": GREEDY})
                        dt = time.perf_counter() - t0
                        out: dict[str, Any] = r.json()["output"][0]
                        history.append(text("assistant_reply", out["data"] or "ok"))
                        if turn > 0:
                            times[inst].append(dt * 1000)
                            evaluated[inst].append(int(out["metadata"]["prompt_tokens_evaluated"] or 0))
                            if inst == "cached":
                                prompt_tokens.append(int(out["metadata"]["usage"]["prompt_tokens"]))
    print(f"engine {engine}: 2 interleaved conversations x {turns} turns; turns 2..{turns}: prompt "
          f"{min(prompt_tokens)}-{max(prompt_tokens)} tokens")
    for inst in times:
        print(f"{inst:>7}: TTFT p50 {statistics.median(times[inst]):8.1f} ms, prompt tokens computed p50 {statistics.median(evaluated[inst]):6.0f}")
    print(f"TTFT ratio cached / plain: {statistics.median(times['cached']) / statistics.median(times['plain']):.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--turns", type=int, default=6)
    ap.add_argument("--engine", choices=["server", "inprocess"], default="server")
    args = ap.parse_args()
    asyncio.run(run(args.turns, args.engine))


if __name__ == "__main__":
    main()
