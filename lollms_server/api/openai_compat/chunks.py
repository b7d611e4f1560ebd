"""The streamed chunks of /v1/chat/completions and /v1/completions, and the SSE encoder of both streams.

Per token only the delta of a chat chunk changes: its constant head (id, created, model, object…) is written
once per stream and each delta's text is escaped into it. The text is byte for byte what ``json.dumps`` gives
for the whole chunk dict (key order, ``", "`` separators, ASCII escapes), without encoding a dict per token.
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring_ascii as _string  # json.dumps(str) with its default ensure_ascii
from typing import Any, Callable, Protocol

from lollms_server.api.models import StreamChunk
from lollms_server.api.openai_compat.errors import OpenAIError
from lollms_server.api.openai_compat.textgen import Delta, Failure, Finish, TextEvent, TextEvents, ToolCallEvent
from lollms_server.api.sse import Final, Last

ARGUMENT_PIECE = 24  # characters of JSON arguments per streamed delta
_NOTHING: list[str] = []


class ChunkMaker(Protocol):
    def __call__(self, event: TextEvent) -> list[str]:
        """The JSON texts of the chunks one event becomes."""

    def text(self, content: str) -> str | list[str]:
        """The same for a Delta of answer text only (the common event, one call less)."""

    def usage(self, usage: dict[str, int]) -> str | None:
        """The JSON text of the chunk with the usage, or None when the client did not ask for it."""


def usage_fields(usage: dict[str, int] | None) -> dict[str, int]:
    u = usage or {}
    prompt, completion = int(u.get("prompt_tokens", 0)), int(u.get("completion_tokens", 0))
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": int(u.get("total_tokens", prompt + completion))}


def tool_call_pieces(event: ToolCallEvent) -> list[dict[str, Any]]:
    """A call as OpenAI streams it: index, id, type and name first, then the arguments in pieces."""
    args = event.call.arguments_json
    head = {"index": event.index, "id": event.call.id, "type": "function",
            "function": {"name": event.call.name, "arguments": ""}}
    return [head] + [{"index": event.index, "function": {"arguments": args[i:i + ARGUMENT_PIECE]}}
                     for i in range(0, len(args), ARGUMENT_PIECE)]


class ChatChunks:
    """The chunks of one chat completion stream (``chat.completion.chunk``). Reasoning and content never share a
    delta (clients such as lollms-client read only one of them); the first delta says ``role: assistant``."""

    def __init__(self, chunk_id: str, created: int, model: str, include_usage: bool) -> None:
        self._base = {"id": chunk_id, "created": created, "model": model}
        self._include_usage = include_usage
        self._head = (f'{{"id": {_string(chunk_id)}, "created": {int(created)}, "model": {_string(model)}, '
                      '"object": "chat.completion.chunk", "system_fingerprint": null, "choices": [{"index": 0, "delta": ')
        self._end = ', "logprobs": null}]' + (', "usage": null}' if include_usage else "}")
        self._role = '"role": "assistant", '  # in the first delta only

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> str:
        if self._role:
            delta = {"role": "assistant", **delta}
            self._role = ""
        reason = "null" if finish is None else _string(finish)
        return f'{self._head}{json.dumps(delta)}, "finish_reason": {reason}{self._end}'

    def text(self, content: str) -> str:
        role, self._role = self._role, ""
        return f'{self._head}{{{role}"content": {_string(content)}}}, "finish_reason": null{self._end}'

    def usage(self, usage: dict[str, int]) -> str | None:
        if not self._include_usage:
            return None
        return json.dumps({**self._base, "object": "chat.completion.chunk", "choices": [], "usage": usage})

    def __call__(self, event: TextEvent) -> list[str]:
        if isinstance(event, Delta):
            chunks = [self._chunk({"reasoning_content": event.reasoning})] if event.reasoning else []
            if event.content or not chunks:
                chunks.append(self.text(event.content))
            return chunks
        if isinstance(event, Finish):  # its delta is empty, or only the role when nothing came before
            delta, self._role = f'{{{self._role[:-2]}}}', ""
            return [f'{self._head}{delta}, "finish_reason": {_string(event.reason)}{self._end}']
        if isinstance(event, ToolCallEvent):
            return [self._chunk({"tool_calls": [piece]}) for piece in tool_call_pieces(event)]
        return []


class CompletionChunks:
    """The chunks of one text completion stream; with ``echo`` the prompt leads the first one."""

    def __init__(self, base: dict[str, Any], prefix: str, include_usage: bool) -> None:
        self._base = base
        self._prefix = prefix
        self._echoed = False
        self._include_usage = include_usage

    def text(self, content: str) -> list[str]:
        return self(Delta(content))

    def usage(self, usage: dict[str, int]) -> str | None:
        return json.dumps({**self._base, "choices": [], "usage": usage}) if self._include_usage else None

    def __call__(self, event: TextEvent) -> list[str]:
        text, finish = "", None
        if isinstance(event, Delta):
            text = event.content
        elif isinstance(event, Finish):
            finish = event.reason
        if not self._echoed:
            text, self._echoed = self._prefix + text, True
        if not text and finish is None:
            return []
        chunk = {**self._base, "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish}]}
        return [json.dumps({**chunk, "usage": None} if self._include_usage else chunk)]


def sse_encoder(events: TextEvents, make: ChunkMaker) -> Callable[[StreamChunk], str | list[str]]:
    """``SSEResponse(encode=...)``: the pipeline's StreamChunks as OpenAI-style SSE texts, ending with ``[DONE]``
    (after the usage chunk when asked for). Events ready together (the finish chunk, the usage chunk and [DONE])
    go out in one write."""

    def encode(chunk: StreamChunk) -> str | list[str]:
        text = events.plain_text(chunk)
        if text is not None:
            return make.text(text) if text else _NOTHING
        out: list[str] = []
        for event in events.feed(chunk):
            if isinstance(event, Failure):
                return Final([json.dumps(OpenAIError(event.status, event.message).body()), "[DONE]"])
            out += make(event)
            if isinstance(event, Finish):  # the last event
                usage = make.usage(usage_fields(event.usage))
                out += [usage, "[DONE]"] if usage is not None else ["[DONE]"]
                return Last(out) if events.early else Final(out)
        return out

    return encode
