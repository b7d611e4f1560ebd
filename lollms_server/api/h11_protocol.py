"""uvicorn's h11 protocol with a bounded request head (431, not a generic 400) and coalesced writes.

h11 stops buffering a request line + headers beyond ``h11_max_incomplete_event_size`` bytes and says
which status fits (431 Request Header Fields Too Large); uvicorn answers every parser error with 400.
This protocol keeps h11's hint and answers with it.

uvicorn writes the status line and headers, then each body part, each with its own ``send()`` system call
(two for a plain JSON answer). Here the writes made in one turn of the event loop leave in one call at
the end of that turn: a plain answer goes out as one TCP segment, and a stream's head travels with its
first event when it is ready. Nothing waits for more data than the turn already produced.
"""

from __future__ import annotations

import asyncio
from http import HTTPStatus
from typing import Any

import h11
from h11._connection import DEFAULT_MAX_INCOMPLETE_EVENT_SIZE
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState


class _HintingConnection(h11.Connection):
    """An h11 connection that remembers the status h11 suggests for the last protocol error."""

    error_status: int = 400

    def next_event(self) -> Any:
        try:
            return super().next_event()
        except h11.RemoteProtocolError as exc:
            self.error_status = exc.error_status_hint
            raise


class CoalescingTransport:
    """A transport proxy: the writes of one event-loop turn leave in one ``write`` of the real transport."""

    JOIN_LIMIT = 64 * 1024  # more pending data than this is written at once (big bodies are not copied)

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []
        self._size = 0
        self._scheduled = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        self._pending.append(bytes(data))
        self._size += len(data)
        if self._size > self.JOIN_LIMIT:  # the real transport sees it now, so its flow control still applies
            self.flush()
        elif not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        pending, size = self._pending, self._size
        if not pending:
            return
        self._pending, self._size = [], 0
        if len(pending) == 1 or size > self.JOIN_LIMIT:
            for data in pending:
                self._transport.write(data)
        else:
            self._transport.write(b"".join(pending))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:  # everything else is the real transport's
        return getattr(self._transport, name)


class BoundedHeadH11Protocol(H11Protocol):
    """Pass as ``uvicorn.run(..., http=BoundedHeadH11Protocol, h11_max_incomplete_event_size=N)``.

    (Every write goes through the CoalescingTransport; uvicorn's FlowControl keeps the real transport.)
    """

    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.head_limit = config.h11_max_incomplete_event_size or DEFAULT_MAX_INCOMPLETE_EVENT_SIZE
        self.conn = _HintingConnection(h11.SERVER, self.head_limit)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = CoalescingTransport(transport, self.loop)  # type: ignore[assignment]

    def _unsupported_upgrade_warning(self) -> None:
        # served with ws="none" (no WebSocket route): the request is answered as plain HTTP; uvicorn's two
        # warnings per such request would let any client fill the log
        self.logger.debug("upgrade request (%s) answered as plain HTTP", self._get_upgrade())

    def send_400_response(self, msg: str) -> None:
        status = getattr(self.conn, "error_status", 400)
        if status != HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE:
            super().send_400_response(msg)
            return
        body = (f"Request line and headers are larger than {self.head_limit} bytes (server.max_header_bytes).").encode()
        headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close")]
        for event in (h11.Response(status_code=status, headers=headers, reason=HTTPStatus(status).phrase),
                      h11.Data(data=body), h11.EndOfMessage()):
            self.transport.write(self.conn.send(event))  # type: ignore[arg-type]
        self.transport.close()
