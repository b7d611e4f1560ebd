"""ResourceManager: limits how many compute-heavy tasks run at once (semaphore, simple_lock or none)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import AsyncIterator, Literal

from lollms_server.core.errors import QueueFullError, QueueTimeoutError

log = logging.getLogger("lollms_server.resources")

Strategy = Literal["semaphore", "simple_lock", "none"]
RETRY_AFTER_SECONDS = 5  # Retry-After of the 503 (queue full) and 408 (waited too long) answers


@dataclass(frozen=True)
class ResourceState:
    strategy: str
    limit: int | None
    active: int
    waiting: int
    queue_timeout: float
    max_queue: int


class ResourceManager:
    """Grants slots fairly (FIFO); a waiter that times out or is cancelled leaves the queue cleanly.

    At most ``max_queue`` requests wait at once: one more is refused at once (503 with Retry-After).
    """

    def __init__(self, strategy: Strategy = "semaphore", gpu_limit: int = 1, queue_timeout: float = 120.0,
                 max_queue: int = 512) -> None:
        if strategy not in ("semaphore", "simple_lock", "none"):
            raise ValueError(f"unknown gpu_strategy '{strategy}'")
        self.strategy: Strategy = strategy
        self.limit: int | None = None if strategy == "none" else (1 if strategy == "simple_lock" else max(1, gpu_limit))
        self.queue_timeout = float(queue_timeout)
        self.max_queue = max(0, int(max_queue))
        self._sem = asyncio.Semaphore(self.limit) if self.limit else None
        self._active = 0
        self._waiting = 0

    def state(self) -> ResourceState:
        return ResourceState(self.strategy, self.limit, self._active, self._waiting, self.queue_timeout, self.max_queue)

    def check_admission(self, task_name: str = "task") -> None:
        """Raise QueueFullError when a new request would have to wait and the queue is already full."""
        if self._sem is not None and self._sem.locked() and self._waiting >= self.max_queue:
            raise QueueFullError(
                f"server busy: {self._active} running and {self._waiting} waiting for a compute slot "
                f"(resource_manager.max_queue={self.max_queue}); retry in {RETRY_AFTER_SECONDS}s",
                RETRY_AFTER_SECONDS,
            )

    @contextlib.asynccontextmanager
    async def acquire_gpu_resource(self, task_name: str = "task", timeout: float | None = None) -> AsyncIterator[None]:
        """Hold one slot for the duration of the block; raise QueueTimeoutError after ``queue_timeout``."""
        if self._sem is None:
            self._active += 1
            try:
                yield
            finally:
                self._active -= 1
            return
        wait = self.queue_timeout if timeout is None else timeout
        self.check_admission(task_name)
        self._waiting += 1
        try:
            await asyncio.wait_for(self._sem.acquire(), timeout=wait)
        except asyncio.TimeoutError:
            raise QueueTimeoutError(
                f"waited {wait:g}s for a compute slot ({self._active} busy, resource_manager.queue_timeout); "
                f"retry in {RETRY_AFTER_SECONDS}s", RETRY_AFTER_SECONDS,
            ) from None
        finally:
            self._waiting -= 1
        self._active += 1
        log.debug("slot acquired by %s (%d/%s active)", task_name, self._active, self.limit)
        try:
            yield
        finally:
            self._active -= 1
            self._sem.release()
            log.debug("slot released by %s", task_name)
