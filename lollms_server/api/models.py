"""Pydantic models of the HTTP contract (spec section 7)."""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator

InputType = Literal["text", "image", "audio", "video", "document"]
OutputType = Literal["text", "image", "audio", "video", "json", "error", "info"]
ChunkType = Literal["chunk", "info", "error", "function_call", "final"]


class InputData(BaseModel):
    """One piece of multimodal input."""

    type: InputType = Field(description="Kind of data: text, image, audio, video, document.")
    role: str = Field(
        description="How the input is used: user_prompt, system_context, assistant_reply (earlier turns), "
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
    personality: Optional[str] = Field(default=None, description="Personality folder name.")
    binding_name: Optional[str] = Field(default=None, description="Binding instance name (overrides defaults).")
    model_name: Optional[str] = Field(default=None, description="Model for this request (overrides the instance default).")
    generation_type: str = Field(default="ttt", description="ttt, tti, tts, stt, ttv, ttm, i2i, audio2audio.")
    stream: bool = Field(default=False, description="Stream Server-Sent Events of StreamChunk.")
    parameters: Optional[dict[str, Any]] = Field(
        default=None, description="Generation parameters (max_tokens, temperature, image_size…); override defaults."
    )
    functions: Optional[list[str]] = Field(default=None, description="Reserved: function names offered to the model.")


class GenerateResponse(BaseModel):
    personality: Optional[str] = None
    request_id: str
    output: list[OutputData]
    execution_time: float


class StreamChunk(BaseModel):
    type: ChunkType
    content: Any = None
    thoughts: Optional[str] = None
    metadata: Optional[dict[str, Any]] = Field(default_factory=dict)


class HealthResponse(BaseModel):
    status: str = "ok"
    version: str
    api_key_required: bool


class BindingTypeInfo(BaseModel):
    model_config = ConfigDict(extra="allow")
    type_name: str
    display_name: Optional[str] = None
    version: Optional[str] = None
    author: Optional[str] = None
    description: Optional[str] = None
    requirements: list[str] = Field(default_factory=list)
    supports_streaming: bool = False
    documentation_url: Optional[str] = None
    supported_output_modalities: list[str] = Field(default_factory=list)
    supported_input_modalities: list[str] = Field(default_factory=list)
    source: Optional[str] = Field(default=None, description="zoo or personal.")


class ListBindingsResponse(BaseModel):
    binding_types: dict[str, BindingTypeInfo]
    binding_instances: dict[str, dict[str, Any]]
    load_errors: dict[str, str] = Field(
        default_factory=dict, description="Binding types or instances that failed to load, with the reason."
    )


class ListActiveBindingsResponse(BaseModel):
    bindings: dict[str, dict[str, Any]]


class PersonalityInfo(BaseModel):
    name: str
    author: Optional[str] = None
    version: Optional[str] = None
    description: Optional[str] = None
    category: Optional[str] = None
    language: Optional[str] = None
    tags: list[str] = Field(default_factory=list)
    icon: Optional[str] = None
    is_scripted: bool = False
    path: str


class ListPersonalitiesResponse(BaseModel):
    personalities: dict[str, PersonalityInfo]
    load_errors: dict[str, str] = Field(default_factory=dict)


class ListFunctionsResponse(BaseModel):
    functions: list[str]
    schemas: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="JSON schema of each function's arguments (for tool calling)."
    )


class ListModelsResponse(BaseModel):
    models: dict[str, list[str]]


class ModelInfo(BaseModel):
    model_config = ConfigDict(extra="allow", protected_namespaces=())
    name: str
    size: Optional[int] = None
    modified_at: Optional[str] = None
    quantization_level: Optional[str] = None
    format: Optional[str] = None
    family: Optional[str] = None
    families: Optional[list[str]] = None
    parameter_size: Optional[str] = None
    context_size: Optional[int] = None
    max_output_tokens: Optional[int] = None
    template: Optional[str] = None
    license: Optional[str] = None
    homepage: Optional[str] = None
    supports_vision: bool = False
    supports_audio: bool = False
    details: dict[str, Any] = Field(default_factory=dict)


class ListAvailableModelsResponse(BaseModel):
    binding_instance_name: str
    models: list[ModelInfo]


class GetDefaultBindingsResponse(BaseModel):
    defaults: dict[str, Any]


class GetModelInfoResponse(BaseModel):
    model_config = ConfigDict(protected_namespaces=())
    binding_instance_name: str
    model_name: Optional[str] = None
    model_type: Optional[str] = None
    context_size: Optional[int] = None
    max_output_tokens: Optional[int] = None
    supports_vision: bool = False
    supports_audio: bool = False
    supports_streaming: bool = False
    error: Optional[str] = None
    details: dict[str, Any] = Field(default_factory=dict)


class TokenizeRequest(BaseModel):
    model_config = ConfigDict(protected_namespaces=(), json_schema_extra={"examples": [{"text": "Hello world"}]})
    text: str
    binding_name: Optional[str] = None
    model_name: Optional[str] = None
    add_bos: bool = False
    add_eos: bool = False


class TokenizeResponse(BaseModel):
    tokens: list[int]
    count: int


class DetokenizeRequest(BaseModel):
    model_config = ConfigDict(protected_namespaces=(), json_schema_extra={"examples": [{"tokens": [1, 2, 3]}]})
    tokens: list[int]
    binding_name: Optional[str] = None
    model_name: Optional[str] = None


class DetokenizeResponse(BaseModel):
    text: str


class CountTokensRequest(TokenizeRequest):
    pass


class CountTokensResponse(BaseModel):
    count: int


class ResourceStateResponse(BaseModel):
    strategy: str
    limit: Optional[int]
    active: int
    waiting: int
    queue_timeout: float


class ErrorResponse(BaseModel):
    detail: str
