"""Turn OpenAI chat / text completion bodies into the GenerateRequest the /api/v1 pipeline runs."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

from lollms_server.api.models import GenerateRequest, InputData
from lollms_server.api.openai_compat.errors import OpenAIError
from lollms_server.api.openai_compat.ids import ModelRef
from lollms_server.core.errors import echo
from lollms_server.api.openai_compat.models import ChatCompletionRequest, ChatMessage, CompletionRequest, SamplingFields
from lollms_server.core.errors import BadRequestError
from lollms_server.core.tools import ToolCall

_set_attribute = object.__setattr__


def _valid_model(cls: type[_M], defaults: dict[str, Any], values: dict[str, Any]) -> _M:
    """``cls(**values)`` for values already known valid (same fields, same fields-set), without running the
    validator again: the translation below passes only values the OpenAI request model checked, of the
    field's type, and that the model's own checks (a mime type for binary input, ``prompt``) accept as is."""
    made = cls.__new__(cls)
    _set_attribute(made, "__dict__", {**defaults, **values})
    _set_attribute(made, "__pydantic_extra__", None)
    _set_attribute(made, "__pydantic_fields_set__", set(values))
    _set_attribute(made, "__pydantic_private__", None)
    return made


def _defaults(cls: type[BaseModel], given: tuple[str, ...]) -> dict[str, Any]:
    """Every field in the model's order (the order validation fills ``__dict__`` in, which serialising follows):
    the default of each field not in ``given`` (immutable: the dict is shared by every copy), None for the others."""
    out = {name: None if name in given else f.get_default(call_default_factory=True) for name, f in cls.model_fields.items()}
    assert all(v is None or isinstance(v, (str, bool, int, float)) for v in out.values()), out
    return out


_TEXT_ITEM_DEFAULTS = _defaults(InputData, ("type", "role", "data"))


def _text_item(role: str, text: str) -> InputData:
    """``InputData(type="text", role=role, data=text)``: a text item needs no mime type."""
    return _valid_model(InputData, _TEXT_ITEM_DEFAULTS, {"type": "text", "role": role, "data": text})


_ROLE_TO_INPUT = {"system": "system_context", "developer": "system_context", "user": "user_prompt", "assistant": "assistant_reply"}
_M = TypeVar("_M", bound=BaseModel)
_AUDIO_MIME = {"wav": "audio/wav", "mp3": "audio/mpeg", "flac": "audio/flac", "ogg": "audio/ogg", "webm": "audio/webm"}


def _data_url(url: str, where: str) -> tuple[str, str]:
    """(mime_type, base64) of a ``data:<mime>;base64,<data>`` URL; 400 for anything else."""
    if not url.startswith("data:") or ";base64," not in url[:200]:
        raise OpenAIError(
            400, f"{where}: only data: URLs (data:<mime>;base64,<data>) are accepted; the server fetches no remote URLs",
            param=where, code="invalid_image_url",
        )
    header, data = url.split(",", 1)
    return header[5:].split(";")[0] or "application/octet-stream", data


def _image_part(part: dict[str, Any], where: str) -> InputData:
    raw = part.get("image_url")
    url = raw.get("url") if isinstance(raw, dict) else raw
    if not isinstance(url, str) or not url:
        raise OpenAIError(400, f"{where}.image_url.url is required", param=f"{where}.image_url")
    mime, data = _data_url(url, f"{where}.image_url.url")
    return InputData(type="image", role="user_prompt", data=data, mime_type=mime)


def _audio_part(part: dict[str, Any], where: str) -> InputData:
    audio = part.get("input_audio") or {}
    if not isinstance(audio, dict) or not isinstance(audio.get("data"), str):
        raise OpenAIError(400, f"{where}.input_audio needs 'data' (base64) and 'format'", param=f"{where}.input_audio")
    fmt = str(audio.get("format") or "wav").lower()
    return InputData(type="audio", role="input_audio", data=audio["data"], mime_type=_AUDIO_MIME.get(fmt, f"audio/{fmt}"))


def _plain_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(p.get("text") or "") for p in content if isinstance(p, dict) and p.get("type") in ("text", "input_text", "output_text"))
    return ""


def _tool_items(msg: ChatMessage, where: str) -> list[InputData] | None:
    """Items of a tool-result turn or of an assistant turn that made tool calls; None for other turns."""
    role = msg.role.lower()
    if role in ("tool", "function"):
        if role == "tool" and not msg.tool_call_id:
            raise OpenAIError(400, f"{where}.tool_call_id is required in a tool message", param=f"{where}.tool_call_id")
        meta = {"tool_call_id": msg.tool_call_id or msg.name or "", "name": msg.name}
        return [InputData(type="text", role="tool_result", data=_plain_text(msg.content), metadata=meta)]
    if role == "assistant" and msg.tool_calls:
        try:
            calls = [ToolCall.from_record(c).record() for c in msg.tool_calls]
        except BadRequestError as exc:
            raise OpenAIError(400, f"{where}.tool_calls: {exc.message}", param=f"{where}.tool_calls") from None
        return [InputData(type="text", role="assistant_reply", data=_plain_text(msg.content), metadata={"tool_calls": calls})]
    return None


def _message_items(msg: ChatMessage, index: int) -> list[InputData]:
    role = _ROLE_TO_INPUT.get(msg.role) or _ROLE_TO_INPUT.get(msg.role.lower())
    if role is not None and isinstance(msg.content, str) and not msg.tool_calls:  # the common turn: text only
        return [_text_item(role, msg.content)]
    where = f"messages[{index}]"
    tool_items = _tool_items(msg, where)
    if tool_items is not None:
        return tool_items
    if role is None:
        raise OpenAIError(400, f"{where}.role '{echo(msg.role)}' is not supported; use system, developer, user, assistant or tool",
                          param=f"{where}.role")
    if msg.content is None:
        return []
    if isinstance(msg.content, str):
        return [_text_item(role, msg.content)]
    texts: list[str] = []
    media: list[InputData] = []
    for j, part in enumerate(msg.content):
        kind = part.get("type")
        pwhere = f"{where}.content[{j}]"
        if kind in ("text", "input_text", "output_text"):
            texts.append(str(part.get("text") or ""))
        elif kind in ("image_url", "input_image"):
            media.append(_image_part(part, pwhere))
        elif kind == "input_audio":
            media.append(_audio_part(part, pwhere))
        else:
            raise OpenAIError(400, f"{pwhere}.type '{echo(kind)}' is not supported; use text, image_url or input_audio",
                              param=f"{pwhere}.type")
    if media and role != "user_prompt":
        raise OpenAIError(400, f"{where}: images and audio are accepted in user messages only", param=f"{where}.content")
    text = "\n".join(t for t in texts if t)
    # the text first, so the pipeline attaches the images to this user turn
    return ([InputData(type="text", role=role, data=text)] if text or not media else []) + media


# (request field, pipeline parameter), in the order the parameters are listed
_SAMPLING = (("temperature", "temperature"), ("top_p", "top_p"), ("top_k", "top_k"), ("seed", "seed"), ("stop", "stop"),
             ("presence_penalty", "presence_penalty"), ("frequency_penalty", "frequency_penalty"),
             ("repetition_penalty", "repeat_penalty"))
_SAMPLING_FIELDS = frozenset(name for name, _ in _SAMPLING)


def sampling_params(req: SamplingFields, max_tokens: int | None) -> dict[str, Any]:
    if req.n not in (None, 1):
        raise OpenAIError(400, "only n=1 is supported", param="n")
    params: dict[str, Any] = {} if max_tokens is None else {"max_tokens": max_tokens}
    if req.__pydantic_fields_set__.isdisjoint(_SAMPLING_FIELDS):  # the client sent none of them (defaults: None)
        return params
    for name, param in _SAMPLING:
        value = getattr(req, name)
        if value is not None:
            params[param] = value
    stop = params.get("stop")
    if stop is not None:  # a list of strings; an empty one is no stop at all
        if isinstance(stop, str):
            params["stop"] = [stop]
        elif stop:
            params["stop"] = list(stop)
        else:
            del params["stop"]
    return params


def _target(ref: ModelRef) -> dict[str, Any]:
    return {"binding_name": ref.binding_name, "model_name": ref.model_name, "personality": ref.personality}


_CHAT_FIELDS = ("input_data", "generation_type", "stream", "parameters", "tools", "tool_choice", "parallel_tool_calls",
                "binding_name", "model_name", "personality")
_CHAT_DEFAULTS = _defaults(GenerateRequest, _CHAT_FIELDS)


def chat_request(req: ChatCompletionRequest, ref: ModelRef) -> GenerateRequest:
    if req.logprobs:
        raise OpenAIError(400, "logprobs are not supported by this server", param="logprobs")
    messages = req.messages
    if len(messages) == 1:
        items = _message_items(messages[0], 0)
    else:
        items = [item for i, m in enumerate(messages) for item in _message_items(m, i)]
    for item in items:
        if item.role == "user_prompt":
            break
    else:
        raise OpenAIError(400, "messages must contain at least one user message", param="messages")
    params = sampling_params(req, req.max_completion_tokens or req.max_tokens)
    if req.response_format is not None and req.response_format.type != "text":
        params["response_format"] = req.response_format.model_dump(exclude_none=True)
    tools = req.tools or None  # (list[dict], at most 128: the same type and bound as GenerateRequest.tools)
    # every value below is of its field's type (items are InputData; the rest checked by ChatCompletionRequest)
    return _valid_model(GenerateRequest, _CHAT_DEFAULTS, {
        "input_data": items, "generation_type": "ttt", "stream": req.stream, "parameters": params, "tools": tools,
        "tool_choice": req.tool_choice if tools else None, "parallel_tool_calls": req.parallel_tool_calls,
        "binding_name": ref.binding_name, "model_name": ref.model_name, "personality": ref.personality,
    })


def completion_prompt(req: CompletionRequest) -> str:
    if isinstance(req.prompt, list):
        if len(req.prompt) != 1 or not isinstance(req.prompt[0], str):
            raise OpenAIError(400, "send exactly one prompt string per request", param="prompt")
        return req.prompt[0]
    return req.prompt


def completion_request(req: CompletionRequest, ref: ModelRef) -> GenerateRequest:
    if req.suffix:
        raise OpenAIError(400, "suffix (insertion) is not supported by this server", param="suffix")
    if req.logprobs:
        raise OpenAIError(400, "logprobs are not supported by this server", param="logprobs")
    prompt = completion_prompt(req)
    if not prompt:
        raise OpenAIError(400, "prompt must not be empty", param="prompt")
    items = [InputData(type="text", role="user_prompt", data=prompt)]
    params = sampling_params(req, req.max_tokens)
    return GenerateRequest(input_data=items, generation_type="ttt", stream=req.stream, parameters=params, **_target(ref))
