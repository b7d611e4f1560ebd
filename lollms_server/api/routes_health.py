"""Health, readiness and server facts (no auth): the routes a load balancer and the web UI's connect screen
use, built at start-up. The authenticated listings are in ``routes_info`` (imported on their first request)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends

from lollms_server import __version__
from lollms_server.api.deps import current_services
from lollms_server.api.health_models import HealthResponse, ReadinessResponse, ServerInfoResponse
from lollms_server.api.strict_json import StrictJSONRoute
from lollms_server.core.errors import UnavailableError
from lollms_server.core.paths import display_path
from lollms_server.core.services import Services

public_router = APIRouter(tags=["health"], route_class=StrictJSONRoute)


async def health(services: Services = Depends(current_services)) -> HealthResponse:
    cfg = services.config
    return HealthResponse(
        status="ok", version=__version__, api_key_required=cfg.auth_enabled,
        auth="required" if cfg.auth_enabled else "disabled", warnings=cfg.security_warnings(),
    )


public_router.add_api_route("/health", health, methods=["GET"], summary="Server health (no auth)", response_model=HealthResponse)
public_router.add_api_route("/api/v1/health", health, methods=["GET"], summary="Server health (no auth)", response_model=HealthResponse)


async def readiness(services: Services = Depends(current_services)) -> ReadinessResponse:
    """Ready once start-up is done and the shared services it is configured with (Redis) answer.

    Models load on first use; an instance that failed is listed, not fatal.
    """
    problem = (await services.resources.problem() or await services.telemetry.problem()
               or (await services.jobs.store.problem() if services.jobs is not None else None))
    if problem:
        raise UnavailableError(problem)
    states: dict[str, Literal["ready", "failed"]] = {
        name: ("ready" if rec.binding is not None else "failed") for name, rec in sorted(services.bindings.instances.items())
    }
    return ReadinessResponse(status="ready", instances=states)


for _path in ("/health/ready", "/api/v1/health/ready"):
    public_router.add_api_route(
        _path, readiness, methods=["GET"], response_model=ReadinessResponse,
        summary="Readiness for load balancers (no auth)",
        responses={503: {"description": "Still starting up or a shared service is unreachable."}},
    )


@public_router.get("/api/v1/server_info", response_model=ServerInfoResponse, summary="Facts for the connect screen (no auth)")
def server_info(services: Services = Depends(current_services)) -> ServerInfoResponse:
    """Where the operator finds the API key: the main config file, shown relative (never an absolute path)."""
    config = services.config
    return ServerInfoResponse(version=__version__, api_key_required=bool(config.api_keys), config_file=display_path(config.file))
