"""API-key check of the OpenAI-style routes: `Authorization: Bearer KEY` or `X-API-Key`, same keys as /api/v1."""

from __future__ import annotations

from fastapi import Request
from starlette.datastructures import Headers

from lollms_server.api.deps import get_services
from lollms_server.api.openai_compat.errors import OpenAIError

MISSING_KEY = "You didn't provide an API key. Send it as 'Authorization: Bearer KEY' or in the X-API-Key header."
WRONG_KEY = "Incorrect API key provided."


def presented_key(headers: Headers) -> str | None:
    auth = headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return headers.get("x-api-key") or None


async def require_openai_key(request: Request) -> None:
    """401 in OpenAI's shape when keys are configured and none of them was presented."""
    ring = get_services(request).config.key_ring
    if not ring.enabled:
        return
    key = presented_key(request.headers)
    if not key:
        raise OpenAIError(401, MISSING_KEY, code="missing_api_key")
    matched = ring.match(key)
    if matched is None:
        raise OpenAIError(401, WRONG_KEY, code="invalid_api_key")
    request.state.api_key = matched
