"""Ollama's model routes: /api/version, /api/tags, /api/ps, /api/show, and the model-management routes
(pull, push, create, copy, delete), which answer in Ollama's error shape with what to do instead."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from lollms_server import __version__
from lollms_server.api.deps import current_services
from lollms_server.api.ollama.auth import require_ollama_key
from lollms_server.api.ollama.errors import ERROR_RESPONSES, OllamaError, OllamaRoute
from lollms_server.api.ollama.models import OllamaModelRequest
from lollms_server.api.ollama.names import STARTED_AT, details, digest_of, iso, now_iso, ollama_name, resolve
from lollms_server.api.openai_compat.ids import binding_for, list_model_cards
from lollms_server.core.bindings.base import Binding
from lollms_server.core.embeddings import EMBED, can_embed
from lollms_server.core.secrets import REDACTOR
from lollms_server.core.services import Services

log = logging.getLogger("lollms_server.ollama")

# The Ollama API level these routes follow (clients compare it to enable features), and this server's own
OLLAMA_API_VERSION = "0.12.0"
INFO_TIMEOUT = 10.0

router = APIRouter(prefix="/api", tags=["ollama"], route_class=OllamaRoute, dependencies=[Depends(require_ollama_key)],
                   responses=ERROR_RESPONSES)
public_router = APIRouter(prefix="/api", tags=["ollama"], route_class=OllamaRoute)


@public_router.get("/version", summary="Ollama API level and this server's version (no auth, like Ollama)")
async def version() -> dict[str, str]:
    return {"version": OLLAMA_API_VERSION, "server": "lollms_server", "server_version": __version__}


async def _info(binding: Binding, model: str | None) -> dict[str, Any]:
    try:
        return await asyncio.wait_for(binding.get_model_info(model), INFO_TIMEOUT)
    except Exception as exc:
        log.debug("get_model_info(%s) failed: %s", model, REDACTOR.redact(str(exc)))
        return {}


def _details_of(binding: Binding, info: dict[str, Any]) -> dict[str, Any]:
    raw = info.get("details")
    extra: dict[str, Any] = raw if isinstance(raw, dict) else {}
    return details(binding.binding_type_name, str(extra.get("format") or ""), str(extra.get("parameter_size") or ""),
                   str(extra.get("quantization") or extra.get("quantization_level") or ""))


def _entry(model_id: str, size: int, det: dict[str, Any]) -> dict[str, Any]:
    name = ollama_name(model_id)
    return {"name": name, "model": name, "modified_at": iso(STARTED_AT), "size": size, "digest": digest_of(model_id),
            "details": det}


@router.get("/tags", summary="Models this server offers, as Ollama lists them (text instances, their models, personalities)")
async def tags(services: Services = Depends(current_services)) -> dict[str, Any]:
    models = []
    for card in await list_model_cards(services):
        kinds = card.lollms.get("generation_types") or []
        if "ttt" not in kinds and EMBED not in kinds:
            continue
        instance = str(card.lollms.get("binding_instance_name") or "")
        family = services.bindings.instances[instance].type_name if instance in services.bindings.instances else "personality"
        models.append(_entry(card.id, 0, details(family)))
    return {"models": models}


@router.get("/ps", summary="Default models of the text instances that are up")
async def ps(services: Services = Depends(current_services)) -> dict[str, Any]:
    models = []
    for name, rec in sorted(services.bindings.instances.items()):
        binding = rec.binding
        if binding is None or "ttt" not in binding.generation_types or not binding.default_model:
            continue
        info = await _info(binding, None)
        entry = _entry(name, 0, _details_of(binding, info))
        models.append({**entry, "expires_at": "0001-01-01T00:00:00Z", "size_vram": 0,
                       "context_length": int(info.get("context_size") or 0)})
    return {"models": models}


@router.post("/show", summary="Details, capabilities and context length of one model")
async def show(body: OllamaModelRequest, services: Services = Depends(current_services)) -> dict[str, Any]:
    name = body.model_name()
    ref = await resolve(services, name)
    binding, model = binding_for(services, ref)
    info = await _info(binding, model)
    inputs = binding.get_supported_input_modalities(model)
    capabilities = (["completion"] if "ttt" in binding.generation_types else []) \
        + (["embedding"] if can_embed(binding) else []) \
        + (["vision"] if "image" in inputs or info.get("supports_vision") else []) \
        + (["tools"] if binding.supports_tool_calls(model) else [])
    context = info.get("context_size")
    family = binding.binding_type_name
    model_info: dict[str, Any] = {"general.architecture": family, "general.basename": str(info.get("model_name") or model or "")}
    if context:
        model_info[f"{family}.context_length"] = int(context)
    return {
        "license": "", "modelfile": f"# served by lollms_server: instance '{ref.binding_name or ''}', model '{model or ''}'\n",
        "parameters": "", "template": "", "details": _details_of(binding, info), "model_info": model_info,
        "capabilities": capabilities, "modified_at": now_iso(),
    }


_INSTEAD: dict[str, str] = {
    "pull": "models are not downloaded through this server: put the model file in the models folder (or configure a "
            "binding instance for it with 'lollms-server' wizard), then list names with GET /api/tags",
    "push": "this server does not publish models to a registry",
    "create": "models are not built through this server: add a binding instance or a personality (system prompt and "
              "parameters) with the wizard, then use its name",
    "copy": "to give a model another name, add an entry to the model_aliases section of the main configuration",
    "delete": "models are not deleted through this server: remove the file from the models folder or the instance "
              "from bindings_map",
}


def _management(action: str) -> Any:
    async def refuse(request: Request) -> JSONResponse:
        raise OllamaError(403, f"/api/{action} is not available on lollms_server: {_INSTEAD[action]}")

    refuse.__name__ = f"refuse_{action}"
    return refuse


for _action in ("pull", "push", "create", "copy"):
    router.add_api_route(f"/{_action}", _management(_action), methods=["POST"], summary=f"Not available: {_action}",
                         response_model=None)
router.add_api_route("/delete", _management("delete"), methods=["DELETE"], summary="Not available: delete",
                     response_model=None)
