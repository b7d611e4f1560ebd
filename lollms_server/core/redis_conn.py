"""The one Redis connection setting every shared-state store uses (slots, jobs, ledger, limits, responses).

``resource_manager.backend: redis`` switches the whole process to shared state; the URL comes from the
``LOLLMS_REDIS_URL`` environment variable or ``resource_manager.redis_url``.
"""

from __future__ import annotations

import os
from typing import Any

import redis.asyncio as aioredis

REDIS_URL_ENV = "LOLLMS_REDIS_URL"
KEY_PREFIX = "lollms"


def shared_state_enabled(rm: dict[str, Any]) -> bool:
    """True when ``resource_manager.backend`` is redis (state shared by every replica)."""
    return str(rm.get("backend") or "memory") == "redis"


def redis_url(rm: dict[str, Any]) -> str:
    """The Redis URL for backend redis; ValueError naming the setting when none is set."""
    url = os.environ.get(REDIS_URL_ENV) or rm.get("redis_url") or ""
    if not url:
        raise ValueError(f"resource_manager.backend is redis but no resource_manager.redis_url (or {REDIS_URL_ENV}) is set")
    return str(url)


def connect(url: str) -> Any:
    """An asyncio Redis client with bounded connect and socket timeouts (it connects lazily)."""
    return aioredis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
