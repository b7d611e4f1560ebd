"""lollms_server as an OpenAI-compatible endpoint (/v1/*), plus the lollms extras (/lollms/v1/*, /version).

The routes run the same pipeline as /api/v1/generate; see ``ids`` for the model id scheme.
"""

from __future__ import annotations

from fastapi import APIRouter


def routers() -> list[APIRouter]:
    """Routers to include as they are: each carries its own auth (Bearer or X-API-Key) and error shape."""
    from lollms_server.api.openai_compat import routes_chat, routes_lollms, routes_media

    return [routes_chat.router, routes_media.router, routes_lollms.router, routes_lollms.public_router]
