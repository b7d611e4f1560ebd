"""The server's own overhead: lollms-server with dummy_binding at zero delay, POST /api/v1/generate.

    python bench/bench_overhead.py                    # concurrency 1, 8, 32; 1000 requests each
    python bench/bench_overhead.py --requests 3000 --stream

Starts one real server process on 127.0.0.1, sends a bounded number of requests per concurrency
level with an httpx async client (one connection per worker), prints requests/s and p50/p99 latency.
Target: p50 <= 2 ms at concurrency 1.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from helpers import API_KEY, ServerProcess, write_config


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


async def level(base_url: str, concurrency: int, total: int, stream: bool) -> tuple[float, list[float], int]:
    body = {"input_data": [{"type": "text", "role": "user_prompt", "data": "hello overhead benchmark"}], "stream": stream}
    latencies: list[float] = []
    errors = 0
    remaining = total
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, headers={"X-API-Key": API_KEY}, limits=limits, timeout=30) as client:
        for _ in range(min(20, total)):  # warm-up: connections open, code paths hot
            await client.post("/api/v1/generate", json=body)

        async def worker() -> None:
            nonlocal remaining, errors
            while remaining > 0:
                remaining -= 1
                t0 = time.perf_counter()
                r = await client.post("/api/v1/generate", json=body)
                latencies.append(time.perf_counter() - t0)
                if r.status_code != 200:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return elapsed, latencies, errors


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=1000, help="requests per concurrency level")
    ap.add_argument("--levels", default="1,8,32")
    ap.add_argument("--stream", action="store_true", help="SSE responses instead of JSON")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="lollms-overhead-") as tmp:
        cfg = Path(tmp) / "cfg"
        write_config(cfg, {"dummy": ("dummy_binding", {"delay": 0.0})}, main={"logging": {"log_level": "WARNING", "level": 30}})
        with ServerProcess(cfg) as srv:
            print(f"dummy_binding, delay 0, {'SSE' if args.stream else 'JSON'} responses, {args.requests} requests per level")
            head = f"{'concurrency':>12}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'mean ms':>10}{'errors':>8}"
            print(head)
            print("-" * len(head))
            for c in (int(x) for x in args.levels.split(",")):
                elapsed, lat, errors = asyncio.run(level(srv.base_url, c, args.requests, args.stream))
                ms = [x * 1000 for x in lat]
                print(f"{c:>12}{len(lat) / elapsed:>10.0f}{percentile(ms, .5):>10.2f}{percentile(ms, .99):>10.2f}"
                      f"{statistics.mean(ms):>10.2f}{errors:>8}")


if __name__ == "__main__":
    main()
