"""Serve the built web UI (webui/dist) at /; a clear page when it is not built.

The UI is one page without client-side routes (it switches views in memory), so the UI answers only
``/`` (and ``/index.html``) and the files of the build. Every other path is not the UI's: it gets the
API's JSON 404 for any method, so a client with a wrong base URL fails clearly instead of receiving a
page with 200. Hashed files under ``assets/`` are cached for a year; ``index.html`` and the other files
are revalidated on every load (``no-cache`` + ETag), so a rebuilt UI shows up at once. Requested paths
are resolved inside the build folder only, and never below ``/api``, ``/v1`` or ``/lollms``.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.routing import Match
from starlette.types import Scope

from lollms_server.api.security_headers import COMMON_HEADERS, CSP, PLAIN_PAGE_CSP, UI_CSP
from lollms_server.core.paths import PathEscapeError, resolve_inside

API_PREFIXES: frozenset[str] = frozenset({"api", "v1", "lollms"})
CLIENT_ROUTES: frozenset[str] = frozenset({"", "index.html"})  # the paths that show the app itself
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
SECURITY_HEADERS: dict[str, str] = {**COMMON_HEADERS, CSP: UI_CSP}

NOT_BUILT_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>lollms_server: web UI not built</title></head>
<body style="font-family:system-ui,sans-serif;max-width:40em;margin:3em auto;padding:0 1em;line-height:1.5">
<h1>lollms_server is running</h1>
<p>The web UI is enabled (<code>webui.enable_ui</code>) but has not been built yet. Build it with</p>
<pre style="background:#f3f3f6;padding:.8em;border-radius:8px">bash scripts/install_webui.sh</pre>
<p>(<code>./install.sh</code> does this; it needs Node.js 20 and npm), then reload this page.
The API works meanwhile: see <a href="/docs">/docs</a>.</p></body></html>"""


def _not_found() -> Response:
    return JSONResponse({"detail": "Not Found"}, status_code=404)


def webui_response(dist: Path, path: str) -> Response:
    """The response for GET ``/{path}``: a build file, index.html (SPA fallback), or the not-built page."""
    if path.split("/", 1)[0] in API_PREFIXES:
        return _not_found()
    index = dist / "index.html"
    if not index.is_file():
        return HTMLResponse(NOT_BUILT_PAGE, headers={"Cache-Control": "no-store", **COMMON_HEADERS, CSP: PLAIN_PAGE_CSP})
    if path:
        try:
            target = resolve_inside(dist, path)
        except PathEscapeError:
            return _not_found()
        if target.is_file():
            in_assets = target.parent == (dist / "assets").resolve()
            return FileResponse(target, headers={"Cache-Control": IMMUTABLE if in_assets else REVALIDATE, **SECURITY_HEADERS})
        if path not in CLIENT_ROUTES:  # a missing file or a path that is not the UI's
            return _not_found()
    return FileResponse(index, headers={"Cache-Control": REVALIDATE, **SECURITY_HEADERS})


def is_webui_path(dist: Path, path: str) -> bool:
    """Whether ``/{path}`` belongs to the UI: a client route, or a file of the build."""
    if path in CLIENT_ROUTES:
        return True
    if path.split("/", 1)[0] in API_PREFIXES or not (dist / "index.html").is_file():
        return False
    try:
        return resolve_inside(dist, path).is_file()
    except PathEscapeError:
        return False


class WebUIRoute(APIRoute):
    """A GET route that matches only the UI's own paths, so other paths of any method are JSON 404s."""

    def __init__(self, dist: Path) -> None:
        self.dist = dist

        async def webui(path: str = "") -> Response:
            return webui_response(dist, path)

        super().__init__("/{path:path}", webui, methods=["GET", "HEAD"], include_in_schema=False)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match == Match.NONE or not is_webui_path(self.dist, str(child.get("path_params", {}).get("path", ""))):
            return Match.NONE, {}
        return match, child


def mount_webui(app: FastAPI, dist: Path) -> None:
    """Register the UI route last, so API routes always win."""
    app.router.routes.append(WebUIRoute(dist))
