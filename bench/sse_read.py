"""Reading a server-sent event stream as a benchmark sees it: how many tokens, and when the first text came.

Each server streams JSON events of its own shape; an ``EventShape`` says which events carry text and which
one holds the token count. ``timed_stream`` posts a body, reads the stream to its end and gives
(tokens, seconds from the request to the first text).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

Event = dict[str, Any]


@dataclass(frozen=True)
class EventShape:
    has_text: Callable[[Event], bool]
    tokens: Callable[[Event], int | None] | None  # the token count an event holds, None if it holds none;
    # None (no such event): the tokens are the events with text


def _chat_text(ev: Event) -> bool:
    return bool(ev.get("choices") and ev["choices"][0]["delta"].get("content"))


# OpenAI chat completions (``stream_options.include_usage``: the last event holds the usage)
OPENAI_CHAT = EventShape(_chat_text, lambda ev: int(ev["usage"]["completion_tokens"]) if ev.get("usage") else None)
# lollms-server /api/v1/generate: one event per chunk of text (typed ``chunk``)
LOLLMS_GENERATE = EventShape(lambda ev: ev.get("type") == "chunk", None)
# llama-server /completion: the final event (``stop``) holds tokens_predicted
LLAMA_COMPLETION = EventShape(lambda ev: bool(ev.get("content")),
                              lambda ev: int(ev.get("tokens_predicted") or 0) if ev.get("stop") else None)


def timed_stream(client: httpx.Client, path: str, body: dict[str, Any], shape: EventShape) -> tuple[int, float]:
    """(tokens, seconds to the first text; 0.0 when none came) of one streamed POST."""
    tokens, t0, first = 0, time.perf_counter(), 0.0
    with client.stream("POST", path, json=body) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if not line.startswith("data: ") or line[6:] == "[DONE]":
                continue
            ev = json.loads(line[6:])
            if shape.has_text(ev):
                first = first or time.perf_counter() - t0
                if shape.tokens is None:
                    tokens += 1
            if shape.tokens is not None:
                counted = shape.tokens(ev)
                if counted is not None:
                    tokens = counted
    return tokens, first
