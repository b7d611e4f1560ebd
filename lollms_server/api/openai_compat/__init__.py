"""lollms_server as an OpenAI-compatible endpoint (/v1/*), plus the lollms extras (/lollms/v1/*, /version).

The routes run the same pipeline as /api/v1/generate; see ``ids`` for the model id scheme.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

# every path of ``routers()`` starts with one of these (the app imports the routers on the first such request)
PATH_PREFIXES = ("/v1", "/lollms/v1/", "/version")

_fallback = APIRouter()


@_fallback.api_route("/v1/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
async def unknown_openai_route(path: str, request: Request) -> JSONResponse:
    """Any other /v1 path: OpenAI's 404 body, so OpenAI clients show a readable error."""
    from lollms_server.api.openai_compat.errors import OpenAIError
    from lollms_server.core.errors import echo

    return OpenAIError(404, f"Unknown request URL: {request.method} /v1/{echo(path)}", code="unknown_url").response()


def routers() -> list[APIRouter]:
    """Routers to include as they are: each carries its own auth (Bearer or X-API-Key) and error shape.

    The fallback for unknown /v1 paths comes last so every real route matches first.
    """
    from lollms_server.api.openai_compat import routes_chat, routes_embeddings, routes_lollms, routes_media, routes_responses

    return [routes_chat.router, routes_embeddings.router, routes_responses.router, routes_media.router,
            routes_lollms.router, routes_lollms.public_router, _fallback]
