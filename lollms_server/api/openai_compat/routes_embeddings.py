"""POST /v1/embeddings (OpenAI compatible): text or token-array input, float or base64 vectors, usage."""

from __future__ import annotations

import base64
import struct
from typing import Any, Literal, Optional, Union

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from lollms_server.api import byok
from lollms_server.api.deps import current_services
from lollms_server.api.openai_compat.auth import require_openai_key
from lollms_server.api.openai_compat.errors import ERROR_RESPONSES, OpenAIError, OpenAIRoute
from lollms_server.api.openai_compat.ids import parse_model_id
from lollms_server.core.aliases import ALIAS_TYPES
from lollms_server.core.bindings.base import Binding
from lollms_server.core.embeddings import MAX_INPUTS, can_embed
from lollms_server.core.errors import NotSupportedError
from lollms_server.core.services import Services

router = APIRouter(prefix="/v1", tags=["openai"], route_class=OpenAIRoute, dependencies=[Depends(require_openai_key)],
                   responses=ERROR_RESPONSES)

EmbeddingInput = Union[str, list[str], list[int], list[list[int]]]


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(
        extra="ignore", protected_namespaces=(),
        json_schema_extra={"examples": [{"model": "default_embeddings", "input": ["first text", "second text"]}]},
    )
    input: EmbeddingInput = Field(description="A text, a list of texts, or token ids of the model's own tokenizer.")
    model: Optional[str] = Field(
        default=None, description="An embedding instance id from GET /v1/models (`instance` or `instance/model`). "
        "Unknown ids (e.g. text-embedding-3-small) use defaults.embedding_binding.")
    encoding_format: Literal["float", "base64"] = Field(default="float", description="base64: little-endian float32.")
    dimensions: Optional[int] = Field(default=None, ge=1, description="Only where the model can shorten its vectors.")
    user: Optional[str] = None


def target(services: Services, model_id: str | None) -> tuple[str | None, str | None]:
    """(binding instance, model) for a model id or alias (``model_aliases``); ids naming no instance use the
    default embedding instance."""
    if model_id and model_id.strip():
        model_id = model_id.strip()
        alias = None if model_id in services.bindings.instances else services.config.model_aliases.get(model_id)
        if alias is not None and alias not in ALIAS_TYPES:
            model_id = alias
        ref = parse_model_id(model_id)
        rec = services.bindings.instances.get(ref.binding_name or "") if not ref.personality else None
        if rec is not None:
            return ref.binding_name, ref.model_name
    default = services.embeddings.default_binding_name()
    if not default:
        raise OpenAIError(400, f"model '{model_id}' is not an embedding instance and no defaults.embedding_binding "
                          "is configured; list model ids with GET /v1/models", param="model", code="model_not_found")
    return default, None


async def texts_of(raw: EmbeddingInput, binding: Binding, model_name: str | None) -> list[str]:
    if isinstance(raw, str):
        return [raw]
    if not raw:
        raise OpenAIError(400, "'input' must not be empty", param="input")
    if len(raw) > MAX_INPUTS:
        raise OpenAIError(400, f"'input' holds more than {MAX_INPUTS} items", param="input")
    if all(isinstance(x, str) for x in raw):
        return [str(x) for x in raw]
    token_lists = [raw] if all(isinstance(x, int) for x in raw) else raw
    try:
        return [await binding.detokenize(list(t), model_name=model_name) for t in token_lists]  # type: ignore[arg-type]
    except NotSupportedError:
        raise OpenAIError(400, "token-array input needs a binding with a tokenizer; send text instead",
                          param="input", code="not_supported") from None


def _encode(vector: list[float], fmt: str) -> Union[list[float], str]:
    if fmt == "base64":
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
    return vector


@router.post("/embeddings", summary="Embeddings (OpenAI compatible)",
             description="Served by binding instances that declare `embed`; default: defaults.embedding_binding.")
async def embeddings(body: EmbeddingRequest, request: Request, services: Services = Depends(current_services)) -> dict[str, Any]:
    binding_name, model_name = target(services, body.model)
    name, binding = services.embeddings.resolve(binding_name)
    if not can_embed(binding):  # pragma: no cover - resolve() already refused
        raise OpenAIError(400, f"'{name}' does not compute embeddings", param="model", code="not_supported")
    texts = await texts_of(body.input, binding, model_name)
    creds = byok.credentials_from_headers(request.headers) or getattr(request.state, "byok_credentials", None)
    byok.check_allowed(binding, name, creds)
    with byok.masked(creds):
        result = await services.embeddings.embed(texts, binding_name=name, model_name=model_name,
                                                 dimensions=body.dimensions, credentials=creds)
    return {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": _encode(v, body.encoding_format)}
                 for i, v in enumerate(result.vectors)],
        "model": body.model or result.model,
        "usage": {"prompt_tokens": result.prompt_tokens, "total_tokens": result.prompt_tokens},
    }
