"""Ollama's error body (``{"error": "..."}``) for every route of the Ollama surface.

Status and message come from the same mapping the OpenAI surface uses, so a core error means the same
thing on every surface; only the body's shape differs.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from lollms_server.api.openai_compat.errors import to_openai_error
from lollms_server.api.surface_errors import ErrorShape, Handler
from lollms_server.core.secrets import REDACTOR

log = logging.getLogger("lollms_server.ollama")


class OllamaError(Exception):
    """An error answered as ``{"error": message}`` with an HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = REDACTOR.redact(message)

    def response(self) -> JSONResponse:
        return JSONResponse(status_code=self.status, content={"error": self.message})


def to_ollama_error(exc: Exception) -> OllamaError:
    if isinstance(exc, OllamaError):
        return exc
    err = to_openai_error(exc)
    return OllamaError(err.status, err.message)


OLLAMA_ERRORS = ErrorShape(to_ollama_error, log)


class OllamaRoute(APIRoute):
    """Route class turning every error raised while handling an Ollama route into Ollama's shape."""

    def get_route_handler(self) -> Handler:
        return OLLAMA_ERRORS.wrap(super().get_route_handler())


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "Bad request body: `{\"error\": \"...\"}`."},
    401: {"description": "Missing or wrong API key (send `Authorization: Bearer KEY` or `X-API-Key`)."},
    404: {"description": "Unknown model name."},
    403: {"description": "Not available on this server (model management); the message says what to do instead."},
    503: {"description": "The selected binding instance failed to load."},
}
