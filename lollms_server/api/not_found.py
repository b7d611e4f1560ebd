"""The last route: any path no other route knows is a JSON 404, whatever the method.

Without it, a path that only the web UI's GET route would match answers other methods with 405, and a
path one slash short of a route is redirected; a client with a wrong base URL should instead get a
clear 404. A path that another route serves with other methods still gets that route's 405.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Match
from starlette.types import Receive, Scope, Send

NOT_FOUND_DETAIL = "Not Found"


class NotFoundRoute(BaseRoute):
    def __init__(self, routes: list[BaseRoute]) -> None:
        self.routes = routes  # the app's route list (this route is its last item)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http":
            return Match.NONE, {}
        for route in self.routes:
            if route is not self and route.matches(scope)[0] != Match.NONE:
                return Match.NONE, {}  # another route knows this path (a 405, or the router's own handling)
        return Match.FULL, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        response = JSONResponse({"detail": NOT_FOUND_DETAIL}, status_code=404)
        await response(request.scope, receive, send)


def add_not_found_route(routes: list[BaseRoute]) -> None:
    routes.append(NotFoundRoute(routes))
