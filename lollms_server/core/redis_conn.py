"""The one Redis connection setting every shared-state store uses (slots, jobs, ledger, limits, responses).

``resource_manager.backend: redis`` switches the whole process to shared state; the URL comes from the
``LOLLMS_REDIS_URL`` environment variable or ``resource_manager.redis_url``.
"""

from __future__ import annotations

import os
import re
from typing import Any

from lollms_server.core.config_schema import MAIN_SCHEMA
from lollms_server.core.errors import SharedStateUnavailableError
from lollms_server.core.secrets import REDACTOR

REDIS_URL_ENV = "LOLLMS_REDIS_URL"
RETRY_AFTER_SECONDS = 5  # Retry-After of the 503 a shared store answers while Redis is unreachable
KEY_PREFIX: str = MAIN_SCHEMA["resource_manager"]["schema"]["redis_prefix"]["default"]
_PREFIX_CHARS = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}")


def shared_state_enabled(rm: dict[str, Any]) -> bool:
    """True when ``resource_manager.backend`` is redis (state shared by every replica)."""
    return str(rm.get("backend") or "memory") == "redis"


def redis_url(rm: dict[str, Any]) -> str:
    """The Redis URL for backend redis; ValueError naming the setting when none is set."""
    url = os.environ.get(REDIS_URL_ENV) or rm.get("redis_url") or ""
    if not url:
        raise ValueError(f"resource_manager.backend is redis but no resource_manager.redis_url (or {REDIS_URL_ENV}) is set")
    return str(url)


def key_prefix(rm: dict[str, Any]) -> str:
    """``resource_manager.redis_prefix``: every key and channel of this cluster starts with it and a colon."""
    prefix = str(rm.get("redis_prefix") or KEY_PREFIX)
    if not _PREFIX_CHARS.fullmatch(prefix):
        raise ValueError(f"resource_manager.redis_prefix '{prefix}': use 1 to 64 letters, digits, '_', '-', '.' or ':' "
                         "(beginning with a letter or digit)")
    return prefix.rstrip(":")


def connect(url: str) -> Any:
    """An asyncio Redis client with bounded connect and socket timeouts (it connects lazily).

    redis is the optional ``redis`` extra: imported only when a store is really built.
    """
    import redis.asyncio as aioredis

    return aioredis.from_url(url, socket_connect_timeout=2, socket_timeout=5)


def connect_sync(url: str) -> Any:
    """A blocking Redis client with the same timeouts, for worker threads (the usage ledger's writer)."""
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)


def failure_reason(exc: BaseException) -> str:
    """What went wrong talking to Redis, with any secret (the URL's password) masked."""
    return REDACTOR.mask_secrets(str(exc) or type(exc).__name__)


def unreachable(store: str, exc: BaseException, consequence: str = "") -> SharedStateUnavailableError:
    """The 503 of a shared store (``store``: e.g. "job store") whose Redis does not answer."""
    return SharedStateUnavailableError(
        f"the shared {store} (Redis, resource_manager.redis_url) is unreachable: {failure_reason(exc)}; "
        f"{consequence}retry in {RETRY_AFTER_SECONDS}s", RETRY_AFTER_SECONDS,
    )
