"""Filters and extensions: list them, read and edit their valves (secrets masked, saved encrypted when a key is set)."""

from __future__ import annotations

from typing import Any, Optional

from fastapi import APIRouter, Body, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from lollms_server.api.deps import current_services, require_admin
from lollms_server.api.strict_json import StrictJSONRoute
from lollms_server.core.errors import BadRequestError, UnavailableError
from lollms_server.core.extensions import ExtensionManager
from lollms_server.core.filters import FilterManager, FilterSpec
from lollms_server.core.secrets import REDACTOR
from lollms_server.core.services import Services
from lollms_server.core.valves import ValvesError, apply_update, masked, plain, schema

router = APIRouter(prefix="/api/v1", tags=["extensions"], route_class=StrictJSONRoute)


class FilterInfo(BaseModel):
    name: str
    description: str
    source: str = Field(description="zoo, personal, package, or the extension that registered it.")
    hooks: list[str]
    enabled: bool
    applies_globally: bool = Field(description="Applies to every request (else only to the lists below).")
    personalities: list[str]
    bindings: list[str]
    priority: int
    valves: dict[str, Any] = Field(description="Current valves; secret fields show ********.")
    valves_schema: dict[str, Any] | None
    user_valves_schema: dict[str, Any] | None


class ListFiltersResponse(BaseModel):
    filters: list[FilterInfo]
    load_errors: dict[str, str]
    settings_encrypted: bool


class FilterUpdate(BaseModel):
    """Fields left out keep their value. A secret valve sent back as ******** keeps its stored value."""

    model_config = ConfigDict(extra="forbid")

    enabled: Optional[bool] = None
    applies_globally: Optional[bool] = None
    personalities: Optional[list[str]] = Field(None, max_length=200)
    bindings: Optional[list[str]] = Field(None, max_length=200)
    valves: Optional[dict[str, Any]] = None


class ExtensionInfo(BaseModel):
    name: str
    version: str | None
    description: str
    source: str
    routes: list[dict[str, Any]]
    static: list[str]
    ui_module: str | None
    tools: list[str]
    filters: list[str]
    bindings: list[str]
    started: bool
    valves: dict[str, Any] | None
    valves_schema: dict[str, Any] | None


class ListExtensionsResponse(BaseModel):
    extensions: list[ExtensionInfo]
    load_errors: dict[str, str]


def _filters(services: Services) -> FilterManager:
    if services.filters is None:
        raise UnavailableError("filters are not available on this server")
    return services.filters


def _extensions(services: Services) -> ExtensionManager:
    if services.extensions is None:
        raise UnavailableError("extensions are not available on this server")
    return services.extensions


def _filter_info(fm: FilterManager, spec: FilterSpec) -> FilterInfo:
    sc = fm.scope(spec.name)
    valves = fm.valves(spec.name)
    return FilterInfo(
        name=spec.name, description=spec.description, source=spec.source, hooks=spec.hooks, enabled=sc["enabled"],
        applies_globally=sc["global"], personalities=sc["personalities"], bindings=sc["bindings"],
        priority=int(getattr(valves, "priority", 0)), valves=masked(valves), valves_schema=schema(spec.valves_model),
        user_valves_schema=schema(spec.user_valves_model),
    )


@router.get("/list_filters", response_model=ListFiltersResponse,
            summary="Filters, their scope and valves (secrets masked)")
async def list_filters(services: Services = Depends(current_services)) -> ListFiltersResponse:
    fm = _filters(services)
    return ListFiltersResponse(filters=[_filter_info(fm, s) for s in sorted(fm.filters.values(), key=lambda s: s.name)],
                               load_errors=REDACTOR.redact_any(fm.load_errors), settings_encrypted=fm.settings.encrypted)


@router.put("/filters/{name}", response_model=FilterInfo, dependencies=[Depends(require_admin)],
            summary="Enable a filter, set its scope and valves",
            responses={400: {"description": "Invalid valves (the message names the field)."},
                       403: {"description": "Not an admin key (when some keys are marked admin)."},
                       404: {"description": "No such filter."}})
