"""Ollama's reply objects: the streamed NDJSON lines and the final one with counts and timings (ns)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable

from lollms_server.api.ollama.names import now_iso
from lollms_server.api.ollama.errors import OllamaError
from lollms_server.api.openai_compat.textgen import Delta, Failure, Finish, TextEvent, ToolCallEvent
from lollms_server.core.tools import ToolCall

NDJSON = "application/x-ndjson"


@dataclass
class Clock:
    """Timings of one request: prompt evaluation ends at the first token, generation at the last."""

    started: int = field(default_factory=time.perf_counter_ns)
    first_token: int | None = None

    def token(self) -> None:
        if self.first_token is None:
            self.first_token = time.perf_counter_ns()

    def final(self, usage: dict[str, int] | None, done_reason: str) -> dict[str, Any]:
        end = time.perf_counter_ns()
        first = self.first_token or end
        u = usage or {}
        return {
            "done": True, "done_reason": done_reason, "total_duration": end - self.started, "load_duration": 0,
            "prompt_eval_count": int(u.get("prompt_tokens", 0)), "prompt_eval_duration": first - self.started,
            "eval_count": int(u.get("completion_tokens", 0)), "eval_duration": end - first,
        }


def ollama_call(index: int, call: ToolCall) -> dict[str, Any]:
    """A tool call as Ollama writes it: arguments as an object, not a JSON string."""
    return {"id": call.id, "function": {"index": index, "name": call.name, "arguments": call.arguments}}


def line(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj, ensure_ascii=False) + "\n").encode()


# how one piece of answer text (and reasoning) is put in a reply of each endpoint
Shape = Callable[[str, str | None], dict[str, Any]]


def chat_shape(content: str, thinking: str | None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if thinking:
        message["thinking"] = thinking
    return {"message": message}


def generate_shape(content: str, thinking: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"response": content}
    if thinking:
        out["thinking"] = thinking
    return out


def _reason(finish: Finish) -> str:
    return "stop" if finish.reason == "tool_calls" else finish.reason  # Ollama ends a tool-call answer with "stop"


async def ndjson(events: AsyncIterator[TextEvent], model: str, shape: Shape, keep_thinking: bool) -> AsyncIterator[bytes]:
    """Stream lines with ``done: false``, then a final ``done: true`` line, or one ``{"error"}`` line."""
    clock = Clock()
    async for event in events:
        if isinstance(event, Delta):
            thinking = event.reasoning if keep_thinking else ""
            if event.content or thinking:
                clock.token()
                yield line({"model": model, "created_at": now_iso(), **shape(event.content, thinking or None), "done": False})
        elif isinstance(event, ToolCallEvent):
            clock.token()
            message = {"role": "assistant", "content": "", "tool_calls": [ollama_call(event.index, event.call)]}
            yield line({"model": model, "created_at": now_iso(), "message": message, "done": False})
        elif isinstance(event, Failure):
            yield line({"error": event.message})
            return
        elif isinstance(event, Finish):
            yield line({"model": model, "created_at": now_iso(), **shape("", None), **clock.final(event.usage, _reason(event))})
            return


async def collect(events: AsyncIterator[TextEvent], model: str, shape: Shape, keep_thinking: bool) -> dict[str, Any]:
    """The same events gathered into one reply (so timings are measured the same way as when streaming)."""
    clock = Clock()
    content: list[str] = []
    thinking: list[str] = []
    calls: list[dict[str, Any]] = []
    async for event in events:
        if isinstance(event, ToolCallEvent):
            clock.token()
            calls.append(ollama_call(event.index, event.call))
        elif isinstance(event, Delta):
            if event.content or event.reasoning:
                clock.token()
            content.append(event.content)
            thinking.append(event.reasoning if keep_thinking else "")
        elif isinstance(event, Failure):
            raise OllamaError(event.status, event.message)
        elif isinstance(event, Finish):
            reply = {"model": model, "created_at": now_iso(), **shape("".join(content), "".join(thinking) or None),
                     **clock.final(event.usage, _reason(event))}
            if calls and "message" in reply:
                reply["message"]["tool_calls"] = calls
            return reply
    raise OllamaError(500, "the generation ended without a result")
