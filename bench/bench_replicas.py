"""Replicas and Redis: the same load against 1 replica (memory slots), 1 replica (Redis slots), 1 replica behind
HAProxy and 2 replicas behind HAProxy (Redis slots, the recipe of deploy/haproxy.cfg).

    python bench/bench_replicas.py                         # 400 requests per case, concurrency 1 and 8
    python bench/bench_replicas.py --requests 40 --rounds 1  # a smoke run

Two loads, both through the compute slots (dummy_binding, requires_gpu):
- plain: no delay, so the figures are the gateway's own cost (and Redis' round trips);
- slot: a fixed DELAY per generation with gpu_limit GPU_LIMIT for the whole cluster, so throughput is bounded
  by gpu_limit / delay however many replicas there are.
Prints requests/s, p50/p95 latency, the Redis round trips each request cost (Redis' own command counters: script
calls and pings, including the readiness checks), and the
latency Redis adds per request (Redis slots minus memory slots, one replica, same load). Rounds interleave the
topologies so a noisy neighbour hurts them alike; each figure is the median over rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from haproxy_fixture import HAProxy  # noqa: E402
from helpers import API_KEY, ServerProcess, free_port, write_config  # noqa: E402
from redis_fixture import start_redis  # noqa: E402
from loadgen import LoadResult, httpx_load, percentile  # noqa: E402

DELAY = 0.02
GPU_LIMIT = 2
TOPOLOGIES = ("1 replica, memory", "1 replica, redis", "1 replica + haproxy", "2 replicas + haproxy")


@dataclass
class Result:
    rps: float
    p50: float
    p95: float
    errors: int
    redis_cmds: float | None


# sent by the replicas (script calls, pipelines, pings), not the commands the scripts run inside Redis
ROUND_TRIPS = ("cmdstat_evalsha", "cmdstat_eval", "cmdstat_exec", "cmdstat_ping", "cmdstat_script|load")


def redis_calls(port: int) -> int:
    """Commands the clients sent (Redis' commandstats also count the commands run inside the Lua scripts)."""
    with redis.Redis(host="127.0.0.1", port=port) as r:
        stats = r.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if k in ROUND_TRIPS)


async def run_load(base_url: str, binding: str, concurrency: int, total: int) -> LoadResult:
    body = {"input_data": [{"type": "text", "role": "user_prompt", "data": "hello replicas"}], "binding_name": binding}
    return await httpx_load(base_url, "/api/v1/generate", body, {"X-API-Key": API_KEY}, total, concurrency,
                            warm_up=min(10, total), timeout=60)


def measure(base_url: str, binding: str, concurrency: int, total: int, redis_port: int | None) -> Result:
    before = redis_calls(redis_port) if redis_port else 0
    elapsed, lat, errors = asyncio.run(run_load(base_url, binding, concurrency, total))
    cmds = None
    if redis_port:
        warmup = min(10, total)
        cmds = (redis_calls(redis_port) - before) / (total + warmup)
    ms = [x * 1000 for x in lat]
    return Result(len(lat) / elapsed, percentile(ms, .5), percentile(ms, .95), errors, cmds)


async def slot_cost(url: str, n: int) -> dict[str, list[float]]:
    """Take and give back a free slot ``n`` times in this process: memory store vs Redis store (µs each)."""
    from lollms_server.core.redis_slots import RedisSlotStore
    from lollms_server.core.resources import MemorySlotStore, SlotStore

    stores: dict[str, SlotStore] = {"memory": MemorySlotStore(GPU_LIMIT, 512),
                                    "redis": RedisSlotStore(url, GPU_LIMIT, 512, 10, prefix="bench:slots")}
    out: dict[str, list[float]] = {}
    for name, store in stores.items():
        await store.start()
        times: list[float] = []
        for i in range(n + 50):
            t0 = time.perf_counter()
            assert await store.acquire(f"h{i}", 10) == "granted"
            await store.release(f"h{i}")
            if i >= 50:  # warm-up: connection, scripts loaded
                times.append((time.perf_counter() - t0) * 1e6)
        await store.close()
        out[name] = times
    return out


