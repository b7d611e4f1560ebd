"""``JobStore`` on Redis: jobs shared by every replica and ``lollms-server worker`` (backend redis).

Keys (under ``<redis_prefix>:jobs``):
- ``queue``: a stream of ``{job: <id>}`` entries read by the consumer group ``runners`` (XREADGROUP). A runner
  keeps its entry claimed while it works (XCLAIM every third of ``jobs.claim_idle_s``); the entry of a runner
  that died is idle for longer and another runner takes it over (XAUTOCLAIM) and restarts the job, up to
  ``jobs.max_attempts`` starts, then the job is marked failed — never silently lost. Entries are acknowledged
  and deleted when their job ends, so the stream's length minus its pending entries is the number waiting.
- ``job:<id>``: a hash (owner, state, times, attempts, request, result, error, cancel flag) that lives
  ``jobs.result_ttl_s`` after the job ended (``UNFINISHED_TTL_S`` while it has not).
- ``events:<id>``: a stream of ``{type, data}`` (StreamChunk JSON) bounded by ``jobs.max_events``; its entry
  ids are the SSE event ids; followers wait with XREAD BLOCK.
- ``owner:<key id>``: a sorted set of the key's recent job ids (for ``GET /api/v1/jobs``).
Every state change (create within the bound, start, end with its closing events, requeue) is one Lua script.
"""

from __future__ import annotations

import json
import logging
import re
import time
from typing import TYPE_CHECKING, Any, AsyncIterator
from urllib.parse import unquote, urlsplit

from redis.exceptions import RedisError, ResponseError

from lollms_server.core.contract import StreamChunk, chunk_json
from lollms_server.core.errors import SharedStateUnavailableError
from lollms_server.core.jobs import JobEnd, JobQueueFullError, JobRecord, JobSettings, JobTicket, new_job_id
from lollms_server.core.redis_conn import KEY_PREFIX, connect, unreachable
from lollms_server.core.secrets import REDACTOR

if TYPE_CHECKING:
    from lollms_server.core.generation import GenerationPlan

log = logging.getLogger("lollms_server.jobs.redis")

GROUP = "runners"
UNFINISHED_TTL_S = 86400  # a job that never ends (no runner at all) is dropped after a day
FOLLOW_BLOCK_MS = 2000  # below the client's socket timeout
OWNER_INDEX_SIZE = 200
_EVENT_ID = re.compile(r"^\d{1,20}-\d{1,20}$")

# KEYS: queue, job, owner index; ARGV: group, id, owner, request, request_id, now, ttl, max_queued, index size
_CREATE = """
local ok, pending = pcall(redis.call, 'XPENDING', KEYS[1], ARGV[1])
if not ok then return -2 end
if redis.call('XLEN', KEYS[1]) - pending[1] >= tonumber(ARGV[8]) then return 0 end
redis.call('HSET', KEYS[2], 'job_id', ARGV[2], 'owner', ARGV[3], 'request', ARGV[4], 'request_id', ARGV[5],
           'state', 'queued', 'created_at', ARGV[6], 'attempts', 0)
redis.call('EXPIRE', KEYS[2], ARGV[7])
redis.call('XADD', KEYS[1], '*', 'job', ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[6], ARGV[2])
redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -(tonumber(ARGV[9]) + 1))
redis.call('EXPIRE', KEYS[3], ARGV[7])
return 1
"""

# KEYS: job; ARGV: now, ttl -> attempts, or 0 (gone, ended or cancelled)
_BEGIN = """
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'queued' and state ~= 'running' then return 0 end
if redis.call('HGET', KEYS[1], 'cancel') == '1' then return 0 end
local n = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('HSET', KEYS[1], 'state', 'running', 'started_at', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return n
"""

# KEYS: job, events; ARGV: state, result, error, now, ttl, maxlen, then (type, data) pairs
_FINISH = """
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'queued' and state ~= 'running' then return 0 end
for i = 7, #ARGV, 2 do
  redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[6], '*', 'type', ARGV[i], 'data', ARGV[i + 1])
end
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'result', ARGV[2], 'error', ARGV[3], 'finished_at', ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('EXPIRE', KEYS[2], ARGV[5])
return 1
"""

# KEYS: queue, job, events; ARGV: group, entry, job id, note, maxlen
_REQUEUE = """
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
local state = redis.call('HGET', KEYS[2], 'state')
if state ~= 'queued' and state ~= 'running' then return 0 end
redis.call('HSET', KEYS[2], 'state', 'queued')
redis.call('XADD', KEYS[3], 'MAXLEN', ARGV[5], '*', 'type', 'info', 'data', ARGV[4])
redis.call('XADD', KEYS[1], '*', 'job', ARGV[3])
return 1
"""

# KEYS: queue; ARGV: group, consumer, entry -> 1 still ours (idle time reset), 0 another runner took it over
_KEEP = """
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #p == 0 or p[1][2] ~= ARGV[2] then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')
return 1
"""

