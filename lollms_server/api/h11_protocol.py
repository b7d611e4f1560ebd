"""uvicorn's h11 protocol with a bounded request head that is refused with 431, not a generic 400.

h11 stops buffering a request line + headers beyond ``h11_max_incomplete_event_size`` bytes and says
which status fits (431 Request Header Fields Too Large); uvicorn answers every parser error with 400.
This protocol keeps h11's hint and answers with it.
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


class BoundedHeadH11Protocol(H11Protocol):
    """Pass as ``uvicorn.run(..., http=BoundedHeadH11Protocol, h11_max_incomplete_event_size=N)``."""

    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.head_limit = config.h11_max_incomplete_event_size or DEFAULT_MAX_INCOMPLETE_EVENT_SIZE
        self.conn = _HintingConnection(h11.SERVER, self.head_limit)

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
