"""ollama_binding: Ollama's native API through the official ``ollama`` async client.

Chat (NDJSON streaming), images for vision models, model listing (/api/tags), model details (/api/show),
model pull with progress (``auto_pull``), sampling options mapped to Ollama's option names.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
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
from lollms_server.core.errors import LollmsError, NotFoundError, UnavailableError
from lollms_server.core.tools import ToolCall, call_event, tool_call_output

DEFAULT_HOST = "http://127.0.0.1:11434"
# request parameter -> Ollama option
OPTION_NAMES: dict[str, str] = {
    "temperature": "temperature", "top_k": "top_k", "top_p": "top_p", "min_p": "min_p",
    "repeat_penalty": "repeat_penalty", "repeat_last_n": "repeat_last_n", "seed": "seed",
    "presence_penalty": "presence_penalty", "frequency_penalty": "frequency_penalty",
    "max_tokens": "num_predict", "num_predict": "num_predict", "num_ctx": "num_ctx", "ctx_size": "num_ctx",
}


def _full_name(name: str) -> str:
    return name if ":" in name else f"{name}:latest"


class OllamaBinding(RemoteBinding):
    binding_type_name: ClassVar[str] = "ollama_binding"
    input_roles: ClassVar[frozenset[str]] = frozenset({"user_prompt", "system_context", "assistant_reply", "input_image"})
    provider: ClassVar[str] = "Ollama"
    default_base_url: ClassVar[str | None] = DEFAULT_HOST
    default_timeout: ClassVar[float] = 300.0

    def supports_tool_calls(self, model_name: str | None = None) -> bool:
        caps = self._capabilities.get(_full_name(model_name or self.default_model or ""))
        return self.supports_tools and (caps is None or "tools" in caps)

    def __init__(self, config: dict[str, Any], resource_manager: Any) -> None:
        super().__init__(config, resource_manager)
        self._capabilities: dict[str, list[str]] = {}  # cache of /api/show answers (upstream facts, not request state)

    # ---- clients -------------------------------------------------------------------------------
    def _make_client(self, conn: Connection) -> Any:
        try:
            import ollama
        except ImportError as exc:
            raise UnavailableError("the 'ollama' package is missing: pip install 'lollms_server[ollama]'") from exc
        headers = {"Authorization": f"Bearer {conn.api_key}"} if conn.api_key else None
        return ollama.AsyncClient(host=conn.base_url or DEFAULT_HOST, timeout=self.timeout, headers=headers)

    def _failure(self, exc: BaseException) -> LollmsError:
        import httpx
        import ollama

        if isinstance(exc, LollmsError):
            return exc
        if isinstance(exc, ollama.ResponseError):
            status = exc.status_code if exc.status_code and exc.status_code > 0 else None
            return status_error(self.provider, self.instance_name, status, exc.error)
        unreadable = self._unreadable(exc)
        if unreadable is not None:
            return unreadable
        if isinstance(exc, httpx.TimeoutException):
            return connection_error(self.provider, self.instance_name, exc, timeout=True)
        return connection_error(self.provider, self.instance_name, exc)

    # ---- models --------------------------------------------------------------------------------
    async def list_available_models(self) -> list[dict[str, Any]]:
        try:
            listed = await self._client.list()
        except Exception as exc:
            raise self._failure(exc) from None
        out: list[dict[str, Any]] = []
        for m in listed.models:
            details = m.details.model_dump(exclude_none=True) if m.details else {}
            out.append({"name": m.model, "size": m.size, "format": details.get("format"), "family": details.get("family"),
                        "quantization_level": details.get("quantization_level"),
                        "modified_at": m.modified_at.isoformat() if m.modified_at else None, "details": details})
        return out

    async def _show(self, client: Any, name: str) -> Any:
        try:
            shown = await client.show(name)
        except Exception as exc:
            err = self._failure(exc)
            if isinstance(err, NotFoundError):
                raise NotFoundError(f"model '{name}' is not available on binding instance '{self.instance_name}' "
                                    "(pull it, or set auto_pull: true)") from None
            raise err from None
        self._capabilities[_full_name(name)] = list(shown.capabilities or [])
        return shown

    async def get_model_info(self, model_name: str | None = None) -> dict[str, Any]:
        name = self._model_or_default(model_name)
        shown = await self._show(self._client, name)
        info = dict(shown.modelinfo or {})
        context = next((v for k, v in info.items() if k.endswith(".context_length")), None)
        caps = list(shown.capabilities or [])
        details = shown.details.model_dump(exclude_none=True) if shown.details else {}
        return {
            "model_name": name, "model_type": "ttt", "context_size": self.config.get("num_ctx") or context,
            "max_output_tokens": None, "supports_vision": "vision" in caps, "supports_audio": False,
            "details": {**details, "capabilities": caps, "context_length": context, "parameters": shown.parameters},
        }

    def get_supported_input_modalities(self, model_name: str | None = None) -> list[str]:
        caps = self._capabilities.get(_full_name(model_name or self.default_model or ""))
        if caps is not None and "vision" not in caps:
            return ["text"]
        return ["image", "text"]

    # ---- requests ------------------------------------------------------------------------------
    def _messages(self, task: GenerationTask) -> list[dict[str, Any]]:
        import ollama

        out: list[dict[str, Any]] = []
        for m in task.messages or []:
            msg: dict[str, Any] = {"role": m.role, "content": m.content}
            if m.tool_calls:  # Ollama takes arguments as objects and has no call ids
                msg["tool_calls"] = [{"function": {"name": c.name, "arguments": c.arguments}} for c in m.tool_calls]
            if m.role == "tool" and m.name:
                msg["tool_name"] = m.name
            if m.images:  # bytes, so the client never treats the text as a file path
                msg["images"] = [ollama.Image(value=base64.b64decode(i.data)) for i in m.images]
            out.append(msg)
        return out or [{"role": "user", "content": task.prompt}]

    def _options(self, task: GenerationTask) -> dict[str, Any]:
        opts: dict[str, Any] = {}
        if self.config.get("num_ctx"):
            opts["num_ctx"] = int(self.config["num_ctx"])
        for param, option in OPTION_NAMES.items():
            if task.params.get(param) is not None:
                opts[option] = task.params[param]
        stop = stop_list(task.params)
        if stop:
            opts["stop"] = stop
        return opts

    def _chat_args(self, task: GenerationTask, model: str) -> dict[str, Any]:
        args: dict[str, Any] = {"model": model, "messages": self._messages(task), "options": self._options(task)}
        think = task.params.get("think", self.config.get("think"))
        if think is not None:
            args["think"] = think
        if self.config.get("keep_alive"):
            args["keep_alive"] = self.config["keep_alive"]
        tools = task.offered_tools()  # Ollama has no tool_choice: a forced function is offered alone
        if tools:
            args["tools"] = [t.openai() for t in tools]
        return args

    @staticmethod
    def _calls(message: Any) -> list[ToolCall]:
        return [ToolCall(c.function.name, dict(c.function.arguments or {})) for c in (message.tool_calls or [])]

    async def _pull(self, client: Any, model: str) -> AsyncIterator[StreamEvent]:
        yield {"type": "info", "content": f"pulling model '{model}'", "metadata": {"status": "pulling", "model": model}}
        try:
            async for p in await client.pull(model, stream=True):
                meta: dict[str, Any] = {"status": p.status, "model": model}
                if p.total:
                    meta.update(completed=p.completed or 0, total=p.total, percent=round(100 * (p.completed or 0) / p.total, 1))
                yield {"type": "info", "content": f"pull {model}: {p.status}", "metadata": meta}
        except Exception as exc:
            raise self._failure(exc) from None

    async def _start_chat(self, client: Any, task: GenerationTask, model: str, stream: bool) -> tuple[Any, Any]:
        """(first item, rest): a stream's HTTP status only shows at its first line, so read that here."""
        result = await client.chat(stream=stream, **self._chat_args(task, model))
        if not stream:
            return result, None
        first = await result.__anext__()
        return first, result

    async def _open_chat(self, client: Any, task: GenerationTask, model: str, stream: bool) -> AsyncGenerator[Any, None]:
        """The chat answer (one item when not streaming); pulls a missing model first when auto_pull is on."""
        try:
            first, rest = await self._start_chat(client, task, model, stream)
        except StopAsyncIteration:
            return
        except Exception as exc:
            err = self._failure(exc)
            if not (isinstance(err, NotFoundError) and self.config.get("auto_pull")):
                raise err from None
            async for event in self._pull(client, model):
                yield event
            try:
                first, rest = await self._start_chat(client, task, model, stream)
            except StopAsyncIteration:
                return
            except Exception as exc2:
                raise self._failure(exc2) from None
        yield first
        if rest is None:
            return
        try:
            async for part in rest:
                yield part
        except Exception as exc:
            raise self._failure(exc) from None
        finally:
            with contextlib.suppress(Exception):
                await rest.aclose()  # closes the HTTP response: Ollama stops generating

    async def generate(self, task: GenerationTask) -> BindingResult:
        model = self._model_or_default(task.model_name)
        answer: Any = None
        async with self._client_for(task) as client:
            async for item in self._open_chat(client, task, model, stream=False):
                if not isinstance(item, dict):
                    answer = item
        if answer is None or getattr(answer, "message", None) is None or not getattr(answer, "done", False):
            raise self._upstream_error("the answer is not a finished chat message (no message or no done: true)")
        task.set_usage(answer.prompt_eval_count or 0, answer.eval_count or 0)
        task.set_finish_reason(answer.done_reason)
        calls = self._calls(answer.message)
        if calls:
            return tool_call_output(answer.message.content or "", calls, {"model": answer.model or model})
        return {"type": "text", "data": answer.message.content or "", "thoughts": answer.message.thinking or None,
                "metadata": {"model": answer.model or model, "upstream_finish_reason": answer.done_reason}}

    async def generate_stream(self, task: GenerationTask) -> AsyncIterator[StreamEvent]:
        model = self._model_or_default(task.model_name)
        async with self._client_for(task) as client:
            events = self._open_chat(client, task, model, stream=True)
            done = False
            try:
                async for part in events:
                    if isinstance(part, dict):  # pull progress
                        yield part
                        continue
                    if task.cancel.cancelled:
                        break
                    text, thoughts = part.message.content or "", part.message.thinking or None
                    event = text_chunk(text, thoughts, part.model or model)
                    if event is not None:
                        yield event
                    for call in self._calls(part.message):
                        yield call_event(call)
                    if part.done:
                        done = True
                        task.set_usage(part.prompt_eval_count or 0, part.eval_count or 0)
                        task.set_finish_reason(part.done_reason)
                        if part.done_reason not in (None, "stop", "length"):
                            raise self._upstream_error(f"stream ended: {part.done_reason}")
                if not done and not task.cancel.cancelled:
                    raise self._upstream_error("the stream ended before Ollama said done")
            finally:
                await events.aclose()

    async def embed(self, texts: list[str], *, model_name: str | None = None, dimensions: int | None = None,
                    credentials: dict[str, str] | None = None) -> EmbeddingResult:
        """Ollama's /api/embed with every text in one request (model: request, embedding_model, default_model)."""
        model = self._model_or_default(model_name or self.config.get("embedding_model"))
        task = GenerationTask(request_id="embed", generation_type="embed", model_name=model, prompt="", credentials=credentials)
        try:
            async with self._client_for(task) as client:
                resp = await client.embed(model=model, input=texts, dimensions=dimensions)
        except Exception as exc:
            raise self._failure(exc) from None
        return EmbeddingResult(vectors=[list(map(float, v)) for v in resp.embeddings], model=resp.model or model,
                               prompt_tokens=int(resp.prompt_eval_count or 0))
