"""gemini_binding: Google Gemini through the official ``google-genai`` SDK (``from google import genai``).

Each instance owns a ``genai.Client`` with its own key and base URL (no process-global key); a request that
brings its own key gets a client of its own, closed when the request ends.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncIterator
from typing import Any, ClassVar

from lollms_server.core.bindings.base import BindingResult, GenerationTask, StreamEvent
from lollms_server.core.bindings.remote import (
    Connection,
    RemoteBinding,
    connection_error,
    status_error,
    stop_list,
    text_chunk,
)
from lollms_server.core.embeddings import EmbeddingResult
from lollms_server.core.errors import BadRequestError, LollmsError, UnavailableError
from lollms_server.core.tools import ToolCall, call_event, new_call_id, tool_call_output

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
KEY_REASONS = ("API_KEY_INVALID", "API_KEY_EXPIRED", "API_KEY_SERVICE_BLOCKED")


def _short(name: str) -> str:
    return name.split("/", 1)[1] if name.startswith("models/") else name


def _key_rejected(exc: Any) -> bool:
    """Gemini answers a bad key with 400 INVALID_ARGUMENT + ErrorInfo reason API_KEY_INVALID."""
    body = getattr(exc, "details", None) or {}
    err = body.get("error", body) if isinstance(body, dict) else {}
    for d in (err.get("details") or []) if isinstance(err, dict) else []:
        if isinstance(d, dict) and d.get("reason") in KEY_REASONS:
            return True
    return False


class GeminiBinding(RemoteBinding):
    binding_type_name: ClassVar[str] = "gemini_binding"
    input_roles: ClassVar[frozenset[str]] = frozenset({"user_prompt", "system_context", "assistant_reply", "input_image"})
    provider: ClassVar[str] = "Gemini"
    default_base_url: ClassVar[str | None] = DEFAULT_BASE_URL
    default_max_retries: ClassVar[int] = 0

    # ---- clients -------------------------------------------------------------------------------
    def _make_client(self, conn: Connection) -> Any:
        try:
            from google import genai
            from google.genai import types
        except ImportError as exc:
            raise UnavailableError("the 'google-genai' package is missing: pip install 'lollms_server[gemini]'") from exc
        if not conn.api_key:
            raise BadRequestError(f"binding instance '{self.instance_name}' has no Gemini API key "
                                  "(set api_key or api_key_env, or send X-Provider-Api-Key if the instance allows it)")
        retry = types.HttpRetryOptions(attempts=self.max_retries + 1, initial_delay=0.5) if self.max_retries else None
        options = types.HttpOptions(base_url=conn.base_url or DEFAULT_BASE_URL, timeout=int(self.timeout * 1000),
                                    api_version=str(self.config.get("api_version") or "v1beta"), retry_options=retry)
        return genai.Client(api_key=conn.api_key, http_options=options)

    async def _close_client(self, client: Any) -> None:
        await client.aio.aclose()

    async def startup(self) -> None:
        """No instance client when the instance has no key but takes request keys (BYOK only)."""
        conn = self._connection(None)
        if conn.api_key or not self.config.get("allow_request_credentials"):
            self._client = self._make_client(conn)

    def _shared_client(self) -> Any:
        if self._client is None:
            raise BadRequestError(f"binding instance '{self.instance_name}' has no API key of its own; "
                                  "send X-Provider-Api-Key")
        return self._client

    def _failure(self, exc: BaseException) -> LollmsError:
        from google.genai import errors

        if isinstance(exc, LollmsError):
            return exc
        if isinstance(exc, errors.APIError):
            status = 401 if _key_rejected(exc) else exc.code
            return status_error(self.provider, self.instance_name, status, exc.message or exc.status)
        unreadable = self._unreadable(exc)
        if unreadable is not None:
            return unreadable
        timeout = "timeout" in type(exc).__name__.lower()
        return connection_error(self.provider, self.instance_name, exc, timeout=timeout)

    # ---- models --------------------------------------------------------------------------------
    async def list_available_models(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        try:
            async with self._client_for(None) as client:
                async for m in await client.aio.models.list():
                    actions = list(m.supported_actions or [])
                    if actions and "generateContent" not in actions:
                        continue
                    out.append({"name": _short(m.name or ""), "display_name": m.display_name, "format": "remote",
                                "family": "gemini", "context_size": m.input_token_limit,
                                "max_output_tokens": m.output_token_limit, "supports_vision": True,
                                "details": {"description": m.description, "version": m.version, "supported_actions": actions}})
        except Exception as exc:
            raise self._failure(exc) from None
        return out

    async def get_model_info(self, model_name: str | None = None) -> dict[str, Any]:
        name = self._model_or_default(model_name)
        try:
            async with self._client_for(None) as client:
                m = await client.aio.models.get(model=name)
        except Exception as exc:
            raise self._failure(exc) from None
        return {
            "model_name": _short(m.name or name), "model_type": "ttt", "context_size": m.input_token_limit,
            "max_output_tokens": m.output_token_limit, "supports_vision": True, "supports_audio": False,
            "details": {"display_name": m.display_name, "description": m.description, "version": m.version,
                        "supported_actions": list(m.supported_actions or [])},
        }

    # ---- requests ------------------------------------------------------------------------------
    def _contents(self, task: GenerationTask) -> list[Any]:
        from google.genai import types

        contents: list[Any] = []
        names = {c.id: c.name for m in task.messages for c in m.tool_calls}
        for m in task.messages or []:
            if m.role == "system":
                continue
            if m.role == "tool":
                name = m.name or names.get(m.tool_call_id or "", "function")
                part = types.Part(function_response=types.FunctionResponse(
                    id=m.tool_call_id, name=name, response={"result": m.content}))
                contents.append(types.Content(role="user", parts=[part]))
                continue
            parts = [types.Part.from_text(text=m.content)] if m.content else []
            parts += [types.Part(function_call=types.FunctionCall(id=c.id, name=c.name, args=c.arguments)) for c in m.tool_calls]
            parts += [types.Part.from_bytes(data=base64.b64decode(i.data), mime_type=i.mime_type or "image/png") for i in m.images]
            contents.append(types.Content(role="model" if m.role == "assistant" else "user", parts=parts))
        return contents or [types.Content(role="user", parts=[types.Part.from_text(text=task.prompt)])]

    def _config(self, task: GenerationTask) -> Any:
        from google.genai import types

        p = task.params
        values: dict[str, Any] = {
            "system_instruction": task.system_prompt or None,
            "temperature": p.get("temperature"), "top_p": p.get("top_p"), "top_k": p.get("top_k"),
            "max_output_tokens": p.get("max_tokens"), "seed": p.get("seed"),
            "presence_penalty": p.get("presence_penalty"), "frequency_penalty": p.get("frequency_penalty"),
            "stop_sequences": stop_list(p),
        }
        if self.config.get("include_thoughts"):
            values["thinking_config"] = types.ThinkingConfig(include_thoughts=True)
        if task.tools:
            values["tools"] = [types.Tool(function_declarations=[
                types.FunctionDeclaration(name=t.name, description=t.description, parameters_json_schema=t.parameters)
                for t in task.tools])]
            mode = {"auto": "AUTO", "none": "NONE", "required": "ANY"}[task.tool_choice.mode]
            values["tool_config"] = types.ToolConfig(function_calling_config=types.FunctionCallingConfig(
                mode=types.FunctionCallingConfigMode(mode),
                allowed_function_names=[task.tool_choice.name] if task.tool_choice.name else None))
            values["automatic_function_calling"] = types.AutomaticFunctionCallingConfig(disable=True)
        return types.GenerateContentConfig(**{k: v for k, v in values.items() if v is not None})

    @staticmethod
    def _calls(response: Any) -> list[ToolCall]:
        calls: list[ToolCall] = []
        for cand in (response.candidates or [])[:1]:
            for part in (cand.content.parts if cand.content else None) or []:
                fc = getattr(part, "function_call", None)
                if fc is not None and fc.name:
                    calls.append(ToolCall(fc.name, dict(fc.args or {}), fc.id or new_call_id()))
        return calls

    def _pieces(self, response: Any) -> tuple[str, str]:
        text: list[str] = []
        thoughts: list[str] = []
        for cand in (response.candidates or [])[:1]:
            for part in (cand.content.parts if cand.content else None) or []:
                if part.text:
                    (thoughts if part.thought else text).append(part.text)
        return "".join(text), "".join(thoughts)

    def _usage(self, task: GenerationTask, response: Any) -> None:
        u = getattr(response, "usage_metadata", None)
        if u is not None and (u.prompt_token_count or u.candidates_token_count):
            task.set_usage(u.prompt_token_count or 0, u.candidates_token_count or 0)

    def _blocked(self, response: Any) -> None:
        feedback = getattr(response, "prompt_feedback", None)
        if feedback is not None and feedback.block_reason:
            raise BadRequestError(f"Gemini blocked the prompt ({feedback.block_reason})")

    async def generate(self, task: GenerationTask) -> BindingResult:
        model = self._model_or_default(task.model_name)
        try:
            async with self._client_for(task) as client:
                resp = await client.aio.models.generate_content(model=model, contents=self._contents(task), config=self._config(task))
        except Exception as exc:
            raise self._failure(exc) from None
        self._blocked(resp)
        if not getattr(resp, "candidates", None):
            raise self._upstream_error("the answer holds no candidates")
        text, thoughts = self._pieces(resp)
        self._usage(task, resp)
        finish = resp.candidates[0].finish_reason
        task.set_finish_reason(finish)
        meta = {"model": resp.model_version or model, "upstream_finish_reason": str(finish) if finish else None}
        calls = self._calls(resp)
        if calls:
            return {**tool_call_output(text, calls, meta), "thoughts": thoughts or None}
        return {"type": "text", "data": text, "thoughts": thoughts or None, "metadata": meta}

    async def generate_stream(self, task: GenerationTask) -> AsyncIterator[StreamEvent]:
        model = self._model_or_default(task.model_name)
        async with self._client_for(task) as client:
            try:
                stream = await client.aio.models.generate_content_stream(
                    model=model, contents=self._contents(task), config=self._config(task))
            except Exception as exc:
                raise self._failure(exc) from None
            finished = False
            try:
                async for resp in stream:
                    if task.cancel.cancelled:
                        break
                    for cand in (resp.candidates or [])[:1]:
                        if cand.finish_reason:
                            finished = True
                            task.set_finish_reason(cand.finish_reason)
                    self._blocked(resp)
                    self._usage(task, resp)
                    text, thoughts = self._pieces(resp)
                    event = text_chunk(text, thoughts, resp.model_version or model)
                    if event is not None:
                        yield event
                    for call in self._calls(resp):
                        yield call_event(call)
                if not finished and not task.cancel.cancelled:
                    raise self._upstream_error("the stream ended without a finish reason")
            except Exception as exc:
                raise self._failure(exc) from None
            finally:
                with contextlib.suppress(Exception):
                    await stream.aclose()

    async def embed(self, texts: list[str], *, model_name: str | None = None, dimensions: int | None = None,
                    credentials: dict[str, str] | None = None) -> EmbeddingResult:
        """Gemini's batch embedContents, every text in one call (model: request, embedding_model, default_model)."""
        from google.genai import types

        model = self._model_or_default(model_name or self.config.get("embedding_model"))
        task = GenerationTask(request_id="embed", generation_type="embed", model_name=model, prompt="", credentials=credentials)
        config = types.EmbedContentConfig(output_dimensionality=dimensions) if dimensions else None
        try:
            async with self._client_for(task) as client:
                resp = await client.aio.models.embed_content(model=model, contents=list(texts), config=config)
        except Exception as exc:
            raise self._failure(exc) from None
        vectors = [list(map(float, e.values or [])) for e in (resp.embeddings or [])]
        return EmbeddingResult(vectors=vectors, model=model, prompt_tokens=0)
