"""Cut streamed text into sentences that can be spoken while the rest is still being written."""

from __future__ import annotations

import re

_BOUNDARY = re.compile(r"(?<=[.!?;:…。！？])[\"')\]]*\s+|\n+")


class SentenceCutter:
    """Feed text pieces; get back the sentences completed so far (at least ``min_chars`` long each)."""

    def __init__(self, min_chars: int) -> None:
        self.min_chars = min_chars
        self._buffer = ""

    def feed(self, text: str) -> list[str]:
        self._buffer += text
        out: list[str] = []
        start = 0
        for match in _BOUNDARY.finditer(self._buffer):
            candidate = self._buffer[start:match.end()].strip()
            if len(candidate) >= self.min_chars:
                out.append(candidate)
                start = match.end()
        self._buffer = self._buffer[start:]
        return out

    def flush(self) -> list[str]:
        rest, self._buffer = self._buffer.strip(), ""
        return [rest] if any(ch.isalnum() for ch in rest) else []
