"""Request and response models of the OpenAI-compatible endpoints (the subset lollms_server serves).

Unknown request fields are ignored, as OpenAI-compatible servers do (clients such as lollms-client send
vendor extras like ``chat_template_kwargs``); known fields are type-checked and give a 400 when wrong.
"""

from __future__ import annotations

from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

_LENIENT = ConfigDict(extra="ignore", protected_namespaces=())


# ---- requests -------------------------------------------------------------------------------------
class ChatMessage(BaseModel):
    model_config = _LENIENT
    role: str = Field(description="system, developer, user, assistant or tool.")
    content: Union[str, list[dict[str, Any]], None] = Field(
        default=None, description="Text, or a list of parts: {type: text}, {type: image_url}, {type: input_audio}."
    )
    name: Optional[str] = None
    tool_calls: Optional[list[dict[str, Any]]] = Field(default=None, description="Assistant turns: the calls it made.")
    tool_call_id: Optional[str] = Field(default=None, description="Tool turns: the call this result answers.")


class StreamOptions(BaseModel):
    model_config = _LENIENT
    include_usage: bool = Field(default=False, description="Send a last chunk with `usage` and no choices.")


class ResponseFormat(BaseModel):
    model_config = _LENIENT
    type: Literal["text", "json_object", "json_schema"] = "text"
    json_schema: Optional[dict[str, Any]] = None


class SamplingFields(BaseModel):
    """Fields chat and text completions share."""

    model_config = _LENIENT
    model: str = Field(description="A model id from GET /v1/models, e.g. `my_instance`, `my_instance/model`, `personality:name`.")
    stream: bool = False
    stream_options: Optional[StreamOptions] = None
    max_tokens: Optional[int] = Field(default=None, ge=1)
    temperature: Optional[float] = Field(default=None, ge=0.0, le=2.0)
    top_p: Optional[float] = Field(default=None, gt=0.0, le=1.0)
    top_k: Optional[int] = Field(default=None, ge=0, description="Extension (vLLM style).")
    stop: Union[str, list[str], None] = None
    seed: Optional[int] = None
    n: Optional[int] = Field(default=None, ge=1, description="Only 1 is supported.")
    presence_penalty: Optional[float] = Field(default=None, ge=-2.0, le=2.0)
    frequency_penalty: Optional[float] = Field(default=None, ge=-2.0, le=2.0)
    repetition_penalty: Optional[float] = Field(default=None, gt=0.0, description="Extension (vLLM style).")
    user: Optional[str] = None


class ChatCompletionRequest(SamplingFields):
    model_config = ConfigDict(
        extra="ignore",
        protected_namespaces=(),
        json_schema_extra={
            "examples": [
                {
                    "model": "my_instance",
                    "messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hi"}],
                    "stream": False,
                    "max_tokens": 64,
                }
            ]
        },
    )
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: Optional[int] = Field(default=None, ge=1)
    response_format: Optional[ResponseFormat] = None
    tools: Optional[list[dict[str, Any]]] = Field(default=None, max_length=128, description="Function tools.")
    tool_choice: Union[str, dict[str, Any], None] = Field(
        default=None, description="auto, none, required, or {type: function, function: {name}}.")
    parallel_tool_calls: Optional[bool] = None
    logprobs: Optional[bool] = None


class CompletionRequest(SamplingFields):
    model_config = ConfigDict(
        extra="ignore", protected_namespaces=(),
        json_schema_extra={"examples": [{"model": "my_instance", "prompt": "Once upon a time", "max_tokens": 32}]},
    )
    prompt: Union[str, list[str]]
    echo: bool = False
    suffix: Optional[str] = None
    logprobs: Optional[int] = None


class ImageGenerationRequest(BaseModel):
    model_config = ConfigDict(
        extra="ignore", protected_namespaces=(),
        json_schema_extra={"examples": [{"model": "my_image_instance", "prompt": "a red fox", "size": "512x512", "response_format": "b64_json"}]},
    )
    prompt: str = Field(min_length=1)
    model: Optional[str] = Field(default=None, description="Model id; default: defaults.tti_binding.")
    n: int = Field(default=1, ge=1, le=10)
    size: Optional[str] = Field(default=None, pattern=r"^\d{1,5}x\d{1,5}$", examples=["512x512"])
    response_format: Literal["b64_json", "url"] = Field(default="b64_json", description="`url` gives a data: URL.")
    quality: Optional[str] = None
    style: Optional[str] = None
    seed: Optional[int] = Field(default=None, description="Extension: seed for reproducible images.")
    negative_prompt: Optional[str] = Field(default=None, description="Extension passed to the binding.")
    user: Optional[str] = None


SpeechFormat = Literal["mp3", "opus", "aac", "flac", "wav", "pcm"]


class SpeechRequest(BaseModel):
    model_config = ConfigDict(
        extra="ignore", protected_namespaces=(),
        json_schema_extra={"examples": [{"model": "tts-1", "input": "Hello", "voice": "alloy", "response_format": "mp3"}]},
    )
    input: str = Field(min_length=1, max_length=4096)
    model: Optional[str] = Field(default=None, description="Model id; default: defaults.tts_binding.")
    voice: Optional[str] = Field(default=None, description="Passed to the binding as parameter `voice`.")
    response_format: SpeechFormat = Field(
        default="mp3", description="mp3 (default, as OpenAI), opus (in ogg), aac (adts), flac, wav, or pcm "
        "(raw 16-bit little-endian mono at 24 kHz). Converted from the binding's own format when it differs."
    )
    speed: Optional[float] = Field(default=None, ge=0.25, le=4.0)
    instructions: Optional[str] = None


# ---- responses ------------------------------------------------------------------------------------
class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class ModelCard(BaseModel):
    model_config = ConfigDict(protected_namespaces=())
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "lollms_server"
    lollms: dict[str, Any] = Field(default_factory=dict, description="binding_instance_name, model_name, personality, generation_types; "
                                  "on instance cards also state (active or no_model) and state_detail (the fix).")


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
