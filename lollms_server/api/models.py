"""Pydantic models of the HTTP contract (spec section 7); the shared data contract lives in core.contract."""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

from lollms_server.core.contract import (  # re-exported: the spec names lollms_server.api.models
    ChunkType,
    GenerateRequest,
    GenerateResponse,
    InputData,
    InputType,
    OutputData,
    OutputType,
    StreamChunk,
)
from lollms_server.api.health_models import (  # noqa: F401 - re-exported (routes_health imports them from there)
    HealthResponse,
    ReadinessResponse,
    ServerInfoResponse,
)


# the response models of the listings and tokens routes (this module is imported by their first request,
# api/lazy_routes.py; the health routes' models are in api/health_models.py): their validators are built on
# first use (a request body model is built at once: FastAPI's body field of a model still to build makes
# pydantic warn about its alias)
_BUILT_ON_FIRST_USE = ConfigDict(defer_build=True)


class GenerationParameterInfo(BaseModel):
    """A generation parameter a binding understands (drives UI controls and request checks)."""

    model_config = _BUILT_ON_FIRST_USE

    name: str
    type: str = Field(description="integer, number, string, boolean, array or object.")
    default: Any = None
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    choices: Optional[list[Any]] = None
    help: str = ""
    generation_types: list[str] = Field(default_factory=list, description="Generation types it applies to.")


class BindingTypeInfo(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="allow")
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
    source: Optional[str] = Field(default=None, description="zoo, entry_point or personal.")
    parameters: list[GenerationParameterInfo] = Field(
        default_factory=list, description="Generation parameters this binding type understands."
    )


class InstanceState(BaseModel):
    model_config = _BUILT_ON_FIRST_USE

    state: Literal["active", "no_model", "error"]
    detail: Optional[str] = None


class ListBindingsResponse(BaseModel):
    model_config = _BUILT_ON_FIRST_USE

    binding_types: dict[str, BindingTypeInfo]
    binding_instances: dict[str, dict[str, Any]]
    load_errors: dict[str, str] = Field(
        default_factory=dict, description="Binding types or instances that failed to load, with the reason."
    )
    instance_states: dict[str, InstanceState] = Field(
        default_factory=dict,
        description="Per instance: active, no_model (loaded but no usable default model: detail says how to fix it) "
        "or error (failed to load: detail says why).",
    )


class ListActiveBindingsResponse(BaseModel):
    model_config = _BUILT_ON_FIRST_USE

    bindings: dict[str, dict[str, Any]]


class PersonalityInfo(BaseModel):
    model_config = _BUILT_ON_FIRST_USE

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
    welcome_message: Optional[str] = None
    missing_dependencies: list[str] = Field(
        default_factory=list, description="Packages listed in dependencies that are not installed (nothing is installed at run time)."
    )


class ListPersonalitiesResponse(BaseModel):
    model_config = _BUILT_ON_FIRST_USE

    personalities: dict[str, PersonalityInfo]
    load_errors: dict[str, str] = Field(default_factory=dict)


class ListFunctionsResponse(BaseModel):
    model_config = _BUILT_ON_FIRST_USE

    functions: list[str]
    schemas: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="JSON schema of each function's arguments (for tool calling)."
    )
    load_errors: dict[str, str] = Field(
        default_factory=dict, description="Function files or packages that failed to load, with the reason."
    )


class ListModelsResponse(BaseModel):
    model_config = _BUILT_ON_FIRST_USE

    models: dict[str, list[str]]


class ModelInfo(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="allow", protected_namespaces=())
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
    model_config = _BUILT_ON_FIRST_USE

    binding_instance_name: str
    models: list[ModelInfo]


class GetDefaultBindingsResponse(BaseModel):
    model_config = _BUILT_ON_FIRST_USE

    defaults: dict[str, Any]


class GetModelInfoResponse(BaseModel):
    model_config = ConfigDict(defer_build=True, protected_namespaces=())
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
    model_config = _BUILT_ON_FIRST_USE

    tokens: list[int]
    count: int


class DetokenizeRequest(BaseModel):
    model_config = ConfigDict(protected_namespaces=(), json_schema_extra={"examples": [{"tokens": [1, 2, 3]}]})
    tokens: list[int]
    binding_name: Optional[str] = None
    model_name: Optional[str] = None


class DetokenizeResponse(BaseModel):
    model_config = _BUILT_ON_FIRST_USE

    text: str


class CountTokensRequest(TokenizeRequest):
    pass


class CountTokensResponse(BaseModel):
    model_config = _BUILT_ON_FIRST_USE

    count: int


class ResourceStateResponse(BaseModel):
    model_config = _BUILT_ON_FIRST_USE

    strategy: str
    limit: Optional[int]
    active: int
    waiting: int = Field(description="Requests waiting for a compute slot (the queue depth).")
    queue_timeout: float
    max_queue: int = Field(description="Most requests that may wait; one more gets 503 with Retry-After.")
    backend: Literal["memory", "redis"] = Field(
        "memory", description="memory: this process only; redis: active and waiting count every replica sharing the Redis."
    )


class ErrorResponse(BaseModel):
    model_config = _BUILT_ON_FIRST_USE

    detail: str
