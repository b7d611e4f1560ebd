"""Per-key limits (requests per minute, tokens per day), behind a small interface.

``MemoryKeyLimiter`` keeps the counters in this process (seeded from the usage ledger at start-up so a
restart does not reset the day's tokens). ``RedisKeyLimiter`` (``core/limits_redis.py``) counts them in Redis
so the limits hold across every replica.
"""

from __future__ import annotations

import collections
import math
import time
from typing import Protocol

from lollms_server.core.apikeys import ApiKey
from lollms_server.core.errors import RateLimitedError
from lollms_server.core.usage import UsageLedger, start_of_day

_WINDOW = 60.0


class KeyLimiter(Protocol):
    shared: bool  # True: the counters are shared by every replica

    async def admit(self, key: ApiKey) -> None:
        """Count one request of ``key`` or raise RateLimitedError (429 + Retry-After)."""

    def add_tokens(self, key_id: str, tokens: int) -> None:
        """Count the tokens a finished generation of ``key_id`` used; never blocks."""

    async def start(self, ledger: UsageLedger) -> None:
        """Ready the counters (the in-process one seeds the day's tokens from ``ledger``)."""

    async def close(self) -> None: ...

    async def problem(self) -> str | None:
        """Why the counters cannot be used now (a shared store unreachable); None when they can."""


class MemoryKeyLimiter:
    shared = False

    def __init__(self) -> None:
        self._recent: dict[str, collections.deque[float]] = collections.defaultdict(collections.deque)
        self._tokens: dict[str, int] = collections.defaultdict(int)
        self._day = start_of_day()

    def _roll_day(self, now: float) -> None:
        day = start_of_day(now)
        if day != self._day:
            self._day = day
            self._tokens.clear()

    async def start(self, ledger: UsageLedger) -> None:
        self.seed(await ledger.tokens_since(start_of_day()))

    async def close(self) -> None:
        return None

    async def problem(self) -> str | None:
        return None

    async def admit(self, key: ApiKey) -> None:
        self.check(key)

    def check(self, key: ApiKey) -> None:
        if not key.limited:
            return
        now = time.time()
        self._roll_day(now)
        if key.tokens_per_day and self._tokens[key.id] >= key.tokens_per_day:
            raise RateLimitedError(
                f"API key '{key.name}' used its {key.tokens_per_day} tokens for today (UTC); the limit resets at midnight UTC",
                math.ceil(self._day + 86400 - now),
            )
        if key.requests_per_minute:
            recent = self._recent[key.id]
            while recent and recent[0] <= now - _WINDOW:
                recent.popleft()
            if len(recent) >= key.requests_per_minute:
                raise RateLimitedError(
                    f"API key '{key.name}' is limited to {key.requests_per_minute} requests per minute",
                    math.ceil(recent[0] + _WINDOW - now),
                )
            recent.append(now)

    def add_tokens(self, key_id: str, tokens: int) -> None:
        self._roll_day(time.time())
        self._tokens[key_id] += max(0, int(tokens))

    def seed(self, tokens_today: dict[str, int]) -> None:
        for key_id, n in tokens_today.items():
            self._tokens[key_id] += n
