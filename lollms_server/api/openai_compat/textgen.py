"""Run or stream a text plan and give back answer text, reasoning, finish reason and usage.

Stop sequences are enforced here on the answer text, whatever the backend does with the ``stop``
parameter: a sequence split across chunks is held back until it is known, and once one is seen the
stream is closed, which cancels the backend's work.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, AsyncGenerator, AsyncIterator, NamedTuple, Union

from lollms_server.api.models import OutputData, StreamChunk
from lollms_server.core.generation import GenerationPlan
from lollms_server.core.tools import ToolCall, calls_of_metadata


class StopScanner:
    """Incremental stop-sequence finder: ``feed`` returns (text safe to emit, stopped?)."""

    def __init__(self, stops: list[str]) -> None:
        self.stops = [s for s in stops if s]
        self._pending = ""
        self.stopped = False

    def feed(self, text: str) -> tuple[str, bool]:
        if self.stopped:
            return "", True
        if not self.stops:
            return text, False
        buf = self._pending + text
        hits = [i for i in (buf.find(s) for s in self.stops) if i >= 0]
        if hits:
            self._pending, self.stopped = "", True
            return buf[: min(hits)], True
        keep = max((n for s in self.stops for n in range(1, len(s)) if buf.endswith(s[:n])), default=0)
        self._pending = buf[len(buf) - keep:] if keep else ""
        return buf[: len(buf) - keep], False

    def flush(self) -> str:
        rest, self._pending = self._pending, ""
        return "" if self.stopped else rest


@dataclass
class Delta:
    content: str = ""
    reasoning: str = ""


@dataclass
class Failure:
    message: str
    status: int = 500


@dataclass
class Finish:
    reason: str
    usage: dict[str, int] | None = None


@dataclass
class ToolCallEvent:
    """A complete tool call the model proposed; ``index`` counts the calls of this answer from 0."""

    index: int
    call: ToolCall


class TextResult(NamedTuple):
    content: str
    reasoning: str | None
    finish_reason: str
    usage: dict[str, int] | None
    extras: list[OutputData]
    tool_calls: list[ToolCall]


TextEvent = Union[Delta, Failure, Finish, ToolCallEvent]


class _Outputs(NamedTuple):
    """What the OpenAI shapes read of the pipeline's outputs."""

    text: str  # of the text outputs, joined
    thoughts: str
    calls: list[ToolCall]  # the tool calls recorded in the text outputs' metadata
    usage: dict[str, int] | None  # of the first output that reports it
    raw_reason: Any  # the pipeline's finish reason (first output's metadata)
    extras: list[OutputData]  # outputs that are not text


def _read(outputs: list[OutputData]) -> _Outputs:
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[ToolCall] = []
    extras: list[OutputData] = []
    usage: dict[str, int] | None = None
    for out in outputs:
        meta = out.metadata
        if out.type == "text":
            if out.data is not None:
                texts.append(str(out.data))
            if out.thoughts:
                thoughts.append(out.thoughts)
            if meta and meta.get("tool_calls"):
                calls += calls_of_metadata(meta)
        else:
            extras.append(out)
        if usage is None:
            usage = _usage_of(meta)
    raw = (outputs[0].metadata or {}).get("finish_reason") if outputs else None
    return _Outputs("".join(texts), "\n".join(thoughts), calls, usage, raw, extras)


def _usage_of(meta: dict[str, Any] | None) -> dict[str, int] | None:
    """The token counts an output's metadata reports (its numbers), or None."""
    raw = meta.get("usage") if meta else None
    return {k: int(v) for k, v in raw.items() if isinstance(v, (int, float))} if isinstance(raw, dict) else None


def _finish_reason(raw: str | None, stopped: bool) -> str:
    """OpenAI's finish_reason from the pipeline's (set by the binding through GenerationTask.set_finish_reason)."""
    if stopped:
        return "stop"
    return raw if raw in ("length", "content_filter") else "stop"


def text_result(outputs: list[OutputData], plan: GenerationPlan, stops: list[str]) -> TextResult:
    if len(outputs) == 1 and not stops:  # the common answer: one text output, no stop sequence to look for
        out = outputs[0]
        meta = out.metadata
        if out.type == "text" and type(out.data) is str and not out.thoughts and not (meta and meta.get("tool_calls")):
            reason = _finish_reason(meta.get("finish_reason") if meta else None, False)
            return TextResult(out.data, None, reason, _usage_of(meta), [], [])
    read = _read(outputs)
    kept, stopped = read.text, False
    if any(stops):
        scanner = StopScanner(stops)
        kept, stopped = scanner.feed(read.text)
        kept += scanner.flush()
    reason = "tool_calls" if read.calls else _finish_reason(read.raw_reason, stopped)
    return TextResult(kept, read.thoughts or None, reason, read.usage, read.extras, read.calls)


