"""Plan and run a GenerateRequest as /api/v1/generate does (request credentials, masking, disconnect cancel)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import AsyncGenerator, cast

from fastapi import Request

from lollms_server.api import byok
from lollms_server.api.deps import caller_of
from lollms_server.api.disconnect import ClientGone, run_until_disconnect
from lollms_server.api.models import GenerateRequest, OutputData, StreamChunk
from lollms_server.api.openai_compat.errors import OpenAIError
from lollms_server.core.generation import GenerationPlan
from lollms_server.core.services import Services


@dataclass
class Planned:
    plan: GenerationPlan
    credentials: dict[str, str] | None


async def plan_for(request: Request, services: Services, body: GenerateRequest) -> Planned:
    creds = byok.credentials_from_headers(request.headers) or getattr(request.state, "byok_credentials", None)
    plan = await services.generation.plan(body, credentials=creds, caller=caller_of(request, "openai"))
    byok.check_allowed(plan.binding, plan.binding_name, creds)
    return Planned(plan, creds)


async def run_planned(request: Request, services: Services, planned: Planned) -> list[OutputData]:
    """The outputs; the work is cancelled (and 499 answered) when the client goes away first."""
    try:
        with byok.masked(planned.credentials):
            return await run_until_disconnect(request, services.generation.run(planned.plan))
    except ClientGone:
        raise OpenAIError(499, "client closed the request", code="client_closed") from None


def stream_planned(services: Services, planned: Planned) -> AsyncGenerator[StreamChunk, None]:
    stream = byok.masked_stream(planned.credentials, services.generation.stream(planned.plan))
    return cast(AsyncGenerator[StreamChunk, None], stream)  # an async generator: closable
