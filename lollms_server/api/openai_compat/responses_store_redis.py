"""Stored responses in Redis, so ``previous_response_id`` and GET /v1/responses/{id} work on every replica.

Keys (under ``<prefix>``): ``r:<response id>`` holds the entry (JSON, with its owner's key id) and expires after
the TTL; ``index`` is a sorted set of response ids by creation time (ms, Redis clock). Storing one is a Lua
script (atomic): set the entry, index it, drop expired ids, and delete the oldest beyond ``limit``.
Redis unreachable: 503 (the conversation cannot be found or kept), never a silent per-replica fallback.
"""

from __future__ import annotations

import json
from typing import Any

from redis.exceptions import RedisError

from lollms_server.api.openai_compat.responses_store import DEFAULT_LIMIT, DEFAULT_TTL_SECONDS, StoredResponse
from lollms_server.core.errors import SharedStateUnavailableError
from lollms_server.core.redis_conn import connect, unreachable
from lollms_server.core.secrets import REDACTOR


# KEYS: index; ARGV: entry key prefix, response id, entry JSON, ttl seconds, limit
_PUT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local prefix, id, ttl, limit = ARGV[1], ARGV[2], tonumber(ARGV[4]), tonumber(ARGV[5])
redis.call('SET', prefix .. id, ARGV[3], 'EX', ttl)
redis.call('ZADD', KEYS[1], now, id)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - ttl * 1000)
local over = redis.call('ZCARD', KEYS[1]) - limit
if over > 0 then
  local old = redis.call('ZRANGE', KEYS[1], 0, over - 1)
  for _, o in ipairs(old) do redis.call('DEL', prefix .. o) end
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, over - 1)
end
return 1
"""


class RedisResponseStore:
    def __init__(self, url: str, limit: int = DEFAULT_LIMIT, ttl_seconds: int = DEFAULT_TTL_SECONDS,
                 prefix: str = "lollms:responses") -> None:
        REDACTOR.add(url)
        self.limit = max(1, limit)
        self.ttl = max(1, int(ttl_seconds))
        self.entry_prefix = f"{prefix}:r:"
        self.index = f"{prefix}:index"
        self._client: Any = connect(url)
        self._put = self._client.register_script(_PUT)

    @staticmethod
    def _unavailable(exc: BaseException) -> SharedStateUnavailableError:
        return unreachable("response store", exc)

    async def put(self, entry: StoredResponse) -> None:
        data = json.dumps(entry.to_json(), separators=(",", ":"))
        try:
            await self._put(keys=[self.index], args=[self.entry_prefix, entry.response_id, data, self.ttl, self.limit])
        except RedisError as exc:
            raise self._unavailable(exc) from None

    async def get(self, response_id: str, owner: str | None) -> StoredResponse | None:
        try:
            raw = await self._client.get(self.entry_prefix + response_id)
        except RedisError as exc:
            raise self._unavailable(exc) from None
        if raw is None:
            return None
        entry = StoredResponse.from_json(json.loads(raw))
        return entry if entry.owner == owner else None

    async def delete(self, response_id: str, owner: str | None) -> bool:
        if await self.get(response_id, owner) is None:
            return False
        try:
            pipe = self._client.pipeline(transaction=True)
            pipe.delete(self.entry_prefix + response_id)
            pipe.zrem(self.index, response_id)
            removed, _ = await pipe.execute()
        except RedisError as exc:
            raise self._unavailable(exc) from None
        return bool(removed)

    async def close(self) -> None:
        try:
            await self._client.aclose()
        except RedisError:
            pass
