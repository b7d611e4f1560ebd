"""Responses API bodies <-> the pipeline: input items to InputData, results to output items."""

from __future__ import annotations

import time
import uuid
from typing import Any, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

from lollms_server.api.models import InputData
from lollms_server.api.openai_compat.convert import _data_url
from lollms_server.api.openai_compat.errors import OpenAIError
from lollms_server.core.tools import ToolCall, decode_arguments
from lollms_server.core.errors import BadRequestError

_ROLE_TO_INPUT = {"system": "system_context", "developer": "system_context", "user": "user_prompt", "assistant": "assistant_reply"}
MAX_ITEMS = 1024


class ResponsesRequest(BaseModel):
    model_config = ConfigDict(
        extra="ignore", protected_namespaces=(),
        json_schema_extra={"examples": [{"model": "my_instance", "input": "Say hello", "instructions": "Be terse."}]},
    )
    model: Optional[str] = Field(default=None, description="A model id of GET /v1/models; unknown ids use defaults.ttt_binding.")
    input: Union[str, list[dict[str, Any]]] = Field(description="Text, or a list of message / function_call / function_call_output items.")
    instructions: Optional[str] = Field(default=None, description="System prompt for this response (not carried over).")
    previous_response_id: Optional[str] = Field(default=None, description="Continue the conversation of a stored response.")
    tools: Optional[list[dict[str, Any]]] = Field(default=None, max_length=128, description="Function tools (flat shape).")
    tool_choice: Union[str, dict[str, Any], None] = None
    parallel_tool_calls: Optional[bool] = None
    stream: bool = False
    store: bool = Field(default=True, description="Keep this response so previous_response_id can continue it.")
    max_output_tokens: Optional[int] = Field(default=None, ge=1)
    temperature: Optional[float] = Field(default=None, ge=0.0, le=2.0)
    top_p: Optional[float] = Field(default=None, gt=0.0, le=1.0)
    metadata: Optional[dict[str, Any]] = None
    user: Optional[str] = None


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def _content_items(role: str, content: Any, where: str) -> list[InputData]:
    if isinstance(content, str):
        return [InputData(type="text", role=role, data=content)]
    if not isinstance(content, list):
        raise OpenAIError(400, f"{where}.content must be text or a list of parts", param=f"{where}.content")
    texts: list[str] = []
    media: list[InputData] = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text", "text"):
            texts.append(str(part.get("text") or ""))
        elif kind == "input_image" and role == "user_prompt":
            url = part.get("image_url")
            if not isinstance(url, str):
                raise OpenAIError(400, f"{where}.content[{j}].image_url must be a data: URL", param=f"{where}.content[{j}]")
            mime, data = _data_url(url, f"{where}.content[{j}].image_url")
            media.append(InputData(type="image", role="user_prompt", data=data, mime_type=mime))
        elif kind == "refusal":
            texts.append(str(part.get("refusal") or ""))
        else:
            raise OpenAIError(400, f"{where}.content[{j}].type '{kind}' is not supported", param=f"{where}.content[{j}].type")
    text = "\n".join(t for t in texts if t)
    return ([InputData(type="text", role=role, data=text)] if text or not media else []) + media


def input_items(raw: Union[str, list[dict[str, Any]]]) -> list[InputData]:
    """Responses input -> InputData; consecutive function_call items become one assistant turn."""
    if isinstance(raw, str):
        return [InputData(type="text", role="user_prompt", data=raw)]
    if len(raw) > MAX_ITEMS:
        raise OpenAIError(400, f"input holds more than {MAX_ITEMS} items", param="input")
    items: list[InputData] = []
    for i, item in enumerate(raw):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise OpenAIError(400, f"{where} must be an object", param=where)
        kind = item.get("type") or "message"
        if kind == "message":
            role = _ROLE_TO_INPUT.get(str(item.get("role")))
            if role is None:
                raise OpenAIError(400, f"{where}.role must be user, assistant, system or developer", param=f"{where}.role")
            items.extend(_content_items(role, item.get("content"), where))
        elif kind == "function_call":
            try:
                call = ToolCall(name=str(item.get("name") or ""), arguments=decode_arguments(item.get("arguments")),
                                id=str(item.get("call_id") or item.get("id") or ""))
            except BadRequestError as exc:
                raise OpenAIError(400, f"{where}: {exc.message}", param=f"{where}.arguments") from None
            if not call.name or not call.id:
                raise OpenAIError(400, f"{where} needs name and call_id", param=where)
            last = items[-1] if items else None
            if last is not None and last.role == "assistant_reply" and (last.metadata or {}).get("tool_calls") is not None:
                last.metadata["tool_calls"].append(call.record())  # type: ignore[index]
            else:
                items.append(InputData(type="text", role="assistant_reply", data="", metadata={"tool_calls": [call.record()]}))
        elif kind == "function_call_output":
            output = item.get("output")
            text = output if isinstance(output, str) else "\n".join(
                str(p.get("text") or "") for p in (output or []) if isinstance(p, dict))
            items.append(InputData(type="text", role="tool_result", data=text,
                                   metadata={"tool_call_id": str(item.get("call_id") or "")}))
        elif kind in ("reasoning", "item_reference"):
            continue  # no server-side reasoning items to replay
        else:
            raise OpenAIError(400, f"{where}.type '{kind}' is not supported", param=f"{where}.type")
    return items


def message_item(text: str, item_id: str | None = None, status: str = "completed") -> dict[str, Any]:
    return {"type": "message", "id": item_id or new_id("msg"), "status": status, "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}]}


def call_item(call: ToolCall, item_id: str | None = None, arguments: str | None = None, status: str = "completed") -> dict[str, Any]:
    return {"type": "function_call", "id": item_id or f"fc_{call.id.removeprefix('call_')}", "call_id": call.id,
            "name": call.name, "arguments": call.arguments_json if arguments is None else arguments, "status": status}


def usage_of(usage: dict[str, int] | None) -> dict[str, Any]:
    u = usage or {}
    inp, out = int(u.get("prompt_tokens", 0)), int(u.get("completion_tokens", 0))
    return {"input_tokens": inp, "output_tokens": out, "total_tokens": inp + out,
            "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0}}


def response_object(body: ResponsesRequest, response_id: str, output: list[dict[str, Any]], status: str,
                    usage: dict[str, int] | None, created: int | None = None, error: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "id": response_id, "object": "response", "created_at": created or int(time.time()), "status": status,
        "model": body.model or "", "output": output, "error": error, "incomplete_details": None,
        "instructions": body.instructions, "metadata": body.metadata or {}, "parallel_tool_calls": body.parallel_tool_calls is not False,
        "previous_response_id": body.previous_response_id, "temperature": body.temperature, "top_p": body.top_p,
        "max_output_tokens": body.max_output_tokens, "tool_choice": body.tool_choice or "auto", "tools": body.tools or [],
        "text": {"format": {"type": "text"}}, "truncation": "disabled", "store": body.store,
        "usage": usage_of(usage) if status != "in_progress" else None,
    }
