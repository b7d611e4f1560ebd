"""A fake provider server: a Starlette app run by uvicorn in a thread, recording what it received."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import uvicorn
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from helpers import free_port

FakeT = TypeVar("FakeT", bound="FakeServer")


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class Behaviour:
    """What the fake does next. ``failures``: statuses answered (one per request) before normal service."""

    failures: list[int] = field(default_factory=list)
    required_key: str | None = None
    delay: float = 0.0  # seconds before answering (timeouts)
    chunk_delay: float = 0.0  # seconds between streamed pieces
    drop_after: int | None = None  # close the connection after this many streamed pieces
    chunks: int = 4  # streamed answer pieces
    fault: str | None = None  # a broken answer with status 200: one of FAULTS
    lone_surrogate: bool = False  # the answer text ends with LONE_SURROGATE
    quote_key_partly: bool = False  # quote a wrong key as OpenAI does ("sk-abcdef****yz") instead of in full


# Broken answers a provider (or a proxy in front of it) can give with status 200
FAULTS = ("no_end", "not_json", "empty_json", "html")
# a well-formed answer whose text holds half of a UTF-16 surrogate pair ("\\ud800" in its JSON): valid JSON, not valid
# Unicode (a provider cutting a string inside an emoji); not a fault, the answer is complete
LONE_SURROGATE = "\ud83d"
HTML_PAGE = b"<!DOCTYPE html><html><head><title>Gateway</title></head><body><h1>Welcome</h1></body></html>"


class FakeServer:
    """Subclasses provide ``routes()``; tests read ``requests`` and set ``behaviour``."""

    key_error_status = 401  # what the provider answers to a wrong key

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.behaviour = Behaviour()
        self.streams_closed_early = 0
        self.streams_finished = 0
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def routes(self) -> list[Route]:  # pragma: no cover - overridden
        raise NotImplementedError

    # ---- lifecycle -----------------------------------------------------------------------------
    def start(self: FakeT) -> FakeT:
        app = Starlette(routes=self.routes())
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="critical", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("fake server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def reset(self) -> None:
        self.requests.clear()
        self.behaviour = Behaviour()
        self.streams_closed_early = self.streams_finished = 0

    def requests_to(self, path_end: str) -> list[Recorded]:
        """The recorded requests whose path ends with ``path_end``, oldest first."""
        return [r for r in self.requests if r.path.endswith(path_end)]

    # ---- helpers for subclasses ----------------------------------------------------------------
    async def record(self, request: Request) -> Recorded:
        raw = await request.body()
        ctype = request.headers.get("content-type", "")
        body: Any
        if "multipart/form-data" in ctype:
            form = await request.form()
            body = {}
            for k, v in form.multi_items():
                if isinstance(v, UploadFile):
                    body.setdefault(k, []).append({"filename": v.filename, "size": len(await v.read()), "content_type": v.content_type})
                else:
                    body[k] = v
        elif raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode(errors="replace")
        else:
            body = None
        rec = Recorded(request.method, request.url.path, dict(request.query_params),
                       {k.lower(): v for k, v in request.headers.items()}, body)
        self.requests.append(rec)
        return rec

    @staticmethod
    def presented_key(request: Request) -> str | None:
        """The key the client sent (``Authorization: Bearer`` unless the provider uses another header)."""
        auth = request.headers.get("authorization", "")
        return auth[7:] if auth.startswith("Bearer ") else None

    async def pre_answer(self, presented_key: str | None, error_body: Any) -> JSONResponse | None:
        """Delay, scripted failures and key checks shared by every route. ``error_body(status, msg)`` shapes errors."""
        b = self.behaviour
        if b.delay:
            await asyncio.sleep(b.delay)
        if b.failures:
            status = b.failures.pop(0)
            return JSONResponse(error_body(status, f"scripted failure {status}"), status_code=status)
        if b.required_key is not None and presented_key != b.required_key:
            # like real providers, quote the key presented: the server must never pass it on
            status = self.key_error_status
            quoted = presented_key
            if b.quote_key_partly and presented_key:
                quoted = f"{presented_key[:9]}{'*' * 28}{presented_key[-2:]}"
            return JSONResponse(error_body(status, f"Incorrect API key provided: {quoted}"), status_code=status)
        return None

    def fault_answer(self, media_type: str) -> Response | None:
        """The answer of the scripted fault that replaces a whole body (not_json, empty_json, html), else None.

        ``no_end`` is applied by each fake to its own stream format (the end marker is left out).
        """
        fault = self.behaviour.fault
        if fault == "not_json":
            return Response(b"upstream says: all good", media_type=media_type)
        if fault == "empty_json":
            return Response(b"{}", media_type="application/json")
        if fault == "html":
            return Response(HTML_PAGE, media_type="text/html")
        return None

    def without_end(self, frames: list[bytes], markers: int) -> list[bytes]:
        """``frames`` minus its last ``markers`` frames when the ``no_end`` fault is on."""
        return frames[:-markers] if self.behaviour.fault == "no_end" else frames

    async def paced(self, pieces: list[bytes]) -> AsyncIterator[bytes]:
        """Yield pieces with the configured pace; drop the connection or note an early close."""
        b = self.behaviour
        sent = 0
        try:
            for piece in pieces:
                if b.drop_after is not None and sent >= b.drop_after:
                    raise ConnectionAbortedError("fake upstream drops the connection mid-stream")
                yield piece
                sent += 1
                if b.chunk_delay:
                    await asyncio.sleep(b.chunk_delay)
            self.streams_finished += 1
        except (asyncio.CancelledError, GeneratorExit):
            self.streams_closed_early += 1
            raise


def tiny_png(color: tuple[int, int, int] = (200, 30, 30), size: int = 8) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()
