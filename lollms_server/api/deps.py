"""Request dependencies: the running Services and API-key authentication."""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request
from fastapi.security import APIKeyHeader

from lollms_server.core.apikeys import ApiKey
from lollms_server.core.services import Services
from lollms_server.core.telemetry import Caller

API_MISSING_KEY = "an API key is required: send it in the X-API-Key header"
API_WRONG_KEY = "invalid API key"

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="One of security.allowed_api_keys.")


async def current_services(request: Request) -> Services:
    """The running Services as a route dependency: ``Depends(current_services)``.

    Async on purpose: FastAPI runs a plain-function dependency in a worker thread, a thread hop per request.
    """
    return get_services(request)


_SERVICES_KEY = "lollms.services"  # scope entry: the Services a request found (several dependencies ask for them)


def get_services(request: Request) -> Services:
    """The running Services (503 while starting); callable from plain code."""
    scope = request.scope
    services: Services | None = scope.get(_SERVICES_KEY)
    if services is None:
        services = getattr(request.app.state, "services", None)
        if services is None:
            raise HTTPException(status_code=503, detail="server is starting or failed to start; try again shortly")
        scope[_SERVICES_KEY] = services
    return services


def key_matches(presented: str, allowed: list[str]) -> bool:
    """Constant-time comparison against every allowed key (no early exit on the first match)."""
    ok = False
    for key in allowed:
        ok |= hmac.compare_digest(presented.encode(), key.encode())
    return ok


def check_api_key(services: Services, presented: str | None) -> ApiKey | None:
    """The matching configured key (None when authentication is off); 403 without a key, 401 for a wrong one."""
    ring = services.config.key_ring
    if not ring.enabled:
        return None
    if not presented:
        raise HTTPException(status_code=403, detail=API_MISSING_KEY)
    key = ring.match(presented)
    if key is None:
        raise HTTPException(status_code=401, detail=API_WRONG_KEY)
    return key


def caller_of(request: Request, surface: str) -> Caller:
    """Who is asking (set by the auth dependency and the request-id middleware) for the pipeline."""
    state = request.scope.get("state") or {}  # (what request.state reads and writes)
    return Caller(surface=surface, key=state.get("api_key"), request_id=state.get("request_id"))


async def require_admin(request: Request) -> None:
    """403 unless the caller's key may manage the server (see ``KeyRing.is_admin``)."""
    ring = get_services(request).config.key_ring
    if not ring.is_admin(getattr(request.state, "api_key", None)):
        raise HTTPException(status_code=403, detail="this needs an admin API key (admin: true in security.allowed_api_keys)")
