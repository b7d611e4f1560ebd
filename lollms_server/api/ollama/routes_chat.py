"""POST /api/chat and /api/generate: Ollama's NDJSON stream (default) or one JSON object."""

from __future__ import annotations

from typing import Union

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse

from lollms_server.api.deps import current_services
from lollms_server.api.ollama.auth import require_ollama_key
from lollms_server.api.ollama.convert import chat_request, generate_request, stops_of
from lollms_server.api.disconnect import ClientGone, run_until_disconnect
from lollms_server.api.ollama.errors import ERROR_RESPONSES, OllamaError, OllamaRoute
from lollms_server.api.ollama.models import OllamaChatRequest, OllamaGenerateRequest, KeepAlive
from lollms_server.api.ollama.names import now_iso, resolve
from lollms_server.api.ollama.replies import NDJSON, Shape, chat_shape, collect, generate_shape, ndjson
from lollms_server.api.openai_compat.ids import ModelRef, binding_for
from lollms_server.api.pipeline import plan_request, stream_planned
from lollms_server.api.openai_compat.textgen import stream_text
from lollms_server.core.contract import GenerateRequest as CoreRequest
from lollms_server.core.services import Services

router = APIRouter(prefix="/api", tags=["ollama"], route_class=OllamaRoute, dependencies=[Depends(require_ollama_key)],
                   responses=ERROR_RESPONSES)

Reply = Union[JSONResponse, StreamingResponse]


def _unloads(keep_alive: KeepAlive) -> bool:
    return keep_alive is not None and str(keep_alive).strip() in ("0", "0s", "0m", "0.0")


async def _load_only(services: Services, ref: ModelRef, model: str, keep_alive: KeepAlive, shape: Shape) -> JSONResponse:
    """An empty prompt loads the model (or unloads it with keep_alive 0), as Ollama does."""
    binding, model_name = binding_for(services, ref)
    unload = _unloads(keep_alive)
    if model_name:
        await (binding.unload_model(model_name) if unload else binding.load_model(model_name))
    return JSONResponse({"model": model, "created_at": now_iso(), **shape("", None), "done": True,
                         "done_reason": "unload" if unload else "load"})


async def _answer(request: Request, services: Services, core: CoreRequest, model: str, shape: Shape, keep_thinking: bool) -> Reply:
    planned = await plan_request(request, services, core, "ollama")
    events = stream_text(stream_planned(services, planned), planned.plan, stops_of(planned.plan.task.params))
    if core.stream:
        return StreamingResponse(ndjson(events, model, shape, keep_thinking), media_type=NDJSON,
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
    try:
        return JSONResponse(await run_until_disconnect(request, collect(events, model, shape, keep_thinking)))
    except ClientGone:
        raise OllamaError(499, "client closed the request") from None


@router.post("/chat", response_model=None, summary="Chat (Ollama): messages in, NDJSON stream or one object out",
             description="Messages with base64 `images`; `format` json or a JSON schema; `options`; `think` -> "
             "`thinking`. The last line has `done: true` with counts and durations in nanoseconds.")
async def chat(body: OllamaChatRequest, request: Request, services: Services = Depends(current_services)) -> Reply:
    ref = await resolve(services, body.model)
    if not body.messages:
        return await _load_only(services, ref, body.model, body.keep_alive, chat_shape)
    return await _answer(request, services, chat_request(body, ref), body.model, chat_shape, body.think is not False)


@router.post("/generate", response_model=None, summary="Completion (Ollama): prompt in, NDJSON stream or one object out",
             description="`prompt`, `system`, base64 `images`, `format`, `options`, `think`. `suffix` is not supported; "
             "`context` and `template` are ignored (send the conversation to /api/chat).")
async def generate(body: OllamaGenerateRequest, request: Request, services: Services = Depends(current_services)) -> Reply:
    ref = await resolve(services, body.model)
    if not body.prompt and not body.images:
        return await _load_only(services, ref, body.model, body.keep_alive, generate_shape)
    return await _answer(request, services, generate_request(body, ref), body.model, generate_shape, body.think is not False)
