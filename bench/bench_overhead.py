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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from helpers import API_KEY, ServerProcess, write_config  # noqa: E402
from loadgen import LoadResult, httpx_load, percentile  # noqa: E402


async def level(base_url: str, concurrency: int, total: int, stream: bool) -> LoadResult:
    body = {"input_data": [{"type": "text", "role": "user_prompt", "data": "hello overhead benchmark"}], "stream": stream}
    return await httpx_load(base_url, "/api/v1/generate", body, {"X-API-Key": API_KEY}, total, concurrency,
                            warm_up=min(20, total), timeout=30)


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
