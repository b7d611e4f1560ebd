"""The in-process job store under followers that go away while they wait (a client disconnecting mid-stream).

A follower cancelled at the moment its wait times out once left the job's shared wake-up lock in a wrong
state, and the next follower's stream broke off ("cannot wait on un-acquired lock", an incomplete chunked
body for the client), and a cancel arriving as the wake-up came was swallowed (asyncio.wait_for before
Python 3.12), so the follower ran on. Many followers are cancelled here at random moments while one reads
every event.
"""

from __future__ import annotations

import asyncio
import random

import pytest

from lollms_server.core import jobs_memory
from lollms_server.core.jobs import JobSettings, ended_with_error
from lollms_server.core.jobs_memory import MemoryJobStore


async def test_followers_cancelled_while_waiting_never_break_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs_memory, "FOLLOW_POLL_SECONDS", 0.001)  # waits time out all the time
    store = MemoryJobStore(JobSettings())
    record = await store.create("owner", {"input_data": []}, "req-1")
    rng = random.Random(7)

    async def follow() -> list[str]:
        return [event_id async for event_id, _ in store.events(record.job_id, None)]

    async def quitter() -> None:
        task = asyncio.create_task(follow())
        await asyncio.sleep(rng.uniform(0, 0.004))
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    reader = asyncio.create_task(follow())
    quitters: list[asyncio.Task[None]] = []
    for i in range(60):
        quitters += [asyncio.create_task(quitter()) for _ in range(5)]
        await asyncio.sleep(rng.uniform(0, 0.003))
        await store.append(record.job_id, "chunk", f'{{"n": {i}}}')
    # each follower stops when cancelled (a swallowed cancel would keep it running until the job ends)
    await asyncio.wait_for(asyncio.gather(*quitters), 5)
    assert await store.finish(record.job_id, ended_with_error("cancelled", "stopped", "cancelled"))
    got = await asyncio.wait_for(reader, 10)
    assert got[:60] == [str(n) for n in range(1, 61)] and len(got) > 60, got
