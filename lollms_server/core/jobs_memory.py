"""``JobStore`` in this process: needs no other service; jobs end with the process.

Bounded: ``jobs.max_queued`` jobs may wait, ``jobs.max_kept`` jobs are kept (the oldest finished ones are
dropped first), ``jobs.max_events`` events per job, and a finished job is dropped ``jobs.result_ttl_s`` after
it ended. Event ids are decimal counters, increasing per job.
"""

from __future__ import annotations

import asyncio
import collections
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, AsyncIterator

from lollms_server.core.jobs import (
    JobEnd,
    JobQueueFullError,
    JobRecord,
    JobSettings,
    JobTicket,
    ended_with_error,
    new_job_id,
)

from lollms_server.core.wakeups import wait_set

if TYPE_CHECKING:
    from lollms_server.core.generation import GenerationPlan

FOLLOW_POLL_SECONDS = 5.0  # a follower re-checks that its job still exists at least this often


@dataclass
class _Job:
    record: JobRecord
    request: dict[str, Any]
    request_id: str
    plan: "GenerationPlan | None"
    credentials: dict[str, str] | None
    events: collections.deque[tuple[int, str, str]]
    next_event: int = 1
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    # set (then replaced by a fresh one) on every new event or end; an Event, not a Condition: a follower
    # cancelled while waiting (its client went away) cannot leave a shared lock in a wrong state
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def notify(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()


class MemoryJobStore:
    backend = "memory"

    def __init__(self, settings: JobSettings) -> None:
        self.settings = settings
        self._jobs: collections.OrderedDict[str, _Job] = collections.OrderedDict()
        self._queue: asyncio.Queue[str] = asyncio.Queue()

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        for job in list(self._jobs.values()):  # wake followers: their job is gone
            job.notify()
        self._jobs.clear()

    async def problem(self) -> str | None:
        return None

    def _prune(self) -> None:
        now = time.time()
        expired = [j for j, job in self._jobs.items()
                   if job.record.done and (job.record.finished_at or now) + self.settings.result_ttl_s <= now]
        for job_id in expired:
            del self._jobs[job_id]
        over = len(self._jobs) - self.settings.max_kept
        if over > 0:
            for job_id in [j for j, job in self._jobs.items() if job.record.done][:over]:
                del self._jobs[job_id]

    async def create(self, owner: str, request: dict[str, Any], request_id: str, *, plan: "GenerationPlan | None" = None,
                     credentials: dict[str, str] | None = None) -> JobRecord:
        self._prune()
        if sum(1 for job in self._jobs.values() if job.record.state == "queued") >= self.settings.max_queued:
            raise JobQueueFullError(self.settings.max_queued)
        record = JobRecord(new_job_id(), owner, "queued", time.time())
        self._jobs[record.job_id] = _Job(record, request, request_id, plan, credentials,
                                         collections.deque(maxlen=self.settings.max_events))
        self._queue.put_nowait(record.job_id)
        return _copy(record)

    async def get(self, job_id: str) -> JobRecord | None:
        self._prune()
        job = self._jobs.get(job_id)
        return _copy(job.record) if job else None

    async def recent(self, owner: str, limit: int) -> list[JobRecord]:
        self._prune()
        mine = [_copy(job.record) for job in reversed(self._jobs.values()) if job.record.owner == owner]
        return mine[:limit]

    async def request_cancel(self, job_id: str) -> None:
        job = self._jobs.get(job_id)
        if job is not None:
            job.cancel.set()

    def valid_event_id(self, event_id: str) -> bool:
        return event_id.isdigit() and len(event_id) <= 18

    async def events(self, job_id: str, after: str | None) -> AsyncIterator[tuple[str, str]]:
        cursor = int(after) if after else 0
        while True:
            job = self._jobs.get(job_id)
            if job is None:
                return
            changed = job.changed  # taken before looking: an event added after the look sets it
            fresh = [e for e in job.events if e[0] > cursor]
            if not fresh and not job.record.done:
                await wait_set(changed, FOLLOW_POLL_SECONDS)
                continue
            for number, chunk_type, data in fresh:
                yield str(number), data
                cursor = number
                if chunk_type == "final":
                    return
            if not fresh and job.record.done:  # ended, and its final event was dropped (max_events): nothing more
                return

    # ---- runner side ----
    async def claim(self, consumer: str, wait: float) -> JobTicket | None:
        try:
            job_id = await asyncio.wait_for(self._queue.get(), wait)
        except asyncio.TimeoutError:
            return None
        job = self._jobs.get(job_id)
        if job is None:
            return None
        plan, creds = job.plan, job.credentials
        job.plan = job.credentials = None  # the runner holds them now; nothing keeps the request's key around
        return JobTicket(job_id, job.record.owner, job.request, job.request_id, plan=plan, credentials=creds)

    async def begin(self, job_id: str) -> JobRecord | None:
        job = self._jobs.get(job_id)
        if job is None or job.record.done or job.cancel.is_set():
            return None
        job.record.state = "running"
        job.record.attempts += 1
        job.record.started_at = time.time()
        return _copy(job.record)

    async def _add(self, job: _Job, chunk_type: str, data: str) -> str:
        number = job.next_event
        job.next_event += 1
        job.events.append((number, chunk_type, data))
        return str(number)

    async def append(self, job_id: str, chunk_type: str, data: str) -> str:
        job = self._jobs.get(job_id)
        if job is None:
            return ""
        number = await self._add(job, chunk_type, data)
        job.notify()
        return number

    async def finish(self, job_id: str, end: JobEnd) -> bool:
        job = self._jobs.get(job_id)
        if job is None or job.record.done:
            return False
        for chunk_type, data in end.events_json():
            await self._add(job, chunk_type, data)
        job.record.state = end.state
        job.record.result, job.record.error = end.result, end.error
        job.record.finished_at = time.time()
        job.plan = job.credentials = None
        job.notify()
        return True

    async def cancel_requested(self, job_id: str) -> bool:
        job = self._jobs.get(job_id)
        return job is None or job.cancel.is_set() or job.record.done

    async def keep_claim(self, ticket: JobTicket) -> bool:
        return True

    async def release(self, ticket: JobTicket) -> None:
        return None

    async def leave(self, consumer: str) -> None:
        return None

    async def requeue(self, ticket: JobTicket, note: str) -> None:
        """Nothing outlives this process: the job fails, saying why."""
        await self.finish(ticket.job_id, ended_with_error("failed", note, "server_stopped", status_code=503))


def _copy(record: JobRecord) -> JobRecord:
    return JobRecord(**record.__dict__)
