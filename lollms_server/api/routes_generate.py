"""POST /api/v1/generate: JSON or an SSE stream of StreamChunk."""

from __future__ import annotations

import time
from typing import Union

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import JSONResponse

from lollms_server.api.deps import current_services
from lollms_server.api.strict_json import StrictJSONRoute
from lollms_server.api.pipeline import ClientGone, plan_request, run_planned, stream_planned
from lollms_server.api.sse import SSEResponse, stream_chunks
from lollms_server.core.contract import GenerateRequest, GenerateResponse, StreamChunk
from lollms_server.core.services import Services

router = APIRouter(prefix="/api/v1", tags=["generate"], route_class=StrictJSONRoute)

_STREAM_DOC = {
    200: {
        "description": "GenerateResponse (JSON), or with stream=true a text/event-stream of `data: <StreamChunk>` "
        "events ending with exactly one `final` event whose content is the full List[OutputData].",
        # OpenAPI 3.1: the schema of one event; its `data` field is a StreamChunk as JSON
        "content": {"text/event-stream": {"schema": {
            "type": "object", "required": ["data"],
            "properties": {"event": {"type": "string"}, "id": {"type": "string"}, "data": {
                "type": "string", "contentMediaType": "application/json", "contentSchema": StreamChunk.model_json_schema(),
            }},
        }}},
    },
    404: {"description": "Unknown personality or binding instance."},
    400: {"description": "Bad input (no prompt, wrong modality or MIME type, invalid parameters, too many items, "
          "a prompt or max_tokens that does not fit the model's context, a broken model file)."},
    408: {"description": "Waited longer than resource_manager.queue_timeout for a compute slot (Retry-After)."},
    413: {"description": "Body larger than server.max_body_bytes."},
    501: {"description": "The binding cannot do this generation type."},
    502: {"description": "The provider behind a remote binding failed or sent an unusable answer."},
    503: {"description": "The binding instance failed to load, or resource_manager.max_queue requests already wait (Retry-After)."},
}


@router.post(
    "/generate",
    response_model=GenerateResponse,
    responses=_STREAM_DOC,  # type: ignore[arg-type]
    summary="Generate text, images or audio",
    description="Runs one generation through a personality and a binding instance. Binding: request > personality > "
    "defaults.<generation_type>_binding. Parameters: defaults < personality < request.",
)
async def generate(
    request: Request,
    body: GenerateRequest = Body(...),
    services: Services = Depends(current_services),
) -> Union[GenerateResponse, SSEResponse, JSONResponse]:
    started = time.perf_counter()
    planned = await plan_request(request, services, body, "api")
    plan = planned.plan
    personality = plan.personality.folder_name if plan.personality else None
    if plan.stream:
        keepalive = float(services.config.section("server").get("keepalive_interval", 15.0))
        return stream_chunks(stream_planned(services, planned), keepalive)
    try:
        outputs = await run_planned(request, services, planned)
    except ClientGone:
        return JSONResponse(status_code=499, content={"detail": "client closed the request"})
    return GenerateResponse(
        personality=personality, request_id=plan.request_id, output=outputs,
        execution_time=round(time.perf_counter() - started, 4),
    )
