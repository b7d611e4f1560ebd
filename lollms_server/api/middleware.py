"""Request id, processing time and HTTP metrics for every response (a plain ASGI middleware).

``X-Request-ID``: taken from the client when it is 1-128 characters of ``[A-Za-z0-9._:-]``, else a new
one; the pipeline uses it as the generation's request id, so logs, the usage ledger and the client agree.
``X-Process-Time`` (seconds) and ``Server-Timing: app;dur=<ms>`` give the time until the response
headers were sent (for a stream: until it started).
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lollms_server.core.metrics import Metrics

REQUEST_ID_HEADER = "x-request-id"
_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def request_id_from(scope: Scope) -> str:
    for name, value in scope.get("headers") or []:
        if name == b"x-request-id":
            try:
                text = value.decode("ascii")
            except UnicodeDecodeError:
                break
            if _VALID_ID.match(text):
                return text
            break
    return uuid.uuid4().hex[:16]


def _route_template(scope: Scope) -> str:
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"  # bounded label values: templates, never raw paths


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics | None = None) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = request_id_from(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                elapsed = time.perf_counter() - started
                headers = list(message.get("headers") or [])
                headers += [
                    (b"x-request-id", request_id.encode()),
                    (b"x-process-time", f"{elapsed:.6f}".encode()),
                    (b"server-timing", f"app;dur={elapsed * 1000:.3f}".encode()),
                ]
                message = {**message, "headers": headers}
                if self.metrics is not None:
                    route = _route_template(scope)
                    self.metrics.http.labels(scope.get("method", ""), route, str(status)).inc()
                    self.metrics.http_latency.labels(scope.get("method", ""), route).observe(elapsed)
            await send(message)

        await self.app(scope, receive, send_wrapper)
