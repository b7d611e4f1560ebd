"""GET /metrics: Prometheus text format, protected by metrics.token (or the API keys when no token is set)."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, HTTPException, Request, Response

from lollms_server.api.deps import get_services
from lollms_server.core.metrics import CONTENT_TYPE

router = APIRouter(tags=["metrics"])


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def check_metrics_access(request: Request) -> None:
    services = get_services(request)
    token = services.config.section("metrics").get("token")
    presented = _bearer(request) or request.headers.get("x-api-key")
    if token:
        if not presented:
            raise HTTPException(403, "send the metrics token as 'Authorization: Bearer TOKEN'")
        if not hmac.compare_digest(presented.encode(), str(token).encode()):
            raise HTTPException(401, "invalid metrics token")
        return
    ring = services.config.key_ring
    if not ring.enabled:
        return
    if not presented:
        raise HTTPException(403, "send an API key as 'Authorization: Bearer KEY' or X-API-Key (or set metrics.token)")
    if ring.match(presented) is None:
        raise HTTPException(401, "invalid API key")


@router.get("/metrics", summary="Prometheus metrics", response_class=Response,
            responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text exposition format."},
                       401: {"description": "Wrong token."}, 403: {"description": "No token."}})
async def metrics(request: Request) -> Response:
    check_metrics_access(request)
    telemetry = get_services(request).telemetry
    if telemetry.metrics is None:  # pragma: no cover - the route exists only when metrics are on
        raise HTTPException(404, "metrics are turned off (metrics.enabled)")
    return Response(await telemetry.metrics.exposition(), media_type=CONTENT_TYPE)
