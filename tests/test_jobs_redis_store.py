"""The Redis job store's guarantees, in process against a real `redis-server`: a job whose runners keep dying
is marked failed after jobs.max_attempts starts (never silently lost, never retried forever), a job ends
exactly once (one final event), and the waiting-job bound holds."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from lollms_server.core.contract import StreamChunk
from lollms_server.core.job_runner import JobRunner
from lollms_server.core.jobs import JobEnd, JobQueueFullError, JobSettings, ended_with_error
from lollms_server.core.jobs_redis import RedisJobStore
from redis_fixture import RedisServer, redis_server_fixture  # noqa: F401  (the `redis_server` fixture)


def _store(redis_server: RedisServer, **settings: Any) -> RedisJobStore:
    redis_server.flush()
    return RedisJobStore(redis_server.url, JobSettings(**settings), prefix="test:jobs")


async def _events(store: RedisJobStore, job_id: str) -> list[dict[str, Any]]:
    import json

    return [json.loads(data) async for _id, data in store.events(job_id, None)]


async def test_a_job_whose_runners_keep_dying_ends_failed_after_max_attempts(redis_server: RedisServer) -> None:
    store = _store(redis_server, claim_idle_s=1, max_attempts=2)
    await store.start()
    try:
        record = await store.create("alice", {"input_data": []}, "req-1")
        for dead in ("dead-1", "dead-2"):  # each takes the job, starts it, and dies (never renews its claim)
            ticket = None
            for _ in range(40):
                ticket = await store.claim(dead, 0.1)
                if ticket is not None:
                    break
                await asyncio.sleep(0.1)
            assert ticket is not None and ticket.job_id == record.job_id
            assert ticket.resumed == (dead == "dead-2")
            assert (await store.begin(record.job_id)) is not None
        runner = JobRunner(store, cast(Any, None), store.settings, name="survivor")  # fails it before planning
        await runner.start()
        try:
            for _ in range(60):
                job = await store.get(record.job_id)
                assert job is not None
                if job.done:
                    break
                await asyncio.sleep(0.1)
        finally:
            await runner.stop(0)
        events = await _events(store, record.job_id)
    finally:
        await store.close()
    assert job.state == "failed" and job.attempts == 3, job
    assert job.error is not None and job.error["type"] == "runner_lost" and "jobs.max_attempts" in job.error["message"]
    assert [e["type"] for e in events] == ["error", "final"]


async def test_a_job_ends_exactly_once(redis_server: RedisServer) -> None:
    store = _store(redis_server)
    await store.start()
    try:
        record = await store.create("", {"input_data": []}, "req-2")
        ticket = await store.claim("r1", 1.0)
        assert ticket is not None and (await store.begin(record.job_id)) is not None
        await store.append(record.job_id, "chunk", StreamChunk(type="chunk", content="partial").model_dump_json())
        final = StreamChunk(type="final", content=[{"type": "text", "data": "partial"}])
        won = await store.finish(record.job_id, JobEnd("succeeded", {"output": []}, None, [final]))
        lost = await store.finish(record.job_id, ended_with_error("cancelled", "the job was cancelled", "cancelled"))
        assert (await store.begin(record.job_id)) is None  # an ended job never starts again
        await store.release(ticket)
        job = await store.get(record.job_id)
        events = await _events(store, record.job_id)
        assert (await store.claim("r2", 0.2)) is None  # nothing left in the queue
    finally:
        await store.close()
    assert won and not lost
    assert job is not None and job.state == "succeeded" and job.error is None
    assert [e["type"] for e in events] == ["chunk", "final"]


async def test_the_waiting_bound_counts_only_jobs_not_yet_taken(redis_server: RedisServer) -> None:
    store = _store(redis_server, max_queued=2)
    await store.start()
    try:
        first = await store.create("", {}, "a")
        await store.create("", {}, "b")
        with pytest.raises(JobQueueFullError) as full:
            await store.create("", {}, "c")
        assert full.value.status_code == 503 and full.value.headers == {"Retry-After": "5"}
        ticket = await store.claim("r1", 1.0)  # one is taken: one place frees
        assert ticket is not None and ticket.job_id == first.job_id
        await store.create("", {}, "d")
        with pytest.raises(JobQueueFullError):
            await store.create("", {}, "e")
    finally:
        await store.close()
