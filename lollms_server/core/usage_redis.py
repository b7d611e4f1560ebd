"""The usage ledger in Redis (``resource_manager.backend: redis``): every replica writes to it and reads from it.

Keys (under ``<prefix>``):
- ``log``: sorted set of the most recent records (JSON), scored by their start time; at most ``max_records``
  (``usage.redis_max_records``), older ones trimmed (``trimmed`` holds the newest trimmed time) and records
  older than ``retention_days`` removed.
- ``h:<hour>``: one hash per hour (epoch seconds of its start) of running totals per combination of key,
  model, personality, binding, surface, status and generation type: requests, tokens, errors, cancelled,
  duration sum and max, time-to-first-token sum and count. Expires ``retention_days`` after its hour.
- ``hours``: sorted set of the hours that have totals.
- ``batches``: ids of the batches written in the last hour.
A batch is written by one Lua script (atomic), its records summed per hour and combination first; a batch
already written (retried after a lost reply) is skipped whole, so the totals stay exact. Rows come from ``log``. Totals add the hourly hashes of the whole
hours of the range and the records of ``log`` for the partial hours at its ends (a partial hour older than
what ``log`` still holds counts whole).
Writes go through ``QueuedLedger`` (bounded queue, batches, one writer thread): an outage holds the batch and
retries it, losing at most what does not fit in the queue. Reads with Redis down answer 503.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import time
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Iterator

from redis.exceptions import RedisError

from lollms_server.core.redis_conn import connect_sync, failure_reason, unreachable
from lollms_server.core.secrets import REDACTOR
from lollms_server.core.usage import GROUP_FIELDS, RECORD_COLUMNS, UsageQuery, UsageRecord
from lollms_server.core.usage_queue import QueuedLedger, WriteResult

log = logging.getLogger("lollms_server.usage")

DEFAULT_MAX_RECORDS = 100_000
HOUR = 3600
_PAGE = 1000
_SEP = "\x1f"
DIMS: tuple[str, ...] = ("key_id", "key_name", "model", "personality", "binding", "surface", "status", "generation_type")
_FILTERS: tuple[str, ...] = ("model", "personality", "binding", "surface", "status")
_SUMS: tuple[str, ...] = ("n", "pt", "ct", "err", "can", "ds", "ts", "tn")

# KEYS: log, trimmed, hours, hour-hash prefix, batches; ARGV: max_records, keep_seconds (0 = forever), batch id,
# record count, then (ts, member) per record, then 11 per (hour, dims) group of the batch:
# hour, dims, requests, prompt_tokens, completion_tokens, errors, cancelled, duration sum, duration max, ttft sum, ttft count
_WRITE = """
local log, trimmed, hours, prefix, batches = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local maxn, keep, nrec = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[4])
local t = redis.call('TIME')
redis.call('ZREMRANGEBYSCORE', batches, '-inf', tonumber(t[1]) - 3600)
if redis.call('ZADD', batches, 'NX', t[1], ARGV[3]) == 0 then
  return -1
end
for i = 5, 4 + 2 * nrec, 2 do
  redis.call('ZADD', log, ARGV[i], ARGV[i + 1])
end
for i = 5 + 2 * nrec, #ARGV, 11 do
  local h = prefix .. ARGV[i]
  local f = ARGV[i + 1] .. '\\31'
  redis.call('HINCRBY', h, f .. 'n', ARGV[i + 2])
  redis.call('HINCRBY', h, f .. 'pt', ARGV[i + 3])
  redis.call('HINCRBY', h, f .. 'ct', ARGV[i + 4])
  redis.call('HINCRBY', h, f .. 'err', ARGV[i + 5])
  redis.call('HINCRBY', h, f .. 'can', ARGV[i + 6])
  redis.call('HINCRBYFLOAT', h, f .. 'ds', ARGV[i + 7])
  local dx = tonumber(redis.call('HGET', h, f .. 'dx') or '-1')
  if tonumber(ARGV[i + 8]) > dx then redis.call('HSET', h, f .. 'dx', ARGV[i + 8]) end
  if ARGV[i + 10] ~= '0' then
    redis.call('HINCRBYFLOAT', h, f .. 'ts', ARGV[i + 9])
    redis.call('HINCRBY', h, f .. 'tn', ARGV[i + 10])
  end
  redis.call('ZADD', hours, ARGV[i], ARGV[i])
  if keep > 0 then redis.call('EXPIREAT', h, tonumber(ARGV[i]) + 3600 + keep) end
end
local n = redis.call('ZCARD', log)
if n > maxn then
  local cut = redis.call('ZRANGE', log, n - maxn - 1, n - maxn - 1, 'WITHSCORES')
  redis.call('ZREMRANGEBYRANK', log, 0, n - maxn - 1)
  if tonumber(cut[2]) > tonumber(redis.call('GET', trimmed) or '-1') then redis.call('SET', trimmed, cut[2]) end
end
return n
"""


def _round3(x: float) -> float:
    """Rounded to 3 decimals half away from zero, as SQLite's ROUND does (Python's round() is half to even)."""
    return float(Decimal(repr(x)).quantize(Decimal("0.001"), ROUND_HALF_UP))


def _floor_hour(t: float) -> int:
    return int(math.floor(t / HOUR) * HOUR)


def _ceil_hour(t: float) -> int:
    return int(math.ceil(t / HOUR) * HOUR)


def _dims(d: dict[str, Any]) -> str:
    return json.dumps([d.get(name) for name in DIMS], separators=(",", ":"))


def _batch_args(batch: list[UsageRecord]) -> list[Any]:
    """The script's arguments after the batch id: the records, then their sums per (hour, dims) group."""
    members: list[Any] = []
    groups: dict[tuple[int, str], dict[str, float]] = {}
    for rec in batch:
        d = dict(vars(rec))  # a plain dataclass: its fields, without asdict's deep copy
        members += [repr(float(rec.ts)), json.dumps(d, separators=(",", ":"))]
        _accumulate(groups.setdefault((_floor_hour(rec.ts), _dims(d)), _zero()), _record_sums(d))
    args: list[Any] = [len(batch), *members]
    for (hour, dims), a in groups.items():
        args += [hour, dims, int(a["n"]), int(a["pt"]), int(a["ct"]), int(a["err"]), int(a["can"]), repr(a["ds"]),
                 repr(a["dx"]), repr(a["ts"]), int(a["tn"])]
    return args


def _matches(d: dict[str, Any], q: UsageQuery) -> bool:
    if q.key and q.key not in (d.get("key_id"), d.get("key_name")):
        return False
    return all(not getattr(q, name) or d.get(name) == getattr(q, name) for name in _FILTERS)


def _zero() -> dict[str, float]:
    return {**{k: 0.0 for k in _SUMS}, "dx": -1.0}


def _accumulate(acc: dict[str, float], sums: dict[str, float]) -> None:
    """Add ``sums`` (one record's, or a group's) into ``acc``; ``dx`` is a maximum."""
    for k in _SUMS:
        acc[k] += float(sums.get(k, 0))
    acc["dx"] = max(acc["dx"], float(sums.get("dx", -1)))


def _record_sums(d: dict[str, Any]) -> dict[str, float]:
    ttft = d.get("ttft_ms")
    return {"n": 1, "pt": d.get("prompt_tokens") or 0, "ct": d.get("completion_tokens") or 0,
            "err": int(d.get("status") == "error"), "can": int(bool(d.get("cancelled"))), "ds": d.get("duration_ms") or 0.0,
            "dx": d.get("duration_ms") or 0.0, "ts": ttft or 0.0, "tn": int(ttft is not None)}


def _group_value(name: str, hour: int, d: dict[str, Any]) -> Any:
    if name == "day":
        return time.strftime("%Y-%m-%d", time.gmtime(hour))
    if name == "hour":
        return time.strftime("%Y-%m-%dT%H:00", time.gmtime(hour))
    return d.get(GROUP_FIELDS.get(name, name))


