"""The bounded, in-process store of past responses that ``previous_response_id`` continues from.

Each stored response keeps the whole conversation it ended (its input items plus its output), so a
follow-up request only sends what is new. Oldest entries go first once ``limit`` is reached.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from lollms_server.api.models import InputData

DEFAULT_LIMIT = 512


@dataclass(frozen=True)
class StoredResponse:
    response_id: str
    conversation: tuple[InputData, ...]
    instructions: str | None
    response: dict[str, Any] = field(default_factory=dict)  # the response object as it was sent


class ResponseStore:
    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self.limit = limit
        self._items: OrderedDict[str, StoredResponse] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, entry: StoredResponse) -> None:
        with self._lock:
            self._items[entry.response_id] = entry
            self._items.move_to_end(entry.response_id)
            while len(self._items) > self.limit:
                self._items.popitem(last=False)

    def get(self, response_id: str) -> StoredResponse | None:
        with self._lock:
            return self._items.get(response_id)

    def delete(self, response_id: str) -> bool:
        with self._lock:
            return self._items.pop(response_id, None) is not None

    def __len__(self) -> int:
        return len(self._items)
