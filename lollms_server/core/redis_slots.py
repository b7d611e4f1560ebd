"""Compute slots and their queue shared by every replica through Redis: a fair (FIFO) semaphore with leases.

Keys (under ``<prefix>``):
- ``holders``: sorted set, slot holder token -> lease expiry (ms, Redis clock). A holder renews its lease every
  third of the lease time; a replica killed with kill -9 stops renewing and its slot is free once it expires.
- ``waiters``: sorted set, waiter token -> heartbeat expiry. A waiter polls (and so refreshes its heartbeat)
  every ``POLL_SECONDS``; a dead replica's waiters expire and leave the queue.
- ``order``: sorted set, waiter token -> ticket from the ``seq`` counter: the queue in arrival order.
Every change runs in one Lua script (atomic), with expired holders and waiters removed first. A waiter is
granted a slot when its rank in ``order`` is below the number of free slots, so the oldest waiters go first.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

from redis.exceptions import RedisError

from lollms_server.core.errors import SharedStateUnavailableError
from lollms_server.core.redis_conn import connect
from lollms_server.core.resources import Outcome
from lollms_server.core.secrets import REDACTOR

log = logging.getLogger("lollms_server.resources.redis")

POLL_SECONDS = 0.1
RETRY_AFTER_SECONDS = 5

_PRELUDE = """
local holders, waiters, order, seq = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', holders, '-inf', now)
local dead = redis.call('ZRANGEBYSCORE', waiters, '-inf', now)
for _, w in ipairs(dead) do
  redis.call('ZREM', waiters, w)
  redis.call('ZREM', order, w)
end
"""

# ARGV: token, limit, max_queue, lease_ms -> 1 granted, 0 queued, -1 queue full
_ENQUEUE = _PRELUDE + """
local token, limit, maxq, lease = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local active = redis.call('ZCARD', holders)
local waiting = redis.call('ZCARD', order)
if active < limit and waiting == 0 then
  redis.call('ZADD', holders, now + lease, token)
  return 1
end
if waiting >= maxq then
  return -1
end
redis.call('ZADD', order, redis.call('INCR', seq), token)
redis.call('ZADD', waiters, now + lease, token)
return 0
"""

# ARGV: token, limit, lease_ms -> 1 granted, 0 still waiting, -1 no longer in the queue
_POLL = _PRELUDE + """
local token, limit, lease = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
if not redis.call('ZSCORE', waiters, token) then
  return -1
end
local rank = redis.call('ZRANK', order, token)
local free = limit - redis.call('ZCARD', holders)
if rank < free then
  redis.call('ZREM', waiters, token)
  redis.call('ZREM', order, token)
  redis.call('ZADD', holders, now + lease, token)
  return 1
end
redis.call('ZADD', waiters, now + lease, token)
return 0
"""

# ARGV: token, lease_ms -> 1 renewed, 0 lease lost
_RENEW = _PRELUDE + """
if redis.call('ZSCORE', holders, ARGV[1]) then
  redis.call('ZADD', holders, now + tonumber(ARGV[2]), ARGV[1])
  return 1
end
return 0
"""

_LEAVE = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return 1
"""

_COUNTS = _PRELUDE + """
return {redis.call('ZCARD', holders), redis.call('ZCARD', order)}
"""


