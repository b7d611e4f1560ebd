"""create_app(): the FastAPI application factory."""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import logging
import os
from pathlib import Path
from typing import Any, AsyncIterator

import lollms_server.api  # noqa: F401 - before FastAPI: it imports FastAPI without email-validator (see there)
from fastapi import APIRouter, Depends, FastAPI, Request, Security
from fastapi.middleware.cors import CORSMiddleware

from lollms_server import __version__
from lollms_server.api import routes_generate, routes_health, routes_metrics
from lollms_server.api.ext_routes import mount_extensions, unmount
from lollms_server.api.hot_lane import HotLane
from lollms_server.api.lazy_routes import include_lazily
from lollms_server.api.middleware import RequestContextMiddleware
from lollms_server.api import ollama, openai_compat
from lollms_server.api.deps import api_key_header, check_api_key, get_services
from lollms_server.api.docs_pages import add_docs_pages
from lollms_server.api.errors import install_error_handlers
from lollms_server.api.not_found import add_not_found_route
from lollms_server.api.request_guard import RequestGuard
from lollms_server.api.surface_auth import guard_match
from lollms_server.api.webui import mount_webui
from lollms_server.core import dataclass_code, start_up_gc
from lollms_server.core.config import ServerConfig, load_server_config
from lollms_server.core.metrics import Metrics
from lollms_server.core.paths import WEBUI_DIST_DIR
from lollms_server.core.services import Services, build_services, close_services

log = logging.getLogger("lollms_server")

# routers of /api/v1 that only some requests need: imported on the first request to their paths
# (api/lazy_routes.py; tests/test_startup_lazy.py checks that the prefixes cover every route).
# The listings come before generate (their place in the route list and the schema), the others after it.
INFO_ROUTER: dict[str, tuple[str, ...]] = {
    "routes_info": ("/api/v1/list_bindings", "/api/v1/list_active_bindings", "/api/v1/list_personalities",
                    "/api/v1/personality_icon/", "/api/v1/list_functions", "/api/v1/list_models",
                    "/api/v1/list_available_models/", "/api/v1/get_default_bindings", "/api/v1/get_model_info/",
                    "/api/v1/resources"),
}
LAZY_ROUTERS: dict[str, tuple[str, ...]] = {
    "routes_jobs": ("/api/v1/jobs",),
    "routes_embed": ("/api/v1/embed",),
    "routes_tokens": ("/api/v1/tokenize", "/api/v1/detokenize", "/api/v1/count_tokens"),
    "routes_usage": ("/api/v1/usage",),
    "routes_plugins": ("/api/v1/list_filters", "/api/v1/filters/", "/api/v1/list_extensions", "/api/v1/extensions/"),
}

DESCRIPTION = """One API to many generation backends (text, image, speech in and out).

Authenticate with the `X-API-Key` header (403 when missing, 401 when wrong). Start with
`POST /api/v1/generate`; list what is available with the `list_*` endpoints."""


async def require_api_key(request: Request, key: str | None = Security(api_key_header)) -> None:
    services = get_services(request)
    key_found = guard_match(request, "api", services.config.key_ring) or check_api_key(services, key)
    request.scope.setdefault("state", {})["api_key"] = key_found  # (request.state.api_key, without a State object)


def fastapi_telemetry() -> dict[str, Any]:
    """``FastAPI(**fastapi_telemetry())``: FastAPI's own OpenTelemetry instrumentation (FastAPI >= 0.16x) stays as
    FastAPI sets it when the environment configures OpenTelemetry (an ``OTEL_*`` variable, or
    ``FASTAPI_OTEL_AUTO_CONFIGURE``); otherwise it is off, because FastAPI asks on every request whether a provider
    has been configured since (three provider look-ups through ``os.environ``: several microseconds per request)."""
    if "telemetry" not in inspect.signature(FastAPI.__init__).parameters:
        return {}
    if any(name.startswith("OTEL_") or name == "FASTAPI_OTEL_AUTO_CONFIGURE" for name in os.environ):
        return {}
    return {"telemetry": {"tracing": False, "metrics": False, "logs": False}}


def _router_of(module: str) -> list[APIRouter]:
    return [importlib.import_module(f"lollms_server.api.{module}").router]


