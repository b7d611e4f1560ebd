"""JobRunner: claims jobs from a ``JobStore`` and runs them through the generation pipeline.

``jobs.concurrency`` loops each run one job at a time: plan it (or use the plan made when it was created, in
process), stream it with ``GenerationService.stream`` (so personalities, filters, usage, limits and compute
slots apply exactly as for ``/api/v1/generate``), append every StreamChunk to the job's event log, and end the
job with its ``final`` event and result. While a job runs, the runner watches for a cancel request (the
generation is stopped through its cancel path) and keeps its claim alive so no other runner takes it over.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lollms_server.core.contract import GenerateRequest, GenerateResponse, OutputData, StreamChunk, chunk_json
from lollms_server.core.errors import LollmsError, NotFoundError
from lollms_server.core.jobs import JobEnd, JobSettings, JobStore, JobTicket, ended_with_error
from lollms_server.core.secrets import REDACTOR
from lollms_server.core.telemetry import Caller

if TYPE_CHECKING:
    from lollms_server.core.generation import GenerationPlan
    from lollms_server.core.services import Services

log = logging.getLogger("lollms_server.jobs")

CLAIM_WAIT_SECONDS = 1.0  # a loop blocked waiting for a job notices a stop request this fast
CANCEL_POLL_SECONDS = 0.2  # a cancel request stops the generation within about this long
STORE_RETRY_SECONDS = 1.0
SLOT_WAIT_SECONDS = 86400.0  # a job waits for its compute slot as long as it takes (not resource_manager.queue_timeout)


def consumer_name() -> str:
    """This process's name among the runners sharing a queue (host, pid and a random part)."""
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{secrets.token_hex(3)}"


class _ClaimLost(Exception):
    """Another runner took the job over (this one looked dead): stop without touching the job."""


@dataclass
class _Progress:
    text: list[str] = field(default_factory=list)

    def partial(self) -> list[OutputData]:
        text = "".join(self.text)
        return [OutputData(type="text", data=text)] if text else []


