"""Read-only endpoints behind the API key: listings, defaults, model info, resource state.

Imported on the first request to one of ``PATH_PREFIXES`` (``api/lazy_routes.py``); health and readiness are
in ``routes_health``, built at start-up."""

from __future__ import annotations

import asyncio
from typing import Optional

from fastapi import APIRouter, Depends, Query
from fastapi.responses import FileResponse

from lollms_server.api.deps import current_services
from lollms_server.api.strict_json import StrictJSONRoute
from lollms_server.api.models import (
    BindingTypeInfo,
    GetDefaultBindingsResponse,
    GetModelInfoResponse,
    InstanceState,
    ListActiveBindingsResponse,
    ListAvailableModelsResponse,
    ListBindingsResponse,
    ListFunctionsResponse,
    ListModelsResponse,
    ListPersonalitiesResponse,
    ModelInfo,
    PersonalityInfo,
    ResourceStateResponse,
)
from lollms_server.core.config_schema import MODALITIES
from lollms_server.core.bindings.base import Binding
from lollms_server.core.errors import NotFoundError, UnavailableError, echo
from lollms_server.core.model_scan import scan_models_folder
from lollms_server.core.secrets import REDACTOR
from lollms_server.core.services import Services

router = APIRouter(prefix="/api/v1", tags=["info"], route_class=StrictJSONRoute)


def _loaded(services: Services, name: str) -> Binding:
    """The spec answers 404 for an instance that does not exist *or* failed to load on these endpoints."""
    try:
        return services.bindings.get(name)
    except UnavailableError as exc:
        raise NotFoundError(exc.message) from exc


@router.get("/list_bindings", response_model=ListBindingsResponse, summary="Binding types and configured instances")
async def list_bindings(services: Services = Depends(current_services)) -> ListBindingsResponse:
    if services.registry.has_deferred():  # the first listing imports the modules of the types no instance uses
        await asyncio.to_thread(services.registry.import_all)
    types = {
        name: BindingTypeInfo(**t.card.public_info(), source=t.source) for name, t in sorted(services.registry.types.items())
    }
    return ListBindingsResponse(
        binding_types=types,
        binding_instances=REDACTOR.redact_any(services.bindings.masked_instances(with_parameters=True)),
        load_errors=REDACTOR.redact_any(services.bindings.load_errors()),
        instance_states={n: InstanceState.model_validate(v) for n, v in services.bindings.states().items()},
    )


@router.get("/list_active_bindings", response_model=ListActiveBindingsResponse, summary="Instances that loaded")
async def list_active_bindings(services: Services = Depends(current_services)) -> ListActiveBindingsResponse:
    return ListActiveBindingsResponse(bindings=REDACTOR.redact_any(services.bindings.masked_instances(only_active=True)))


@router.get("/list_personalities", response_model=ListPersonalitiesResponse, summary="Enabled personalities")
async def list_personalities(services: Services = Depends(current_services)) -> ListPersonalitiesResponse:
    pm = services.personalities
    return ListPersonalitiesResponse(
        personalities={n: PersonalityInfo(**REDACTOR.redact_any(p.info())) for n, p in sorted(pm.personalities.items())},
        load_errors=REDACTOR.redact_any(dict(pm.load_errors)),
    )


@router.get("/personality_icon/{name:path}", summary="A personality's icon file", response_class=FileResponse)
async def personality_icon(name: str, services: Services = Depends(current_services)) -> FileResponse:
    p = services.personalities.get(name)
    if p.icon_path is None:
        raise NotFoundError(f"personality '{echo(name)}' has no icon")
    return FileResponse(p.icon_path, headers={"Cache-Control": "public, max-age=3600"})


@router.get("/list_functions", response_model=ListFunctionsResponse, summary="Discovered functions")
async def list_functions(services: Services = Depends(current_services)) -> ListFunctionsResponse:
    fm = services.functions
    return ListFunctionsResponse(functions=fm.list_names(), schemas=fm.tool_schemas(), load_errors=REDACTOR.redact_any(dict(fm.load_errors)))


@router.get("/list_models", response_model=ListModelsResponse, summary="Scan of the models folder")
async def list_models(services: Services = Depends(current_services)) -> ListModelsResponse:
    return ListModelsResponse(models=await asyncio.to_thread(scan_models_folder, services.config.paths.models_dir))


@router.get(
    "/list_available_models/{binding_instance_name}",
    response_model=ListAvailableModelsResponse,
    summary="Models one binding instance can serve",
)
async def list_available_models(binding_instance_name: str, services: Services = Depends(current_services)) -> ListAvailableModelsResponse:
    binding = _loaded(services, binding_instance_name)
    models = await binding.list_available_models()
    return ListAvailableModelsResponse(
        binding_instance_name=binding_instance_name, models=[ModelInfo.model_validate(m) for m in models]
    )


@router.get("/get_default_bindings", response_model=GetDefaultBindingsResponse, summary="Default instances per modality")
async def get_default_bindings(services: Services = Depends(current_services)) -> GetDefaultBindingsResponse:
    d = services.config.defaults
    out = {f"{m}_binding": d.get(f"{m}_binding") for m in MODALITIES}
    out["embedding_binding"] = d.get("embedding_binding")  # the web UI searches documents with it
    out["default_context_size"] = d.get("default_context_size")
    out["default_max_output_tokens"] = d.get("default_max_output_tokens")
    return GetDefaultBindingsResponse(defaults=out)


@router.get(
    "/get_model_info/{binding_instance_name}", response_model=GetModelInfoResponse, summary="Details of a model"
)
async def get_model_info(
    binding_instance_name: str,
    model_name: Optional[str] = Query(default=None, description="Model to describe; default: the instance's default."),
    services: Services = Depends(current_services),
) -> GetModelInfoResponse:
    binding = _loaded(services, binding_instance_name)
    info = await binding.get_model_info(model_name)
    info.setdefault("supports_streaming", binding.supports_streaming)
    info.setdefault("model_name", model_name or binding.default_model)
    return GetModelInfoResponse(binding_instance_name=binding_instance_name, **info)


@router.get("/resources", response_model=ResourceStateResponse, summary="ResourceManager state (active, waiting)")
async def resources(services: Services = Depends(current_services)) -> ResourceStateResponse:
    s = await services.resources.shared_state()
    return ResourceStateResponse(strategy=s.strategy, limit=s.limit, active=s.active, waiting=s.waiting,
                                 queue_timeout=s.queue_timeout, max_queue=s.max_queue,
                                 backend="redis" if s.backend == "redis" else "memory")
