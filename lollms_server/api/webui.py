"""Serve the built web UI (webui/dist) at / with SPA fallback; a clear page when it is not built."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from lollms_server.core.paths import PathEscapeError, resolve_inside

NOT_BUILT_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>lollms_server</title></head>
<body style="font-family:sans-serif;max-width:40em;margin:3em auto">
<h1>lollms_server is running</h1>
<p>The web UI is enabled but not built. Build it with <code>cd webui &amp;&amp; npm install &amp;&amp; npm run build</code>
(<code>./install.sh</code> does this), then reload. The API is at <a href="/docs">/docs</a>.</p></body></html>"""


def mount_webui(app: FastAPI, dist: Path) -> None:
    """Register the UI routes last, so API routes always win."""

    @app.get("/{path:path}", include_in_schema=False)
    async def webui(path: str, request: Request) -> Response:
        if path.startswith(("api/", "v1/", "lollms/")):
            return Response(status_code=404, content='{"detail":"Not Found"}', media_type="application/json")
        index = dist / "index.html"
        if not index.is_file():
            return HTMLResponse(NOT_BUILT_PAGE, status_code=200, headers={"Cache-Control": "no-store"})
        if path:
            try:
                target = resolve_inside(dist, path)
            except PathEscapeError:
                return Response(status_code=404)
            if target.is_file():
                immutable = target.parent.name == "assets"
                cache = "public, max-age=31536000, immutable" if immutable else "no-cache"
                return FileResponse(target, headers={"Cache-Control": cache})
            if "." in Path(path).name:
                return Response(status_code=404)
        return FileResponse(index, headers={"Cache-Control": "no-cache"})
