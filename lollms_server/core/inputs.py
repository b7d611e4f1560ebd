"""Turn a request's input_data into a conversation and checked binary inputs."""

from __future__ import annotations

import base64
import binascii

from lollms_server.core.contract import InputData
from lollms_server.core.bindings.base import Binding, Message
from lollms_server.core.errors import BadRequestError, echo
from lollms_server.core.request_limits import RequestLimits, check_base64_size
from lollms_server.core.tools import calls_of_metadata

USER_ROLES = {"user_prompt", "user", "prompt"}
ASSISTANT_ROLES = {"assistant_reply", "assistant", "assistant_response"}
SYSTEM_ROLES = {"system_context", "system", "system_prompt"}
TOOL_ROLES = {"tool_result", "tool"}  # metadata: {"tool_call_id": ..., "name": ...}
IMAGE_ROLES = USER_ROLES | {"input_image", "image"}  # an image with one of these roles joins the user's turn


def normalise_binary(items: list[InputData], limits: RequestLimits) -> list[InputData]:
    """Strip data: URL prefixes and check size and base64 of binary inputs (400 naming the bad item)."""
    out: list[InputData] = []
    for i, item in enumerate(items):
        if item.type in ("image", "audio", "video") or (item.type == "document" and item.mime_type and not item.mime_type.startswith("text/")):
            data = item.data
            if data.startswith("data:") and ";base64," in data[:200]:
                header, data = data.split(",", 1)
                item = item.model_copy(update={"data": data, "mime_type": item.mime_type or header[5:].split(";")[0]})
            check_base64_size(i, item.type, data, limits)
            try:
                base64.b64decode(data, validate=True)
            except (binascii.Error, ValueError):
                raise BadRequestError(f"input_data[{i}]: data of a {item.type} input must be base64") from None
        out.append(item)
    return out


def build_conversation(items: list[InputData], conditioning: str | None) -> tuple[list[Message], str | None, str]:
    """Messages (system first), the system prompt, and the last user prompt text."""
    system_parts = [conditioning] if conditioning else []
    turns: list[Message] = []
    for item in items:
        if item.type == "text" and item.role in SYSTEM_ROLES:
            system_parts.append(item.data)
        elif item.type in ("text", "document") and item.role in ASSISTANT_ROLES:
            turns.append(Message("assistant", item.data, tool_calls=calls_of_metadata(item.metadata)))
        elif item.type == "text" and item.role in TOOL_ROLES:
            meta = item.metadata or {}
            turns.append(Message("tool", item.data, tool_call_id=str(meta.get("tool_call_id") or "") or None,
                                 name=meta.get("name") if isinstance(meta.get("name"), str) else None))
        elif item.type in ("text", "document"):
            if item.role in USER_ROLES or not turns or turns[-1].role != "user":
                turns.append(Message("user", item.data))
            else:
                turns[-1].content = f"{turns[-1].content}\n\n{item.data}"
        elif item.type == "image" and item.role in IMAGE_ROLES:
            if not turns or turns[-1].role != "user":
                turns.append(Message("user", ""))
            turns[-1].images.append(item)
    system = "\n\n".join(p for p in system_parts if p) or None
    messages = ([Message("system", system)] if system else []) + turns
    prompt = next((m.content for m in reversed(turns) if m.role == "user"), "")
    return messages, system, prompt


def check_inputs_for(binding: Binding, items: list[InputData], model_name: str | None) -> None:
    """400 when the binding (for this model) cannot take an input's modality, role or MIME type."""
    accepted_types = binding.get_supported_input_modalities(model_name)
    for i, item in enumerate(items):
        if item.type == "text":
            continue
        label = f"binding '{binding.instance_name}'" + (f" with model '{model_name}'" if model_name else "")
        if item.type not in accepted_types:
            hint = binding.input_hint(item.type, model_name)
            raise BadRequestError(
                f"input_data[{i}]: {label} does not accept {item.type} input (accepts: {', '.join(accepted_types)})"
                + (f"; {hint}" if hint else "")
            )
        if not binding.supports_input_role(item.type, item.role, model_name):
            raise BadRequestError(f"input_data[{i}]: {label} does not accept a {item.type} with role '{echo(item.role)}'")
        allowed = binding.accepted_mime_types.get(item.type)
        if allowed and (item.mime_type or "").lower() not in allowed:
            raise BadRequestError(
                f"input_data[{i}]: mime_type '{echo(item.mime_type)}' is not accepted for {item.type}; use one of {', '.join(allowed)}"
            )
