"""Durable jobs: a generation that runs apart from the request that asked for it.

A job is created from a ``GenerateRequest`` (planned first, so a bad body is refused before a job exists),
waits in a queue, is run by a ``JobRunner`` through the same pipeline as ``/api/v1/generate``, and writes
every StreamChunk it produces to the job's event log, which any number of followers read and resume.

The state lives in a ``JobStore``: ``MemoryJobStore`` (this process, the default) or ``RedisJobStore``
(``resource_manager.backend: redis``: shared by every replica and ``lollms-server worker``). ``JobService`` is
what the routes use: ownership (a job is visible only to the API key that created it) and cancellation.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, AsyncIterator, Literal, Protocol

from lollms_server.core.contract import OutputData, StreamChunk, chunk_json
from lollms_server.core.errors import BadRequestError, NotFoundError, UnavailableError
from lollms_server.core.resources import RETRY_AFTER_SECONDS

if TYPE_CHECKING:
    from lollms_server.core.generation import GenerationPlan
    from lollms_server.core.job_runner import JobRunner

JobState = Literal["queued", "running", "succeeded", "failed", "cancelled"]
TERMINAL: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})
LIST_LIMIT = 50  # jobs GET /api/v1/jobs shows per key (the most recent)
CANCEL_WAIT_SECONDS = 1.5  # how long DELETE waits for the runner to stop the generation before it ends the job itself
_JOB_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class JobSettings:
    """The ``jobs`` section of the main configuration (see config_schema for each setting's meaning)."""

    result_ttl_s: int = 3600
    max_queued: int = 256
    max_events: int = 20000
    max_kept: int = 1000
    run_locally: bool = True
    concurrency: int = 4
    max_attempts: int = 3
    claim_idle_s: int = 30
    stop_grace_s: int = 10

    @classmethod
    def from_section(cls, section: dict[str, Any]) -> "JobSettings":
        known = cls.__dataclass_fields__
        return cls(**{k: type(getattr(cls, k))(v) for k, v in section.items() if k in known and v is not None})


@dataclass
class JobRecord:
    """One job as the API shows it (``public``), plus its owner (an API key id; "" when authentication is off)."""

    job_id: str
    owner: str
    state: JobState
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    attempts: int = 0
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None

    @property
    def done(self) -> bool:
        return self.state in TERMINAL

    def public(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id, "state": self.state, "created_at": self.created_at, "started_at": self.started_at,
            "finished_at": self.finished_at, "attempts": self.attempts, "result": self.result, "error": self.error,
        }


@dataclass
class JobTicket:
    """A job a runner claimed: what to run, and (in-process store) the plan made when it was created."""

    job_id: str
    owner: str
    request: dict[str, Any]
    request_id: str
    resumed: bool = False  # taken over from a runner that stopped (Redis)
    entry: str = ""  # the queue entry (Redis stream id) to keep claimed and acknowledge
    consumer: str = ""  # the runner that claimed it
    plan: "GenerationPlan | None" = None
    credentials: dict[str, str] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class JobEnd:
    """How a job ended: its state, result or error, and the events that close its log (an error and/or the final)."""

    state: JobState
    result: dict[str, Any] | None
    error: dict[str, Any] | None
    events: list[StreamChunk]

    def events_json(self) -> list[tuple[str, str]]:
        return [(e.type, chunk_json(e)) for e in self.events]


class JobQueueFullError(UnavailableError):
    def __init__(self, max_queued: int) -> None:
        super().__init__(f"{max_queued} jobs already wait to start (jobs.max_queued); retry in {RETRY_AFTER_SECONDS}s")
        self.headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}


def new_job_id() -> str:
    return uuid.uuid4().hex


def ended_with_error(state: JobState, message: str, kind: str, *, status_code: int = 500,
                     partial: list[OutputData] | None = None) -> JobEnd:
    """A job that did not succeed: an ``error`` event, then a ``final`` whose content ends with the error output."""
    meta: dict[str, Any] = {"status_code": status_code, "job_state": state}
    outputs = list(partial or []) + [OutputData(type="error", data=message, metadata={"finish_reason": state})]
    return JobEnd(
        state, None, {"message": message, "type": kind, "status_code": status_code},
        [StreamChunk(type="error", content=message, metadata=meta),
         StreamChunk(type="final", content=[o.model_dump() for o in outputs], metadata={"job_state": state})],
    )


