"""POST /v1/responses (OpenAI Responses API): text or items in, message / function_call items out, streamed or not.

Runs the same pipeline as /v1/chat/completions. Unknown model ids (e.g. the default model name of an
agent framework) run on ``defaults.ttt_binding``. Responses are kept in a bounded store (in this process, or in
Redis with ``resource_manager.backend: redis``) so ``previous_response_id`` can continue a conversation on any
replica; GET / DELETE /v1/responses/{id} read and drop them. Each belongs to the API key that created it.
"""

from __future__ import annotations

import json
import time
from typing import Any, AsyncIterator, Union

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from sse_starlette import EventSourceResponse

from lollms_server.api.deps import current_services, get_services
from lollms_server.api.models import GenerateRequest, InputData
from lollms_server.api.openai_compat.auth import require_openai_key
from lollms_server.api.openai_compat.convert import sampling_params
from lollms_server.api.openai_compat.errors import ERROR_RESPONSES, OpenAIError, OpenAIRoute
from lollms_server.api.openai_compat.ids import ModelRef, resolve_model
from lollms_server.api.openai_compat.models import SamplingFields
from lollms_server.api.openai_compat.planning import plan_for, run_planned, stream_planned
from lollms_server.api.openai_compat.responses_convert import (
    ResponsesRequest,
    call_item,
    input_items,
    message_item,
    new_id,
    response_object,
)
from lollms_server.api.openai_compat.responses_store import MemoryResponseStore, ResponseStore, StoredResponse
from lollms_server.api.openai_compat.textgen import Delta, Failure, Finish, ToolCallEvent, stream_text, text_result
from lollms_server.core.errors import LollmsError
from lollms_server.core.services import Services
from lollms_server.core.tools import ToolCall

router = APIRouter(prefix="/v1", tags=["openai"], route_class=OpenAIRoute, dependencies=[Depends(require_openai_key)],
                   responses=ERROR_RESPONSES)


def build_response_store(services: Services) -> ResponseStore:
    """The store ``responses`` and ``resource_manager.backend`` ask for (Redis: shared by every replica)."""
    from lollms_server.core.redis_conn import key_prefix, redis_url, shared_state_enabled

    cfg = services.config.section("responses")
    limit, ttl = int(cfg.get("max_stored") or 512), int(cfg.get("ttl_seconds") or 30 * 86400)
    rm = services.config.section("resource_manager")
    if shared_state_enabled(rm):
        from lollms_server.api.openai_compat.responses_store_redis import RedisResponseStore

        return RedisResponseStore(redis_url(rm), limit, ttl, prefix=f"{key_prefix(rm)}:responses")
    return MemoryResponseStore(limit, ttl)


def _store(request: Request) -> ResponseStore:
    store: ResponseStore | None = getattr(request.app.state, "response_store", None)
    if store is None:
        store = build_response_store(get_services(request))
        request.app.state.response_store = store
    return store


def _owner(request: Request) -> str | None:
    """Id of the API key of this request (None when auth is off): the owner of what it stores."""
    key = getattr(request.state, "api_key", None)
    return key.id if key is not None else None


async def _model_ref(services: Services, model_id: str | None) -> ModelRef:
    try:
        return await resolve_model(services, model_id, "ttt")
    except OpenAIError as exc:
        if exc.status != 404 or not services.config.default_binding("ttt"):
            raise
        return await resolve_model(services, None, "ttt")  # an OpenAI model name this server does not have


async def _conversation(body: ResponsesRequest, store: ResponseStore, owner: str | None) -> list[InputData]:
    history: list[InputData] = []
    if body.previous_response_id:
        prev = await store.get(body.previous_response_id, owner)
        if prev is None:
            raise OpenAIError(404, f"Previous response with id '{body.previous_response_id}' not found.",
                              param="previous_response_id", code="previous_response_not_found")
        history = list(prev.conversation)
    return history + input_items(body.input)


def _generate_request(body: ResponsesRequest, ref: ModelRef, conversation: list[InputData]) -> GenerateRequest:
    items = ([InputData(type="text", role="system_context", data=body.instructions)] if body.instructions else []) + conversation
    if not any(i.role in ("user_prompt", "tool_result") for i in items):
        raise OpenAIError(400, "input must contain a user message", param="input")
    sampling = SamplingFields(model=ref.model_id, temperature=body.temperature, top_p=body.top_p)
    params = sampling_params(sampling, body.max_output_tokens)
    return GenerateRequest(input_data=items, generation_type="ttt", stream=body.stream, parameters=params,
                           binding_name=ref.binding_name, model_name=ref.model_name, personality=ref.personality,
                           tools=body.tools or None, tool_choice=body.tool_choice if body.tools else None,
                           parallel_tool_calls=body.parallel_tool_calls)


async def _remember(store: ResponseStore, owner: str | None, body: ResponsesRequest, response_id: str,
                    conversation: list[InputData], text: str, calls: list[ToolCall], response: dict[str, Any]) -> None:
    if not body.store:
        return
    reply = InputData(type="text", role="assistant_reply", data=text,
                      metadata={"tool_calls": [c.record() for c in calls]} if calls else None)
    await store.put(StoredResponse(response_id, tuple(conversation + [reply]), body.instructions, response, owner))


@router.post("/responses", response_model=None, summary="Create a response (OpenAI Responses API)",
             description="Input text or items, instructions, function tools, previous_response_id; JSON or SSE events.")