@contextlib.contextmanager
def topology(name: str, tmp: Path, redis_url: str) -> Iterator[str]:
    """Start the processes of ``name``; yield the URL the load goes to."""
    backend = "memory" if "memory" in name else "redis"
    cfg = tmp / name.replace(" ", "_").replace(",", "").replace("+", "")
    write_config(cfg, {"plain": ("dummy_binding", {"requires_gpu": True}),
                       "slot": ("dummy_binding", {"requires_gpu": True, "delay": DELAY})},
                 main={"logging": {"log_level": "WARNING", "level": 30},
                       "resource_manager": {"backend": backend, "gpu_limit": GPU_LIMIT, "max_queue": 512,
                                            "queue_timeout": 60, "redis_url": redis_url if backend == "redis" else None}})
    replicas = [ServerProcess(cfg) for _ in range(2 if name.startswith("2") else 1)]
    lb: HAProxy | None = None
    try:
        for r in replicas:
            r.env.pop("LOLLMS_REDIS_URL", None)
            r.start()
        if "haproxy" in name:
            addresses = [f"127.0.0.1:{r.port}" for r in replicas]
            lb = HAProxy(addresses * (2 // len(addresses)), cfg / "haproxy.log", check_inter="2s").start()
            yield lb.base_url
        else:
            yield replicas[0].base_url
    finally:
        if lb is not None:
            lb.stop()
        for r in replicas:
            r.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=400, help="requests per case and round")
    ap.add_argument("--levels", default="1,8", help="client concurrency levels")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    results: dict[tuple[str, str, int], list[Result]] = {}
    port = free_port()
    redis_proc = start_redis(port)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        costs = asyncio.run(slot_cost(url, max(200, args.requests)))
        with redis.Redis(host="127.0.0.1", port=port) as r:
            r.config_resetstat()
        with tempfile.TemporaryDirectory(prefix="lollms-replicas-") as tmp:
            for rnd in range(args.rounds):
                for name in TOPOLOGIES:
                    with topology(name, Path(tmp) / f"r{rnd}", url) as base:
                        for load in ("plain", "slot"):
                            for c in levels:
                                res = measure(base, load, c, args.requests, None if "memory" in name else port)
                                results.setdefault((name, load, c), []).append(res)
                print(f"round {rnd + 1}/{args.rounds} done", file=sys.stderr, flush=True)
        with redis.Redis(host="127.0.0.1", port=port) as r:
            scripts = r.info("commandstats").get("cmdstat_evalsha", {})
    finally:
        redis_proc.terminate()
        redis_proc.wait()
    report(results, levels, args)
    print(f"\nRedis' own CPU per script call (commandstats, every replica's scripts): "
          f"{float(scripts.get('usec_per_call', 0)):.1f} µs over {int(scripts.get('calls', 0))} calls")
    print("\nA free slot taken and given back in-process (no HTTP), µs:")
    for name, times in costs.items():
        print(f"  {name:<7} p50 {percentile(times, .5):8.0f}   p95 {percentile(times, .95):8.0f}")
    extra = [percentile(costs['redis'], q) - percentile(costs['memory'], q) for q in (.5, .95)]
    print(f"  Redis adds {extra[0] / 1000:.2f} ms (p50), {extra[1] / 1000:.2f} ms (p95) per request for its slot")


def report(results: dict[tuple[str, str, int], list[Result]], levels: list[int], args: argparse.Namespace) -> None:
    med = statistics.median
    print(f"\n{args.requests} requests per case, {args.rounds} round(s), medians; plain = dummy, no delay; "
          f"slot = {DELAY * 1000:.0f} ms per generation, gpu_limit {GPU_LIMIT} for the cluster "
          f"(ceiling {GPU_LIMIT / DELAY:.0f} req/s)")
    head = f"{'topology':<22}{'load':<7}{'conc':>5}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'redis trips/req':>17}{'errors':>8}"
    print(head)
    print("-" * len(head))
    for (name, load, c), rs in results.items():
        cmds = [r.redis_cmds for r in rs if r.redis_cmds is not None]
        print(f"{name:<22}{load:<7}{c:>5}{med(r.rps for r in rs):>9.0f}{med(r.p50 for r in rs):>9.2f}"
              f"{med(r.p95 for r in rs):>9.2f}{(f'{med(cmds):.2f}' if cmds else '-'):>17}{sum(r.errors for r in rs):>8}")
    print()
    for load in ("plain", "slot"):
        for c in levels:
            mem, red = results[(TOPOLOGIES[0], load, c)], results[(TOPOLOGIES[1], load, c)]
            print(f"Redis adds ({load}, concurrency {c}): p50 {med(r.p50 for r in red) - med(r.p50 for r in mem):+.2f} ms, "
                  f"p95 {med(r.p95 for r in red) - med(r.p95 for r in mem):+.2f} ms per request")


if __name__ == "__main__":
    main()
