"""API-key check of the OpenAI-style routes: `Authorization: Bearer KEY` or `X-API-Key`, same keys as /api/v1."""

from __future__ import annotations

from fastapi import Request

from lollms_server.api.openai_compat.errors import OpenAIError
from lollms_server.api.surface_auth import key_problem, presented_key

__all__ = ["MISSING_KEY", "WRONG_KEY", "presented_key", "require_openai_key"]

MISSING_KEY = "You didn't provide an API key. Send it as 'Authorization: Bearer KEY' or in the X-API-Key header."
WRONG_KEY = "Incorrect API key provided."


async def require_openai_key(request: Request) -> None:
    """401 in OpenAI's shape when keys are configured and none of them was presented."""
    problem = key_problem(request, "openai")
    if problem == "missing":
        raise OpenAIError(401, MISSING_KEY, code="missing_api_key")
    if problem == "invalid":
        raise OpenAIError(401, WRONG_KEY, code="invalid_api_key")