async def create_response(body: ResponsesRequest, request: Request,
                          services: Services = Depends(current_services)) -> Union[JSONResponse, EventSourceResponse]:
    store, owner = _store(request), _owner(request)
    ref = await _model_ref(services, body.model)
    conversation = await _conversation(body, store, owner)
    planned = await plan_for(request, services, _generate_request(body, ref, conversation))
    response_id = f"resp_{planned.plan.request_id}{new_id('x')[-8:]}"
    if body.stream:
        keepalive = float(services.config.section("server").get("keepalive_interval", 15.0))
        events = _stream_events(body, response_id, conversation, (store, owner),
                                stream_text(stream_planned(services, planned), planned.plan, []))
        return EventSourceResponse(events, ping=keepalive, headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
    result = text_result(await run_planned(request, services, planned), planned.plan, [])
    output: list[dict[str, Any]] = []
    if result.content or not result.tool_calls:
        output.append(message_item(result.content))
    output += [call_item(c) for c in result.tool_calls]
    answer = response_object(body, response_id, output, "completed", result.usage)
    await _remember(store, owner, body, response_id, conversation, result.content, result.tool_calls, answer)
    return JSONResponse(answer)


@router.get("/responses/{response_id}", summary="A stored response, as it was sent")
async def get_response(response_id: str, request: Request) -> dict[str, Any]:
    stored = await _store(request).get(response_id, _owner(request))
    if stored is None:
        raise OpenAIError(404, f"Response with id '{response_id}' not found.", param="response_id", code="not_found")
    return stored.response


@router.delete("/responses/{response_id}", summary="Forget a stored response")
async def delete_response(response_id: str, request: Request) -> dict[str, Any]:
    if not await _store(request).delete(response_id, _owner(request)):
        raise OpenAIError(404, f"Response with id '{response_id}' not found.", param="response_id", code="not_found")
    return {"id": response_id, "object": "response.deleted", "deleted": True}


class _Emitter:
    """Numbers the SSE events and shapes them as the Responses API does (event name = type)."""

    def __init__(self) -> None:
        self.seq = 0

    def __call__(self, type_: str, **fields: Any) -> dict[str, str]:
        payload = {"type": type_, "sequence_number": self.seq, **fields}
        self.seq += 1
        return {"event": type_, "data": json.dumps(payload)}


async def _stream_events(body: ResponsesRequest, response_id: str, conversation: list[InputData],
                         keep: tuple[ResponseStore, str | None], events: AsyncIterator[Any]) -> AsyncIterator[dict[str, str]]:
    emit = _Emitter()
    created = int(time.time())
    output: list[dict[str, Any]] = []
    text_parts: list[str] = []
    calls: list[ToolCall] = []
    msg_id: str | None = None
    yield emit("response.created", response=response_object(body, response_id, [], "in_progress", None, created))
    yield emit("response.in_progress", response=response_object(body, response_id, [], "in_progress", None, created))
    async for event in events:
        if isinstance(event, Delta) and event.content:
            if msg_id is None:
                msg_id = new_id("msg")
                yield emit("response.output_item.added", output_index=len(output), item=message_item("", msg_id, "in_progress"))
                yield emit("response.content_part.added", item_id=msg_id, output_index=len(output), content_index=0,
                           part={"type": "output_text", "text": "", "annotations": []})
            text_parts.append(event.content)
            yield emit("response.output_text.delta", item_id=msg_id, output_index=len(output), content_index=0,
                       delta=event.content, logprobs=[])
        elif isinstance(event, ToolCallEvent):
            for frame in _close_message(emit, output, msg_id, text_parts):
                yield frame
            msg_id = None
            call = event.call
            calls.append(call)
            item = call_item(call)
            index = len(output)
            yield emit("response.output_item.added", output_index=index, item={**item, "arguments": "", "status": "in_progress"})
            yield emit("response.function_call_arguments.delta", item_id=item["id"], output_index=index, delta=item["arguments"])
            yield emit("response.function_call_arguments.done", item_id=item["id"], output_index=index, arguments=item["arguments"])
            yield emit("response.output_item.done", output_index=index, item=item)
            output.append(item)
        elif isinstance(event, Failure):
            error = {"code": "server_error" if event.status >= 500 else "invalid_request", "message": event.message}
            yield emit("response.failed", response=response_object(body, response_id, output, "failed", None, created, error))
            return
        elif isinstance(event, Finish):
            for frame in _close_message(emit, output, msg_id, text_parts, force=not output):
                yield frame
            answer = response_object(body, response_id, output, "completed", event.usage, created)
            try:
                await _remember(*keep, body, response_id, conversation, "".join(text_parts), calls, answer)
            except LollmsError as exc:  # asked to store it and cannot: say so instead of a completion that was not kept
                error = {"code": "server_error", "message": exc.message}
                yield emit("response.failed", response=response_object(body, response_id, output, "failed", None, created, error))
                return
            yield emit("response.completed", response=answer)
            return


def _close_message(emit: _Emitter, output: list[dict[str, Any]], msg_id: str | None, text_parts: list[str],
                   force: bool = False) -> list[dict[str, str]]:
    """The done events of the open message item (an empty one when ``force`` and none is open)."""
    if msg_id is None and not force:
        return []
    frames: list[dict[str, str]] = []
    index = len(output)
    if msg_id is None:
        msg_id = new_id("msg")
        frames.append(emit("response.output_item.added", output_index=index, item=message_item("", msg_id, "in_progress")))
        frames.append(emit("response.content_part.added", item_id=msg_id, output_index=index, content_index=0,
                           part={"type": "output_text", "text": "", "annotations": []}))
    text = "".join(text_parts)
    part = {"type": "output_text", "text": text, "annotations": []}
    frames.append(emit("response.output_text.done", item_id=msg_id, output_index=index, content_index=0, text=text, logprobs=[]))
    frames.append(emit("response.content_part.done", item_id=msg_id, output_index=index, content_index=0, part=part))
    item = message_item(text, msg_id)
    frames.append(emit("response.output_item.done", output_index=index, item=item))
    output.append(item)
    return frames
