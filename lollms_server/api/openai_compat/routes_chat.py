"""GET /v1/models, POST /v1/chat/completions, POST /v1/completions (JSON or SSE ending with `data: [DONE]`)."""

from __future__ import annotations

import json
import time
from typing import Any, AsyncIterator, Callable, Union

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from lollms_server.api.deps import current_services
from lollms_server.api.openai_compat.auth import require_openai_key
from lollms_server.api.sse import SSEResponse
from lollms_server.api.openai_compat.convert import chat_request, completion_prompt, completion_request
from lollms_server.api.openai_compat.errors import ERROR_RESPONSES, OpenAIError, OpenAIRoute, model_not_found
from lollms_server.api.openai_compat.ids import ModelRef, list_model_cards, resolve_model
from lollms_server.api.openai_compat.models import ChatCompletionRequest, CompletionRequest, ModelCard, ModelList
from lollms_server.api.openai_compat.planning import plan_for, run_planned, stream_planned
from lollms_server.api.openai_compat.textgen import (
    Delta,
    Failure,
    Finish,
    TextEvent,
    ToolCallEvent,
    stream_text,
    text_result,
)
from lollms_server.core.services import Services

router = APIRouter(prefix="/v1", tags=["openai"], route_class=OpenAIRoute, dependencies=[Depends(require_openai_key)],
                   responses=ERROR_RESPONSES)

ChunkMaker = Callable[[TextEvent], list[dict[str, Any]]]


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


def _usage(usage: dict[str, int] | None) -> dict[str, int]:
    u = usage or {}
    prompt, completion = int(u.get("prompt_tokens", 0)), int(u.get("completion_tokens", 0))
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": int(u.get("total_tokens", prompt + completion))}


def _sse(events: AsyncIterator[TextEvent], make: ChunkMaker, usage_chunk: Callable[[dict[str, int]], dict[str, Any]] | None,
         keepalive: float) -> SSEResponse:
    async def frames() -> AsyncIterator[list[str]]:
        """Events ready together (the finish chunk, the usage chunk and [DONE]) go out in one write."""
        try:
            async for event in events:
                if isinstance(event, Failure):
                    yield [json.dumps(OpenAIError(event.status, event.message).body()), "[DONE]"]
                    return
                batch = [json.dumps(chunk) for chunk in make(event)]
                if isinstance(event, Finish):  # the last event of stream_text
                    if usage_chunk is not None:
                        batch.append(json.dumps(usage_chunk(_usage(event.usage))))
                    yield [*batch, "[DONE]"]
                    return
                if batch:
                    yield batch
            yield ["[DONE]"]
        finally:
            close = getattr(events, "aclose", None)
            if close is not None:
                await close()

    return SSEResponse(frames(), keepalive=keepalive)


def _keepalive(services: Services) -> float:
    return float(services.config.section("server").get("keepalive_interval", 15.0))


def _stops(stop: Union[str, list[str], None]) -> list[str]:
    return [stop] if isinstance(stop, str) else list(stop or [])


# ---- chat -----------------------------------------------------------------------------------------
@router.post("/chat/completions", response_model=None, summary="Chat completion (OpenAI compatible)",
             description="Messages with text and image parts; `reasoning_content` carries <think> thoughts.")
