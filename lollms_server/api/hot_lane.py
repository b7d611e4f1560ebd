"""The hot lane: a request for a lean route with an exact path goes straight to that route's handler.

FastAPI finds a route by trying each one in order (for included routers: twice, once to match and once to
select), then runs it inside its exception middleware, an exit-stack middleware and a request wrapper with
two more exit stacks. For the routes ``lean_route`` can serve (generate, chat completions…), this
innermost middleware looks the ``(method, path)`` up in a dict built once from the app's own routes, and
calls the same handler FastAPI would call, with the app's exception handlers — the answers are the same.

An exact path is only taken when no route tried before it by FastAPI could match that path, so the lane
never picks another route than FastAPI would. A request the lean handler cannot serve (a body that is not
valid JSON for the model, …) is handed to FastAPI's router with its body replayed, and answered as always.
"""

from __future__ import annotations

import inspect
import re
from typing import Any, Iterator, cast

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lollms_server.api.lazy_routes import LazyRouters
from lollms_server.api.lean_route import LANE_SCOPE_KEY, Lane, LeanRoute, NotLean

_EXACT = re.compile(r"^/[^{}]*$")  # a path without parameters


def _replay(body: bytes, receive: Receive) -> Receive:
    """``receive`` that first gives back the body already read, then the server's messages."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _in_order(routes: list[Any]) -> Iterator[tuple[Any, Lane | None]]:
    """The routes in the order FastAPI tries them (included routers flattened), with the lane of each lean one.

    Each item is (what has the ``path_regex`` FastAPI matches with, the lane or None); ``(None, None)``
    stands for a route this cannot see through: nothing after it may take a lane.
    """
    for route in routes:
        contexts = getattr(route, "effective_candidates", None)  # FastAPI >= 0.1xx keeps an included router whole
        if callable(contexts) and getattr(route, "original_router", None) is not None:
            yield from _included(contexts())
        elif isinstance(route, LeanRoute):
            yield route, route.lanes.get(None)  # a route of the app itself (older FastAPI copies included routes)
        else:
            yield route, None


def _included(contexts: list[Any]) -> Iterator[tuple[Any, Lane | None]]:
    """An included router's routes as FastAPI serves them (its "effective" routes: prefix and dependencies added)."""
    for ctx in contexts:
        nested = getattr(ctx, "effective_candidates", None)
        original = getattr(ctx, "original_route", None)
        if callable(nested):
            yield from _included(nested())
        elif isinstance(original, LeanRoute):
            yield ctx, original.lanes.get(id(ctx))
        elif getattr(ctx, "starlette_route", None) is not None:
            yield ctx.starlette_route, None
        elif getattr(ctx, "path_regex", None) is not None:
            yield ctx, None
        else:
            yield None, None


def build_index(app: FastAPI) -> dict[tuple[str, str], Lane]:
    """``(method, path) -> lane`` for the exact-path lean routes no earlier route can shadow.

    (A placeholder of routers imported on their first request, ``lazy_routes``, may hold any route under its
    path prefixes: it shadows those paths, and its own routes get a lane once they have replaced it.)
    """
    entries = list(_in_order(list(app.router.routes)))
    wanted = {lane.path for _, lane in entries if lane is not None and _EXACT.match(lane.path)}
    index: dict[tuple[str, str], Lane] = {}
    shadowed: set[str] = set()
    for route, lane in entries:
        if route is None:
            break
        if lane is not None and lane.path in wanted and lane.path not in shadowed:
            for method in lane.methods:
                index.setdefault((method, lane.path), lane)
        if isinstance(route, LazyRouters):
            shadowed.update(p for p in wanted if p.startswith(route.prefixes))
            continue
        regex = getattr(route, "path_regex", None)
        if regex is None:  # a kind of route whose paths are unknown (a host route…): stop here
            break
        shadowed.update(p for p in wanted if regex.match(p))
    return index


class HotLane:
    """Innermost ASGI middleware (after authentication and the body bound): see the module's docstring."""

    def __init__(self, app: ASGIApp, fastapi_app: FastAPI, bypass: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.fastapi_app = fastapi_app
        # paths sent straight to FastAPI (the health checks): the index, which builds every included route, is
        # made by the first request that may take a lane, not by a load balancer's first probe
        self.bypass = bypass
        self._index: dict[tuple[str, str], Lane] = {}
        self._built_for = -1  # the number of routes the index was built for (extensions are mounted at start-up)
        self._stamp = -1  # LazyRouters.materialised when it was built (routers imported on a first request)

    def index(self) -> dict[tuple[str, str], Lane]:
        routes = self.fastapi_app.router.routes
        if len(routes) != self._built_for or LazyRouters.materialised != self._stamp:
            self._stamp = LazyRouters.materialised
            self._index, self._built_for = build_index(self.fastapi_app), len(routes)
        return self._index

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        lane = self.index().get((scope["method"], scope["path"])) \
            if scope["type"] == "http" and not scope.get("root_path") and scope["path"] not in self.bypass else None
        if lane is None:
            await self.app(scope, receive, send)
            return
        route = lane.route
        scope.update({"route": route, "endpoint": route.endpoint, "path_params": {}, LANE_SCOPE_KEY: True})
        scope.setdefault("router", self.fastapi_app.router)
        request = route.request_class(scope, receive)
        try:
            response = await lane.handler(request)
        except NotLean as signal:
            del scope[LANE_SCOPE_KEY]
            await self.app(scope, receive if signal.body is None else _replay(signal.body, receive), send)
            return
        except Exception as exc:
            response = await self._handled(request, exc)
        await response(scope, receive, send)

    async def _handled(self, request: Request, exc: Exception) -> Response:
        """The app's exception handler for ``exc`` (as FastAPI's exception middleware picks it), else re-raise."""
        handlers = self.fastapi_app.exception_handlers
        handler = handlers.get(exc.status_code) if isinstance(exc, HTTPException) else None
        if handler is None:
            handler = next((handlers[c] for c in type(exc).__mro__ if c in handlers and c is not Exception), None)
        if handler is None:
            raise exc  # the server-error middleware's 500, as for every route
        result = await handler(request, exc) if inspect.iscoroutinefunction(handler) \
            else await run_in_threadpool(handler, request, exc)  # type: ignore[arg-type]
        return cast(Response, result)
