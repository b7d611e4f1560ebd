"""openai_binding: any OpenAI-compatible chat API (OpenAI, vLLM, LM Studio, llama.cpp server, LiteLLM, lollms).

Uses the official ``openai`` async client. One shared client per instance; a request that brings its own
credentials gets a client of its own, closed when the request ends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, ClassVar

from lollms_server.core.bindings.base import BindingResult, GenerationTask, StreamEvent
from lollms_server.core.bindings.remote import (
    OpenAISDKBinding,
    float_or_none,
    image_data_url,
    stop_list,
    text_chunk,
)
from lollms_server.core.embeddings import EmbeddingResult
from lollms_server.core.errors import NotFoundError
from lollms_server.core.tools import ToolCall, call_event, decode_arguments, new_call_id, tool_call_output

DIRECT_PARAMS = ("temperature", "top_p", "seed", "presence_penalty", "frequency_penalty")
EXTRA_SAMPLING = ("top_k", "min_p", "repeat_penalty")


def _reasoning_of(obj: Any) -> str | None:
    """Reasoning text of a delta or message: ``reasoning_content`` (DeepSeek, vLLM) or ``reasoning``."""
    for attr in ("reasoning_content", "reasoning"):
        value = getattr(obj, attr, None)
        if value is None and getattr(obj, "model_extra", None):
            value = obj.model_extra.get(attr)
        if isinstance(value, str) and value:
            return value
    return None


class OpenAIBinding(OpenAISDKBinding):
    binding_type_name: ClassVar[str] = "openai_binding"
    input_roles: ClassVar[frozenset[str]] = frozenset({"user_prompt", "system_context", "assistant_reply", "input_image"})
    provider: ClassVar[str] = "OpenAI-compatible API"

    # ---- models --------------------------------------------------------------------------------
    async def _models(self, task: GenerationTask | None = None) -> list[Any]:
        try:
            async with self._client_for(task) as client:
                page = await client.models.list()
                return [m async for m in page]
        except Exception as exc:
            raise self._failure(exc) from None

    async def list_available_models(self) -> list[dict[str, Any]]:
        return [
            {"name": m.id, "family": getattr(m, "owned_by", None), "format": "remote",
             "context_size": self.config.get("context_size"),
             "supports_vision": bool(self.config.get("supports_vision", True)), "details": _model_details(m)}
            for m in await self._models()
        ]

    async def get_model_info(self, model_name: str | None = None) -> dict[str, Any]:
        models = await self._models()
        name = model_name or self.default_model or (models[0].id if len(models) == 1 else None)
        found = next((m for m in models if m.id == name), None)
        if found is None:
            raise NotFoundError(f"model '{name}' is not served by binding instance '{self.instance_name}' "
                                f"(models: {', '.join(m.id for m in models[:20]) or 'none'})")
        return {
            "model_name": found.id, "model_type": "ttt", "context_size": self.config.get("context_size"),
            "max_output_tokens": self.config.get("max_output_tokens"),
            "supports_vision": bool(self.config.get("supports_vision", True)), "supports_audio": False,
            "details": _model_details(found),
        }

    def get_supported_input_modalities(self, model_name: str | None = None) -> list[str]:
        return ["image", "text"] if self.config.get("supports_vision", True) else ["text"]

    async def _model_name(self, task: GenerationTask) -> str:
        if task.model_name or self.default_model:
            return str(task.model_name or self.default_model)
        models = await self._models(task)
        if not models:
            raise NotFoundError(f"binding instance '{self.instance_name}': the server lists no models; set default_model")
        return str(models[0].id)

    # ---- requests ------------------------------------------------------------------------------
    def _messages(self, task: GenerationTask) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for m in task.messages or []:
            if m.images:
                parts: list[dict[str, Any]] = [{"type": "text", "text": m.content}] if m.content else []
                parts += [{"type": "image_url", "image_url": {"url": image_data_url(i.mime_type, i.data)}} for i in m.images]
                out.append({"role": m.role, "content": parts})
            else:
                out.append(m.openai())
        if not out:
            out = ([{"role": "system", "content": task.system_prompt}] if task.system_prompt else []) + [
                {"role": "user", "content": task.prompt}]
        return out

    def _request(self, task: GenerationTask, model: str) -> dict[str, Any]:
        p = task.params
        body: dict[str, Any] = {"model": model, "messages": self._messages(task)}
        if p.get("max_tokens") is not None:
            body[str(self.config.get("max_tokens_field") or "max_tokens")] = int(p["max_tokens"])
        for name in DIRECT_PARAMS:
            if p.get(name) is not None:
                body[name] = int(p[name]) if name == "seed" else float_or_none(p[name])
        stop = stop_list(p)
        if stop:
            body["stop"] = stop
        tools = task.offered_tools()
        if tools:
            body["tools"] = [t.openai() for t in task.tools]
            body["tool_choice"] = task.tool_choice.openai()
            if not task.parallel_tool_calls:
                body["parallel_tool_calls"] = False
        extra = {n: p[n] for n in EXTRA_SAMPLING if p.get(n) is not None}
        if extra and self.config.get("send_extra_sampling_params"):
            body["extra_body"] = extra
        return body

    async def generate(self, task: GenerationTask) -> BindingResult:
        model = await self._model_name(task)
        try:
            async with self._client_for(task) as client:
                resp = await client.chat.completions.create(**self._request(task, model))
        except Exception as exc:
            raise self._failure(exc) from None
        choices = getattr(resp, "choices", None)  # a 200 with HTML or text comes back as a str
        if not isinstance(choices, list) or not choices or getattr(choices[0], "message", None) is None:
            raise self._upstream_error("the answer is not a chat completion (no choices with a message)")
        choice = choices[0]
        usage = getattr(resp, "usage", None)
        if usage is not None:
            task.set_usage(usage.prompt_tokens or 0, usage.completion_tokens or 0)
        task.set_finish_reason(choice.finish_reason)
        meta = {"model": getattr(resp, "model", None) or model, "upstream_finish_reason": choice.finish_reason}
        calls = [ToolCall(c.function.name, decode_arguments(c.function.arguments), c.id)
                 for c in (choice.message.tool_calls or []) if getattr(c, "function", None) is not None]
        if calls:
            out = tool_call_output(choice.message.content or "", calls, meta)
            out["thoughts"] = _reasoning_of(choice.message)
            return out
        return {"type": "text", "data": choice.message.content or "", "thoughts": _reasoning_of(choice.message),
                "metadata": meta}

    async def generate_stream(self, task: GenerationTask) -> AsyncIterator[StreamEvent]:
        model = await self._model_name(task)
        body = self._request(task, model)
        if self.config.get("stream_usage", True):
            body["stream_options"] = {"include_usage": True}
        async with self._client_for(task) as client:
            try:
                stream = await client.chat.completions.create(stream=True, **body)
            except Exception as exc:
                raise self._failure(exc) from None
            pending: dict[int, dict[str, str]] = {}  # streamed tool calls by index: id, name, arguments so far
            finished = False
            try:
                async for chunk in stream:
                    if task.cancel.cancelled:
                        break
                    if getattr(chunk, "usage", None) is not None:
                        task.set_usage(chunk.usage.prompt_tokens or 0, chunk.usage.completion_tokens or 0)
                    if not getattr(chunk, "choices", None):
                        continue
                    if chunk.choices[0].finish_reason:
                        finished = True
                        task.set_finish_reason(chunk.choices[0].finish_reason)
                    delta = chunk.choices[0].delta
                    for tc in (getattr(delta, "tool_calls", None) or []) if delta is not None else []:
                        slot = pending.setdefault(tc.index, {"id": "", "name": "", "arguments": ""})
                        slot["id"] = tc.id or slot["id"]
                        if tc.function is not None:
                            slot["name"] += tc.function.name or ""
                            slot["arguments"] += tc.function.arguments or ""
                    thoughts = _reasoning_of(delta) if delta is not None else None
                    text = (delta.content if delta is not None else None) or ""
                    event = text_chunk(text, thoughts, chunk.model or model)
                    if event is not None:
                        yield event
                if not finished and not task.cancel.cancelled:
                    raise self._upstream_error("the stream ended before a finish reason (no end of answer, no [DONE])")
                for _, slot in sorted(pending.items()):
                    yield call_event(ToolCall(slot["name"], decode_arguments(slot["arguments"]), slot["id"] or new_call_id()))
            except Exception as exc:
                raise self._failure(exc) from None
            finally:
                await stream.close()  # closes the upstream response: the server stops generating


    async def embed(self, texts: list[str], *, model_name: str | None = None, dimensions: int | None = None,
                    credentials: dict[str, str] | None = None) -> EmbeddingResult:
        """The provider's /embeddings, all texts in one request (model: request, embedding_model, default_model)."""
        model = model_name or self.config.get("embedding_model") or self.default_model
        if not model:
            raise NotFoundError(f"binding instance '{self.instance_name}': name an embedding model (or set embedding_model)")
        task = GenerationTask(request_id="embed", generation_type="embed", model_name=model, prompt="", credentials=credentials)
        body: dict[str, Any] = {"model": model, "input": texts, "encoding_format": "float"}
        if dimensions is not None:
            body["dimensions"] = dimensions
        try:
            async with self._client_for(task) as client:
                resp = await client.embeddings.create(**body)
        except Exception as exc:
            raise self._failure(exc) from None
        vectors = [list(map(float, d.embedding)) for d in sorted(resp.data, key=lambda d: d.index)]
        tokens = resp.usage.prompt_tokens if resp.usage is not None else 0
        return EmbeddingResult(vectors=vectors, model=resp.model or str(model), prompt_tokens=int(tokens or 0))


def _model_details(model: Any) -> dict[str, Any]:
    dump = getattr(model, "model_dump", None)
    data = dump() if callable(dump) else {}
    return {k: v for k, v in data.items() if k not in ("id", "object") and v is not None}
