"""Routers imported on their first request instead of at start-up (the OpenAI and Ollama surfaces, jobs,
usage, embeddings, tokens, filters and extensions).

A surface is modules of routes and wire models: importing them and building their routes is a good part of
the server's start-up time, and many servers never see a request on a given surface.
``include_lazily(app, prefixes, load, **include)`` puts a ``LazyRouters`` placeholder where the routers would be
included. The first request whose path starts with one of ``prefixes`` (or the first build of
/openapi.json) calls ``load()``, includes the routers it returns in place of the placeholder and matches
that request against them: from then on the app's route list is exactly what an eager
``app.include_router(router, **include)`` gives, in the same order, so routing, 404/405 answers and the schema are unchanged.
That one request waits for the import (tens of milliseconds, once), as the first generation waits for
its model.

``prefixes`` must cover every path of the routers (``tests/test_startup_lazy.py`` checks it): a path
outside them would never trigger the import.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fastapi import APIRouter, FastAPI
from starlette.routing import BaseRoute, Match
from starlette.types import Receive, Scope, Send


def route_path(scope: Scope) -> str:
    """The request path below the app's root path, as Starlette's router matches it (its get_route_path of 1.10)."""
    path: str = scope["path"]
    root_path = scope.get("root_path", "")
    if not root_path or not path.startswith(root_path):
        return path
    if path == root_path:
        return ""
    return path[len(root_path):] if path[len(root_path)] == "/" else path


try:  # Starlette's own, private to it (lollms_server/shortcuts.py): the copy above when a release has none
    from starlette._utils import get_route_path
except ImportError:
    get_route_path = route_path

_CHOSEN = "lollms.lazy_route"  # scope key: the real route the placeholder matched for this request


class LazyRouters(BaseRoute):
    materialised = 0  # how many placeholders (of any app) have been replaced so far: a change stamp for hot_lane

    def __init__(self, app: FastAPI, prefixes: Sequence[str], load: Callable[[], list[APIRouter]],
                 include: dict[str, Any]) -> None:
        self.app = app
        self.prefixes = tuple(prefixes)
        self.load = load
        self.include = include  # include_router() arguments (e.g. the API key dependency)
        self.included: list[BaseRoute] | None = None  # the routes that replaced the placeholder

    def materialise(self) -> list[BaseRoute]:
        """Import and include the routers where the placeholder stands (once)."""
        if self.included is None:
            routes = self.app.router.routes
            before = len(routes)
            for router in self.load():
                self.app.include_router(router, **self.include)  # appended at the end: moved into the placeholder's place below
            added = routes[before:]
            del routes[before:]
            if self in routes:
                at = routes.index(self)
                routes[at:at + 1] = added
            self.included = added
            LazyRouters.materialised += 1
        return self.included

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] not in ("http", "websocket") or not get_route_path(scope).startswith(self.prefixes):
            return Match.NONE, {}
        # the router is iterating its route list: this call answers for the routes that replace the placeholder
        partial: tuple[Match, Scope] | None = None
        for route in self.materialise():
            match, child = route.matches(scope)
            if match == Match.FULL:
                return match, {**child, _CHOSEN: route}
            if match == Match.PARTIAL and partial is None:
                partial = (match, {**child, _CHOSEN: route})
        return partial or (Match.NONE, {})

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        route: BaseRoute = scope.pop(_CHOSEN)
        await route.handle(scope, receive, send)

    def __repr__(self) -> str:
        return f"LazyRouters(prefixes={self.prefixes!r}, loaded={self.included is not None})"


def include_lazily(app: FastAPI, prefixes: Sequence[str], load: Callable[[], list[APIRouter]], **include: Any) -> LazyRouters:
    """Append a placeholder for ``load()``'s routers; /openapi.json includes them before it is built."""
    lazy = LazyRouters(app, prefixes, load, include)
    app.router.routes.append(lazy)
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        lazy.materialise()
        return build()

    app.openapi = openapi  # type: ignore[method-assign]
    return lazy