async def chat_completions(
    body: ChatCompletionRequest, request: Request, services: Services = Depends(current_services)
) -> Union[JSONResponse, SSEResponse]:
    ref: ModelRef = await resolve_model(services, body.model, "ttt")
    planned = await plan_for(request, services, chat_request(body, ref))
    plan = planned.plan
    base = {"id": f"chatcmpl-{plan.request_id}", "created": int(time.time()), "model": body.model}
    stops = _stops(plan.task.params.get("stop"))  # the request's, else the personality's (anti_prompts)
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return _sse(stream_text(stream_planned(services, planned), plan, stops), _chat_chunker(base, include_usage),
                    (lambda u: {**base, "object": "chat.completion.chunk", "choices": [], "usage": u}) if include_usage else None,
                    _keepalive(services))
    result = text_result(await run_planned(request, services, planned), plan, stops)
    message: dict[str, Any] = {"role": "assistant", "content": result.content}
    if result.tool_calls:
        message["tool_calls"] = [c.openai() for c in result.tool_calls]
        message["content"] = result.content or None
    if result.reasoning:
        message["reasoning_content"] = result.reasoning
    return JSONResponse({
        **base, "object": "chat.completion", "system_fingerprint": None,
        "choices": [{"index": 0, "message": message, "finish_reason": result.finish_reason, "logprobs": None}],
        "usage": _usage(result.usage),
    })


def _chat_chunker(base: dict[str, Any], include_usage: bool) -> ChunkMaker:
    """Reasoning and content never share a delta (clients such as lollms-client read only one of them)."""
    started = False

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        nonlocal started
        if not started:
            delta, started = {"role": "assistant", **delta}, True
        out = {**base, "object": "chat.completion.chunk", "system_fingerprint": None,
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]}
        return {**out, "usage": None} if include_usage else out

    def make(event: TextEvent) -> list[dict[str, Any]]:
        if isinstance(event, Finish):
            return [chunk({}, event.reason)]
        if isinstance(event, ToolCallEvent):
            return [chunk({"tool_calls": [piece]}) for piece in tool_call_pieces(event)]
        if not isinstance(event, Delta):
            return []
        chunks = [chunk({"reasoning_content": event.reasoning})] if event.reasoning else []
        if event.content or not chunks:
            chunks.append(chunk({"content": event.content}))
        return chunks

    return make


ARGUMENT_PIECE = 24  # characters of JSON arguments per streamed delta


def tool_call_pieces(event: ToolCallEvent) -> list[dict[str, Any]]:
    """A call as OpenAI streams it: index, id, type and name first, then the arguments in pieces."""
    args = event.call.arguments_json
    head = {"index": event.index, "id": event.call.id, "type": "function",
            "function": {"name": event.call.name, "arguments": ""}}
    return [head] + [{"index": event.index, "function": {"arguments": args[i:i + ARGUMENT_PIECE]}}
                     for i in range(0, len(args), ARGUMENT_PIECE)]


# ---- text completions -----------------------------------------------------------------------------
@router.post("/completions", response_model=None, summary="Text completion (legacy; the prompt runs as one user turn)")
async def completions(
    body: CompletionRequest, request: Request, services: Services = Depends(current_services)
) -> Union[JSONResponse, SSEResponse]:
    ref = await resolve_model(services, body.model, "ttt")
    planned = await plan_for(request, services, completion_request(body, ref))
    plan = planned.plan
    base = {"id": f"cmpl-{plan.request_id}", "object": "text_completion", "created": int(time.time()), "model": body.model}
    prefix = completion_prompt(body) if body.echo else ""
    stops = _stops(plan.task.params.get("stop"))  # the request's, else the personality's (anti_prompts)
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        echoed = False

        def make(event: TextEvent) -> list[dict[str, Any]]:
            nonlocal echoed
            text, finish = "", None
            if isinstance(event, Delta):
                text = event.content
            elif isinstance(event, Finish):
                finish = event.reason
            if not echoed:
                text, echoed = prefix + text, True
            if not text and finish is None:
                return []
            chunk = {**base, "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish}]}
            return [{**chunk, "usage": None} if include_usage else chunk]

        return _sse(stream_text(stream_planned(services, planned), plan, stops), make,
                    (lambda u: {**base, "choices": [], "usage": u}) if include_usage else None, _keepalive(services))
    result = text_result(await run_planned(request, services, planned), plan, stops)
    return JSONResponse({
        **base, "choices": [{"index": 0, "text": prefix + result.content, "logprobs": None, "finish_reason": result.finish_reason}],
        "usage": _usage(result.usage),
    })
