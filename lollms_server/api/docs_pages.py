"""/docs (Swagger UI) and /redoc, each with a Content-Security-Policy that admits exactly its own scripts."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse

from lollms_server.api.security_headers import CSP, docs_csp


def _with_policy(page: HTMLResponse) -> HTMLResponse:
    page.headers[CSP] = docs_csp(bytes(page.body).decode())
    return page


def add_docs_pages(app: FastAPI) -> None:

    async def swagger() -> HTMLResponse:
        return _with_policy(get_swagger_ui_html(openapi_url=app.openapi_url or "/openapi.json", title=f"{app.title} - Swagger UI"))

    async def redoc() -> HTMLResponse:
        return _with_policy(get_redoc_html(openapi_url=app.openapi_url or "/openapi.json", title=f"{app.title} - ReDoc"))

    app.add_api_route("/docs", swagger, methods=["GET"], include_in_schema=False)
    app.add_api_route("/redoc", redoc, methods=["GET"], include_in_schema=False)
