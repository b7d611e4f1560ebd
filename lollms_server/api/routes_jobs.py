"""/api/v1/jobs: durable generations — create, poll, follow (resumable SSE) and cancel.

A job takes the body of ``/api/v1/generate`` and is planned (validated) at once like it; it then runs apart
from the request, so a client may disconnect, reload or ask another replica. Jobs are visible only to the
API key that created them (404 for any other).
"""

from __future__ import annotations

from typing import Any, AsyncIterator, Optional

from fastapi import APIRouter, Body, Depends, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette import EventSourceResponse

from lollms_server.api import byok
from lollms_server.api.deps import current_services
from lollms_server.api.pipeline import plan_request
from lollms_server.api.strict_json import StrictJSONRoute
from lollms_server.core.contract import GenerateRequest, GenerateResponse, StreamChunk
from lollms_server.core.errors import BadRequestError, UnavailableError
from lollms_server.core.jobs import JobService, JobState
from lollms_server.core.services import Services

router = APIRouter(prefix="/api/v1", tags=["jobs"], route_class=StrictJSONRoute)


class JobCreated(BaseModel):
    job_id: str
    state: JobState = Field(description="Always `queued` when created.")
    events_url: str = Field(description="Where to follow the job's events (SSE).")
    created_at: float = Field(description="Unix time, seconds.")


class JobError(BaseModel):
    model_config = ConfigDict(extra="allow")
    message: str
    type: Optional[str] = Field(default=None, description="generation_error, cancelled, runner_lost, server_stopped…")
    status_code: Optional[int] = Field(default=None, description="The HTTP status /api/v1/generate would have answered.")


class JobObject(BaseModel):
    job_id: str
    state: JobState
    created_at: float
    started_at: Optional[float] = Field(default=None, description="When its (last) attempt started.")
    finished_at: Optional[float] = None
    attempts: int = Field(description="How many times a runner started it (more than 1 after a runner died).")
    result: Optional[GenerateResponse] = Field(default=None, description="Exactly what /api/v1/generate answers "
                                               "(non-streamed), once the job succeeded.")
    error: Optional[JobError] = None


class JobList(BaseModel):
    jobs: list[JobObject] = Field(description="The caller's most recent jobs, newest first (results left out: null).")


_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "Unknown job, expired (jobs.result_ttl_s), or created with another API key."}}

_EVENTS_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "text/event-stream: every event has an `id:` (pass it back as Last-Event-ID to resume) and "
        "`data:` = a StreamChunk, as /api/v1/generate streams them, ending with exactly one `final`.",
        "content": {"text/event-stream": {"schema": {
            "type": "object", "required": ["id", "data"],
            "properties": {"id": {"type": "string"}, "data": {
                "type": "string", "contentMediaType": "application/json", "contentSchema": StreamChunk.model_json_schema(),
            }},
        }}},
    },
    400: {"description": "Last-Event-ID is not an event id of this job's stream."},
    **_NOT_FOUND,
}


def _jobs(services: Services) -> JobService:
    if services.jobs is None:
        raise UnavailableError("jobs are not available in this process")
    return services.jobs


def _owner(request: Request) -> str:
    key = getattr(request.state, "api_key", None)
    return key.id if key is not None else ""


@router.post(
    "/jobs", status_code=202, response_model=JobCreated, summary="Start a job (durable generation)",
    responses={400: {"description": "Bad input: the same answers as /api/v1/generate, before any job exists."},
               503: {"description": "jobs.max_queued jobs already wait, or the job store is unreachable (Retry-After)."}},
    description="Same body, authentication and validation as `/api/v1/generate` (`stream` is ignored). Answers at "
    "once with the job id; follow it at `events_url` or poll `GET /api/v1/jobs/{job_id}`.",
)
async def create_job(request: Request, body: GenerateRequest = Body(...),
                     services: Services = Depends(current_services)) -> JSONResponse:
    jobs = _jobs(services)
    if jobs.backend != "memory" and byok.credentials_from_headers(request.headers):
        raise BadRequestError(f"{byok.KEY_HEADER} and {byok.BASE_URL_HEADER} cannot be used with jobs when jobs are "
                              "shared through Redis (they would have to be stored there); use /api/v1/generate")
    body = body.model_copy(update={"stream": True})
    local = jobs.backend == "memory"  # the plan made here is the one that runs (no second planning)
    # shared jobs are planned again where they run: the filters' inlets run there, once
    planned = await plan_request(request, services, body, "api", inlet=local)
    stored = body.model_dump(mode="json", exclude_unset=True, exclude={"stream"})
    record = await jobs.submit(_owner(request), stored, planned.plan.request_id,
                               plan=planned.plan if local else None, credentials=planned.credentials if local else None)
    created = JobCreated(job_id=record.job_id, state="queued", events_url=f"/api/v1/jobs/{record.job_id}/events",
                         created_at=record.created_at)
    return JSONResponse(status_code=202, content=created.model_dump(mode="json"),
                        headers={"Location": f"/api/v1/jobs/{record.job_id}"})


@router.get("/jobs", response_model=JobList, summary="The caller's recent jobs")
async def list_jobs(request: Request, services: Services = Depends(current_services)) -> dict[str, Any]:
    records = await _jobs(services).recent(_owner(request))
    return {"jobs": [{**r.public(), "result": None} for r in records]}


@router.get("/jobs/{job_id}", response_model=JobObject, responses=_NOT_FOUND, summary="A job's state and result")
async def get_job(job_id: str, request: Request, services: Services = Depends(current_services)) -> dict[str, Any]:
    return (await _jobs(services).get(job_id, _owner(request))).public()


@router.delete("/jobs/{job_id}", response_model=JobObject, responses=_NOT_FOUND, summary="Cancel a job",
               description="Stops the generation wherever it runs. Answers with the job: `cancelled`, or its own "
               "terminal state when it had already ended.")
async def cancel_job(job_id: str, request: Request, services: Services = Depends(current_services)) -> dict[str, Any]:
    return (await _jobs(services).cancel(job_id, _owner(request))).public()


@router.get("/jobs/{job_id}/events", responses=_EVENTS_DOC, summary="Follow a job (SSE, resumable)",
            description="Replays the job's events from the start, or strictly after `Last-Event-ID` (header, or the "
            "`last_event_id` query parameter), then follows it live until the `final` event; works on any replica.")
async def job_events(
    job_id: str, request: Request,
    last_event_id_query: Optional[str] = Query(default=None, alias="last_event_id", max_length=64,
                                               description="Resume after this event id (when a header cannot be set)."),
    last_event_id: Optional[str] = Header(default=None, max_length=64, description="Resume after this event id."),
    services: Services = Depends(current_services),
) -> EventSourceResponse:
    jobs = _jobs(services)
    await jobs.get(job_id, _owner(request))  # 404 before the stream starts
    after = jobs.check_event_id(last_event_id or last_event_id_query)
    keepalive = float(services.config.section("server").get("keepalive_interval", 15.0))

    async def frames() -> AsyncIterator[dict[str, str]]:
        async for event_id, data in jobs.events(job_id, after):
            yield {"id": event_id, "data": data}

    return EventSourceResponse(frames(), ping=keepalive, headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
