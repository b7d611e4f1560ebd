"""Request bodies of the Ollama surface, with Ollama's own field names.

Unknown fields are ignored, as Ollama does; known ones are type-checked (a 400 says which).
"""

from __future__ import annotations

from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

_LENIENT = ConfigDict(extra="ignore", protected_namespaces=())

Format = Union[Literal["", "json"], dict[str, Any], None]
Think = Union[bool, Literal["low", "medium", "high"], None]
KeepAlive = Union[str, int, float, None]


class OllamaMessage(BaseModel):
    model_config = _LENIENT
    role: str = Field(description="system, user, assistant or tool.")
    content: Optional[str] = Field(default="", description="The text of the message.")
    images: Optional[list[str]] = Field(default=None, description="Base64-encoded images (user messages).")
    thinking: Optional[str] = Field(default=None, description="An assistant's earlier reasoning (not sent to the model).")
    tool_calls: Optional[list[dict[str, Any]]] = Field(default=None, description="Tool calls an assistant message made.")
    tool_name: Optional[str] = Field(default=None, description="For role tool: the tool whose result this is.")


class _Common(BaseModel):
    model_config = _LENIENT
    model: str = Field(description="A model name from GET /api/tags (`instance`, `instance/model`, `personality:name`; "
                       "a `:latest` tag is optional).")
    format: Format = Field(default=None, description="`json`, or a JSON schema the answer must follow.")
    options: Optional[dict[str, Any]] = Field(default=None, description="num_predict, temperature, top_p, top_k, seed, stop…")
    stream: bool = Field(default=True, description="NDJSON stream (default) or one JSON object.")
    keep_alive: KeepAlive = Field(default=None, description="Accepted; models stay loaded as their binding decides.")
    think: Think = Field(default=None, description="false drops the model's reasoning; otherwise it comes in `thinking`.")


class OllamaChatRequest(_Common):
    model_config = ConfigDict(
        extra="ignore", protected_namespaces=(),
        json_schema_extra={"examples": [{"model": "default_llamacpp", "messages": [{"role": "user", "content": "Hi"}],
                                         "stream": False}]},
    )
    messages: list[OllamaMessage] = Field(default_factory=list, description="The conversation; empty just loads the model.")
    tools: Optional[list[dict[str, Any]]] = Field(default=None, description="Tools the model may call (JSON schema functions).")


class OllamaGenerateRequest(_Common):
    model_config = ConfigDict(
        extra="ignore", protected_namespaces=(),
        json_schema_extra={"examples": [{"model": "default_llamacpp", "prompt": "Why is the sky blue?", "stream": False}]},
    )
    prompt: Optional[str] = Field(default="", description="The prompt; empty just loads the model.")
    suffix: Optional[str] = Field(default=None, description="Fill-in-the-middle is not supported (400 when non-empty).")
    system: Optional[str] = Field(default=None, description="System prompt for this request.")
    template: Optional[str] = Field(default=None, description="Ignored: the binding applies the model's own template.")
    context: Optional[list[int]] = Field(default=None, description="Ignored: send earlier turns through /api/chat instead.")
    raw: Optional[bool] = Field(default=None, description="Accepted; the prompt runs as one user turn.")
    images: Optional[list[str]] = Field(default=None, description="Base64-encoded images.")


class OllamaModelRequest(BaseModel):
    model_config = _LENIENT
    model: Optional[str] = Field(default=None, description="Model name.")
    name: Optional[str] = Field(default=None, description="Older spelling of `model`.")
    verbose: Optional[bool] = None

    def model_name(self) -> str:
        return (self.model or self.name or "").strip()


class OllamaEmbedRequest(BaseModel):
    model_config = ConfigDict(
        extra="ignore", protected_namespaces=(),
        json_schema_extra={"examples": [{"model": "text-embedding-3-small", "input": ["first text", "second text"]}]},
    )
    model: str
    input: Union[str, list[str]] = Field(description="One text or a list of texts.")
    truncate: Optional[bool] = None
    options: Optional[dict[str, Any]] = None
    keep_alive: KeepAlive = None
    dimensions: Optional[int] = Field(default=None, ge=1)


class OllamaEmbeddingsRequest(BaseModel):
    """The older single-text endpoint."""

    model_config = _LENIENT
    model: str
    prompt: str = ""
    options: Optional[dict[str, Any]] = None
    keep_alive: KeepAlive = None
