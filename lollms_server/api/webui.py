"""Serve the built web UI (webui/dist) at / with SPA fallback; a clear page when it is not built.

Hashed files under ``assets/`` are cached for a year; ``index.html`` and the other files are revalidated on
every load (``no-cache`` + ETag), so a rebuilt UI shows up at once. Requested paths are resolved inside the
build folder only. The catch-all route is registered last and never answers below ``/api``, ``/v1`` or
``/lollms``, so API routes (also ones added later) always win, and unknown API paths stay JSON 404s.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response

from lollms_server.core.paths import PathEscapeError, resolve_inside

API_PREFIXES: frozenset[str] = frozenset({"api", "v1", "lollms"})
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
SECURITY_HEADERS: dict[str, str] = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}

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
        return HTMLResponse(NOT_BUILT_PAGE, headers={"Cache-Control": "no-store", **SECURITY_HEADERS})
    if path:
        try:
            target = resolve_inside(dist, path)
        except PathEscapeError:
            return _not_found()
        if target.is_file():
            in_assets = target.parent == (dist / "assets").resolve()
            return FileResponse(target, headers={"Cache-Control": IMMUTABLE if in_assets else REVALIDATE, **SECURITY_HEADERS})
        if "." in Path(path).name:  # a missing file (e.g. an old asset), not a page of the app
            return _not_found()
    return FileResponse(index, headers={"Cache-Control": REVALIDATE, **SECURITY_HEADERS})


def mount_webui(app: FastAPI, dist: Path) -> None:
    """Register the UI routes last, so API routes always win."""

    async def webui(path: str = "") -> Response:
        return webui_response(dist, path)

    app.add_api_route("/{path:path}", webui, methods=["GET", "HEAD"], include_in_schema=False)
