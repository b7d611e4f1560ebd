"""The first thing every HTTP request meets: its API key is checked on the headers and its body is bounded.

Nothing of the body is read before the key is known to be right, so an unauthenticated client cannot make
the server buffer or parse anything; a body longer than ``server.max_body_bytes`` is refused with 413
before it is read when it says its length, and as soon as it crosses the limit when it is chunked. The
answer goes out at once; what the client still sends is discarded by the HTTP layer, never kept.
"""

from __future__ import annotations

from itertools import chain
from typing import Literal

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lollms_server.api.deps import API_MISSING_KEY, API_WRONG_KEY
from lollms_server.api.middleware import first_headers
from lollms_server.api.ollama import auth as ollama_auth
from lollms_server.api.openai_compat.auth import MISSING_KEY, WRONG_KEY
from lollms_server.api.surface_auth import GUARD_MATCH, keyless_allowed, presented_key
from lollms_server.api.openai_compat.errors import OpenAIError
from lollms_server.core.apikeys import KeyRing
from lollms_server.core.request_limits import size_text

Surface = Literal["api", "openai", "ollama", "other"]

# Paths under these prefixes need the API key (when keys are configured), except the public routes.
# (first match wins: /api/v1/ is lollms' own API, the rest of /api/ is Ollama's)
KEYED_PREFIXES: dict[str, Surface] = {"/api/v1/": "api", "/v1/": "openai", "/lollms/v1/": "openai", "/api/": "ollama"}


def surface_of(path: str) -> Surface:
    """Which error format a path answers in: /api/v1 {"detail"}, OpenAI-style or Ollama-style {"error"}, or other."""
    for prefix, surface in KEYED_PREFIXES.items():
        if path.startswith(prefix):
            return surface
    return "other"


def error_response(surface: Surface, status: int, message: str, *, code: str | None = None) -> JSONResponse:
    """An early answer in the format of the route asked for (the unread body is discarded by the server)."""
    if surface == "openai":
        response = OpenAIError(status, message, code=code).response()
    elif surface == "ollama":
        response = JSONResponse({"error": message}, status_code=status)
    else:
        response = JSONResponse({"detail": message}, status_code=status)
    return response


class RequestGuard:
    """Pure ASGI middleware: authenticate on headers, then pass the request on with a bounded body."""

    def __init__(self, app: ASGIApp, *, key_ring: KeyRing, public_paths: frozenset[str], max_body_bytes: int,
                 max_header_bytes: int, keyless_surfaces: list[str] | None = None) -> None:
        self.app = app
        self.key_ring = key_ring
        self.public_paths = public_paths  # the paths of the routes that need no key (health, server_info…)
        self.keyless_surfaces = list(keyless_surfaces or [])
        self.max_body_bytes = max_body_bytes
        self.max_header_bytes = max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        surface = surface_of(path)
        raw = scope.get("headers") or []
        first = first_headers(scope)  # name -> value of its first occurrence (what Headers.get answers)
        client = scope.get("client")
        refusal = (self._head_refusal(surface, scope, raw)
                   or self._auth_refusal(scope, surface, path, first, client[0] if client else None)
                   or self._length_refusal(surface, first))
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, self._bounded(receive, surface), send)

    def _matched(self, scope: Scope, surface: Surface, key: str) -> bool:
        found = self.key_ring.match(key)
        if found is not None:  # the route's auth dependency reads it instead of comparing again (surface_auth)
            scope.setdefault("state", {})[GUARD_MATCH] = (surface, self.key_ring, found)
        return found is not None

    def _auth_refusal(self, scope: Scope, surface: Surface, path: str, first: dict[bytes, bytes],
                      client_host: str | None) -> JSONResponse | None:
        if not self.key_ring.enabled or surface == "other" or path in self.public_paths:
            return None
        if surface in ("openai", "ollama"):
            if keyless_allowed(surface, self.keyless_surfaces, client_host, first):
                return None
            openai = surface == "openai"
            key = presented_key(first)
            if not key:
                return error_response(surface, 401, MISSING_KEY if openai else ollama_auth.MISSING_KEY, code="missing_api_key")
            if self._matched(scope, surface, key):
                return None
            return error_response(surface, 401, WRONG_KEY if openai else ollama_auth.WRONG_KEY, code="invalid_api_key")
        value = first.get(b"x-api-key")
        key = value.decode("latin-1") if value is not None else None
        if not key:
            return error_response(surface, 403, API_MISSING_KEY)
        return None if self._matched(scope, surface, key) else error_response(surface, 401, API_WRONG_KEY)

    def _head_refusal(self, surface: Surface, scope: Scope, raw: list[tuple[bytes, bytes]]) -> JSONResponse | None:
        """431 when the request line and headers are longer than ``server.max_header_bytes``.

        (The HTTP layer also stops reading a head that keeps coming beyond that size: see h11_protocol.)
        """
        size = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"") + sum(
            map(len, chain.from_iterable(raw))) + 4 * len(raw)
        if size <= self.max_header_bytes:
            return None
        return error_response(surface, 431, f"the request line and headers are {size} bytes; at most "
                              f"{self.max_header_bytes} are accepted (server.max_header_bytes)", code="headers_too_large")

    def _too_large(self) -> str:
        return f"the request body is larger than {size_text(self.max_body_bytes)} (server.max_body_bytes)"

    def _length_refusal(self, surface: Surface, first: dict[bytes, bytes]) -> JSONResponse | None:
        declared = first.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            return error_response(surface, 413, self._too_large(), code="request_too_large")
        return None

    def _bounded(self, receive: Receive, surface: Surface) -> Receive:
        """``receive`` that raises a 413 HTTPException once the body read so far passes the limit."""
        seen = 0
        limit = self.max_body_bytes

        async def bounded() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise HTTPException(413, self._too_large())
            return message

        return bounded
