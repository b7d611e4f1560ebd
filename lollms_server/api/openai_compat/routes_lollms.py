"""The lollms extras lollms-client calls beside the OpenAI routes: /lollms/v1/* and /version."""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from lollms_server import __version__
from lollms_server.api.deps import current_services
from lollms_server.api.openai_compat import routes_media
from lollms_server.api.openai_compat.auth import require_openai_key
from lollms_server.api.openai_compat.errors import ERROR_RESPONSES, OpenAIRoute
from lollms_server.api.openai_compat.ids import PERSONALITY_PREFIX, binding_for, resolve_model
from lollms_server.core.errors import FeatureNotSupportedError, NotSupportedError
from lollms_server.core.services import Services

router = APIRouter(prefix="/lollms/v1", tags=["openai"], route_class=OpenAIRoute,
                   dependencies=[Depends(require_openai_key)], responses=ERROR_RESPONSES)
public_router = APIRouter(tags=["openai"], route_class=OpenAIRoute)

_EXAMPLE_MODEL: dict[str, Any] = {"model": "my_instance", "text": "Hello world"}


class LollmsTokenizeRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", protected_namespaces=(), json_schema_extra={"examples": [_EXAMPLE_MODEL]})
    model: str | None = Field(default=None, description="Model id as in GET /v1/models; default: the ttt default instance.")
    text: str


class LollmsDetokenizeRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", protected_namespaces=())
    model: str | None = None
    tokens: list[int]


class LollmsModelRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", protected_namespaces=())
    model: str | None = None


@contextlib.contextmanager
def tokenizer_of(model_id: str | None) -> Iterator[None]:
    """A model whose binding has no tokenizer is a 400 naming the model (the client can pick another one)."""
    try:
        yield
    except FeatureNotSupportedError:
        raise
    except NotSupportedError as exc:
        raise FeatureNotSupportedError(exc.message, param="model") from None


@router.post("/tokenize", summary="Tokenize with the tokenizer of a model id")
async def tokenize(body: LollmsTokenizeRequest, services: Services = Depends(current_services)) -> dict[str, Any]:
    binding, model = binding_for(services, await resolve_model(services, body.model, "ttt"))
    with tokenizer_of(body.model):
        tokens = await binding.tokenize(body.text, model_name=model)
    return {"tokens": tokens, "count": len(tokens)}


@router.post("/detokenize", summary="Turn token ids back into text")
async def detokenize(body: LollmsDetokenizeRequest, services: Services = Depends(current_services)) -> dict[str, Any]:
    binding, model = binding_for(services, await resolve_model(services, body.model, "ttt"))
    with tokenizer_of(body.model):
        return {"text": await binding.detokenize(body.tokens, model_name=model)}


@router.post("/context_size", summary="Context size of a model id")
async def context_size(body: LollmsModelRequest, services: Services = Depends(current_services)) -> dict[str, Any]:
    binding, model = binding_for(services, await resolve_model(services, body.model, "ttt"))
    info = await binding.get_model_info(model)
    return {"model": body.model, "context_size": info.get("context_size")}


@router.get("/personalities", summary="Enabled personalities with the model id that selects each")
async def personalities(services: Services = Depends(current_services)) -> dict[str, Any]:
    data = []
    for name, p in sorted(services.personalities.personalities.items()):
        info = {k: v for k, v in p.info().items() if k != "path"}
        data.append({"id": f"{PERSONALITY_PREFIX}{name}", **info})
    return {"object": "list", "data": data}


# lollms-client falls back to these when an OpenAI route fails: they are the same handlers
router.add_api_route("/audio/speech", routes_media.audio_speech, methods=["POST"], response_model=None,
                     summary="Text to speech (same as /v1/audio/speech)")
router.add_api_route("/audio/transcriptions", routes_media.audio_transcriptions, methods=["POST"], response_model=None,
                     summary="Speech to text (same as /v1/audio/transcriptions)")


@router.get("/audio/voices", summary="Voices: the models of every text-to-speech instance, with the model id of each")
async def voices(services: Services = Depends(current_services)) -> dict[str, Any]:
    default_tts = services.config.default_binding("tts")
    data: list[dict[str, Any]] = []
    for name, rec in sorted(services.bindings.instances.items(), key=lambda kv: (kv[0] != default_tts, kv[0])):
        if rec.binding is None or "tts" not in rec.binding.generation_types:
            continue
        try:
            models = await rec.binding.list_available_models()
        except Exception:  # an instance that cannot list still has its default voice
            models = []
        names = [str(m["name"]) for m in models if isinstance(m, dict) and m.get("name")] or [rec.binding.default_model or name]
        data += [{"id": f"{name}/{voice}", "name": voice, "binding_instance_name": name, "default": name == default_tts}
                 for voice in names]
    return {"object": "list", "data": data}


@public_router.get("/version", summary="Server name and version (no auth)")
async def version() -> dict[str, str]:
    return {"server": "lollms_server", "version": __version__}