class RedisSlotStore:
    """``SlotStore`` on Redis: ``limit`` and ``max_queue`` hold across every replica sharing ``url``."""

    backend = "redis"

    def __init__(self, url: str, limit: int, max_queue: int, lease_seconds: float, prefix: str = "lollms:slots") -> None:
        REDACTOR.add(url)
        self._password_masked(url)
        self.limit = limit
        self.max_queue = max_queue
        self.lease_ms = max(1000, int(lease_seconds * 1000))
        self.keys = [f"{prefix}:holders", f"{prefix}:waiters", f"{prefix}:order", f"{prefix}:seq"]
        self.replica = secrets.token_hex(6)
        self._client: Any = connect(url)
        self._scripts = {name: self._client.register_script(src) for name, src in (
            ("enqueue", _ENQUEUE), ("poll", _POLL), ("renew", _RENEW), ("leave", _LEAVE), ("counts", _COUNTS))}
        self._held: dict[str, tuple[str, asyncio.Task[None]]] = {}  # holder -> (token, lease renewal task)

    @staticmethod
    def _password_masked(url: str) -> None:
        from urllib.parse import unquote, urlsplit

        with_password = urlsplit(url)
        if with_password.password:
            REDACTOR.add(with_password.password, unquote(with_password.password))

    def _unavailable(self, exc: BaseException) -> SharedStateUnavailableError:
        reason = REDACTOR.mask_secrets(str(exc) or type(exc).__name__)
        return SharedStateUnavailableError(
            f"the shared compute-slot store (Redis, resource_manager.redis_url) is unreachable: {reason}; "
            f"retry in {RETRY_AFTER_SECONDS}s", RETRY_AFTER_SECONDS,
        )

    async def _run(self, name: str, *args: Any) -> Any:
        try:
            return await self._scripts[name](keys=self.keys, args=list(args))
        except RedisError as exc:
            raise self._unavailable(exc) from None

    async def start(self) -> None:
        reason = await self.problem()
        if reason:
            log.warning("resource_manager.backend=redis: %s (requests needing a compute slot get 503 until it answers)",
                        reason)

    async def close(self) -> None:
        for _token, task in list(self._held.values()):
            task.cancel()
        self._held.clear()
        try:
            await self._client.aclose()
        except RedisError:
            pass

    async def counts(self) -> tuple[int, int]:
        active, waiting = await self._run("counts")
        return int(active), int(waiting)

    async def acquire(self, holder: str, timeout: float) -> Outcome:
        token = f"{self.replica}:{holder}:{secrets.token_hex(4)}"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        granted = False
        try:
            result = int(await self._run("enqueue", token, self.limit, self.max_queue, self.lease_ms))
            if result == -1:
                return "full"
            while result != 1:
                if result == -1:  # our heartbeat expired (Redis or this loop stalled): queue again, at the back
                    result = int(await self._run("enqueue", token, self.limit, self.max_queue, self.lease_ms))
                    if result == -1:
                        return "full"
                    continue
                if loop.time() >= deadline:
                    return "timeout"
                await asyncio.sleep(min(POLL_SECONDS, max(0.0, deadline - loop.time())))
                result = int(await self._run("poll", token, self.limit, self.lease_ms))
            granted = True
        finally:
            if not granted:
                await asyncio.shield(self._leave(token))
        self._held[holder] = (token, asyncio.create_task(self._renew(holder, token)))
        return "granted"

    async def _renew(self, holder: str, token: str) -> None:
        while True:
            await asyncio.sleep(self.lease_ms / 3000)
            try:
                if not int(await self._run("renew", token, self.lease_ms)):
                    log.warning("compute slot lease of %s expired before it was renewed (Redis stalled?)", holder)
                    return
            except SharedStateUnavailableError as exc:
                log.warning("cannot renew the compute slot lease of %s: %s", holder, exc)

    async def _leave(self, token: str) -> None:
        try:
            await self._scripts["leave"](keys=self.keys[:3], args=[token])
        except RedisError as exc:  # the lease or heartbeat expires on its own
            log.warning("could not leave the shared slot queue (%s); it frees itself within the lease time",
                        REDACTOR.mask_secrets(str(exc)))

    async def release(self, holder: str) -> None:
        entry = self._held.pop(holder, None)
        if entry is not None:
            token, task = entry
            task.cancel()
            await self._leave(token)

    async def problem(self) -> str | None:
        try:
            await asyncio.wait_for(self._client.ping(), timeout=3)
        except (RedisError, OSError, asyncio.TimeoutError) as exc:
            return self._unavailable(exc).message
        return None
