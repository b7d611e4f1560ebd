"""What a durable job costs over a direct stream: /api/v1/jobs + its events against /api/v1/generate (stream).

    python bench/bench_jobs.py                  # 60 requests per case, 3 rounds
    python bench/bench_jobs.py --requests 200 --words 50

One real lollms-server per mode on 127.0.0.1 with a ``dummy_binding`` instance (no delay: the binding costs
nothing, what is measured is the server's own path): in-process jobs (no Redis), and jobs on a real
``redis-server`` (started here on a free port; the replica runs its jobs itself). Per request, sequential:
``generate``: POST /api/v1/generate stream=true until the final event; ``job``: POST /api/v1/jobs (202), then
GET its events until the final event. Prints the median and p90 of the total time, of the 202 alone, and
the extra time a job adds over a direct stream. Cases run interleaved, round after round (the machine may
be shared): compare the medians, not single runs.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
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
from helpers import API_KEY, ServerProcess, free_port, write_config  # noqa: E402


def _config(d: Path, redis_url: str | None) -> Path:
    main: dict[str, dict[str, Any]] = {"usage": {"enabled": False}}
    if redis_url:
        main["resource_manager"] = {"backend": "redis", "redis_url": redis_url, "gpu_strategy": "none"}
    write_config(d, {"echo": ("dummy_binding", {})}, main=main)
    return d


def _body(words: int) -> dict[str, Any]:
    return {"input_data": [{"type": "text", "role": "user_prompt", "data": " ".join(f"w{i}" for i in range(words))}]}


async def _until_final(response: httpx.Response) -> int:
    events = 0
    async for line in response.aiter_lines():
        if line.startswith("data:"):
            events += 1
            if '"type":"final"' in line:
                return events
    raise RuntimeError("the stream ended without a final event")


async def generate_once(c: httpx.AsyncClient, body: dict[str, Any]) -> tuple[float, float]:
    t0 = time.perf_counter()
    async with c.stream("POST", "/api/v1/generate", json={**body, "stream": True}) as r:
        assert r.status_code == 200, await r.aread()
        await _until_final(r)
    return time.perf_counter() - t0, 0.0


async def job_once(c: httpx.AsyncClient, body: dict[str, Any]) -> tuple[float, float]:
    t0 = time.perf_counter()
    created = await c.post("/api/v1/jobs", json=body)
    accepted = time.perf_counter() - t0
    assert created.status_code == 202, created.text
    async with c.stream("GET", created.json()["events_url"]) as r:
        assert r.status_code == 200
        await _until_final(r)
    return time.perf_counter() - t0, accepted


def _ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(servers: dict[str, ServerProcess], requests: int, rounds: int, words: int) -> None:
    body = _body(words)
    totals: dict[str, list[float]] = {}
    accepts: dict[str, list[float]] = {}
    for _ in range(rounds):
        for mode, server in servers.items():
            async with httpx.AsyncClient(base_url=server.base_url, headers={"X-API-Key": API_KEY}, timeout=60) as c:
                for case, once in (("generate", generate_once), ("job", job_once)):
                    await once(c, body)  # warm-up
                    for _ in range(requests):
                        total, accepted = await once(c, body)
                        totals.setdefault(f"{mode}/{case}", []).append(total)
                        accepts.setdefault(f"{mode}/{case}", []).append(accepted)
    print(f"{requests} sequential requests x {rounds} rounds, {words} words streamed each (dummy binding)")
    print(f"{'case':<20} {'total p50 ms':>13} {'p90 ms':>8} {'202 p50 ms':>11}")
    for case, values in totals.items():
        accepted = f"{_ms(accepts[case], 0.5):11.2f}" if case.endswith("/job") else f"{'':>11}"
        print(f"{case:<20} {_ms(values, 0.5):13.2f} {_ms(values, 0.9):8.2f} {accepted}")
    for mode in servers:
        extra = statistics.median(totals[f"{mode}/job"]) - statistics.median(totals[f"{mode}/generate"])
        print(f"{mode}: a job adds {1000 * extra:.2f} ms (median) over a direct stream")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--words", type=int, default=20)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-jobs-"))
    redis: subprocess.Popen[bytes] | None = None
    servers: dict[str, ServerProcess] = {}
    try:
        servers["memory"] = ServerProcess(_config(work / "memory", None))
        if shutil.which("redis-server"):
            port = free_port()
            redis = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            servers["redis"] = ServerProcess(_config(work / "redis", f"redis://127.0.0.1:{port}/0"))
        else:
            print("redis-server not found: in-process jobs only")
        for s in servers.values():
            s.start()
        asyncio.run(run(servers, args.requests, args.rounds, args.words))
    finally:
        for s in servers.values():
            s.stop()
        if redis is not None:
            redis.terminate()
            redis.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