def create_app(config_dir: Path | None = None, config: ServerConfig | None = None, *, webui_dist: Path | None = None) -> FastAPI:
    """Build the app. The configuration is loaded now, so a bad file fails here, before serving."""
    if config is None:
        if config_dir is None:
            raise ValueError("create_app needs config_dir or config")
        config = load_server_config(config_dir)
    cfg = config

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services: Services = await build_services(cfg, metrics)
        app.state.services = services
        ext_routes = mount_extensions(app, list(services.extensions.extensions.values()), ext_insert_at, auth) \
            if services.extensions is not None else []
        dataclass_code.settle()  # the methods of start-up's dataclasses are kept for the next start (see there)
        # what start-up built (routes, schemas, plugins) lives as long as the server: keep the garbage
        # collector from walking it again on every full collection during requests
        start_up_gc.settle()
        try:
            yield
        finally:
            unmount(app, ext_routes)
            store = getattr(app.state, "response_store", None)
            app.state.response_store = None
            if store is not None:
                await store.close()
            await close_services(services)
            app.state.services = None

    app = FastAPI(
        title="lollms_server", version=__version__, description=DESCRIPTION, lifespan=lifespan,
        docs_url=None, redoc_url=None,  # served by add_docs_pages, with their own Content-Security-Policy
        **fastapi_telemetry(),
        openapi_tags=[
            {"name": "generate", "description": "Generation (JSON or SSE)."},
            {"name": "jobs", "description": "Durable generations: start, poll, follow (resumable SSE) and cancel."},
            {"name": "info", "description": "Bindings, personalities, functions, models, resources."},
            {"name": "tokens", "description": "Tokenizer utilities."},
            {"name": "health", "description": "Liveness, no authentication."},
            {"name": "usage", "description": "The usage ledger: every generation, per key, model and personality."},
            {"name": "metrics", "description": "Prometheus metrics (own optional token)."},
            {"name": "extensions", "description": "Filters with valves, and extensions (their own routes are under /ext/<name>/)."},
            {"name": "openai", "description": "OpenAI-compatible API (/v1) and lollms extras; `Authorization: Bearer KEY`."},
            {"name": "ollama", "description": "Ollama-compatible API (/api/chat, /api/generate, /api/tags…): NDJSON "
             "streams, `{\"error\": ...}` errors; `Authorization: Bearer KEY` or `X-API-Key`."},
        ],
    )
    app.state.services = None
    app.state.config = cfg
    # the key is checked and the body bounded before any route reads a byte of it (CORS and the
    # request-id/metrics middleware, added later, wrap it: refused requests are counted and carry CORS headers)
    limits = cfg.limits
    # the routes that need no key, as their routers declare them (health, readiness, server_info), and Ollama's
    # version (its routers are imported on the surface's first request)
    public_paths = frozenset(getattr(r, "path", "") for r in routes_health.public_router.routes) | ollama.PUBLIC_PATHS
    app.add_middleware(HotLane, fastapi_app=app, bypass=public_paths)  # innermost: the lean routes without FastAPI's routing
    app.add_middleware(RequestGuard, key_ring=cfg.key_ring, public_paths=public_paths, max_body_bytes=limits.max_body_bytes,
                       max_header_bytes=limits.max_header_bytes, keyless_surfaces=cfg.keyless_loopback_surfaces)
    metrics = Metrics() if cfg.section("metrics").get("enabled", True) else None
    origins = [str(o) for o in cfg.section("server").get("allowed_origins") or [] if str(o).lower() != "null"]
    if origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=origins, allow_methods=["*"], allow_headers=["*"], allow_credentials=False
        )
    app.add_middleware(RequestContextMiddleware, metrics=metrics)  # outermost: request id, timing, security headers
    install_error_handlers(app)
    add_docs_pages(app)
    auth = [Depends(require_api_key)]
    app.include_router(routes_health.public_router)
    for module, prefixes in INFO_ROUTER.items():
        include_lazily(app, prefixes, functools.partial(_router_of, module), dependencies=auth)
    app.include_router(routes_generate.router, dependencies=auth)
    for module, prefixes in LAZY_ROUTERS.items():
        include_lazily(app, prefixes, functools.partial(_router_of, module), dependencies=auth)
    if metrics is not None:
        app.include_router(routes_metrics.router)
    ext_insert_at = len(app.router.routes)  # extension routes go here at start-up, before the catch-alls below
    # own auth (Bearer or X-API-Key) and error shapes; imported on their first request, not at start-up
    include_lazily(app, openai_compat.PATH_PREFIXES, openai_compat.routers)
    include_lazily(app, ollama.PATH_PREFIXES, ollama.routers)
    if cfg.section("webui").get("enable_ui", True):
        mount_webui(app, webui_dist or WEBUI_DIST_DIR)
    add_not_found_route(app.router.routes)  # last: unknown paths are JSON 404s for every method
    return app

