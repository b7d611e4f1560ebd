"""GET /v1/models, POST /v1/chat/completions, POST /v1/completions (JSON or SSE ending with `data: [DONE]`)."""

from __future__ import annotations

import json
import time
from typing import Any, Union

import pydantic_core
from fastapi import APIRouter, Depends, Request, Response

from lollms_server.api.deps import current_services
from lollms_server.api.lean_route import JSONBody
from lollms_server.api.openai_compat.auth import require_openai_key
from lollms_server.api.sse import SSEResponse
from lollms_server.api.openai_compat.answer import plain_answer
from lollms_server.api.openai_compat.convert import chat_request, completion_prompt, completion_request
from lollms_server.api.openai_compat.errors import ERROR_RESPONSES, OpenAIRoute, model_not_found
from lollms_server.api import pipeline
from lollms_server.api.openai_compat.ids import known_model, list_model_cards, resolve_model
from lollms_server.api.openai_compat.models import ChatCompletionRequest, CompletionRequest, ModelCard, ModelList
from lollms_server.api.openai_compat.chunks import ChatChunks, ChunkMaker, CompletionChunks, sse_encoder, usage_fields
from lollms_server.api.openai_compat.planning import Planned, plan_for, run_planned, stream_planned
from lollms_server.api.openai_compat.textgen import TextEvents, TextResult, text_result
from lollms_server.core.services import Services

router = APIRouter(prefix="/v1", tags=["openai"], route_class=OpenAIRoute, dependencies=[Depends(require_openai_key)],
                   responses=ERROR_RESPONSES)


@router.get("/models", response_model=ModelList, summary="Model ids: instances, instance/model, personalities")
async def list_models(services: Services = Depends(current_services)) -> ModelList:
    return ModelList(data=await list_model_cards(services))


@router.get("/models/{model_id:path}", response_model=ModelCard, summary="One model id")
async def retrieve_model(model_id: str, services: Services = Depends(current_services)) -> ModelCard:
    await resolve_model(services, model_id, "ttt")
    for card in await list_model_cards(services):
        if card.id == model_id:
            return card
    raise model_not_found(model_id)


def _sse(services: Services, planned: Planned, stops: list[str], make: ChunkMaker) -> SSEResponse:
    """The plan's stream as OpenAI-style SSE (see ``chunks.sse_encoder``): one generator, the pipeline's own."""
    encode = sse_encoder(TextEvents(planned.plan, stops), make)
    return SSEResponse(stream_planned(services, planned), keepalive=_keepalive(services), encode=encode, tail=["[DONE]"])


def _json(content: dict[str, Any]) -> Response:
    """JSONResponse's answer (compact UTF-8 JSON, same headers) made by pydantic-core at half the cost; text that is
    not valid Unicode (a lone surrogate from a backend) goes out escaped instead of failing the answer."""
    try:
        return JSONBody(pydantic_core.to_json(content))
    except ValueError:
        return JSONBody(json.dumps(content, separators=(",", ":")).encode())


def _keepalive(services: Services) -> float:
    return float(services.config.section("server").get("keepalive_interval", 15.0))


def _stops(stop: Union[str, list[str], None]) -> list[str]:
    return [stop] if isinstance(stop, str) else list(stop or [])


# ---- chat -----------------------------------------------------------------------------------------
@router.post("/chat/completions", response_model=None, summary="Chat completion (OpenAI compatible)",
             description="Messages with text and image parts; `reasoning_content` carries <think> thoughts.")
async def chat_completions(
    body: ChatCompletionRequest, request: Request, services: Services = Depends(current_services)
) -> Union[Response, SSEResponse]:
    ref = known_model(services, body.model) or await resolve_model(services, body.model, "ttt")
    planned = await pipeline.plan_request(request, services, chat_request(body, ref), "openai")
    plan = planned.plan
    chunk_id, created = f"chatcmpl-{plan.request_id}", int(time.time())
    stops = _stops(plan.task.params.get("stop"))  # the request's, else the personality's (anti_prompts)
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return _sse(services, planned, stops, ChatChunks(chunk_id, created, body.model, include_usage))
    outputs = await run_planned(request, services, planned)
    answer = None if stops else plain_answer(outputs, chunk_id, created, body.model)
    if answer is not None:
        return JSONBody(answer)
    return _json(chat_completion(text_result(outputs, plan, stops), chunk_id, created, body.model))


def chat_completion(result: TextResult, chunk_id: str, created: int, model: str) -> dict[str, Any]:
    """The ``chat.completion`` object of an answer (``answer.plain_answer`` writes the common one directly)."""
    message: dict[str, Any] = {"role": "assistant", "content": result.content}
    if result.tool_calls:
        message["tool_calls"] = [c.openai() for c in result.tool_calls]
        message["content"] = result.content or None
    if result.reasoning:
        message["reasoning_content"] = result.reasoning
    return {
        "id": chunk_id, "created": created, "model": model, "object": "chat.completion", "system_fingerprint": None,
        "choices": [{"index": 0, "message": message, "finish_reason": result.finish_reason, "logprobs": None}],
        "usage": usage_fields(result.usage),
    }


# ---- text completions -----------------------------------------------------------------------------
@router.post("/completions", response_model=None, summary="Text completion (legacy; the prompt runs as one user turn)")
async def completions(
    body: CompletionRequest, request: Request, services: Services = Depends(current_services)
) -> Union[Response, SSEResponse]:
    ref = await resolve_model(services, body.model, "ttt")
    planned = await plan_for(request, services, completion_request(body, ref))
    plan = planned.plan
    base = {"id": f"cmpl-{plan.request_id}", "object": "text_completion", "created": int(time.time()), "model": body.model}
    prefix = completion_prompt(body) if body.echo else ""
    stops = _stops(plan.task.params.get("stop"))  # the request's, else the personality's (anti_prompts)
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return _sse(services, planned, stops, CompletionChunks(base, prefix, include_usage))
    result = text_result(await run_planned(request, services, planned), plan, stops)
    return _json({
        **base, "choices": [{"index": 0, "text": prefix + result.content, "logprobs": None, "finish_reason": result.finish_reason}],
        "usage": usage_fields(result.usage),
    })
