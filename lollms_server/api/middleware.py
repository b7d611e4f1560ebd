"""Request id, processing time, security headers and HTTP metrics for every response: one ASGI layer.

``X-Request-ID``: taken from the client when it is 1-128 characters of ``[A-Za-z0-9._:-]``, else a new
one; the pipeline uses it as the generation's request id, so logs, the usage ledger and the client agree.
``X-Process-Time`` (seconds) and ``Server-Timing: app;dur=<ms>`` give the time from the moment this layer
received the request until the response headers were sent (for a stream: until it started).
The browser security headers of ``security_headers`` are added in the same pass: one ``send`` wrapper per
request for all of them (each extra ASGI layer costs a coroutine frame on every message of a response).
When CORS is configured, a request without an ``Origin`` header (every non-browser client) skips the CORS
layer: all it would do is add ``Vary: Origin``, which this layer adds itself.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lollms_server.api.head_lines import HEAD_LINES_EXTENSION, HEAD_LINES_KEY
from lollms_server.api.security_headers import add_default_headers, default_header_lines
from lollms_server.core.metrics import Metrics

REQUEST_ID_HEADER = "x-request-id"
_VARY_ORIGIN_LINE = b"vary: Origin\r\n"
_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class _RandomIds:
    """New request ids: 8 random bytes each from ``os.urandom``, read 4 KiB at a time (a system call, which also
    releases the GIL, per 512 ids instead of per request). A forked child starts with a fresh buffer."""

    CHUNK = 4096

    def __init__(self) -> None:
        self._buffer = b""
        self._at = 0
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._buffer, self._at = b"", 0

    def next(self) -> str:
        at = self._at
        if at + 8 > len(self._buffer):
            self._buffer, at = os.urandom(self.CHUNK), 0
        self._at = at + 8
        return self._buffer[at:at + 8].hex()


new_request_id = _RandomIds().next


FIRST_HEADERS = "lollms.first_headers"  # scope entry: (the raw header list, {name: value of its first occurrence})


def first_headers(scope: Scope) -> dict[bytes, bytes]:
    """``{name: value}`` of the first occurrence of each request header (what ``Headers.get`` answers), built once
    per request and kept in the scope for the layers after this one (while the header list stays the same)."""
    raw = scope.get("headers") or []
    kept = scope.get(FIRST_HEADERS)
    if kept is not None and kept[0] is raw:
        return kept[1]  # type: ignore[no-any-return]
    first = dict(reversed(raw))
    scope[FIRST_HEADERS] = (raw, first)
    return first


def request_id_from(scope: Scope) -> str:
    value = first_headers(scope).get(b"x-request-id")
    if value is not None:
        try:
            text = value.decode("ascii")
        except UnicodeDecodeError:
            return new_request_id()
        if _VALID_ID.match(text):
            return text
    return new_request_id()


def _has_origin(scope: Scope) -> bool:
    return b"origin" in first_headers(scope)


def _add_vary_origin(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """What the CORS middleware does to a response of a request without Origin: one Vary header ending in Origin."""
    vary = [value for name, value in headers if name.lower() == b"vary"]
    if vary:
        headers = [(name, value) for name, value in headers if name.lower() != b"vary"]
    headers.append((b"vary", b", ".join([*vary, b"Origin"])))
    return headers


def _route_template(scope: Scope) -> str:
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"  # bounded label values: templates, never raw paths


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics | None = None) -> None:
        self.app = app
        # the app behind the CORS layer, for requests that carry no Origin header
        self.past_cors: ASGIApp | None = app.app if isinstance(app, CORSMiddleware) else None
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = request_id_from(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        app = self.app
        vary_origin = False
        if self.past_cors is not None and not _has_origin(scope):
            app, vary_origin = self.past_cors, True

        as_lines = HEAD_LINES_EXTENSION in (scope.get("extensions") or ())

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                elapsed = time.perf_counter() - started
                headers = list(message.get("headers") or [])
                if as_lines:  # valid by construction: the server adds them to the head as they are (h11_protocol)
                    lines = b"x-request-id: %s\r\nx-process-time: %.6f\r\nserver-timing: app;dur=%.3f\r\n" % (
                        request_id.encode(), elapsed, elapsed * 1000)
                    if vary_origin:
                        if any(name.lower() == b"vary" for name, _ in headers):
                            headers = _add_vary_origin(headers)
                        else:
                            lines = _VARY_ORIGIN_LINE + lines
                    message = {**message, "headers": headers, HEAD_LINES_KEY: default_header_lines(headers) + lines}
                else:
                    if vary_origin:
                        headers = _add_vary_origin(headers)
                    add_default_headers(headers)
                    headers += [
                        (b"x-request-id", request_id.encode()),
                        (b"x-process-time", f"{elapsed:.6f}".encode()),
                        (b"server-timing", f"app;dur={elapsed * 1000:.3f}".encode()),
                    ]
                    message = {**message, "headers": headers}
                m = self.metrics
                if m is not None:
                    method, route = scope.get("method", ""), _route_template(scope)
                    m.inc(m.http, (method, route, str(message["status"])))
                    m.observe(m.http_latency, (method, route), elapsed)
            await send(message)

        await app(scope, receive, send_wrapper)
