"""ResourceManager: limits how many compute-heavy tasks run at once (semaphore, simple_lock or none).

The slots and the waiting queue live in a ``SlotStore``: ``MemorySlotStore`` (this process, the default) or
``RedisSlotStore`` (``core/redis_slots.py``: shared by every replica using the same Redis). The manager keeps
the policy (limit, queue bound, timeout) and the error messages; a store only grants, queues and counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import AsyncIterator, Literal, Protocol

from lollms_server.core.errors import QueueFullError, QueueTimeoutError
from lollms_server.core.wakeups import acquire_within

log = logging.getLogger("lollms_server.resources")

Strategy = Literal["semaphore", "simple_lock", "none"]
Outcome = Literal["granted", "full", "timeout"]
RETRY_AFTER_SECONDS = 5  # Retry-After of the 503 (queue full) and 408 (waited too long) answers


@dataclass(frozen=True)
class ResourceState:
    strategy: str
    limit: int | None
    active: int
    waiting: int
    queue_timeout: float
    max_queue: int
    backend: str = "memory"


class SlotStore(Protocol):
    """Where slots and waiters are kept. Fair: waiters are granted in arrival order."""

    backend: str

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def counts(self) -> tuple[int, int]:
        """(slots held, requests waiting) as the whole store sees them."""
        ...

    async def acquire(self, holder: str, timeout: float) -> Outcome:
        """Take a slot for ``holder``, waiting up to ``timeout`` s; "full" at once when the queue is full."""
        ...

    async def release(self, holder: str) -> None: ...

    async def problem(self) -> str | None:
        """Why the store cannot serve now (for readiness), or None when it can."""
        ...


class MemorySlotStore:
    """Slots of this process only (asyncio.Semaphore, FIFO); needs no other service."""

    backend = "memory"

    def __init__(self, limit: int, max_queue: int) -> None:
        self.max_queue = max_queue
        self._sem = asyncio.Semaphore(limit)
        self._active = 0
        self._waiting = 0

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def counts(self) -> tuple[int, int]:
        return self._active, self._waiting

    async def acquire(self, holder: str, timeout: float) -> Outcome:
        if self._sem.locked() and self._waiting >= self.max_queue:
            return "full"
        self._waiting += 1
        try:
            if not await acquire_within(self._sem, timeout):  # not wait_for: it can swallow a cancel (wakeups.py)
                return "timeout"
        finally:
            self._waiting -= 1
        self._active += 1
        return "granted"

    async def release(self, holder: str) -> None:
        self._active -= 1
        self._sem.release()

    async def problem(self) -> str | None:
        return None


class ResourceManager:
    """Grants slots fairly (FIFO); a waiter that times out or is cancelled leaves the queue cleanly.

    At most ``max_queue`` requests wait at once: one more is refused at once (503 with Retry-After).
    """

    def __init__(self, strategy: Strategy = "semaphore", gpu_limit: int = 1, queue_timeout: float = 120.0,
                 max_queue: int = 512, store: SlotStore | None = None) -> None:
        if strategy not in ("semaphore", "simple_lock", "none"):
            raise ValueError(f"unknown gpu_strategy '{strategy}'")
        self.strategy: Strategy = strategy
        self.limit: int | None = None if strategy == "none" else (1 if strategy == "simple_lock" else max(1, gpu_limit))
        self.queue_timeout = float(queue_timeout)
        self.max_queue = max(0, int(max_queue))
        self.store: SlotStore | None = None
        if self.limit:
            self.store = store if store is not None else MemorySlotStore(self.limit, self.max_queue)
        self._active = 0  # in this process (the store counts for the whole cluster)
        self._waiting = 0
        self._seq = 0

    @property
    def backend(self) -> str:
        return self.store.backend if self.store is not None else "memory"

    def state(self) -> ResourceState:
        """This process's view (slots it holds, requests of it waiting)."""
        return ResourceState(self.strategy, self.limit, self._active, self._waiting, self.queue_timeout,
                             self.max_queue, self.backend)

    async def shared_state(self) -> ResourceState:
        """The state of the whole store (every replica with the Redis backend)."""
        if self.store is None:
            return self.state()
        active, waiting = await self.store.counts()
        return ResourceState(self.strategy, self.limit, active, waiting, self.queue_timeout, self.max_queue,
                             self.backend)

    async def start(self) -> None:
        if self.store is not None:
            await self.store.start()

    async def close(self) -> None:
        if self.store is not None:
            await self.store.close()

    async def problem(self) -> str | None:
        return await self.store.problem() if self.store is not None else None

    def _full(self, active: int, waiting: int) -> QueueFullError:
        return QueueFullError(
            f"server busy: {active} running and {waiting} waiting for a compute slot "
            f"(resource_manager.max_queue={self.max_queue}); retry in {RETRY_AFTER_SECONDS}s",
            RETRY_AFTER_SECONDS,
        )

    async def check_admission(self, task_name: str = "task") -> None:
        """Raise QueueFullError when a new request would have to wait and the queue is already full."""
        if self.store is None or self.limit is None:
            return
        active, waiting = await self.store.counts()
        if active >= self.limit and waiting >= self.max_queue:
            raise self._full(active, waiting)

    @contextlib.asynccontextmanager
    async def acquire_gpu_resource(self, task_name: str = "task", timeout: float | None = None) -> AsyncIterator[None]:
        """Hold one slot for the duration of the block; raise QueueTimeoutError after ``queue_timeout``."""
        if self.store is None:
            self._active += 1
            try:
                yield
            finally:
                self._active -= 1
            return
        wait = self.queue_timeout if timeout is None else timeout
        self._seq += 1
        holder = f"{task_name}#{self._seq}"
        self._waiting += 1
        try:
            outcome = await self.store.acquire(holder, wait)
        finally:
            self._waiting -= 1
        if outcome != "granted":
            active, waiting = await self.store.counts()
            if outcome == "full":
                raise self._full(active, waiting)
            raise QueueTimeoutError(
                f"waited {wait:g}s for a compute slot ({active} busy, resource_manager.queue_timeout); "
                f"retry in {RETRY_AFTER_SECONDS}s", RETRY_AFTER_SECONDS,
            )
        self._active += 1
        log.debug("slot acquired by %s (%d/%s active here)", task_name, self._active, self.limit)
        try:
            yield
        finally:
            self._active -= 1
            await asyncio.shield(self.store.release(holder))
            log.debug("slot released by %s", task_name)
