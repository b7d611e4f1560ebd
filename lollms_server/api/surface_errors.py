"""How a compatibility surface (OpenAI ``/v1``, Ollama ``/api``) answers an error in its own JSON shape.

Every error raised while one of its routes handles a request — a refusal from core (``LollmsError``), an
``HTTPException``, a body that fails validation — becomes that surface's error object, is logged (INFO for
a 4xx, ERROR for a 5xx) and is answered. What differs between surfaces is only the conversion and the
logger: each declares one ``ErrorShape`` and its route class wraps handlers with it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Protocol

from fastapi import Request, Response

from lollms_server.api.lean_route import Handler, NotLean


class SurfaceError(Protocol):
    """An error in a surface's own shape: its status, its (redacted) message and the response carrying it."""

    status: int
    message: str

    def response(self) -> Response: ...


@dataclass(frozen=True)
class ErrorShape:
    """One surface's error answer: ``convert`` turns any exception into its error; ``log`` records it."""

    convert: Callable[[Exception], SurfaceError]
    log: logging.Logger

    def wrap(self, handler: Handler) -> Handler:
        """``handler`` answering every exception it raises as this surface's error."""

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except NotLean:
                raise  # the hot lane hands the request to FastAPI's router, which comes back here
            except Exception as exc:
                err = self.convert(exc)
                level = logging.ERROR if err.status >= 500 else logging.INFO
                self.log.log(level, "%s %s -> %d %s", request.method, request.url.path, err.status, err.message)
                return err.response()

        return handle