# KEYS: job
_CANCEL = """
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'cancel', '1') end
return 1
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _number(value: str | None) -> float | None:
    return float(value) if value else None


def _record(raw: dict[Any, Any]) -> JobRecord | None:
    if not raw:
        return None
    h = {_text(k): _text(v) for k, v in raw.items()}
    if "state" not in h:
        return None
    return JobRecord(
        job_id=h.get("job_id", ""), owner=h.get("owner", ""), state=h["state"],  # type: ignore[arg-type]
        created_at=float(h.get("created_at") or 0), started_at=_number(h.get("started_at")),
        finished_at=_number(h.get("finished_at")), attempts=int(h.get("attempts") or 0),
        result=json.loads(h["result"]) if h.get("result") else None,
        error=json.loads(h["error"]) if h.get("error") else None,
    )


def mask_url(url: str) -> None:
    """The URL and its password never appear in a response or a log line."""
    REDACTOR.add(url)
    password = urlsplit(url).password
    if password:
        REDACTOR.add(password, unquote(password))


class RedisJobStore:
    backend = "redis"

    def __init__(self, url: str, settings: JobSettings, prefix: str = f"{KEY_PREFIX}:jobs") -> None:
        mask_url(url)
        self.settings = settings
        self.prefix = prefix
        self.queue = f"{prefix}:queue"
        self._client: Any = connect(url)
        self._scripts = {name: self._client.register_script(src) for name, src in (
            ("create", _CREATE), ("begin", _BEGIN), ("finish", _FINISH), ("requeue", _REQUEUE), ("keep", _KEEP),
            ("cancel", _CANCEL))}

    def _job(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}"

    def _events(self, job_id: str) -> str:
        return f"{self.prefix}:events:{job_id}"

    def _owner(self, owner: str) -> str:
        return f"{self.prefix}:owner:{owner or '-'}"

    def _unavailable(self, exc: BaseException) -> SharedStateUnavailableError:
        return unreachable("job store", exc)

    async def _ensure_group(self) -> None:
        try:
            await self._client.xgroup_create(self.queue, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def start(self) -> None:
        try:
            await self._ensure_group()
        except (RedisError, OSError) as exc:
            log.warning("jobs: the Redis job store is unreachable for now (%s); job requests get 503 until it answers",
                        REDACTOR.mask_secrets(str(exc)))

    async def close(self) -> None:
        try:
            await self._client.aclose()
        except RedisError:
            pass

    async def problem(self) -> str | None:
        try:
            await self._client.ping()
        except (RedisError, OSError) as exc:
            return self._unavailable(exc).message
        return None

    # ---- API side ----
    async def create(self, owner: str, request: dict[str, Any], request_id: str, *, plan: "GenerationPlan | None" = None,
                     credentials: dict[str, str] | None = None) -> JobRecord:
        job_id, now = new_job_id(), time.time()
        args = [GROUP, job_id, owner, json.dumps(request), request_id, repr(now), UNFINISHED_TTL_S,
                self.settings.max_queued, OWNER_INDEX_SIZE]
        keys = [self.queue, self._job(job_id), self._owner(owner)]
        try:
            result = int(await self._scripts["create"](keys=keys, args=args))
            if result == -2:  # the group is gone (Redis restarted empty): make it again
                await self._ensure_group()
                result = int(await self._scripts["create"](keys=keys, args=args))
        except RedisError as exc:
            raise self._unavailable(exc) from None
        if result != 1:
            raise JobQueueFullError(self.settings.max_queued)
        return JobRecord(job_id, owner, "queued", now)

    async def get(self, job_id: str) -> JobRecord | None:
        try:
            return _record(await self._client.hgetall(self._job(job_id)))
        except RedisError as exc:
            raise self._unavailable(exc) from None

    async def recent(self, owner: str, limit: int) -> list[JobRecord]:
        try:
            ids = await self._client.zrevrange(self._owner(owner), 0, limit - 1)
            async with self._client.pipeline(transaction=False) as pipe:
                for job_id in ids:
                    pipe.hgetall(self._job(_text(job_id)))
                rows = await pipe.execute()
        except RedisError as exc:
            raise self._unavailable(exc) from None
        return [r for r in (_record(row) for row in rows) if r is not None and r.owner == owner]

    async def request_cancel(self, job_id: str) -> None:
        try:
            await self._scripts["cancel"](keys=[self._job(job_id)], args=[])
        except RedisError as exc:
            raise self._unavailable(exc) from None

    def valid_event_id(self, event_id: str) -> bool:
        return bool(_EVENT_ID.match(event_id))

    async def events(self, job_id: str, after: str | None) -> AsyncIterator[tuple[str, str]]:
        cursor, key = after or "0-0", self._events(job_id)
        while True:
            try:
                answer = await self._client.xread({key: cursor}, count=200, block=FOLLOW_BLOCK_MS)
                if not answer and not await self._client.exists(self._job(job_id)):
                    return  # expired
            except RedisError as exc:  # the follower reconnects with Last-Event-ID
                log.warning("jobs: cannot follow job %s: %s", job_id, REDACTOR.mask_secrets(str(exc)))
                return
            for _stream, entries in answer or []:
                for entry_id, fields in entries:
                    cursor = _text(entry_id)
                    row = {_text(k): _text(v) for k, v in fields.items()}
                    yield cursor, row.get("data", "")
                    if row.get("type") == "final":
                        return

    # ---- runner side ----
    async def claim(self, consumer: str, wait: float) -> JobTicket | None:
        try:
            return await self._claim(consumer, wait)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            await self._ensure_group()
            return None

    async def _claim(self, consumer: str, wait: float) -> JobTicket | None:
        taken = await self._client.xautoclaim(self.queue, GROUP, consumer, min_idle_time=self.settings.claim_idle_s * 1000,
                                              start_id="0-0", count=1)
        entries = taken[1] if len(taken) > 1 else []
        resumed = bool(entries)
        if not entries:
            answer = await self._client.xreadgroup(GROUP, consumer, {self.queue: ">"}, count=1, block=max(1, int(wait * 1000)))
            entries = answer[0][1] if answer else []
        if not entries:
            return None
        entry_id, fields = entries[0]
        entry = _text(entry_id)
        job_id = _text((fields or {}).get(b"job") or (fields or {}).get("job") or "")
        raw = await self._client.hgetall(self._job(job_id)) if job_id else {}
        h = {_text(k): _text(v) for k, v in raw.items()}
        if "request" not in h:  # the job expired (or the entry is damaged): nothing to run
            await self._ack(entry)
            return None
        if resumed:
            log.warning("jobs: job %s was left by a runner that stopped; %s takes it over", job_id, consumer)
            await self._forget_dead_consumers()
        return JobTicket(job_id, h.get("owner", ""), json.loads(h["request"]), h.get("request_id", ""), resumed=resumed,
                         entry=entry, consumer=consumer)

    async def _forget_dead_consumers(self) -> None:
        """Remove the group's consumers silent for longer than ``claim_idle_s`` that hold nothing (a runner killed
        without leaving; a live runner asks for work every second, and one removed by mistake is added back by
        its next read)."""
        try:
            for info in await self._client.xinfo_consumers(self.queue, GROUP):
                if int(info.get("pending", 0)) == 0 and int(info.get("idle", 0)) > self.settings.claim_idle_s * 1000:
                    await self._client.xgroup_delconsumer(self.queue, GROUP, info["name"])
        except RedisError as exc:
            log.warning("jobs: could not prune the runners' group: %s", REDACTOR.mask_secrets(str(exc)))

    async def _ack(self, entry: str) -> None:
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.xack(self.queue, GROUP, entry)
            pipe.xdel(self.queue, entry)
            await pipe.execute()

    async def begin(self, job_id: str) -> JobRecord | None:
        ttl = UNFINISHED_TTL_S + self.settings.result_ttl_s
        if not int(await self._scripts["begin"](keys=[self._job(job_id)], args=[repr(time.time()), ttl])):
            return None
        return await self.get(job_id)

    async def append(self, job_id: str, chunk_type: str, data: str) -> str:
        key = self._events(job_id)
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.xadd(key, {"type": chunk_type, "data": data}, maxlen=self.settings.max_events, approximate=False)
            pipe.expire(key, UNFINISHED_TTL_S + self.settings.result_ttl_s)
            entry_id, _ = await pipe.execute()
        return _text(entry_id)

    async def finish(self, job_id: str, end: JobEnd) -> bool:
        args: list[Any] = [end.state, json.dumps(end.result) if end.result is not None else "",
                           json.dumps(end.error) if end.error is not None else "", repr(time.time()),
                           self.settings.result_ttl_s, self.settings.max_events]
        for chunk_type, data in end.events_json():
            args += [chunk_type, data]
        return bool(int(await self._scripts["finish"](keys=[self._job(job_id), self._events(job_id)], args=args)))

    async def cancel_requested(self, job_id: str) -> bool:
        cancel, state = await self._client.hmget(self._job(job_id), ["cancel", "state"])
        return state is None or _text(cancel or "") == "1" or _text(state) not in ("queued", "running")

    async def keep_claim(self, ticket: JobTicket) -> bool:
        return bool(int(await self._scripts["keep"](keys=[self.queue], args=[GROUP, ticket.consumer, ticket.entry])))

    async def release(self, ticket: JobTicket) -> None:
        await self._ack(ticket.entry)

    async def leave(self, consumer: str) -> None:
        try:
            pending = await self._client.xpending_range(self.queue, GROUP, "-", "+", 1, consumername=consumer)
            if not pending:
                await self._client.xgroup_delconsumer(self.queue, GROUP, consumer)
        except RedisError as exc:
            log.warning("jobs: %s could not leave the runners' group: %s", consumer, REDACTOR.mask_secrets(str(exc)))

    async def requeue(self, ticket: JobTicket, note: str) -> None:
        info = StreamChunk(type="info", content=note, metadata={"job_restarted": True, "requeued": True})
        keys = [self.queue, self._job(ticket.job_id), self._events(ticket.job_id)]
        await self._scripts["requeue"](keys=keys, args=[GROUP, ticket.entry, ticket.job_id, chunk_json(info),
                                                        self.settings.max_events])
