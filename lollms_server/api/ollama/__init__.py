"""lollms_server as an Ollama server: Ollama's native HTTP API (/api/chat, /api/generate, /api/tags…).

A thin surface: each route translates Ollama's fields into the one internal ``GenerateRequest`` and runs
the same pipeline as /api/v1 and /v1 (personalities, compute slots, cancel on disconnect, thoughts).
Model names are the OpenAI surface's model ids with an optional ``:latest`` tag (see ``names``).
"""

from __future__ import annotations

from fastapi import APIRouter

# every path of ``routers()`` starts with this (the app imports the routers on the first such request)
PATH_PREFIXES = ("/api/",)
PUBLIC_PATHS = frozenset({"/api/version"})  # the routes of routes_models.public_router: no key needed


def routers() -> list[APIRouter]:
    """Routers to include as they are: each carries its own auth and Ollama's error shape."""
    from lollms_server.api.ollama import routes_chat, routes_embed, routes_models

    return [routes_models.public_router, routes_models.router, routes_chat.router, routes_embed.router]
