"""The server's side of the web UI: build served at /, caching, headers, JSON 404s, not-built page, confinement."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import AsyncIterator

import httpx
import pytest

from helpers import API_KEY, write_config
from lollms_server.app import create_app


def fake_build(dist: Path) -> Path:
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><div id=app>INDEX</div>")
    (dist / "assets" / "index-abc123.js").write_text("console.log('app')")
    (dist / "favicon.svg").write_text("<svg/>")
    return dist


@contextlib.asynccontextmanager
async def ui_client(config_dir: Path, dist: Path, enable_ui: bool = True) -> AsyncIterator[httpx.AsyncClient]:
    write_config(config_dir, main={"webui": {"enable_ui": enable_ui}})
    app = create_app(config_dir, webui_dist=dist)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


async def test_index_assets_and_spa_fallback(tmp_path: Path) -> None:
    dist = fake_build(tmp_path / "dist")
    async with ui_client(tmp_path / "cfg", dist) as c:
        root = await c.get("/")
        assert root.status_code == 200 and "INDEX" in root.text
        assert root.headers["cache-control"] == "no-cache"
        asset = await c.get("/assets/index-abc123.js")
        assert asset.status_code == 200 and "console.log" in asset.text
        assert "immutable" in asset.headers["cache-control"] and "max-age=31536000" in asset.headers["cache-control"]
        assert asset.headers["x-content-type-options"] == "nosniff"
        icon = await c.get("/favicon.svg")
        assert icon.status_code == 200 and icon.headers["cache-control"] == "no-cache" and "etag" in icon.headers
        again = await c.get("/index.html")
        assert again.status_code == 200 and "INDEX" in again.text
        deep = await c.get("/chat/some-conversation")  # the UI has no client-side routes: not the UI's path
        assert deep.status_code == 404 and deep.json() == {"detail": "Not Found"}
        missing_file = await c.get("/assets/index-old999.js")  # an asset of an older build: a real 404
        assert missing_file.status_code == 404
        head = await c.head("/")
        assert head.status_code == 200


async def test_api_routes_win_over_the_catch_all(tmp_path: Path) -> None:
    dist = fake_build(tmp_path / "dist")
    async with ui_client(tmp_path / "cfg", dist) as c:
        health = await c.get("/api/v1/health")
        assert health.status_code == 200 and health.json()["status"] == "ok"
        listing = await c.get("/api/v1/list_personalities")  # authenticated route: 403 JSON, not the page
        assert listing.status_code == 403
        listing = await c.get("/api/v1/list_personalities", headers={"X-API-Key": API_KEY})
        assert listing.status_code == 200 and "personalities" in listing.json()
        for path in ("/api/v1/no_such_endpoint", "/api", "/v1/no_such", "/lollms/v1/no_such", "/v1"):
            r = await c.get(path)
            assert r.status_code in (401, 403, 404), path
            assert r.headers["content-type"].startswith("application/json"), path
            assert "INDEX" not in r.text, path
        models = await c.get("/v1/models", headers={"Authorization": f"Bearer {API_KEY}"})  # OpenAI-compatible route
        assert models.status_code == 200 and models.json()["object"] == "list"
        docs = await c.get("/docs")
        assert docs.status_code == 200 and "swagger" in docs.text.lower()


@pytest.mark.parametrize("path", [
    "/..%2f..%2fetc%2fpasswd", "/assets/..%2f..%2f..%2fetc%2fpasswd", "/%2e%2e/%2e%2e/etc/passwd",
    "/..%2fsecret.txt", "/%2fetc%2fpasswd",
])
async def test_static_serving_never_leaves_the_build_folder(tmp_path: Path, path: str) -> None:
    dist = fake_build(tmp_path / "dist")
    (tmp_path / "secret.txt").write_text("TOP-SECRET")
    async with ui_client(tmp_path / "cfg", dist) as c:
        r = await c.get(path)
        assert "TOP-SECRET" not in r.text and "root:" not in r.text
        assert r.status_code in (200, 404)  # 200 only as the index
        if r.status_code == 200:
            assert "INDEX" in r.text


async def test_symlink_out_of_the_build_is_refused(tmp_path: Path) -> None:
    dist = fake_build(tmp_path / "dist")
    (tmp_path / "secret.txt").write_text("TOP-SECRET")
    (dist / "leak.txt").symlink_to(tmp_path / "secret.txt")
    async with ui_client(tmp_path / "cfg", dist) as c:
        r = await c.get("/leak.txt")
        assert r.status_code == 404 and "TOP-SECRET" not in r.text


async def test_clear_page_when_enabled_but_not_built(tmp_path: Path) -> None:
    async with ui_client(tmp_path / "cfg", tmp_path / "no-dist") as c:
        r = await c.get("/")
        assert r.status_code == 200
        assert "not been built" in r.text and "scripts/install_webui.sh" in r.text
        assert r.headers["cache-control"] == "no-store"
        assert (await c.get("/api/v1/health")).status_code == 200


async def test_ui_disabled_serves_nothing_at_root(tmp_path: Path) -> None:
    dist = fake_build(tmp_path / "dist")
    async with ui_client(tmp_path / "cfg", dist, enable_ui=False) as c:
        assert (await c.get("/")).status_code == 404
        assert (await c.get("/assets/index-abc123.js")).status_code == 404


def _csp(response: httpx.Response) -> dict[str, str]:
    policy = response.headers["content-security-policy"]
    return {d.split(" ", 1)[0]: (d.split(" ", 1) + [""])[1] for d in (x.strip() for x in policy.split(";")) if d}


async def test_security_headers_on_ui_docs_and_api(tmp_path: Path) -> None:
    import base64
    import hashlib
    import re

    dist = fake_build(tmp_path / "dist")
    async with ui_client(tmp_path / "cfg", dist) as c:
        for path in ("/", "/assets/index-abc123.js", "/favicon.svg", "/docs", "/redoc", "/health", "/api/v1/list_bindings",
                     "/no/such/page"):
            r = await c.get(path)
            assert r.headers["x-content-type-options"] == "nosniff", path
            assert r.headers["referrer-policy"] == "no-referrer", path
            assert _csp(r)["frame-ancestors"] == "'none'", path
            assert r.headers["x-frame-options"] == "DENY", path
        ui = _csp(await c.get("/"))
        assert ui["script-src"] == "'self'" and "unsafe-inline" not in ui["script-src"] and ui["object-src"] == "'none'"
        assert _csp(await c.get("/health"))["default-src"] == "'none'"
        for path in ("/docs", "/redoc"):
            page = await c.get(path)
            assert page.status_code == 200
            policy = _csp(page)
            assert "unsafe-inline" not in policy["script-src"]
            for body in re.findall(r"<script(?![^>]*src=)[^>]*>(.*?)</script>", page.text, re.S):
                digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
                assert f"'sha256-{digest}'" in policy["script-src"], path


async def test_unknown_paths_are_json_404_for_every_method(tmp_path: Path) -> None:
    dist = fake_build(tmp_path / "dist")
    async with ui_client(tmp_path / "cfg", dist) as c:
        for method in ("GET", "POST", "PUT", "DELETE", "PATCH"):
            for path in ("/no-such-page", "/chat/completions", "/generate", "/assets/nothing.js", "/index.htm"):
                r = await c.request(method, path, json={"x": 1} if method != "GET" else None)
                assert r.status_code == 404, (method, path, r.status_code)
                assert r.headers["content-type"].startswith("application/json") and "INDEX" not in r.text, (method, path)
        # a wrong method on a real path stays a 405 (the path exists)
        assert (await c.post("/")).status_code == 405
        assert (await c.get("/api/v1/generate", headers={"X-API-Key": API_KEY})).status_code == 405