class JobRunner:
    def __init__(self, store: JobStore, services: "Services", settings: JobSettings, name: str | None = None) -> None:
        self.store = store
        self.services = services
        self.settings = settings
        self.name = name or consumer_name()
        self._loops: list[asyncio.Task[None]] = []
        self._running: dict[str, asyncio.Task[None]] = {}
        self._stopping = False

    @property
    def running(self) -> int:
        return len(self._running)

    async def start(self) -> None:
        self._loops = [asyncio.create_task(self._loop(), name=f"job-runner-{i}") for i in range(self.settings.concurrency)]
        log.info("job runner %s: %d at once (store: %s)", self.name, self.settings.concurrency, self.store.backend)

    async def stop(self, grace: float) -> None:
        """Take no new job; give running ones ``grace`` seconds, then stop them and put them back in the queue."""
        self._stopping = True
        running = list(self._running.values())
        if running and grace > 0:
            log.info("job runner %s: waiting up to %ss for %d running job(s)", self.name, grace, len(running))
            await asyncio.wait(running, timeout=grace)
        for loop in self._loops:  # first: no loop may claim a job put back below
            loop.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        self._loops = []
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        await self.store.leave(self.name)

    async def _loop(self) -> None:
        while not self._stopping:
            try:
                ticket = await self.store.claim(self.name, CLAIM_WAIT_SECONDS)
            except (LollmsError, OSError, ConnectionError) as exc:
                log.warning("job runner %s: cannot reach the job store: %s", self.name, REDACTOR.redact(str(exc)))
                await asyncio.sleep(STORE_RETRY_SECONDS)
                continue
            except Exception as exc:  # a store error (Redis) never ends the loop
                log.warning("job runner %s: job store error: %s", self.name, REDACTOR.redact(f"{type(exc).__name__}: {exc}"))
                await asyncio.sleep(STORE_RETRY_SECONDS)
                continue
            if ticket is None:
                continue
            task = asyncio.create_task(self._run(ticket), name=f"job-{ticket.job_id}")
            self._running[ticket.job_id] = task
            try:
                await asyncio.wait({task})
            finally:
                self._running.pop(ticket.job_id, None)

    async def _run(self, ticket: JobTicket) -> None:
        release = True
        try:
            if self._stopping:
                release = False
                await self.store.requeue(ticket, "the runner that took this job is stopping; it waits for another one")
                return
            end = await self._start_and_execute(ticket)
            if end is not None:
                await self.store.finish(ticket.job_id, end)
        except _ClaimLost:
            release = False
            log.warning("job %s: another runner took it over; this one stops working on it", ticket.job_id)
        except asyncio.CancelledError:  # stop(): this process is shutting down before the job ended
            release = False
            await self.store.requeue(ticket, "the process running this job stopped; the job restarts from the beginning")
            raise
        except Exception as exc:  # the store failed (Redis down): leave the claim; another runner takes the job over
            release = False
            log.warning("job %s: job store error, left for another runner: %s", ticket.job_id,
                        REDACTOR.redact(f"{type(exc).__name__}: {exc}"))
        finally:
            if release:
                await self.store.release(ticket)

    async def _start_and_execute(self, ticket: JobTicket) -> JobEnd | None:
        record = await self.store.begin(ticket.job_id)
        if record is None:  # gone, already ended, or cancelled before it started
            current = await self.store.get(ticket.job_id)
            if current is not None and not current.done:
                return ended_with_error("cancelled", "the job was cancelled", "cancelled", status_code=499)
            return None
        log.info("job %s started by %s (attempt %d)", ticket.job_id, self.name, record.attempts)
        if ticket.resumed:
            if record.attempts > self.settings.max_attempts:
                return ended_with_error(
                    "failed", f"the process running this job stopped {record.attempts - 1} times; giving up "
                    "(jobs.max_attempts)", "runner_lost", status_code=503)
            note = StreamChunk(type="info", content=f"the process running this job stopped; the job restarts from the "
                               f"beginning (attempt {record.attempts} of {self.settings.max_attempts})",
                               metadata={"job_restarted": True, "attempt": record.attempts})
            await self.store.append(ticket.job_id, note.type, chunk_json(note))
        return await self._execute(ticket)

    async def _plan(self, ticket: JobTicket) -> "GenerationPlan":
        """Plan the stored request again where it runs (it was validated and counted when the job was created)."""
        config = self.services.config
        key = config.key_ring.by_id(ticket.owner) if ticket.owner else None
        if ticket.owner and key is None:
            raise NotFoundError("the API key that created this job is no longer configured")
        body = GenerateRequest.model_validate({**ticket.request, "stream": True})
        caller = Caller(surface="api", key=key, request_id=ticket.request_id)
        return await self.services.generation.plan(body, caller=caller, admit=False)

    async def _execute(self, ticket: JobTicket) -> JobEnd:
        plan = ticket.plan
        if plan is None:
            try:
                plan = await self._plan(ticket)
            except LollmsError as exc:
                message = REDACTOR.redact(exc.message)
                return ended_with_error("failed", message, type(exc).__name__, status_code=exc.status_code)
            except (ValueError, TypeError) as exc:  # a stored request that no longer validates (pydantic errors)
                message = REDACTOR.redact(f"the job's request cannot be planned: {exc}")
                return ended_with_error("failed", message, "planning_error", status_code=400)
        plan.slot_timeout = SLOT_WAIT_SECONDS  # nobody waits on the line: a long queue is no reason to fail
        progress = _Progress()
        work = asyncio.create_task(self._consume(ticket, plan, progress))
        watch = asyncio.create_task(self._watch(ticket))
        try:
            done, _ = await asyncio.wait({work, watch}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            work.cancel()
            watch.cancel()
            await asyncio.gather(work, watch, return_exceptions=True)
            raise
        if work in done:
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)
            return work.result()
        work.cancel()  # the generation's own cancel path runs (as when a streaming client disconnects)
        await asyncio.gather(work, return_exceptions=True)
        if watch.result() == "lost":
            raise _ClaimLost()
        log.info("job %s cancelled while running", ticket.job_id)
        return ended_with_error("cancelled", "the job was cancelled", "cancelled", status_code=499,
                                partial=progress.partial())

    async def _watch(self, ticket: JobTicket) -> str:
        """Returns "cancel" when the job is to be cancelled, "lost" when another runner took it over; meanwhile
        keeps this runner's claim on it."""
        keep_every = max(CANCEL_POLL_SECONDS, self.settings.claim_idle_s / 3)
        last_keep = time.monotonic()
        while True:
            await asyncio.sleep(CANCEL_POLL_SECONDS)
            try:
                if await self.store.cancel_requested(ticket.job_id):
                    return "cancel"
                if time.monotonic() - last_keep >= keep_every:
                    if not await self.store.keep_claim(ticket):
                        return "lost"
                    last_keep = time.monotonic()
            except Exception as exc:  # Redis hiccup: keep generating, try again at the next tick
                log.warning("job %s: cannot check for cancellation: %s", ticket.job_id, REDACTOR.redact(str(exc)))

    async def _consume(self, ticket: JobTicket, plan: "GenerationPlan", progress: _Progress) -> JobEnd:
        started = time.perf_counter()
        final: StreamChunk | None = None
        error: dict[str, Any] | None = None
        with REDACTOR.scoped((ticket.credentials or {}).get("api_key")):
            async for chunk in self.services.generation.stream(plan):
                if chunk.type == "final":
                    final = chunk
                    continue
                if chunk.type == "error":
                    meta = chunk.metadata or {}
                    error = {"message": str(chunk.content), "type": "generation_error",
                             "status_code": int(meta.get("status_code") or 500)}
                elif chunk.type == "chunk" and isinstance(chunk.content, str):
                    progress.text.append(chunk.content)
                await self.store.append(ticket.job_id, chunk.type, chunk_json(chunk))
        if final is None:  # pragma: no cover - the pipeline always ends with a final
            return ended_with_error("failed", "the generation ended without a final event", "generation_error")
        if error is not None:
            return JobEnd("failed", None, error, [final])
        response = GenerateResponse(
            personality=plan.personality.folder_name if plan.personality else None, request_id=plan.request_id,
            output=[OutputData.model_validate(o) for o in final.content or []],
            execution_time=round(time.perf_counter() - started, 4),
        )
        return JobEnd("succeeded", response.model_dump(mode="json"), None, [final])
