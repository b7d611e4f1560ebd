"""Load generation shared by the benchmarks: closed-loop request workers, backends taking turns, percentiles.

- ``closed_loop``: ``total`` requests sent by ``concurrency`` workers, each sending its next request as soon
  as its last one is answered (the loop of bench_overhead, bench_replicas, bench_gateway and bench_peers);
- ``httpx_load``: that loop posting one JSON body over an httpx client (keep-alive, one connection per worker);
- ``Turns``: backends measured back to back, the order rotating from one case to the next, so a slow phase
  of a shared machine hits them alike (bench_llamacpp, bench_batching);
- ``percentile``: linear interpolation between the closest ranks (NaN for no values).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

T = TypeVar("T")

LoadResult = tuple[float, list[float], int]  # (seconds of the measured load, latency of each request, failed requests)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


async def closed_loop(send: Callable[[], Awaitable[bool]], total: int, concurrency: int) -> LoadResult:
    """``send`` called ``total`` times by ``concurrency`` workers; it sends one request and says whether it
    succeeded."""
    latencies: list[float] = []
    errors = 0
    remaining = total

    async def worker() -> None:
        nonlocal remaining, errors
        while remaining > 0:
            remaining -= 1
            t0 = time.perf_counter()
            ok = await send()
            latencies.append(time.perf_counter() - t0)
            if not ok:
                errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies, errors


async def httpx_load(base_url: str, path: str, body: dict[str, Any], headers: dict[str, str], total: int,
                     concurrency: int, *, warm_up: int, timeout: float) -> LoadResult:
    """``total`` POSTs of ``body`` after ``warm_up`` unmeasured ones (connections open, code paths hot); a
    request fails unless it answers 200."""
    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, headers=headers, limits=limits, timeout=timeout) as client:
        for _ in range(warm_up):
            await client.post(path, json=body)

        async def send() -> bool:
            r = await client.post(path, json=body)
            return r.status_code == 200

        return await closed_loop(send, total, concurrency)


class Turns(Generic[T]):
    """Backends in turn: each ``next()`` gives all of them, starting one further than the call before."""

    def __init__(self, items: Sequence[T]) -> None:
        self.items = list(items)
        self.step = 0

    def next(self) -> list[T]:
        k = self.step % len(self.items)
        self.step += 1
        return self.items[k:] + self.items[:k]
