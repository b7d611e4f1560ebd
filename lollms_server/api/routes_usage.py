"""GET /api/v1/usage: the usage ledger, filtered, optionally grouped, as JSON or CSV."""

from __future__ import annotations

from typing import Any, Literal, Optional, Union

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from lollms_server.api.deps import current_services
from lollms_server.api.strict_json import StrictJSONRoute
from lollms_server.core.errors import BadRequestError
from lollms_server.core.services import Services
from lollms_server.core.usage import GROUP_FIELDS, UsageQuery, parse_group_by, parse_when, to_csv

router = APIRouter(prefix="/api/v1", tags=["usage"], route_class=StrictJSONRoute)


class UsageResponse(BaseModel):
    group_by: list[str] = Field(description="The grouping asked for; empty = one item per generation, newest first.")
    items: list[dict[str, Any]] = Field(
        description="Generations (request_id, ts, key_id, key_name, surface, binding, model, personality, "
        "generation_type, prompt_tokens, completion_tokens, ttft_ms, duration_ms, status, cancelled, error) "
        "or, when grouped, one item per group with requests, tokens, errors, cancelled and timings."
    )
    recording: bool = Field(description="Whether the ledger is on (usage.enabled).")


@router.get(
    "/usage", response_model=UsageResponse, summary="Usage ledger (filters, grouping, CSV)",
    description=f"Group with `group_by` = any of {', '.join(GROUP_FIELDS)} (comma separated, e.g. `day,model`). "
    "`since`/`until`: `7d`, `12h`, an ISO date or date-time (UTC). `key` matches a key id or name. "
    "`format=csv` answers text/csv. When some keys are marked admin, other keys see only their own rows.",
    responses={200: {"content": {"text/csv": {}}}, 400: {"description": "Bad filter or grouping."}},
)
async def usage(
    request: Request,
    since: Optional[str] = Query(None, max_length=40, description="From (inclusive): 7d, 12h, 2026-01-31…"),
    until: Optional[str] = Query(None, max_length=40, description="To (exclusive)."),
    key: Optional[str] = Query(None, max_length=128, description="API key id or name."),
    model: Optional[str] = Query(None, max_length=512),
    personality: Optional[str] = Query(None, max_length=256),
    binding: Optional[str] = Query(None, max_length=256),
    surface: Optional[str] = Query(None, max_length=32, description="api, openai, ollama, ext…"),
    status: Optional[Literal["ok", "error", "cancelled"]] = Query(None),
    group_by: Optional[str] = Query(None, max_length=200),
    format: Literal["json", "csv"] = Query("json"),
    limit: int = Query(1000, ge=1, le=100000, description="Most rows (or groups) returned."),
    services: Services = Depends(current_services),
) -> Union[UsageResponse, PlainTextResponse]:
    caller = getattr(request.state, "api_key", None)
    if not services.config.key_ring.is_admin(caller):
        assert caller is not None
        if key not in (None, caller.id, caller.name):
            raise HTTPException(403, "a key that is not admin sees only its own usage")
        key = caller.id
    try:
        q = UsageQuery(since=parse_when(since), until=parse_when(until), key=key, model=model, personality=personality,
                       binding=binding, surface=surface, status=status, limit=limit)
        groups = parse_group_by(group_by)
    except ValueError as exc:
        raise BadRequestError(str(exc)) from exc
    ledger = services.telemetry.ledger
    items = await (ledger.totals(q, groups) if groups else ledger.rows(q))
    if format == "csv":
        return PlainTextResponse(to_csv(items), media_type="text/csv",
                                 headers={"Content-Disposition": 'attachment; filename="usage.csv"'})
    return UsageResponse(group_by=groups, items=items, recording=ledger.recording)
