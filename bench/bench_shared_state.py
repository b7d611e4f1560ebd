"""What the Redis shared state costs per request, next to the in-process defaults (no HTTP around it).

    python bench/bench_shared_state.py                  # 2000 admissions, 20000 ledger records
    python bench/bench_shared_state.py --records 100000

Starts a real `redis-server` on a free loopback port (nothing saved). Prints: the per-key limit check
(in-process vs one Lua script in Redis), storing and reading a Responses API entry (in-process vs Redis),
the usage ledger's write throughput (SQLite file vs Redis, both through the same bounded queue and batches)
and the read latency of rows and grouped totals over the records written.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent / "tests"))
from helpers import free_port  # noqa: E402
from redis_fixture import start_redis  # noqa: E402

from lollms_server.api.models import InputData  # noqa: E402
from lollms_server.api.openai_compat.responses_store import MemoryResponseStore, StoredResponse  # noqa: E402
from lollms_server.api.openai_compat.responses_store_redis import RedisResponseStore  # noqa: E402
from lollms_server.core.apikeys import ApiKey  # noqa: E402
from lollms_server.core.limits import MemoryKeyLimiter  # noqa: E402
from lollms_server.core.limits_redis import RedisKeyLimiter  # noqa: E402
from lollms_server.core.usage import UsageQuery, UsageRecord  # noqa: E402
from lollms_server.core.usage_redis import RedisUsageLedger  # noqa: E402
from lollms_server.core.usage_sqlite import SqliteUsageLedger  # noqa: E402


async def timed(n: int, fn: Callable[[int], Awaitable[Any]]) -> str:
    samples = []
    for i in range(n):
        t = time.perf_counter()
        await fn(i)
        samples.append((time.perf_counter() - t) * 1e6)
    samples.sort()
    return f"p50 {statistics.median(samples):8.1f} µs   p99 {samples[int(len(samples) * 0.99) - 1]:8.1f} µs"


def records(n: int) -> list[UsageRecord]:
    rng, now = random.Random(1), time.time()
    return [UsageRecord(request_id=f"r{i}", ts=now - rng.uniform(0, 3 * 86400), surface="api", generation_type="ttt",
                        key_id=f"key-{i % 5}", key_name=f"user{i % 5}", binding="b", model=f"m{i % 3}",
                        prompt_tokens=rng.randint(1, 200), completion_tokens=rng.randint(1, 400), duration_ms=rng.uniform(5, 900))
            for i in range(n)]


async def ledger_figures(name: str, ledger: Any, recs: list[UsageRecord]) -> None:
    await ledger.start()
    t = time.perf_counter()
    for r in recs:
        ledger.record(r)
    await ledger.rows(UsageQuery(limit=1))  # waits until the queue is written
    while ledger.queued:
        await asyncio.sleep(0.05)
    written = time.perf_counter() - t
    t = time.perf_counter()
    await ledger.rows(UsageQuery(limit=1000))
    rows = time.perf_counter() - t
    t = time.perf_counter()
    await ledger.totals(UsageQuery(since=time.time() - 2 * 86400 - 1234.5), ["day", "key"])
    totals = time.perf_counter() - t
    await ledger.close()
    print(f"  {name:7s} write {len(recs) / written:9.0f} records/s   rows(1000) {rows * 1000:7.1f} ms   "
          f"totals day,key over 2 days {totals * 1000:7.1f} ms   dropped {ledger.dropped}")


async def main(args: argparse.Namespace) -> None:
    port = free_port()
    proc = start_redis(port)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        key = ApiKey(key="k" * 16, id="key-bench", name="bench", requests_per_minute=10**9, tokens_per_day=10**12)
        print(f"per-key limit check ({args.admissions} admissions):")
        memory, shared = MemoryKeyLimiter(), RedisKeyLimiter(url, prefix="bench:limits")
        print("  memory ", await timed(args.admissions, lambda i: memory.admit(key)))
        print("  redis  ", await timed(args.admissions, lambda i: shared.admit(key)))
        await shared.close()
        entry = StoredResponse("resp_x", tuple(InputData(type="text", role="user_prompt", data="word " * 50) for _ in range(6)),
                               None, {"id": "resp_x", "output": []}, "key-bench")
        print(f"stored response put + get ({args.admissions}):")
        for name, store in (("memory", MemoryResponseStore()), ("redis", RedisResponseStore(url, prefix="bench:responses"))):
            async def put_get(i: int, store: Any = store) -> None:
                await store.put(StoredResponse(f"resp_{i}", entry.conversation, None, entry.response, entry.owner))
                await store.get(f"resp_{i}", "key-bench")
            print(f"  {name:7s}", await timed(args.admissions, put_get))
            await store.close()
        recs = records(args.records)
        print(f"usage ledger ({args.records} records over 3 days, queue {args.records + 1}):")
        with tempfile.TemporaryDirectory() as d:
            await ledger_figures("sqlite", SqliteUsageLedger(Path(d) / "u.sqlite", max_queue=args.records + 1), recs)
        await ledger_figures("redis", RedisUsageLedger(url, max_queue=args.records + 1, prefix="bench:usage",
                                                       max_records=args.records), recs)
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--admissions", type=int, default=2000)
    parser.add_argument("--records", type=int, default=20000)
    asyncio.run(main(parser.parse_args()))
