"""openai_binding: any OpenAI-compatible chat API (OpenAI, vLLM, LM Studio, llama.cpp server, LiteLLM, lollms).

Speaks the chat completions wire protocol itself over one aiohttp session per instance (keep-alive; see
``lollms_server.core.bindings.http_api``): the gateway path stays cheap. A request that brings its own
credentials uses them for that request only, over the same connection pool.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, ClassVar

from lollms_server.core.bindings.base import BindingResult, GenerationTask, StreamEvent
from lollms_server.core.bindings.remote import (
    Connection,
    RemoteBinding,
    float_or_none,
    image_data_url,
    stop_list,
    text_chunk,
)
from lollms_server.core.embeddings import EmbeddingResult
from lollms_server.core.errors import LollmsError, NotFoundError
from lollms_server.core.tools import ToolCall, call_event, decode_arguments, new_call_id, tool_call_output

if TYPE_CHECKING:
    from lollms_server.core.bindings.http_api import HTTPAPI

DIRECT_PARAMS = ("temperature", "top_p", "seed", "presence_penalty", "frequency_penalty")
EXTRA_SAMPLING = ("top_k", "min_p", "repeat_penalty")


def _reasoning_of(obj: dict[str, Any] | None) -> str | None:
    """Reasoning text of a delta or message: ``reasoning_content`` (DeepSeek, vLLM) or ``reasoning``."""
    for name in ("reasoning_content", "reasoning"):
        value = obj.get(name) if obj else None
        if isinstance(value, str) and value:
            return value
    return None


def _usage(task: GenerationTask, usage: Any) -> None:
    if isinstance(usage, dict):
        task.set_usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))


class OpenAIBinding(RemoteBinding):
    binding_type_name: ClassVar[str] = "openai_binding"
    input_roles: ClassVar[frozenset[str]] = frozenset({"user_prompt", "system_context", "assistant_reply", "input_image"})
    provider: ClassVar[str] = "OpenAI-compatible API"

    def __init__(self, config: dict[str, Any], resource_manager: Any) -> None:
        super().__init__(config, resource_manager)
        self._session: Any = None

    # ---- the HTTP connection ---------------------------------------------------------------------
    async def startup(self) -> None:
        from lollms_server.core.bindings.http_api import new_session  # aiohttp: only when an instance starts

        self._session = new_session(self.timeout)
        await super().startup()

    async def shutdown(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _make_client(self, conn: Connection) -> "HTTPAPI":
        from lollms_server.core.bindings.http_api import HTTPAPI

        headers = {"Accept": "application/json"}
        if conn.api_key:
            headers["Authorization"] = f"Bearer {conn.api_key}"
        return HTTPAPI(self._session, conn.base_url or "https://api.openai.com/v1", headers, self.provider,
                       self.instance_name, self.max_retries)

    async def _close_client(self, client: Any) -> None:
        """A request's own connection shares the instance's session: nothing to close."""

    def _failure(self, exc: BaseException) -> LollmsError:
        return exc if isinstance(exc, LollmsError) else self._upstream_error(str(exc))

    # ---- models --------------------------------------------------------------------------------
    async def _models(self, task: GenerationTask | None = None) -> list[dict[str, Any]]:
        async with self._client_for(task) as api:
            page = await api.request_json("GET", "models")
        data = page.get("data") if isinstance(page, dict) else None
        if not isinstance(data, list):
            raise self._upstream_error("the model list has no data array")
        return [m for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)]

    async def list_available_models(self) -> list[dict[str, Any]]:
        return [
            {"name": m["id"], "family": m.get("owned_by"), "format": "remote",
             "context_size": self.config.get("context_size"),
             "supports_vision": bool(self.config.get("supports_vision", True)), "details": _model_details(m)}
            for m in await self._models()
        ]

    async def get_model_info(self, model_name: str | None = None) -> dict[str, Any]:
        models = await self._models()
        name = model_name or self.default_model or (models[0]["id"] if len(models) == 1 else None)
        found = next((m for m in models if m["id"] == name), None)
        if found is None:
            raise NotFoundError(f"model '{name}' is not served by binding instance '{self.instance_name}' "
                                f"(models: {', '.join(m['id'] for m in models[:20]) or 'none'})")
        return {
            "model_name": found["id"], "model_type": "ttt", "context_size": self.config.get("context_size"),
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
        return str(models[0]["id"])

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
        if self.config.get("send_extra_sampling_params"):
            body.update({n: p[n] for n in EXTRA_SAMPLING if p.get(n) is not None})
        return body

    async def generate(self, task: GenerationTask) -> BindingResult:
        model = await self._model_name(task)
        async with self._client_for(task) as api:
            resp = await api.request_json("POST", "chat/completions", self._request(task, model))
        choices = resp.get("choices") if isinstance(resp, dict) else None
        choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else None
        message = choice.get("message") if choice is not None else None
        if not isinstance(message, dict):
            raise self._upstream_error("the answer is not a chat completion (no choices with a message)")
        _usage(task, resp.get("usage"))
        reason = choice.get("finish_reason")  # type: ignore[union-attr]
        task.set_finish_reason(reason)
        meta = {"model": resp.get("model") or model, "upstream_finish_reason": reason}
        calls = [ToolCall(str(fn.get("name") or ""), decode_arguments(fn.get("arguments")), c.get("id") or new_call_id())
                 for c in message.get("tool_calls") or [] if isinstance(c, dict) and isinstance(fn := c.get("function"), dict)]
        if calls:
            out = tool_call_output(message.get("content") or "", calls, meta)
            out["thoughts"] = _reasoning_of(message)
            return out
        return {"type": "text", "data": message.get("content") or "", "thoughts": _reasoning_of(message), "metadata": meta}

    async def generate_stream(self, task: GenerationTask) -> AsyncIterator[StreamEvent]:
        model = await self._model_name(task)
        body = self._request(task, model)
        body["stream"] = True
        if self.config.get("stream_usage", True):
            body["stream_options"] = {"include_usage": True}
        pending: dict[int, dict[str, str]] = {}  # streamed tool calls by index: id, name, arguments so far
        finished = False
        async with self._client_for(task) as api, api.event_stream("chat/completions", body) as events:
            async for chunk in events:
                if task.cancel.cancelled:
                    break
                if not isinstance(chunk, dict):
                    raise self._upstream_error("an event of the stream is not a chat completion chunk")
                if chunk.get("usage"):
                    _usage(task, chunk["usage"])
                choices = chunk.get("choices")
                if not choices or not isinstance(choices[0], dict):
                    continue
                choice = choices[0]
                if choice.get("finish_reason"):
                    finished = True
                    task.set_finish_reason(choice["finish_reason"])
                delta = choice.get("delta") if isinstance(choice.get("delta"), dict) else None
                for tc in (delta.get("tool_calls") or []) if delta is not None else []:
                    slot = pending.setdefault(int(tc.get("index") or 0), {"id": "", "name": "", "arguments": ""})
                    slot["id"] = tc.get("id") or slot["id"]
                    fn = tc.get("function")
                    if isinstance(fn, dict):
                        slot["name"] += fn.get("name") or ""
                        slot["arguments"] += fn.get("arguments") or ""
                event = text_chunk((delta.get("content") if delta else None) or "", _reasoning_of(delta),
                                   chunk.get("model") or model)
                if event is not None:
                    yield event
        if not finished and not task.cancel.cancelled:
            raise self._upstream_error("the stream ended before a finish reason (no end of answer, no [DONE])")
        for _, slot in sorted(pending.items()):
            yield call_event(ToolCall(slot["name"], decode_arguments(slot["arguments"]), slot["id"] or new_call_id()))

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
        async with self._client_for(task) as api:
            resp = await api.request_json("POST", "embeddings", body)
        data = resp.get("data") if isinstance(resp, dict) else None
        if not isinstance(data, list) or not all(isinstance(d, dict) and isinstance(d.get("embedding"), list) for d in data):
            raise self._upstream_error("the answer is not an embedding list (data[].embedding)")
        try:
            vectors = [list(map(float, d["embedding"])) for d in sorted(data, key=lambda d: int(d.get("index") or 0))]
        except (TypeError, ValueError):
            raise self._upstream_error("an embedding holds something else than numbers") from None
        usage = resp.get("usage") if isinstance(resp.get("usage"), dict) else {}
        return EmbeddingResult(vectors=vectors, model=str(resp.get("model") or model), prompt_tokens=int(usage.get("prompt_tokens") or 0))


def _model_details(model: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in model.items() if k not in ("id", "object") and v is not None}
