"""One error format for the whole API: {"detail": "..."} with the status the core error carries."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from lollms_server.api.openapi_doc import install_openapi_fixes
from lollms_server.core.errors import LollmsError
from lollms_server.core.paths import PathEscapeError
from lollms_server.core.secrets import REDACTOR

log = logging.getLogger("lollms_server.api")


def install_error_handlers(app: FastAPI) -> None:
    install_openapi_fixes(app)  # /openapi.json shows these handlers' real bodies

    @app.exception_handler(LollmsError)
    async def _lollms_error(request: Request, exc: LollmsError) -> JSONResponse:
        return JSONResponse(status_code=exc.status_code, content={"detail": REDACTOR.redact(exc.message)}, headers=exc.headers)

    @app.exception_handler(NotImplementedError)
    async def _not_implemented(request: Request, exc: NotImplementedError) -> JSONResponse:
        # a binding method the author did not implement (the specification's convention): 501, not 500
        message = REDACTOR.redact(str(exc) or "not implemented")
        return JSONResponse(status_code=501, content={"detail": f"not implemented: {message}"})

    @app.exception_handler(PathEscapeError)
    async def _path_escape(request: Request, exc: PathEscapeError) -> JSONResponse:
        return JSONResponse(status_code=400, content={"detail": str(exc)})

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for e in exc.errors():
            loc = ".".join(str(x) for x in e.get("loc", ()) if x != "body")
            errors.append({"loc": e.get("loc"), "msg": e.get("msg"), "type": e.get("type")})
            log.debug("invalid request at %s: %s", loc, e.get("msg"))
        summary = "; ".join(f"{'.'.join(str(x) for x in (e['loc'] or ()) if x != 'body') or 'body'}: {e['msg']}" for e in errors)
        return JSONResponse(status_code=422, content={"detail": REDACTOR.redact(summary), "errors": REDACTOR.redact_any(errors)})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        message = REDACTOR.redact(f"{type(exc).__name__}: {exc}")
        log.error("unexpected error on %s %s: %s", request.method, request.url.path, message)
        return JSONResponse(status_code=500, content={"detail": f"internal error: {message}"})
