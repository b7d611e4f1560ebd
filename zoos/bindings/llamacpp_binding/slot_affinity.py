"""Which llama-server slot a request goes to: the idle slot whose last prompt the new prompt continues.

llama-server picks a slot by prompt similarity. Conversations that share a long system prompt all look alike
to it, so interleaved conversations land on the same slot and each turn recomputes the other's history. The
binding remembers the prompt each slot last held and pins a request (``id_slot``) to the idle slot it
continues; else to a slot never used; else to the idle slot sharing the longest prefix (least recently used
first). With no idle slot the request is not pinned and the server queues it as usual.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

Prompt = str | list[int]


def _held(prompt: Any) -> Prompt:
    """What a slot is known to hold: the prompt, or the text of a multimodal prompt (markers for the images)."""
    return str(prompt.get("prompt_string") or "") if isinstance(prompt, dict) else prompt


def shared_prefix(a: Prompt, b: Prompt) -> int:
    """Length of the common prefix of two prompts of the same kind (text or token ids); 0 across kinds."""
    if isinstance(a, str) and isinstance(b, str):
        lo, hi = 0, min(len(a), len(b))
        while lo < hi:  # binary search with C-level comparisons: fast on long texts
            mid = (lo + hi + 1) // 2
            if a[:mid] == b[:mid]:
                lo = mid
            else:
                hi = mid - 1
        return lo
    if isinstance(a, list) and isinstance(b, list):
        n = 0
        for x, y in zip(a, b):
            if x != y:
                break
            n += 1
        return n
    return 0


@dataclass
class _Slot:
    prompt: Sequence[Any] = ""
    busy: bool = False
    used: float = 0.0


class SlotAffinity:
    """Our view of one llama-server's slots: which are running a request of ours, what each last held."""

    def __init__(self, slots: int) -> None:
        self._slots = [_Slot() for _ in range(slots)]

    def take(self, prompt: Prompt | dict[str, Any]) -> int | None:
        """The slot to pin this prompt to (marked busy), or None when every slot is busy."""
        prompt = _held(prompt)
        best: tuple[Any, ...] | None = None
        chosen: int | None = None
        for i, slot in enumerate(self._slots):
            if slot.busy:
                continue
            held: Any = slot.prompt
            shared = shared_prefix(held, prompt)
            continues = bool(held) and shared == len(held)
            rank = (continues, shared if continues else 0, not held, shared, -slot.used)
            if best is None or rank > best:
                best, chosen = rank, i
        if chosen is not None:
            self._slots[chosen].busy = True
        return chosen

    def release(self, index: int, prompt: Prompt | dict[str, Any]) -> None:
        """The request on ``index`` ended; the slot now holds ``prompt`` (and what was generated after it)."""
        slot = self._slots[index]
        slot.busy, slot.prompt, slot.used = False, _held(prompt), time.monotonic()

    def forget(self) -> None:
        """The server restarted: its slots are empty."""
        for slot in self._slots:
            slot.prompt = ""
