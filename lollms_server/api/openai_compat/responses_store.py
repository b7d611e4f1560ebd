"""The store of past responses that ``previous_response_id`` continues from, behind a small interface.

Each stored response keeps the whole conversation it ended (its input items plus its output), so a
follow-up request only sends what is new. Every entry belongs to the API key that created it (``owner``,
the key id; None when auth is off): another key neither sees nor continues it. Entries expire after
``responses.ttl_seconds``; the oldest go first once ``responses.max_stored`` is reached.
``MemoryResponseStore`` keeps them in this process; ``RedisResponseStore`` (``responses_store_redis.py``)
in Redis, shared by every replica (``resource_manager.backend: redis``).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Protocol

from lollms_server.api.models import InputData

DEFAULT_LIMIT = 512
DEFAULT_TTL_SECONDS = 30 * 86400


@dataclass(frozen=True)
class StoredResponse:
    response_id: str
    conversation: tuple[InputData, ...]
    instructions: str | None
    response: dict[str, Any] = field(default_factory=dict)  # the response object as it was sent
    owner: str | None = None  # id of the API key that created it

    def to_json(self) -> dict[str, Any]:
        return {"response_id": self.response_id, "conversation": [i.model_dump(mode="json") for i in self.conversation],
                "instructions": self.instructions, "response": self.response, "owner": self.owner}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "StoredResponse":
        return cls(str(data["response_id"]), tuple(InputData.model_validate(i) for i in data["conversation"]),
                   data.get("instructions"), dict(data.get("response") or {}), data.get("owner"))


class ResponseStore(Protocol):
    async def put(self, entry: StoredResponse) -> None: ...

    async def get(self, response_id: str, owner: str | None) -> StoredResponse | None:
        """The entry when it exists, has not expired and belongs to ``owner``; else None."""

    async def delete(self, response_id: str, owner: str | None) -> bool: ...

    async def close(self) -> None: ...


class MemoryResponseStore:
    def __init__(self, limit: int = DEFAULT_LIMIT, ttl_seconds: float = DEFAULT_TTL_SECONDS) -> None:
        self.limit = limit
        self.ttl = ttl_seconds
        self._items: OrderedDict[str, tuple[float, StoredResponse]] = OrderedDict()
        self._lock = threading.Lock()

    async def put(self, entry: StoredResponse) -> None:
        with self._lock:
            self._items[entry.response_id] = (time.monotonic() + self.ttl, entry)
            self._items.move_to_end(entry.response_id)
            while len(self._items) > self.limit:
                self._items.popitem(last=False)

    def _live(self, response_id: str, owner: str | None) -> StoredResponse | None:
        item = self._items.get(response_id)
        if item is None:
            return None
        expires, entry = item
        if expires < time.monotonic():
            del self._items[response_id]
            return None
        return entry if entry.owner == owner else None

    async def get(self, response_id: str, owner: str | None) -> StoredResponse | None:
        with self._lock:
            return self._live(response_id, owner)

    async def delete(self, response_id: str, owner: str | None) -> bool:
        with self._lock:
            if self._live(response_id, owner) is None:
                return False
            del self._items[response_id]
            return True

    async def close(self) -> None:
        return None

    def __len__(self) -> int:
        return len(self._items)