class TextEvents:
    """The pipeline's StreamChunks as TextEvents, one chunk at a time: Deltas, then a Finish or a Failure.

    ``done`` is then set. ``early``: it ended before the stream's final event (a stop sequence was seen): the
    caller stops reading, which closes the stream and cancels the work; after the final event nothing follows.
    """

    def __init__(self, plan: GenerationPlan, stops: list[str]) -> None:
        self.plan = plan
        self.scanner = StopScanner(stops)
        self.streamed = False
        self.failure: str | None = None
        self.n_calls = 0
        self.done = False
        self.early = False

    def plain_text(self, chunk: StreamChunk) -> str | None:
        """The text of an answer chunk without thoughts while no stop sequence is watched (the common event,
        which ``feed`` would turn into one Delta of that text, or nothing when it is empty); else None."""
        if chunk.type != "chunk" or chunk.thoughts or self.scanner.stops or type(chunk.content) is not str:
            return None
        if chunk.content:
            self.streamed = True
        return chunk.content

    def feed(self, chunk: StreamChunk) -> list[TextEvent]:
        ctype, content = chunk.type, chunk.content
        if ctype == "chunk" and isinstance(content, str):
            text, stopped = self.scanner.feed(content) if self.scanner.stops else (content, False)
            events: list[TextEvent] = []
            if text or chunk.thoughts:
                self.streamed = True
                events.append(Delta(text, chunk.thoughts or ""))
            if stopped:
                self.done = self.early = True
                events.append(Finish("stop", self.plan.task.usage))
            return events
        if ctype == "function_call" and isinstance(content, dict) and content.get("status", "call") == "call":
            self.n_calls += 1
            return [ToolCallEvent(self.n_calls - 1, ToolCall.from_record(content))]
        if ctype == "error":
            self.failure = str(content)
        elif ctype == "final":
            self.done = True
            if self.failure is not None:
                return [Failure(self.failure, _status_of(chunk))]
            return self._final_events(chunk)
        return []

    def _final_events(self, chunk: StreamChunk) -> list[TextEvent]:
        outputs = chunk.content or []
        if self.streamed and len(outputs) == 1 and not self.scanner.stops:  # the common end: the text came already
            out = outputs[0]  # (the pipeline's one output as a dict; its text and thoughts were streamed)
            meta = out.get("metadata") if type(out) is dict and out.get("type") == "text" else False
            if meta is None or (type(meta) is dict and not meta.get("tool_calls")):
                usage = (chunk.metadata or {}).get("usage") or _usage_of(meta)
                reason = "tool_calls" if self.n_calls else _finish_reason(meta.get("finish_reason") if meta else None, False)
                return [Finish(reason, usage)]
        validate = OutputData.__pydantic_validator__.validate_python  # (model_validate without its Python wrapper)
        read = _read([validate(o) for o in (chunk.content or [])])
        usage = (chunk.metadata or {}).get("usage") or read.usage
        events: list[TextEvent] = []
        scanner = self.scanner
        if not self.streamed:  # a backend that does not stream gave everything in the final event
            kept, _ = scanner.feed(read.text)
            if kept or read.thoughts:
                events.append(Delta(kept, read.thoughts))
        tail = scanner.flush()
        if tail:
            events.append(Delta(tail, ""))
        n_calls = self.n_calls
        if n_calls == 0:  # calls a non-streaming backend put in its final output
            for i, call in enumerate(read.calls):
                n_calls += 1
                events.append(ToolCallEvent(i, call))
        reason = "tool_calls" if n_calls else _finish_reason(read.raw_reason, scanner.stopped)
        events.append(Finish(reason, usage))
        return events


async def stream_text(chunks: AsyncGenerator[StreamChunk, None], plan: GenerationPlan, stops: list[str]) -> AsyncIterator[TextEvent]:
    """Deltas, then a Finish or a Failure. Closing this generator closes ``chunks``, which cancels the work."""
    events = TextEvents(plan, stops)
    async with contextlib.aclosing(chunks):
        async for chunk in chunks:
            if events.done:  # after the final event: the stream ends by itself
                continue
            for event in events.feed(chunk):
                yield event
            if events.early:
                return


def _status_of(final: StreamChunk) -> int:
    """The status an error carried (known when the plan failed before streaming), else 500."""
    for out in final.content or []:
        status = (out.get("metadata") or {}).get("status_code") if isinstance(out, dict) else None
        if out.get("type") == "error" and isinstance(status, int):
            return status
    return 500
