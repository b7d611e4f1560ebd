"""Compute slots and their queue shared by every replica through Redis: a fair (FIFO) semaphore with leases.

Keys (under ``<prefix>``):
- ``holders``: sorted set, slot holder token -> lease expiry (ms, Redis clock). A holder renews its lease every
  third of the lease time; a replica killed with kill -9 stops renewing and its slot is free once it expires.
- ``waiters``: sorted set, waiter token -> heartbeat expiry. A waiter polls (and so refreshes its heartbeat)
  at least every ``FALLBACK_POLL_SECONDS``; a dead replica's waiters expire and leave the queue.
- ``order``: sorted set, waiter token -> ticket from the ``seq`` counter: the queue in arrival order.
Every change runs in one Lua script (atomic), with expired holders and waiters removed first. A waiter is
granted a slot when its rank in ``order`` is below the number of free slots, so the oldest waiters go first.

Wake-ups: a script that frees slots or places in the queue (release, a waiter leaving, expired leases)
publishes how many on the ``released`` channel; each replica listens on one connection and counts them. A
waiter knows its rank and the free slots from its last poll; its rank can have dropped by at most those free
slots plus the count released since, so it polls again only when that bound puts it within ``limit`` of the
front: a release wakes the few waiters that may get the slot, not the whole queue. The message is only a
hint: correctness rests on the scripts and the leases, and a waiter polls anyway at least every
``FALLBACK_POLL_SECONDS`` (``POLL_SECONDS`` while the listener is down), so a lost message delays, never strands.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from typing import Any

from redis.exceptions import RedisError

from lollms_server.core.errors import SharedStateUnavailableError
from lollms_server.core.redis_conn import KEY_PREFIX, connect, unreachable
from lollms_server.core.resources import Outcome
from lollms_server.core.secrets import REDACTOR
from lollms_server.core.wakeups import wait_set

log = logging.getLogger("lollms_server.resources.redis")

POLL_SECONDS = 0.1  # waiters' poll interval while the wake-up listener is not subscribed
FALLBACK_POLL_SECONDS = 1.0  # with the listener: a poll at least this often (dead holders' leases, missed hints)

_PRELUDE = """
local holders, waiters, order, seq = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local channel = ARGV[#ARGV]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local freed = redis.call('ZREMRANGEBYSCORE', holders, '-inf', now)
local dead = redis.call('ZRANGEBYSCORE', waiters, '-inf', now)
for _, w in ipairs(dead) do
  redis.call('ZREM', waiters, w)
  redis.call('ZREM', order, w)
end
if freed + #dead > 0 then
  redis.call('PUBLISH', channel, freed + #dead)
end
"""

# ARGV: token, limit, max_queue, lease_ms -> {1} granted, {0, rank, free} queued, {-1} queue full
_ENQUEUE = _PRELUDE + """
local token, limit, maxq, lease = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local active = redis.call('ZCARD', holders)
local waiting = redis.call('ZCARD', order)
if active < limit and waiting == 0 then
  redis.call('ZADD', holders, now + lease, token)
  return {1}
end
if waiting >= maxq then
  return {-1}
end
redis.call('ZADD', order, redis.call('INCR', seq), token)
redis.call('ZADD', waiters, now + lease, token)
return {0, waiting, math.max(0, limit - active)}
"""

# ARGV: token, limit, lease_ms -> {1} granted, {0, rank, free} still waiting, {-1} no longer in the queue
_POLL = _PRELUDE + """
local token, limit, lease = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
if not redis.call('ZSCORE', waiters, token) then
  return {-1}
end
local rank = redis.call('ZRANK', order, token)
local free = limit - redis.call('ZCARD', holders)
if rank < free then
  redis.call('ZREM', waiters, token)
  redis.call('ZREM', order, token)
  redis.call('ZADD', holders, now + lease, token)
  return {1}
end
redis.call('ZADD', waiters, now + lease, token)
return {0, rank, math.max(0, free)}
"""

# ARGV: token, lease_ms -> 1 renewed, 0 lease lost
_RENEW = _PRELUDE + """
if redis.call('ZSCORE', holders, ARGV[1]) then
  redis.call('ZADD', holders, now + tonumber(ARGV[2]), ARGV[1])
  return 1
end
return 0
"""

# ARGV: token, channel
_LEAVE = """
local gone = redis.call('ZREM', KEYS[1], ARGV[1]) + redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if gone > 0 then
  redis.call('PUBLISH', ARGV[2], gone)
end
return gone
"""

_COUNTS = _PRELUDE + """
return {redis.call('ZCARD', holders), redis.call('ZCARD', order)}
"""


def _count(data: Any) -> int:
    """The number a hint carries (at least 1: an unreadable hint still wakes)."""
    try:
        return max(1, int(data))
    except (TypeError, ValueError):
        return 1


class RedisSlotStore:
    """``SlotStore`` on Redis: ``limit`` and ``max_queue`` hold across every replica sharing ``url``."""

    backend = "redis"

    def __init__(self, url: str, limit: int, max_queue: int, lease_seconds: float, prefix: str = f"{KEY_PREFIX}:slots") -> None:
        REDACTOR.add(url)
        self._password_masked(url)
        self.limit = limit
        self.max_queue = max_queue
        self.lease_ms = max(1000, int(lease_seconds * 1000))
        self.keys = [f"{prefix}:holders", f"{prefix}:waiters", f"{prefix}:order", f"{prefix}:seq"]
        self.channel = f"{prefix}:released"
        self.replica = secrets.token_hex(6)
        self._client: Any = connect(url)
        self._scripts = {name: self._client.register_script(src) for name, src in (
            ("enqueue", _ENQUEUE), ("poll", _POLL), ("renew", _RENEW), ("leave", _LEAVE), ("counts", _COUNTS))}
        self._held: dict[str, tuple[str, asyncio.Task[None]]] = {}  # holder -> (token, lease renewal task)
        self._wakeup = asyncio.Event()  # replaced after each wake-up: waiters keep the one they started with
        self._released = 0  # slots and places released cluster-wide, as counted from the hints received
        self._subscribed = False
        self._listener: asyncio.Task[None] | None = None

    @staticmethod
    def _password_masked(url: str) -> None:
        from urllib.parse import unquote, urlsplit

        with_password = urlsplit(url)
        if with_password.password:
            REDACTOR.add(with_password.password, unquote(with_password.password))

    def _unavailable(self, exc: BaseException) -> SharedStateUnavailableError:
        return unreachable("compute-slot store", exc)

    async def _run(self, name: str, *args: Any) -> Any:
        try:
            return await self._scripts[name](keys=self.keys, args=[*args, self.channel])
        except RedisError as exc:
            raise self._unavailable(exc) from None

    async def start(self) -> None:
        self._listener = asyncio.create_task(self._listen(), name="redis-slots-wakeups")
        reason = await self.problem()
        if reason:
            log.warning("resource_manager.backend=redis: %s (requests needing a compute slot get 503 until it answers)",
                        reason)

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
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
            seen = self._released  # taken before each script call: a hint arriving during it is not missed
            result = await self._run("enqueue", token, self.limit, self.max_queue, self.lease_ms)
            if int(result[0]) == -1:
                return "full"
            while int(result[0]) != 1:
                if int(result[0]) == -1:  # our heartbeat expired (Redis or this loop stalled): queue again, at the back
                    seen = self._released
                    result = await self._run("enqueue", token, self.limit, self.max_queue, self.lease_ms)
                    if int(result[0]) == -1:
                        return "full"
                    continue
                if not await self._wait_turn(int(result[1]) - int(result[2]), seen, deadline):
                    return "timeout"
                seen = self._released
                result = await self._run("poll", token, self.limit, self.lease_ms)
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

    def _poll_interval(self) -> float:
        return min(FALLBACK_POLL_SECONDS, self.lease_ms / 3000) if self._subscribed else POLL_SECONDS

    async def _wait_turn(self, ahead: int, seen: int, deadline: float) -> bool:
        """Wait until a poll may grant the slot; False at ``deadline``.

        ``ahead`` = the waiter's rank minus the slots that were free at its last poll: at most that many
        grants were already possible then, and each later grant or departure ahead of it is announced by a
        hint (counted in ``_released``). The waiter polls once the released count could have brought it to
        the front, or after the poll interval whatever the hints said.
        """
        loop = asyncio.get_running_loop()
        next_poll = loop.time() + self._poll_interval()
        while True:
            if self._released > seen and ahead - (self._released - seen) < self.limit:
                return True
            now = loop.time()
            if now >= deadline:
                return False
            if now >= next_poll:
                return True
            await wait_set(self._wakeup, min(next_poll, deadline) - now)

    def _wake_waiters(self, released: int) -> None:
        self._released += released
        wakeup, self._wakeup = self._wakeup, asyncio.Event()
        wakeup.set()

    async def _listen(self) -> None:
        """Wake this replica's waiters on every ``released`` message; resubscribe after a Redis failure."""
        while True:
            pubsub = self._client.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                self._subscribed = True
                self._wake_waiters(self.limit + self.max_queue)  # what was released unheard: every waiter polls
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None:
                        self._wake_waiters(_count(message.get("data")))
            except (RedisError, OSError) as exc:
                log.debug("slot wake-up listener lost Redis (%s); waiters poll every %ss meanwhile",
                          REDACTOR.mask_secrets(str(exc)), POLL_SECONDS)
            finally:
                self._subscribed = False
                with contextlib.suppress(RedisError, OSError):
                    await asyncio.shield(pubsub.aclose())
            await asyncio.sleep(1.0)

    async def _leave(self, token: str) -> None:
        try:
            await self._scripts["leave"](keys=self.keys[:3], args=[token, self.channel])
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
