"""The data contract shared by bindings, workflows and every API surface (spec section 7).

``InputData`` in, ``OutputData`` out, ``StreamChunk`` events while streaming, and ``GenerateRequest``,
the one internal request every surface (``/api/v1``, ``/v1``, Ollama, extensions) translates into.
``lollms_server.api.models`` re-exports these for code written against the spec.
"""

from __future__ import annotations

import json
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator

InputType = Literal["text", "image", "audio", "video", "document"]
OutputType = Literal["text", "image", "audio", "video", "json", "error", "info"]
ChunkType = Literal["chunk", "info", "error", "function_call", "final"]


class InputData(BaseModel):
    """One piece of multimodal input."""

    type: InputType = Field(description="Kind of data: text, image, audio, video, document.")
    role: str = Field(
        description="How the input is used: user_prompt, system_context, assistant_reply (earlier turns; "
        "metadata.tool_calls = [{id, name, arguments}] for the calls it made), tool_result (metadata.tool_call_id), "
        "input_image, mask_image, input_audio…",
        examples=["user_prompt"],
    )
    data: str = Field(description="Text, or base64 for binary data.")
    mime_type: Optional[str] = Field(default=None, description="Required for binary data, e.g. image/png.")
    metadata: Optional[dict[str, Any]] = Field(default=None, description="Extra info, e.g. filename.")

    @model_validator(mode="after")
    def _binary_needs_mime(self) -> "InputData":
        if self.type in ("image", "audio", "video") and not self.mime_type:
            raise ValueError(f"input of type '{self.type}' needs a mime_type, e.g. image/png or audio/wav")
        return self


class OutputData(BaseModel):
    """One piece of generated output."""

    type: OutputType
    data: Any = None
    mime_type: Optional[str] = None
    thoughts: Optional[str] = None
    metadata: Optional[dict[str, Any]] = Field(default_factory=dict)


_set_attribute = object.__setattr__


def updated_output(out: OutputData, update: dict[str, Any]) -> OutputData:
    """``out.model_copy(update=update)`` (same fields, same fields-set, no validation) without its Python copy
    steps, for a plain OutputData (no extra fields, no private attributes); any subclass takes ``model_copy``."""
    if type(out) is not OutputData or out.__pydantic_extra__ or getattr(out, "__pydantic_private__", None):
        return out.model_copy(update=update)
    copied = OutputData.__new__(OutputData)
    _set_attribute(copied, "__dict__", {**out.__dict__, **update})
    _set_attribute(copied, "__pydantic_extra__", None)
    _set_attribute(copied, "__pydantic_fields_set__", out.__pydantic_fields_set__ | update.keys())
    _set_attribute(copied, "__pydantic_private__", None)
    return copied


class GenerateRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "input_data": [{"type": "text", "role": "user_prompt", "data": "What is the capital of France?"}],
                    "stream": False,
                    "parameters": {"max_tokens": 64, "temperature": 0.7},
                },
                {
                    "input_data": [
                        {"type": "text", "role": "system_context", "data": "You are terse."},
                        {"type": "text", "role": "user_prompt", "data": "Hi"},
                        {"type": "text", "role": "assistant_reply", "data": "Hello."},
                        {"type": "text", "role": "user_prompt", "data": "Name a colour."},
                    ],
                    "stream": True,
                },
            ]
        }
    )

    input_data: list[InputData] = Field(
        default_factory=list,
        description="Inputs with roles. Several text items with roles user_prompt/assistant_reply in order form a "
        "multi-turn conversation; system_context items are the system prompt.",
    )
    text_prompt: Optional[str] = Field(
        default=None, json_schema_extra={"deprecated": True}, description="Deprecated: same as one input_data item with role user_prompt."
    )
    prompt: Optional[str] = Field(
        default=None, json_schema_extra={"deprecated": True},
        description="Deprecated (older lollms clients): same as text_prompt.",
    )
    personality: Optional[str] = Field(default=None, description="Personality folder name.")
    binding_name: Optional[str] = Field(default=None, description="Binding instance name (overrides defaults).")
    model_name: Optional[str] = Field(default=None, description="Model for this request (overrides the instance default).")
    generation_type: str = Field(default="ttt", description="ttt, tti, tts, stt, ttv, ttm, i2i, audio2audio.")
    stream: bool = Field(default=False, description="Stream Server-Sent Events of StreamChunk.")
    parameters: Optional[dict[str, Any]] = Field(
        default=None, description="Generation parameters (max_tokens, temperature, image_size…); override defaults."
    )
    functions: Optional[list[str]] = Field(
        default=None,
        description="Server-side functions (`module.function` names from list_functions) the model may call; the "
        "server runs them and feeds the results back (bounded rounds), streaming `function_call` chunks.",
        max_length=64,
    )
    tools: Optional[list[dict[str, Any]]] = Field(
        default=None, max_length=128,
        description="Client-side tools in OpenAI function-tool shape; calls come back in the final output's "
        "metadata.tool_calls (and as `function_call` chunks) for the client to run.",
    )
    tool_choice: Optional[Any] = Field(
        default=None, description="auto (default), none, required, or {type: function, function: {name}}.")
    parallel_tool_calls: Optional[bool] = Field(default=None, description="Allow several calls in one answer (default true).")

    @model_validator(mode="after")
    def _prompt_is_text_prompt(self) -> "GenerateRequest":
        """Older clients send ``prompt``: it means ``text_prompt`` (both at once must agree)."""
        if self.prompt is not None:
            if self.text_prompt is not None and self.text_prompt != self.prompt:
                raise ValueError("send either 'text_prompt' or its older name 'prompt', not two different texts")
            self.text_prompt = self.prompt
        return self


class StreamChunk(BaseModel):
    type: ChunkType
    content: Any = None
    thoughts: Optional[str] = None
    metadata: Optional[dict[str, Any]] = Field(default_factory=dict)


class GenerateResponse(BaseModel):
    """The answer of a non-streamed generation (also a finished job's ``result``)."""

    personality: Optional[str] = None
    request_id: str
    output: list[OutputData]
    execution_time: float


def chunk_json(chunk: StreamChunk) -> str:
    """The event's JSON; text that cannot be encoded as UTF-8 is sent escaped rather than cutting the stream."""
    try:
        return chunk.model_dump_json()
    except ValueError:
        return json.dumps(chunk.model_dump(mode="python"), ensure_ascii=True, default=str)
