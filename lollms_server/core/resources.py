"""ResourceManager: limits how many compute-heavy tasks run at once (semaphore, simple_lock or none)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import AsyncIterator, Literal

from lollms_server.core.errors import QueueTimeoutError

log = logging.getLogger("lollms_server.resources")

Strategy = Literal["semaphore", "simple_lock", "none"]


@dataclass(frozen=True)
class ResourceState:
    strategy: str
    limit: int | None
    active: int
    waiting: int
    queue_timeout: float


class ResourceManager:
    """Grants slots fairly (FIFO); a waiter that times out or is cancelled leaves the queue cleanly."""

    def __init__(self, strategy: Strategy = "semaphore", gpu_limit: int = 1, queue_timeout: float = 120.0) -> None:
        if strategy not in ("semaphore", "simple_lock", "none"):
            raise ValueError(f"unknown gpu_strategy '{strategy}'")
        self.strategy: Strategy = strategy
        self.limit: int | None = None if strategy == "none" else (1 if strategy == "simple_lock" else max(1, gpu_limit))
        self.queue_timeout = float(queue_timeout)
        self._sem = asyncio.Semaphore(self.limit) if self.limit else None
        self._active = 0
        self._waiting = 0

    def state(self) -> ResourceState:
        return ResourceState(self.strategy, self.limit, self._active, self._waiting, self.queue_timeout)

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
        self._waiting += 1
        try:
            await asyncio.wait_for(self._sem.acquire(), timeout=wait)
        except asyncio.TimeoutError:
            raise QueueTimeoutError(
                f"'{task_name}' waited {wait:g}s for a compute slot ({self._active} busy); try again later"
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
