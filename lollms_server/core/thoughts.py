"""Separate <think>…</think> reasoning from answer text, also when tags are split across chunks."""

from __future__ import annotations

OPEN, CLOSE = "<think>", "</think>"


class ThinkSplitter:
    """Incremental parser: feed text pieces, get (answer_text, thought_text) for each piece."""

    def __init__(self) -> None:
        self._in_think = False
        self._pending = ""

    def feed(self, text: str) -> tuple[str, str]:
        buf = self._pending + text
        self._pending = ""
        answer: list[str] = []
        thought: list[str] = []
        while buf:
            tag = CLOSE if self._in_think else OPEN
            idx = buf.find(tag)
            if idx >= 0:
                (thought if self._in_think else answer).append(buf[:idx])
                buf = buf[idx + len(tag):]
                self._in_think = not self._in_think
                continue
            keep = _partial_suffix(buf, tag)
            emit = buf[: len(buf) - keep] if keep else buf
            (thought if self._in_think else answer).append(emit)
            self._pending = buf[len(buf) - keep:] if keep else ""
            break
        return "".join(answer), "".join(thought)

    def flush(self) -> tuple[str, str]:
        rest, self._pending = self._pending, ""
        return ("", rest) if self._in_think else (rest, "")


def _partial_suffix(buf: str, tag: str) -> int:
    """Length of the longest suffix of ``buf`` that is a proper prefix of ``tag``."""
    for n in range(min(len(tag) - 1, len(buf)), 0, -1):
        if buf.endswith(tag[:n]):
            return n
    return 0


def split_thoughts(text: str) -> tuple[str, str | None]:
    """Whole-text version: returns (answer, thoughts or None)."""
    s = ThinkSplitter()
    a, t = s.feed(text)
    a2, t2 = s.flush()
    thoughts = (t + t2).strip()
    return (a + a2).strip(), (thoughts or None)
