"""Server-Sent Events framing of StreamChunks (sse-starlette does the framing and keep-alive pings)."""

from __future__ import annotations

import json
from typing import AsyncIterator

from sse_starlette import EventSourceResponse

from lollms_server.api.models import StreamChunk


def chunk_json(chunk: StreamChunk) -> str:
    """The event's JSON; text that cannot be encoded as UTF-8 is sent escaped rather than cutting the stream."""
    try:
        return chunk.model_dump_json()
    except ValueError:
        return json.dumps(chunk.model_dump(mode="python"), ensure_ascii=True, default=str)


async def _frames(chunks: AsyncIterator[StreamChunk]) -> AsyncIterator[dict[str, str]]:
    async for chunk in chunks:
        yield {"data": chunk_json(chunk)}


def stream_chunks(chunks: AsyncIterator[StreamChunk], keepalive: float) -> EventSourceResponse:
    """``data: <StreamChunk JSON>`` events; ``: ping`` comments every ``keepalive`` seconds while waiting."""
    return EventSourceResponse(
        _frames(chunks), ping=keepalive, headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )
