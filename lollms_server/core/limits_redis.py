"""Per-key limits counted in Redis, so a limit of N holds across every replica sharing it.

Same semantics as ``MemoryKeyLimiter``: requests per minute over a sliding 60 s window, tokens per UTC day.
Keys (under ``<prefix>``):
- ``rpm:<key id>``: sorted set of admitted requests, scored by their time (ms, Redis clock), trimmed to the window.
- ``tokens:<key id>:<UTC day number>``: the day's token count (expires two days later).
Admission is one Lua script (atomic, on the Redis clock): check the day's tokens, trim the window, count, admit.
Tokens of finished generations are summed locally and sent by a background task; ``admit`` sends what this
replica still holds first. Redis unreachable: ``admit`` fails closed (503, never unlimited).
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
import threading
from typing import Any

from redis.exceptions import RedisError

from lollms_server.core.apikeys import ApiKey
from lollms_server.core.errors import RateLimitedError, SharedStateUnavailableError
from lollms_server.core.redis_conn import connect, unreachable
from lollms_server.core.secrets import REDACTOR
from lollms_server.core.usage import UsageLedger

log = logging.getLogger("lollms_server.limits.redis")

_WINDOW_MS = 60_000
_DAY = 86400

# KEYS: rpm, tokens prefix; ARGV: tokens_per_day (0 = none), requests_per_minute (0 = none), member
# -> {0} admitted, {1, retry_ms} out of tokens, {2, retry_ms} too many requests
_ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local day = math.floor(tonumber(t[1]) / 86400)
local tpd, rpm = tonumber(ARGV[1]), tonumber(ARGV[2])
if tpd > 0 then
  local used = tonumber(redis.call('GET', KEYS[2] .. day) or '0')
  if used >= tpd then
    return {1, (day + 1) * 86400000 - now}
  end
end
if rpm > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 60000)
  if redis.call('ZCARD', KEYS[1]) >= rpm then
    local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    return {2, tonumber(oldest[2]) + 60000 - now}
  end
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], 60000)
end
return {0, 0}
"""

# KEYS: tokens prefix; ARGV: tokens -> the day's count
_ADD_TOKENS = """
local t = redis.call('TIME')
local key = KEYS[1] .. math.floor(tonumber(t[1]) / 86400)
local n = redis.call('INCRBY', key, tonumber(ARGV[1]))
redis.call('EXPIRE', key, 172800)
return n
"""


class RedisKeyLimiter:
    """``KeyLimiter`` on Redis (``resource_manager.backend: redis``)."""

    shared = True

    def __init__(self, url: str, prefix: str = "lollms:limits") -> None:
        REDACTOR.add(url)
        self.prefix = prefix
        self._client: Any = connect(url)
        self._admit = self._client.register_script(_ADMIT)
        self._add = self._client.register_script(_ADD_TOKENS)
        self._pending: dict[str, int] = {}  # key id -> tokens not yet sent (bounded by the number of keys)
        self._lock = threading.Lock()
        self._send_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    def _tokens_prefix(self, key_id: str) -> str:
        return f"{self.prefix}:tokens:{key_id}:"

    @staticmethod
    def _unavailable(exc: BaseException) -> SharedStateUnavailableError:
        return unreachable("per-key limit store", exc, "a limited API key cannot be admitted without it; ")

    async def start(self, ledger: UsageLedger) -> None:
        """The day's tokens already live in Redis: nothing to seed; start the background sender."""
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._sender(), name="key-limits-redis")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        try:
            await asyncio.wait_for(self._send(), timeout=2)
        except (SharedStateUnavailableError, asyncio.TimeoutError):
            log.warning("per-key token counts not sent to Redis at shutdown: %s", self._pending)
        try:
            await self._client.aclose()
        except RedisError:
            pass

    async def problem(self) -> str | None:
        """Why the shared limit store cannot be used now (None: it answers)."""
        try:
            await asyncio.wait_for(self._client.ping(), timeout=3)
        except (RedisError, OSError, asyncio.TimeoutError) as exc:
            return self._unavailable(exc).message
        return None

    async def admit(self, key: ApiKey) -> None:
        if not key.limited:
            return
        try:
            await self._send()  # this replica's finished generations count before it admits another
            code, retry_ms = await self._admit(
                keys=[f"{self.prefix}:rpm:{key.id}", self._tokens_prefix(key.id)],
                args=[key.tokens_per_day or 0, key.requests_per_minute or 0, secrets.token_hex(8)],
            )
        except RedisError as exc:
            raise self._unavailable(exc) from None
        retry = math.ceil(max(0, int(retry_ms)) / 1000)
        if int(code) == 1:
            raise RateLimitedError(
                f"API key '{key.name}' used its {key.tokens_per_day} tokens for today (UTC); the limit resets at midnight UTC",
                retry,
            )
        if int(code) == 2:
            raise RateLimitedError(f"API key '{key.name}' is limited to {key.requests_per_minute} requests per minute", retry)

    def add_tokens(self, key_id: str, tokens: int) -> None:
        """Never blocks: the count is summed here and sent by the background task (any thread may call this)."""
        if tokens <= 0:
            return
        with self._lock:
            self._pending[key_id] = self._pending.get(key_id, 0) + int(tokens)
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake.set)

    async def _send(self) -> None:
        async with self._send_lock:
            with self._lock:
                pending, self._pending = self._pending, {}
            try:
                while pending:
                    key_id, n = next(iter(pending.items()))
                    await self._add(keys=[self._tokens_prefix(key_id)], args=[n])
                    del pending[key_id]
            except RedisError as exc:
                with self._lock:  # keep what was not sent; the next attempt sends it
                    for key_id, n in pending.items():
                        self._pending[key_id] = self._pending.get(key_id, 0) + n
                raise self._unavailable(exc) from None

    async def _sender(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._send()
            except SharedStateUnavailableError as exc:
                log.warning("per-key token counts kept in this replica until Redis answers: %s", exc.message)
                await asyncio.sleep(1.0)
                self._wake.set()
