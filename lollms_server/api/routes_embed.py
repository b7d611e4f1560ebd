"""POST /api/v1/embed: embeddings of one or more texts through a binding instance that declares `embed`."""

from __future__ import annotations

from typing import Optional, Union

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from lollms_server.api import byok
from lollms_server.api.deps import current_services
from lollms_server.api.strict_json import StrictJSONRoute
from lollms_server.core.services import Services

router = APIRouter(prefix="/api/v1", tags=["embeddings"], route_class=StrictJSONRoute)


class EmbedRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=(),
                              json_schema_extra={"examples": [{"input": ["first text", "second text"]}]})
    input: Union[str, list[str]] = Field(description="A text or a list of texts (at most 2048).")
    binding_name: Optional[str] = Field(default=None, description="Instance; default: defaults.embedding_binding.")
    model_name: Optional[str] = Field(default=None, description="Model; default: the instance's default_model.")
    dimensions: Optional[int] = Field(default=None, ge=1, description="Shorter vectors, where the model allows it.")


class EmbedResponse(BaseModel):
    model_config = ConfigDict(protected_namespaces=())
    embeddings: list[list[float]] = Field(description="One vector per input text, in order.")
    binding_name: str
    model_name: str
    dimensions: int
    prompt_tokens: int


@router.post("/embed", response_model=EmbedResponse, summary="Embed texts",
             responses={400: {"description": "Empty input, too many texts, or the binding cannot embed."},
                        404: {"description": "Unknown binding instance or model."}})
async def embed(body: EmbedRequest, request: Request, services: Services = Depends(current_services)) -> EmbedResponse:
    texts = [body.input] if isinstance(body.input, str) else list(body.input)
    name, binding = services.embeddings.resolve(body.binding_name)
    creds = byok.credentials_from_headers(request.headers) or getattr(request.state, "byok_credentials", None)
    byok.check_allowed(binding, name, creds)
    with byok.masked(creds):
        result = await services.embeddings.embed(texts, binding_name=name, model_name=body.model_name,
                                                 dimensions=body.dimensions, credentials=creds)
    return EmbedResponse(embeddings=result.vectors, binding_name=name, model_name=result.model,
                         dimensions=len(result.vectors[0]) if result.vectors else 0, prompt_tokens=result.prompt_tokens)
