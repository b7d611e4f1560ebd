"""The one request pipeline every surface shares: plan, then run or stream a GenerateRequest.

A surface (``/api/v1``, ``/v1``, the Ollama routes, extensions) translates its wire format into a
``GenerateRequest``, calls ``plan_request`` (request credentials, limits and every 4xx happen there),
then ``run_planned`` (disconnect cancels the work: ClientGone) or ``stream_planned`` (StreamChunks ending
with exactly one ``final``), and translates the result back. Nothing else differs between surfaces.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import AsyncGenerator, cast

from fastapi import Request

from lollms_server.api import byok
from lollms_server.api.deps import caller_of
from lollms_server.api.disconnect import ClientGone, run_until_disconnect
from lollms_server.core.contract import GenerateRequest, OutputData, StreamChunk
from lollms_server.core.generation import GenerationPlan
from lollms_server.core.services import Services

__all__ = ["ClientGone", "Planned", "plan_request", "run_planned", "stream_planned"]


@dataclass
class Planned:
    plan: GenerationPlan
    credentials: dict[str, str] | None


async def plan_request(request: Request, services: Services, body: GenerateRequest, surface: str, *,
                       inlet: bool = True) -> Planned:
    """Plan ``body`` for the caller of ``request`` on ``surface`` (api, openai, ollama…); ``inlet``: see
    ``GenerationService.plan``."""
    creds = byok.credentials_of(request) or (request.scope.get("state") or {}).get("byok_credentials")
    plan = await services.generation.plan(body, credentials=creds, caller=caller_of(request, surface), inlet=inlet)
    byok.check_allowed(plan.binding, plan.binding_name, creds)
    return Planned(plan, creds)


async def run_planned(request: Request, services: Services, planned: Planned) -> list[OutputData]:
    """The outputs; raises ClientGone (after cancelling the work) when the client goes away first."""
    work = services.generation.run(planned.plan)
    if not planned.credentials:
        return await run_until_disconnect(request, work)
    with byok.masked(planned.credentials):  # a key the request brought stays masked while it runs
        return await run_until_disconnect(request, work)


def stream_planned(services: Services, planned: Planned) -> AsyncGenerator[StreamChunk, None]:
    stream = services.generation.stream(planned.plan)
    if planned.credentials:  # a key the request brought stays masked until its stream ends
        stream = byok.masked_stream(planned.credentials, stream)
    return cast(AsyncGenerator[StreamChunk, None], stream)  # an async generator: closable
