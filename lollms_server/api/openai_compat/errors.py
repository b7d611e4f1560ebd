"""OpenAI's error body ({"error": {"message", "type", "param", "code"}}) for every OpenAI-style route.

``OpenAIRoute`` wraps each route handler, so validation, auth and pipeline errors raised while handling
an OpenAI route get this shape, while /api/v1 keeps its own ``{"detail": ...}`` format.
"""

from __future__ import annotations

import logging
from typing import Any, Optional

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from lollms_server.api.strict_json import StrictJSONRoute
from lollms_server.api.surface_errors import ErrorShape, Handler
from lollms_server.core.errors import (
    LollmsError,
    NotFoundError,
    NotSupportedError,
    QueueFullError,
    QueueTimeoutError,
    RateLimitedError,
    UnavailableError,
    echo,
)
from lollms_server.core.paths import PathEscapeError
from lollms_server.core.secrets import REDACTOR

log = logging.getLogger("lollms_server.openai")


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: Optional[str] = None
    code: Optional[str] = None


class ErrorBody(BaseModel):  # the body of every OpenAI-style error (documented in /openapi.json)
    error: ErrorDetail

_TYPE_BY_STATUS: dict[int, str] = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "invalid_request_error",
    408: "timeout_error",
    413: "invalid_request_error",
    431: "invalid_request_error",
    429: "rate_limit_error",
    501: "invalid_request_error",
}


class OpenAIError(Exception):
    """An error to answer in OpenAI's shape."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None,
                 type_: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.headers = headers
        self.status = status
        self.message = REDACTOR.redact(message)
        self.param = param
        self.code = code
        self.type = type_ or _TYPE_BY_STATUS.get(status, "server_error" if status >= 500 else "invalid_request_error")

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if self.status == 401 else dict(self.headers or {})
        return JSONResponse(status_code=self.status, content=self.body(), headers=headers)


def model_not_found(model_id: str, hint: str = "") -> OpenAIError:
    message = f"The model '{echo(model_id)}' does not exist. List model ids with GET /v1/models." + (f" {hint}" if hint else "")
    return OpenAIError(404, message, param="model", code="model_not_found")


def _code_for(exc: LollmsError) -> str | None:
    if isinstance(exc, QueueTimeoutError):
        return "queue_timeout"
    if isinstance(exc, RateLimitedError):
        return "rate_limit_exceeded"
    if isinstance(exc, QueueFullError):
        return "server_busy"
    if isinstance(exc, NotSupportedError):
        return "not_supported"
    if isinstance(exc, UnavailableError):
        return "model_unavailable"
    if isinstance(exc, NotFoundError):
        return "not_found"
    return None


def _validation_error(exc: RequestValidationError) -> OpenAIError:
    first = exc.errors()[0] if exc.errors() else {}
    loc = [str(x) for x in first.get("loc", ()) if x != "body"]
    param = ".".join(loc) or None
    kind = str(first.get("type", ""))
    if kind == "missing":
        return OpenAIError(400, f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter")
    if kind == "json_invalid":
        return OpenAIError(400, "The request body is not valid JSON.", code="invalid_json")
    where = f"'{param}'" if param else "the request body"
    return OpenAIError(400, f"Invalid value for {where}: {first.get('msg', 'invalid')}.", param=param, code="invalid_value")


def to_openai_error(exc: Exception) -> OpenAIError:
    if isinstance(exc, OpenAIError):
        return exc
    if isinstance(exc, RequestValidationError):
        return _validation_error(exc)
    if isinstance(exc, LollmsError):
        return OpenAIError(exc.status_code, exc.message, code=_code_for(exc), param=getattr(exc, "param", None),
                           headers=exc.headers)
    if isinstance(exc, PathEscapeError):
        return OpenAIError(400, str(exc))
    if isinstance(exc, StarletteHTTPException):  # also FastAPI's, and Starlette's for unparsable bodies
        return OpenAIError(exc.status_code, str(exc.detail))
    return OpenAIError(500, f"internal error: {type(exc).__name__}: {exc}")


OPENAI_ERRORS = ErrorShape(to_openai_error, log)


class OpenAIRoute(StrictJSONRoute):
    """An APIRoute whose errors come out in OpenAI's shape (and whose JSON body must be valid Unicode)."""

    def wrap_handler(self, handler: Handler) -> Handler:
        return OPENAI_ERRORS.wrap(super().wrap_handler(handler))


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Bad request body or parameter."},
    401: {"model": ErrorBody, "description": "Missing or wrong API key (send `Authorization: Bearer KEY` or `X-API-Key`)."},
    404: {"model": ErrorBody, "description": "Unknown model id (`code: model_not_found`)."},
    408: {"model": ErrorBody, "description": "Waited longer than resource_manager.queue_timeout for a slot (`Retry-After`)."},
    413: {"model": ErrorBody, "description": "Body larger than server.max_body_bytes."},
    501: {"model": ErrorBody, "description": "The selected binding cannot do this."},
    502: {"model": ErrorBody, "description": "The provider behind a remote binding failed or sent an unusable answer."},
    503: {"model": ErrorBody, "description": "The selected binding instance failed to load, or the queue is full (`Retry-After`)."},
}
