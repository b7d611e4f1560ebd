"""Server-Sent Events: a lean streaming response, and the framing of StreamChunks.

``SSEResponse`` sends each text of an async iterator as one ``data:`` event and a ``: ping`` comment every
``keepalive`` seconds. When the client goes away the iterator is cancelled at once (also
while it waits for its first item) and closed, so the work behind it stops and its cleanup runs. Per stream
it costs one extra task (it waits for the client's disconnect and sends the pings), not the task group and
per-send timeouts of a general-purpose SSE library: on the gateway path this framing is per-token work.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, AsyncIterator, Callable, Mapping

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from lollms_server.core.contract import StreamChunk, chunk_json

__all__ = ["Final", "Last", "SSEResponse", "chunk_json", "sse_frame", "stream_chunks"]

SEP = "\r\n"
STREAM_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no", "Connection": "keep-alive"}


def sse_frame(data: str) -> bytes:
    """One event: each line of ``data`` in its own ``data:`` field, then the blank line."""
    if "\n" in data or "\r" in data:
        return "".join(f"data: {line}{SEP}" for line in data.splitlines()).encode() + SEP.encode()
    return f"data: {data}{SEP}{SEP}".encode()


class Last(list[str]):
    """What ``encode`` returns for the last events of a stream: they are sent, then the iterator is closed."""

    drain = False


class Final(Last):
    """Last events after which the iterator ends by itself: it is read out (without encoding) rather than closed
    (letting a generator chain finish costs less than throwing GeneratorExit through it)."""

    drain = True


class SSEResponse(Response):
    """``text/event-stream`` of the texts of ``events``; the iterator is closed when the response ends.

    An item may also be a list of texts: events that are ready together go out in one write (an empty list:
    nothing). With ``encode``, the items are objects and ``encode`` makes their text (one generator less per
    event than a mapping one); when it returns a ``Last`` list, the stream ends after it, and ``tail`` is sent
    when the iterator ends before that.
    """

    media_type = "text/event-stream; charset=utf-8"

    def __init__(self, events: AsyncIterator[Any], *, keepalive: float = 15.0, headers: Mapping[str, str] | None = None,
                 encode: Callable[[Any], str | list[str]] | None = None, tail: list[str] | None = None) -> None:
        self.status_code = 200
        self.background = None
        self.init_headers({**STREAM_HEADERS, **(headers or {})})  # no body: no Content-Length
        self.events = events
        self.keepalive = keepalive
        self.encode = encode
        self.tail = tail

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        loop = asyncio.get_running_loop()
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        pump = asyncio.current_task()
        gone = asyncio.Event()
        watcher = loop.create_task(self._watch_safely(receive, send, pump, gone))
        encode = self.encode
        try:
            ended = False
            async for item in self.events:
                if ended:  # draining after a Last
                    continue
                data = encode(item) if encode is not None else item
                if isinstance(data, str):
                    await send({"type": "http.response.body", "body": sse_frame(data), "more_body": True})
                    continue
                if data:
                    await send({"type": "http.response.body", "body": b"".join(sse_frame(d) for d in data), "more_body": True})
                if isinstance(data, Last):
                    ended = True
                    if not data.drain:
                        break
            if not ended and self.tail:
                await send({"type": "http.response.body", "body": b"".join(sse_frame(d) for d in self.tail), "more_body": True})
        except asyncio.CancelledError:
            if not gone.is_set():
                raise
            if pump is not None and hasattr(pump, "uncancel"):  # Python 3.11+: the cancel was ours, and handled
                pump.uncancel()
            return  # the client went away: nothing more to send
        finally:
            watcher.cancel()
            close = getattr(self.events, "aclose", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    await close()
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _watch_safely(self, receive: Receive, send: Send, pump: asyncio.Task[Any] | None, gone: asyncio.Event) -> None:
        with contextlib.suppress(Exception):  # a failed ping: the pump's next send will meet the same problem
            await self._watch(receive, send, pump, gone)

    async def _watch(self, receive: Receive, send: Send, pump: asyncio.Task[Any] | None, gone: asyncio.Event) -> None:
        """Cancel the pump when the client disconnects; send a ping comment every ``keepalive`` seconds."""
        while True:
            if self.keepalive <= 0:
                message = await receive()
            else:
                # One receive waited across pings (asyncio.wait, not wait_for: a cancel meeting a message in
                # the same loop turn is never swallowed, and no message is lost to a time-out).
                pending = asyncio.ensure_future(receive())
                try:
                    while not (await asyncio.wait({pending}, timeout=self.keepalive))[0]:
                        await send({"type": "http.response.body", "body": f": ping{SEP}{SEP}".encode(), "more_body": True})
                finally:
                    pending.cancel()
                message = pending.result()
            if message["type"] == "http.disconnect":
                gone.set()
                if pump is not None:
                    pump.cancel()
                return


def stream_chunks(chunks: AsyncIterator[StreamChunk], keepalive: float) -> SSEResponse:
    """``data: <StreamChunk JSON>`` events; ``: ping`` comments every ``keepalive`` seconds while waiting."""
    return SSEResponse(chunks, keepalive=keepalive, encode=chunk_json)
