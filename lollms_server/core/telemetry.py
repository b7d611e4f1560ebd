"""Who asked and how it went: per-key limits before a generation, a usage record and metrics after it.

Every surface (/api/v1, /v1, extensions through ``ctx.llm``…) passes a ``Caller`` to the pipeline;
the pipeline opens one ``Trace`` per generation and ends it exactly once (ok, error or cancelled).
Ending a trace only queues the usage record and bumps in-memory counters: nothing waits for disk.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lollms_server.core.apikeys import ApiKey
from lollms_server.core.contract import OutputData
from lollms_server.core.errors import LollmsError
from lollms_server.core.limits import KeyLimiter, MemoryKeyLimiter
from lollms_server.core.metrics import Metrics
from lollms_server.core.usage import NullLedger, Status, UsageLedger, UsageRecord

if TYPE_CHECKING:
    from lollms_server.core.bindings.base import GenerationTask
    from lollms_server.core.config import ServerConfig


@dataclass(frozen=True)
class Caller:
    """The surface a request came through, the API key it used (None when auth is off) and its id."""

    surface: str = "internal"
    key: ApiKey | None = None
    request_id: str | None = None

    @property
    def key_id(self) -> str | None:
        return self.key.id if self.key else None


def error_kind(exc: BaseException) -> str:
    if isinstance(exc, LollmsError):
        return f"{exc.status_code}_{type(exc).__name__}"
    return type(exc).__name__


class Trace:
    """One generation's measurements. ``end`` records it once; later calls do nothing."""

    def __init__(self, hub: "Telemetry", caller: Caller, request_id: str, generation_type: str, binding: str | None,
                 model: str | None, personality: str | None, streamed: bool) -> None:
        self.hub = hub
        self.caller = caller
        self.record = UsageRecord(
            request_id=request_id, ts=time.time(), surface=caller.surface, generation_type=generation_type,
            key_id=caller.key_id, key_name=caller.key.name if caller.key else None,
            binding=binding, model=model, personality=personality,
        )
        self.streamed = streamed
        self._t0 = time.perf_counter()
        self.done = False

    def first_token(self) -> None:
        if self.record.ttft_ms is None:
            self.record.ttft_ms = round((time.perf_counter() - self._t0) * 1000, 3)

    def end(self, status: Status, task: "GenerationTask", outputs: list[OutputData] | None = None,
            error: str | None = None) -> None:
        """``error`` is a short kind (e.g. ``500_BackendError``), never a message."""
        if self.done:
            return
        self.done = True
        rec = self.record
        rec.duration_ms = round((time.perf_counter() - self._t0) * 1000, 3)
        rec.status = status
        rec.cancelled = status == "cancelled"
        rec.error = error
        usage = task.usage or {}
        rec.prompt_tokens = usage.get("prompt_tokens")
        rec.completion_tokens = usage.get("completion_tokens")
        if self.hub.ledger.store_text:
            rec.prompt_text = task.prompt
            rec.answer_text = "".join(str(o.data) for o in outputs or [] if o.type == "text" and o.data is not None)
        self.hub.finish(self)


class Telemetry:
    def __init__(self, ledger: UsageLedger | None = None, metrics: Metrics | None = None,
                 limiter: KeyLimiter | None = None) -> None:
        self.ledger: UsageLedger = ledger or NullLedger()
        self.metrics = metrics
        self.limiter: KeyLimiter = limiter or MemoryKeyLimiter()

    async def start(self) -> None:
        await self.ledger.start()
        await self.limiter.start(self.ledger)

    async def close(self) -> None:
        try:
            await self.limiter.close()
        finally:
            await self.ledger.close()

    async def problem(self) -> str | None:
        """Why the shared per-key limits (and so the ledger, on the same Redis) cannot be used now; None when fine."""
        return await self.limiter.problem()

    async def admit(self, caller: Caller, binding: str | None) -> None:
        if caller.key is None:
            return
        try:
            await self.limiter.admit(caller.key)
        except LollmsError as exc:
            self.count_error(caller.surface, binding, error_kind(exc))
            raise

    def count_error(self, surface: str, binding: str | None, kind: str) -> None:
        if self.metrics is not None:
            self.metrics.inc(self.metrics.errors, (surface, binding or "", kind))

    def trace(self, caller: Caller, request_id: str, generation_type: str, binding: str | None, model: str | None,
              personality: str | None, streamed: bool) -> Trace:
        return Trace(self, caller, request_id, generation_type, binding, model, personality, streamed)

    def finish(self, trace: Trace) -> None:
        rec = trace.record
        self.ledger.record(rec)
        if rec.key_id and rec.total_tokens:
            self.limiter.add_tokens(rec.key_id, rec.total_tokens)
        m = self.metrics
        if m is None:
            return
        surface, binding = rec.surface, rec.binding or ""
        m.inc(m.generations, (surface, binding, rec.status))
        m.observe(m.latency, (surface, binding), rec.duration_ms / 1000)
        if rec.ttft_ms is not None:
            m.observe(m.ttft, (surface, binding), rec.ttft_ms / 1000)
        if rec.prompt_tokens:
            m.inc(m.tokens, (surface, binding, "prompt"), rec.prompt_tokens)
        if rec.completion_tokens:
            m.inc(m.tokens, (surface, binding, "completion"), rec.completion_tokens)
        if rec.status == "error":
            m.inc(m.errors, (surface, binding, rec.error or "error"))

def build_telemetry(config: "ServerConfig", metrics: Metrics | None = None) -> Telemetry:
    """The ledger, metrics and limiter the configuration asks for (in Redis with ``resource_manager.backend: redis``)."""
    from lollms_server.core.paths import resolve_config_path
    from lollms_server.core.redis_conn import key_prefix, redis_url, shared_state_enabled

    usage = config.section("usage")
    rm = config.section("resource_manager")
    store_text, retention = bool(usage.get("store_text")), int(usage.get("retention_days") or 0)
    ledger: UsageLedger = NullLedger()
    if shared_state_enabled(rm):
        from lollms_server.core.limits_redis import RedisKeyLimiter
        from lollms_server.core.usage_redis import DEFAULT_MAX_RECORDS, RedisUsageLedger

        url, prefix = redis_url(rm), key_prefix(rm)
        if usage.get("enabled", True):
            ledger = RedisUsageLedger(url, store_text=store_text, retention_days=retention, prefix=f"{prefix}:usage",
                                      max_records=int(usage.get("redis_max_records") or DEFAULT_MAX_RECORDS))
        return Telemetry(ledger, metrics, RedisKeyLimiter(url, prefix=f"{prefix}:limits"))
    from lollms_server.core.usage_sqlite import SqliteUsageLedger

    if usage.get("enabled", True):
        db = resolve_config_path(str(usage.get("database") or "usage.sqlite"), config.paths.config_dir)
        assert db is not None
        ledger = SqliteUsageLedger(db, store_text=store_text, retention_days=retention)
    return Telemetry(ledger, metrics, MemoryKeyLimiter())