class _Totals:
    """Sums per group, shaped like the SQLite ledger's totals."""

    def __init__(self, group_by: list[str]) -> None:
        self.group_by = group_by
        self.groups: dict[tuple[Any, ...], dict[str, float]] = {}

    def add(self, hour: int, d: dict[str, Any], sums: dict[str, float]) -> None:
        key = tuple(_group_value(g, hour, d) for g in self.group_by)
        _accumulate(self.groups.setdefault(key, _zero()), sums)

    def result(self, limit: int) -> list[dict[str, Any]]:
        if not self.group_by and not self.groups:
            return [{"requests": 0, "prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0, "errors": None,
                     "cancelled": None, "avg_duration_ms": None, "max_duration_ms": None, "avg_ttft_ms": None}]
        out = []
        for key in sorted(self.groups, key=lambda k: tuple((v is not None, v if v is not None else "") for v in k)):
            a = self.groups[key]
            n = int(a["n"])
            out.append({
                **dict(zip(self.group_by, key)), "requests": n, "prompt_tokens": int(a["pt"]),
                "completion_tokens": int(a["ct"]), "total_tokens": int(a["pt"] + a["ct"]), "errors": int(a["err"]),
                "cancelled": int(a["can"]), "avg_duration_ms": _round3(a["ds"] / n) if n else None,
                "max_duration_ms": _round3(a["dx"]) if n else None,
                "avg_ttft_ms": _round3(a["ts"] / a["tn"]) if a["tn"] else None,
            })
        return out[: max(limit, 1)]


def _parse_hash(raw: dict[bytes, bytes]) -> Iterator[tuple[dict[str, Any], dict[str, float]]]:
    per_dims: dict[str, dict[str, float]] = {}
    for field, value in raw.items():
        dims, _, metric = field.decode().rpartition(_SEP)
        per_dims.setdefault(dims, {})[metric] = float(value)
    for dims, sums in per_dims.items():
        yield dict(zip(DIMS, json.loads(dims))), sums


