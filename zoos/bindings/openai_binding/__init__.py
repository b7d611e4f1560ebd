"""openai_binding: any OpenAI-compatible chat API (OpenAI, vLLM, LM Studio, llama.cpp server, LiteLLM, lollms).

Uses the official ``openai`` async client. One shared client per instance; a request that brings its own
credentials gets a client of its own, closed when the request ends.
"""

from __future__ import annotations

import contextlib
from typing import Any, AsyncIterator, ClassVar

from lollms_server.core.bindings.base import Binding, BindingResult, GenerationTask, StreamEvent
from lollms_server.core.bindings.remote import (
    Connection, connection_error, connection_for, float_or_none, image_data_url, status_error,
)
from lollms_server.core.errors import LollmsError, NotFoundError, UnavailableError

PROVIDER = "OpenAI-compatible API"
NO_KEY = "no-key"  # local servers need no key, the client insists on one
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


class OpenAIBinding(Binding):
    binding_type_name: ClassVar[str] = "openai_binding"
    supports_streaming: ClassVar[bool] = True
    generation_types: ClassVar[frozenset[str]] = frozenset({"ttt"})
    input_modalities: ClassVar[frozenset[str]] = frozenset({"text", "image"})
    output_modalities: ClassVar[frozenset[str]] = frozenset({"text"})
    input_roles: ClassVar[frozenset[str]] = frozenset({"user_prompt", "system_context", "assistant_reply", "input_image"})

    def __init__(self, config: dict[str, Any], resource_manager: Any) -> None:
        super().__init__(config, resource_manager)
        self.timeout = float(config.get("timeout") or 120.0)
        self.max_retries = int(config.get("max_retries") if config.get("max_retries") is not None else 2)
        self._client: Any = None

    # ---- clients -------------------------------------------------------------------------------
    def _make_client(self, conn: Connection) -> Any:
        try:
            from openai import AsyncOpenAI
        except ImportError as exc:
            raise UnavailableError("the 'openai' package is missing: pip install 'lollms_server[openai]'") from exc
        return AsyncOpenAI(api_key=conn.api_key or NO_KEY, base_url=conn.base_url or None,
                           timeout=self.timeout, max_retries=self.max_retries)

    async def startup(self) -> None:
        self._client = self._make_client(connection_for(self.config, None, None))

    async def shutdown(self) -> None:
        if self._client is not None:
            await self._client.close()

    @contextlib.asynccontextmanager
    async def _client_for(self, task: GenerationTask | None) -> AsyncIterator[Any]:
        conn = connection_for(self.config, task, None)
        if not conn.per_request:
            yield self._client
            return
        client = self._make_client(conn)
        try:
            yield client
        finally:
            await client.close()

    def _failure(self, exc: BaseException) -> LollmsError:
        import openai

        if isinstance(exc, LollmsError):
            return exc
        if isinstance(exc, openai.APIStatusError):
            return status_error(PROVIDER, self.instance_name, exc.status_code, _status_detail(exc))
        if isinstance(exc, openai.APITimeoutError):
            return connection_error(PROVIDER, self.instance_name, exc, timeout=True)
        if isinstance(exc, (openai.APIConnectionError, openai.APIError)):
            return connection_error(PROVIDER, self.instance_name, exc)
        return connection_error(PROVIDER, self.instance_name, exc)

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
                out.append({"role": m.role, "content": m.content})
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
        stop = p.get("stop") or p.get("stop_sequences")
        if stop:
            body["stop"] = [stop] if isinstance(stop, str) else list(stop)
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
        if not resp.choices:
            raise status_error(PROVIDER, self.instance_name, None, "the answer holds no choices")
        choice = resp.choices[0]
        if resp.usage is not None:
            task.set_usage(resp.usage.prompt_tokens or 0, resp.usage.completion_tokens or 0)
        return {"type": "text", "data": choice.message.content or "", "thoughts": _reasoning_of(choice.message),
                "metadata": {"model": resp.model or model, "upstream_finish_reason": choice.finish_reason}}

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
            try:
                async for chunk in stream:
                    if task.cancel.cancelled:
                        break
                    if getattr(chunk, "usage", None) is not None:
                        task.set_usage(chunk.usage.prompt_tokens or 0, chunk.usage.completion_tokens or 0)
                    if not chunk.choices:
                        continue
                    delta = chunk.choices[0].delta
                    thoughts = _reasoning_of(delta) if delta is not None else None
                    text = (delta.content if delta is not None else None) or ""
                    if text or thoughts:
                        event: StreamEvent = {"type": "chunk", "content": text, "metadata": {"model": chunk.model or model}}
                        if thoughts:
                            event["thoughts"] = thoughts
                        yield event
            except Exception as exc:
                raise self._failure(exc) from None
            finally:
                await stream.close()  # closes the upstream response: the server stops generating


def _status_detail(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            return str(err.get("message") or err)
        return str(err)
    return str(getattr(exc, "message", "") or exc)


def _model_details(model: Any) -> dict[str, Any]:
    try:
        data = model.model_dump()
    except Exception:
        return {}
    return {k: v for k, v in data.items() if k not in ("id", "object") and v is not None}
