"""The shared pipeline (api.pipeline) with the OpenAI surface's caller tag and error shape."""

from __future__ import annotations

from fastapi import Request

from lollms_server.api import pipeline
from lollms_server.api.models import GenerateRequest, OutputData
from lollms_server.api.openai_compat.errors import OpenAIError
from lollms_server.api.pipeline import Planned, stream_planned
from lollms_server.core.services import Services

__all__ = ["Planned", "plan_for", "run_planned", "stream_planned"]


async def plan_for(request: Request, services: Services, body: GenerateRequest) -> Planned:
    return await pipeline.plan_request(request, services, body, "openai")


async def run_planned(request: Request, services: Services, planned: Planned) -> list[OutputData]:
    """The outputs; the work is cancelled (and 499 answered) when the client goes away first."""
    try:
        return await pipeline.run_planned(request, services, planned)
    except pipeline.ClientGone:
        raise OpenAIError(499, "client closed the request", code="client_closed") from None