class JobStore(Protocol):
    """Where jobs, their queue and their event logs live. Every state change is atomic."""

    backend: str

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def problem(self) -> str | None:
        """Why the store cannot serve now (for readiness), or None."""
        ...

    # ---- API side ----
    async def create(self, owner: str, request: dict[str, Any], request_id: str, *, plan: "GenerationPlan | None" = None,
                     credentials: dict[str, str] | None = None) -> JobRecord:
        """Queue a new job; JobQueueFullError when ``jobs.max_queued`` jobs already wait."""
        ...

    async def get(self, job_id: str) -> JobRecord | None: ...

    async def recent(self, owner: str, limit: int) -> list[JobRecord]: ...

    async def request_cancel(self, job_id: str) -> None:
        """Ask whoever runs the job to stop it."""
        ...

    def valid_event_id(self, event_id: str) -> bool: ...

    def events(self, job_id: str, after: str | None) -> AsyncIterator[tuple[str, str]]:
        """(event id, StreamChunk JSON) strictly after ``after`` (from the start when None), waiting for new ones,
        until the ``final`` event (or until the job is gone)."""
        ...

    # ---- runner side ----
    async def claim(self, consumer: str, wait: float) -> JobTicket | None:
        """The next job to run (a queued one, or one whose runner died), or None after ``wait`` seconds."""
        ...

    async def begin(self, job_id: str) -> JobRecord | None:
        """Mark it running and count the attempt; None when it is gone, already ended or cancelled."""
        ...

    async def append(self, job_id: str, chunk_type: str, data: str) -> str: ...

    async def finish(self, job_id: str, end: JobEnd) -> bool:
        """End the job (state, result, closing events) atomically, unless it already ended; True when this ended it."""
        ...

    async def cancel_requested(self, job_id: str) -> bool: ...

    async def keep_claim(self, ticket: JobTicket) -> bool:
        """Tell the others this runner still works on ``ticket`` (Redis: resets the claim's idle time); False
        when another runner took the job over meanwhile (this one then stops working on it)."""
        ...

    async def release(self, ticket: JobTicket) -> None:
        """The runner is done with ``ticket`` (Redis: acknowledge and drop the queue entry)."""
        ...

    async def leave(self, consumer: str) -> None:
        """A runner that stopped cleanly (nothing claimed any more) leaves the shared queue's list of runners."""
        ...

    async def requeue(self, ticket: JobTicket, note: str) -> None:
        """Put a job this process can no longer run back in the queue (in-process: it cannot, so it fails)."""
        ...


class JobService:
    """What the routes use: create, read, follow and cancel the caller's jobs."""

    def __init__(self, store: JobStore, settings: JobSettings, runner: "JobRunner | None" = None) -> None:
        self.store = store
        self.settings = settings
        self.runner = runner

    @property
    def backend(self) -> str:
        return self.store.backend

    async def start(self) -> None:
        await self.store.start()
        if self.runner is not None:
            await self.runner.start()

    async def close(self) -> None:
        try:
            if self.runner is not None:  # in process, nothing outlives the process: waiting would only delay the stop
                await self.runner.stop(self.settings.stop_grace_s if self.store.backend != "memory" else 0)
        finally:
            await self.store.close()

    async def submit(self, owner: str, request: dict[str, Any], request_id: str, *,
                     plan: "GenerationPlan | None" = None, credentials: dict[str, str] | None = None) -> JobRecord:
        return await self.store.create(owner, request, request_id, plan=plan, credentials=credentials)

    async def get(self, job_id: str, owner: str) -> JobRecord:
        """The job, or 404 when it does not exist or belongs to another key."""
        record = await self.store.get(job_id) if _JOB_ID.match(job_id or "") else None
        if record is None or record.owner != owner:
            raise NotFoundError(f"job '{job_id[:40]}' not found (unknown, expired after jobs.result_ttl_s, or "
                                "created with another API key)")
        return record

    async def recent(self, owner: str, limit: int = LIST_LIMIT) -> list[JobRecord]:
        return await self.store.recent(owner, limit)

    async def cancel(self, job_id: str, owner: str) -> JobRecord:
        """Stop the job wherever it runs; it ends ``cancelled`` unless it had already ended."""
        record = await self.get(job_id, owner)
        if record.done:
            return record
        await self.store.request_cancel(job_id)
        if record.state == "running":  # its runner stops the generation and closes the log itself (partial output)
            deadline = time.monotonic() + CANCEL_WAIT_SECONDS
            while time.monotonic() < deadline:
                await asyncio.sleep(0.05)
                current = await self.store.get(job_id)
                if current is None or current.done:
                    return current or record
        # queued, or a runner that does not answer: end it here (a runner that comes later finds it ended)
        await self.store.finish(job_id, ended_with_error("cancelled", "the job was cancelled", "cancelled", status_code=499))
        return await self.store.get(job_id) or record

    def check_event_id(self, event_id: str | None) -> str | None:
        if event_id is None or event_id == "":
            return None
        if not self.store.valid_event_id(event_id):
            raise BadRequestError("Last-Event-ID (or last_event_id) must be the id of an event of this job's stream")
        return event_id

    def events(self, job_id: str, after: str | None) -> AsyncIterator[tuple[str, str]]:
        return self.store.events(job_id, after)
