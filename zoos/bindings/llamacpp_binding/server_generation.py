"""Generation on the server engine: one request's chat job, streamed from its model's llama-server.

The binding picks the model's running llama-server (``ServerPool.use``) and counts the request in flight;
this module builds the job (sampling, images placed for the projector), reads llama-server's stream into
text pieces and the final counts, and turns them into the binding's result or stream events. Closing the
stream closes the request to llama-server, which stops the generation.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

from lollms_server.core.bindings.base import GenerationTask, StreamEvent

from . import media
from .chat import ChatJob, ChatResult, sampling_arguments
from .projector import Projector
from .server_engine import ServerModel
from .tool_calls import HeldText, plain_history, setup_for


async def job_for(task: GenerationTask, model_key: str, messages: list[dict[str, Any]], projector: Projector,
                  model_file: Callable[[str], Path], seed: int | None) -> ChatJob:
    """The job of ``task``; ``messages`` came from ``task.messages`` one for one, and get their images (refused
    when the model takes none; checked and attached off the event loop)."""
    sampling = sampling_arguments(task.params)
    if "seed" not in sampling and seed is not None:
        sampling["seed"] = seed
    images = projector.images(task, model_file)
    if any(images):
        messages = await asyncio.to_thread(media.attach, messages, images, projector.limits)
    return ChatJob(model_key, messages, sampling, task.cancel, True, setup_for(task))


async def pieces(server: ServerModel, job: ChatJob) -> AsyncGenerator[str | ChatResult, None]:
    """Text pieces as llama-server streams them (the tokens that arrived together as one piece), then the
    ChatResult; stops at once on cancel."""
    messages = job.messages if job.tools is not None else plain_history(job.messages)
    body = await server.completion_request(messages, job.sampling, job.tools)
    parts: list[str] = []
    final: dict[str, Any] | None = None
    last: dict[str, Any] = {}
    events = server.stream(body)
    try:
        async for batch in events:
            last = batch[-1]
            piece = batch[0].get("content") or "" if len(batch) == 1 else "".join(e.get("content") or "" for e in batch)
            if piece:
                parts.append(piece)
                yield piece
            if last.get("stop"):  # the final event is the last one llama-server sends
                final = last
                break
            if job.cancel.cancelled:
                break
    finally:
        await events.aclose()  # closes the request: llama-server drops the generation
    if final is None:
        yield ChatResult("".join(parts), 0, int(last.get("tokens_predicted") or 0), "cancelled")
        return
    stop_type = final.get("stop_type")
    predicted = int(final.get("tokens_predicted") or 0) - (1 if stop_type == "eos" else 0)  # the end token
    yield ChatResult("".join(parts), int(final.get("tokens_evaluated") or 0), max(0, predicted),
                     "length" if stop_type == "limit" else "stop", final.get("timings/prompt_n"))


async def complete(server: ServerModel, job: ChatJob) -> ChatResult:
    """The whole answer of ``job`` (not streamed to the client)."""
    result: ChatResult | None = None
    async for item in pieces(server, job):
        if isinstance(item, ChatResult):
            result = item
    assert result is not None
    return result


async def stream(use: AbstractAsyncContextManager[ServerModel], job: ChatJob, meta: dict[str, Any],
                 finished: Callable[[ChatResult], None]) -> AsyncGenerator[StreamEvent, None]:
    """Stream events of ``job`` on the server that ``use`` holds for the request; ``finished`` gets the counts,
    also of a stream that ends early (client gone or error: the job is cancelled)."""
    held = HeldText(job.tools)  # tools offered: text is held until it is clearly not a call
    done = False
    received: list[str] = []
    try:
        async with use as server:
            items = pieces(server, job)
            try:
                async for item in items:
                    if isinstance(item, ChatResult):
                        finished(item)
                        done = True
                        continue
                    received.append(item)
                    text = held.feed(item)
                    if text:
                        yield {"type": "chunk", "content": text, "metadata": meta}
            finally:
                await items.aclose()
        for event in held.events(meta):
            yield event
    finally:
        if not done:  # client gone or error: the request to llama-server is closed, which stops it
            job.cancel.cancel()
            finished(ChatResult("".join(received), 0, len(received), "cancelled"))