class RedisUsageLedger(QueuedLedger):
    """``UsageLedger`` shared by every replica using the same Redis."""

    def __init__(self, url: str, *, store_text: bool = False, retention_days: int = 0, max_queue: int = 10000,
                 max_records: int = DEFAULT_MAX_RECORDS, prefix: str = "lollms:usage") -> None:
        super().__init__(store_text=store_text, retention_days=retention_days, max_queue=max_queue)
        REDACTOR.add(url)
        self.url = url
        self.max_records = max(1, max_records)
        self.prefix = prefix
        self.keys = [f"{prefix}:log", f"{prefix}:trimmed", f"{prefix}:hours", f"{prefix}:h:", f"{prefix}:batches"]
        self._client: Any = connect_sync(url)
        self._script = self._client.register_script(_WRITE)
        self._failing = False

    # ---- writing (the writer thread) ---------------------------------------------------------------
    def _open(self) -> None:
        try:
            self._client.ping()
        except RedisError as exc:
            log.warning("usage ledger (Redis): %s; records wait in the queue until it answers", self._reason(exc))

    def _close_target(self) -> None:
        self._client.close()

    @staticmethod
    def _reason(exc: BaseException) -> str:
        return failure_reason(exc)

    def _write(self, batch: list[UsageRecord]) -> WriteResult:
        # the batch id comes from its records: a batch retried after a lost reply is recognised and not counted twice
        batch_id = hashlib.sha256("\n".join(f"{r.request_id}\t{r.ts!r}" for r in batch).encode()).hexdigest()[:32]
        try:
            self._script(keys=self.keys, args=[self.max_records, self.retention_days * 86400, batch_id, *_batch_args(batch)])
        except RedisError as exc:
            if not self._failing:
                log.error("usage ledger: Redis (resource_manager.redis_url) is unreachable: %s", self._reason(exc))
            self._failing = True
            return "retry"
        self._failing = False
        return "written"

    def _retention(self) -> None:
        cutoff = time.time() - self.retention_days * 86400
        try:
            removed = self._client.zremrangebyscore(self.keys[0], "-inf", f"({cutoff!r}")
            self._client.zremrangebyscore(self.keys[2], "-inf", f"({_floor_hour(cutoff) - HOUR}")
            if removed:
                log.info("usage ledger: %d records older than %d days removed", removed, self.retention_days)
        except RedisError as exc:
            log.error("usage ledger retention failed: %s", self._reason(exc))

    # ---- reading -----------------------------------------------------------------------------------
    def _records(self, since: float | None, until: float | None, newest_first: bool) -> Iterator[dict[str, Any]]:
        lo = "-inf" if since is None else repr(float(since))
        hi = "+inf" if until is None else f"({float(until)!r}"
        offset = 0
        while True:
            if newest_first:
                page = self._client.zrevrangebyscore(self.keys[0], hi, lo, start=offset, num=_PAGE)
            else:
                page = self._client.zrangebyscore(self.keys[0], lo, hi, start=offset, num=_PAGE)
            for member in page:
                yield json.loads(member)
            if len(page) < _PAGE:
                return
            offset += _PAGE

    def _rows(self, q: UsageQuery) -> list[dict[str, Any]]:
        self._flush()
        out: list[dict[str, Any]] = []
        for d in self._records(q.since, q.until, newest_first=True):
            if _matches(d, q):
                out.append({c: d.get(c) for c in RECORD_COLUMNS} | {"cancelled": bool(d.get("cancelled"))})
                if len(out) >= q.limit:
                    break
        return out

    def _ranges(self, q: UsageQuery) -> tuple[list[int], list[tuple[float, float]]]:
        """Whole hours to read from the hourly totals, and partial ranges to read from the log."""
        trimmed = float(self._client.get(self.keys[1]) or -1)
        lo = -math.inf if q.since is None else _ceil_hour(q.since)
        hi = math.inf if q.until is None else _floor_hour(q.until)
        edges: list[tuple[float, float]] = []
        if lo > hi:
            assert q.since is not None and q.until is not None
            edges.append((q.since, q.until))
        else:
            if q.since is not None and q.since < lo:
                edges.append((q.since, lo))
            if q.until is not None and hi < q.until:
                edges.append((hi, q.until))
        lo_arg = "-inf" if lo == -math.inf else str(int(lo))
        hi_arg = "+inf" if hi == math.inf else f"({int(hi)}"
        hours = [int(h) for h in self._client.zrangebyscore(self.keys[2], lo_arg, hi_arg)] if lo <= hi else []
        exact: list[tuple[float, float]] = []
        for a, b in edges:
            if trimmed < a:
                exact.append((a, b))
            else:  # the log no longer holds all of this partial hour: count the whole hour
                hours.append(_floor_hour(a))
        return sorted(set(hours)), exact

    def _aggregate(self, q: UsageQuery, group_by: list[str]) -> _Totals:
        self._flush()
        totals = _Totals(group_by)
        hours, edges = self._ranges(q)
        pipe = self._client.pipeline(transaction=False)
        for h in hours:
            pipe.hgetall(f"{self.keys[3]}{h}")
        for h, raw in zip(hours, pipe.execute() if hours else []):
            for d, sums in _parse_hash(raw):
                if _matches(d, q):
                    totals.add(h, d, sums)
        for a, b in edges:
            for d in self._records(a, b, newest_first=False):
                if _matches(d, q):
                    totals.add(_floor_hour(float(d["ts"])), d, _record_sums(d))
        return totals

    def _guarded(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except RedisError as exc:
            raise unreachable("usage ledger", exc) from None

    async def rows(self, q: UsageQuery) -> list[dict[str, Any]]:
        return list(await asyncio.to_thread(self._guarded, self._rows, q))

    async def totals(self, q: UsageQuery, group_by: list[str]) -> list[dict[str, Any]]:
        for g in group_by:
            if g not in GROUP_FIELDS:
                raise ValueError(f"cannot group by '{g}'; use any of {', '.join(GROUP_FIELDS)}")
        totals: _Totals = await asyncio.to_thread(self._guarded, self._aggregate, q, group_by)
        return totals.result(q.limit)

    async def tokens_since(self, since: float) -> dict[str, int]:
        totals: _Totals = await asyncio.to_thread(self._guarded, self._aggregate, UsageQuery(since=since), ["key_id"])
        return {str(k[0]): int(v["pt"] + v["ct"]) for k, v in totals.groups.items() if k[0] is not None}