async def update_filter(name: str, update: FilterUpdate = Body(...), services: Services = Depends(current_services)) -> FilterInfo:
    fm = _filters(services)
    spec = fm.get(name)
    entry = fm.settings.entry("filters", name)
    new_valves = fm.valves(name)
    if update.valves is not None:
        try:
            new_valves = apply_update(spec.valves_model, fm.valves(name), update.valves, where=f"valves of filter '{name}'")
        except ValvesError as exc:
            raise BadRequestError(str(exc)) from exc
        entry["valves"] = plain(new_valves)
    for key, value in (("enabled", update.enabled), ("global", update.applies_globally),
                       ("personalities", update.personalities), ("bindings", update.bindings)):
        if value is not None:
            entry[key] = value
    await fm.settings.update("filters", name, entry)
    fm.set_valves(name, new_valves)
    return _filter_info(fm, spec)


def _key_id(request: Request) -> str:
    key = getattr(request.state, "api_key", None)
    return key.id if key is not None else ""


@router.get("/filters/{name}/user_valves", summary="Your own valves of a filter (keyed by your API key id)")
async def get_user_valves(name: str, request: Request, services: Services = Depends(current_services)) -> dict[str, Any]:
    fm = _filters(services)
    spec = fm.get(name)
    values = fm.user_valves(spec, _key_id(request))
    if values is None:
        raise BadRequestError(f"filter '{name}' has no user valves")
    return {"key_id": _key_id(request) or None, "user_valves": masked(values), "schema": schema(spec.user_valves_model)}


@router.put("/filters/{name}/user_valves", summary="Set your own valves of a filter")
async def put_user_valves(name: str, request: Request, values: dict[str, Any] = Body(...),
                          services: Services = Depends(current_services)) -> dict[str, Any]:
    fm = _filters(services)
    spec = fm.get(name)
    if spec.user_valves_model is None:
        raise BadRequestError(f"filter '{name}' has no user valves")
    key_id = _key_id(request)
    try:
        new = apply_update(spec.user_valves_model, fm.user_valves(spec, key_id), values, where=f"user valves of filter '{name}'")
    except ValvesError as exc:
        raise BadRequestError(str(exc)) from exc
    entry = fm.settings.entry("filters", name)
    entry.setdefault("user_valves", {})[key_id] = plain(new)
    await fm.settings.update("filters", name, entry)
    return {"key_id": key_id or None, "user_valves": masked(new), "schema": schema(spec.user_valves_model)}


@router.get("/list_extensions", response_model=ListExtensionsResponse, summary="Extensions, what each registered, load errors")
async def list_extensions(services: Services = Depends(current_services)) -> ListExtensionsResponse:
    em = _extensions(services)
    items = []
    for ext in sorted(em.extensions.values(), key=lambda e: e.name):
        valves = em.valves.get(ext.name)
        items.append(ExtensionInfo(**ext.info(), valves=masked(valves) if valves is not None else None,
                                   valves_schema=schema(ext.ctx.valves_model)))
    return ListExtensionsResponse(extensions=items, load_errors=REDACTOR.redact_any(em.load_errors))


@router.put("/extensions/{name}/valves", summary="Edit an extension's valves", dependencies=[Depends(require_admin)])
async def put_extension_valves(name: str, values: dict[str, Any] = Body(...),
                               services: Services = Depends(current_services)) -> dict[str, Any]:
    em = _extensions(services)
    ext = em.get(name)
    model = ext.ctx.valves_model
    if model is None:
        raise BadRequestError(f"extension '{name}' has no valves")
    try:
        new = apply_update(model, em.valves.get(name), values, where=f"valves of extension '{name}'")
    except ValvesError as exc:
        raise BadRequestError(str(exc)) from exc
    await em.settings.update("extensions", name, {**em.settings.entry("extensions", name), "valves": plain(new)})
    em.valves[name] = new
    return {"name": name, "valves": masked(new)}
