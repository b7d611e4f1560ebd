"""Mount what extensions registered under /ext/<name>/ once they are installed (at start-up).

Extensions install in the lifespan, after the app's own routes exist; their routes are inserted before the
catch-all routes (unknown /v1 paths, the web UI at /) so they are reachable, and they appear in /docs.
"""

from __future__ import annotations

from typing import Any, Sequence

from fastapi import APIRouter, FastAPI
from fastapi.params import Depends
from fastapi.staticfiles import StaticFiles
from starlette.routing import BaseRoute, Mount

from lollms_server.core.extensions import Extension


def mount_extensions(app: FastAPI, extensions: list[Extension], insert_at: int, auth: Sequence[Depends]) -> list[BaseRoute]:
    """Insert the extensions' routes at ``insert_at`` in the app's route list; returns them (for removal)."""
    before = len(app.router.routes)
    for ext in extensions:
        router = APIRouter(prefix=f"/ext/{ext.name}", tags=[f"ext:{ext.name}"])
        for r in ext.ctx.routes:
            deps: list[Any] = [] if r.public else list(auth)
            router.add_api_route(r.path, r.endpoint, methods=r.methods, dependencies=deps, **r.options)
        app.include_router(router)
        for url_path, folder in ext.ctx.statics.items():
            app.router.routes.append(Mount(f"/ext/{ext.name}{url_path}", app=StaticFiles(directory=folder), name=f"ext-{ext.name}-static"))
    added = app.router.routes[before:]
    del app.router.routes[before:]
    app.router.routes[insert_at:insert_at] = added
    app.openapi_schema = None  # regenerate /openapi.json with the new routes
    return list(added)


def unmount(app: FastAPI, routes: list[BaseRoute]) -> None:
    app.router.routes[:] = [r for r in app.router.routes if all(r is not x for x in routes)]
    app.openapi_schema = None
