"""Server-Sent Events framing of StreamChunks (sse-starlette does the framing and keep-alive pings)."""

from __future__ import annotations

from typing import AsyncIterator

from sse_starlette import EventSourceResponse

from lollms_server.core.contract import StreamChunk, chunk_json

__all__ = ["chunk_json", "stream_chunks"]


async def _frames(chunks: AsyncIterator[StreamChunk]) -> AsyncIterator[dict[str, str]]:
    async for chunk in chunks:
        yield {"data": chunk_json(chunk)}


def stream_chunks(chunks: AsyncIterator[StreamChunk], keepalive: float) -> EventSourceResponse:
    """``data: <StreamChunk JSON>`` events; ``: ping`` comments every ``keepalive`` seconds while waiting."""
    return EventSourceResponse(
        _frames(chunks), ping=keepalive, headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )
