"""Ollama chat / generate bodies -> the OllamaGenerateRequest every surface runs."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from lollms_server.api.ollama.errors import OllamaError
from lollms_server.api.ollama.models import OllamaChatRequest, Format, OllamaGenerateRequest, OllamaMessage
from lollms_server.api.openai_compat.ids import ModelRef
from lollms_server.core.contract import GenerateRequest as CoreRequest
from lollms_server.core.contract import InputData
from lollms_server.core.errors import BadRequestError
from lollms_server.core.tools import ToolCall

_ROLE_TO_INPUT = {"system": "system_context", "user": "user_prompt", "assistant": "assistant_reply"}
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF8", "image/gif"), (b"BM", "image/bmp"),
)

# Ollama option -> pipeline parameter (same meaning); num_predict is handled apart (-1 / -2 mean "no limit")
_OPTIONS: dict[str, str] = {
    "temperature": "temperature", "top_p": "top_p", "top_k": "top_k", "seed": "seed", "stop": "stop",
    "repeat_penalty": "repeat_penalty", "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty", "min_p": "min_p", "typical_p": "typical_p",
}


def image_input(data: str, where: str) -> InputData:
    """A base64 image (Ollama sends no mime type: it is read from the first bytes)."""
    text = data.split(",", 1)[1] if data.startswith("data:") and "," in data[:200] else data
    try:
        head = base64.b64decode(text[:64] + "=" * (-len(text[:64]) % 4), validate=False)
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise OllamaError(400, f"{where}: images must be base64-encoded image files") from None
    mime = next((m for magic, m in _MAGIC if head.startswith(magic)), None)
    if mime is None and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        mime = "image/webp"
    if mime is None:
        raise OllamaError(400, f"{where}: not a PNG, JPEG, WEBP, GIF or BMP image")
    return InputData(type="image", role="user_prompt", data=text, mime_type=mime)


def parameters(options: dict[str, Any] | None, fmt: Format) -> dict[str, Any]:
    opts = dict(options or {})
    params: dict[str, Any] = {target: opts[name] for name, target in _OPTIONS.items() if opts.get(name) is not None}
    num_predict = opts.get("num_predict")
    if num_predict is not None:
        if not isinstance(num_predict, int) or isinstance(num_predict, bool):
            raise OllamaError(400, "options.num_predict must be an integer")
        if num_predict > 0:
            params["max_tokens"] = num_predict
        elif num_predict == 0:
            raise OllamaError(400, "options.num_predict must be positive, or -1 for no limit")
    if isinstance(params.get("stop"), str):
        params["stop"] = [params["stop"]]
    if fmt == "json":
        params["response_format"] = {"type": "json_object"}
    elif isinstance(fmt, dict):
        params["response_format"] = {"type": "json_schema", "json_schema": {"name": "answer", "schema": fmt}}
    return params


def stops_of(params: dict[str, Any]) -> list[str]:
    stop = params.get("stop")
    return [s for s in stop if isinstance(s, str)] if isinstance(stop, list) else []


def _target(ref: ModelRef) -> dict[str, Any]:
    return {"binding_name": ref.binding_name, "model_name": ref.model_name, "personality": ref.personality}


class _CallIds:
    """Ollama's tool messages name the tool, not the call: each takes the id of the earliest unanswered call."""

    def __init__(self) -> None:
        self.open: list[tuple[str, str]] = []  # (name, call id)

    def calls(self, raw: list[dict[str, Any]], where: str) -> list[dict[str, Any]]:
        try:
            calls = [ToolCall.from_record(c).record() for c in raw]
        except BadRequestError as exc:
            raise OllamaError(400, f"{where}.tool_calls: {exc.message}") from None
        self.open += [(c["name"], c["id"]) for c in calls]
        return calls

    def answer(self, name: str | None) -> str:
        for i, (open_name, call_id) in enumerate(self.open):
            if name is None or open_name == name:
                del self.open[i]
                return call_id
        return name or ""


def _message_items(msg: OllamaMessage, index: int, ids: _CallIds) -> list[InputData]:
    where = f"messages[{index}]"
    kind = msg.role.lower()
    if kind == "tool":
        meta = {"tool_call_id": ids.answer(msg.tool_name), "name": msg.tool_name}
        return [InputData(type="text", role="tool_result", data=msg.content or "", metadata=meta)]
    if kind == "assistant" and msg.tool_calls:
        calls = ids.calls(msg.tool_calls, where)
        return [InputData(type="text", role="assistant_reply", data=msg.content or "", metadata={"tool_calls": calls})]
    role = _ROLE_TO_INPUT.get(kind)
    if role is None:
        raise OllamaError(400, f"{where}.role '{msg.role}' is not supported; use system, user, assistant or tool")
    items = [InputData(type="text", role=role, data=msg.content or "")] if (msg.content or not msg.images) else []
    if msg.images:
        if role != "user_prompt":
            raise OllamaError(400, f"{where}: images are accepted in user messages only")
        items += [image_input(img, f"{where}.images[{j}]") for j, img in enumerate(msg.images)]
    return items


def chat_request(body: OllamaChatRequest, ref: ModelRef) -> CoreRequest:
    ids = _CallIds()
    items = [item for i, m in enumerate(body.messages) for item in _message_items(m, i, ids)]
    if not any(i.role == "user_prompt" for i in items):
        raise OllamaError(400, "messages must contain at least one user message")
    return CoreRequest(input_data=items, generation_type="ttt", stream=body.stream, tools=body.tools or None,
                       parameters=parameters(body.options, body.format), **_target(ref))


def generate_request(body: OllamaGenerateRequest, ref: ModelRef) -> CoreRequest:
    if body.suffix:
        raise OllamaError(400, "suffix (fill-in-the-middle) is not supported by this server; send the prompt without it")
    items: list[InputData] = []
    if body.system:
        items.append(InputData(type="text", role="system_context", data=body.system))
    items.append(InputData(type="text", role="user_prompt", data=body.prompt or ""))
    items += [image_input(img, f"images[{j}]") for j, img in enumerate(body.images or [])]
    return CoreRequest(input_data=items, generation_type="ttt", stream=body.stream,
                       parameters=parameters(body.options, body.format), **_target(ref))
