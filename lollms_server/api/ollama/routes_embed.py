"""POST /api/embed (texts in, ``embeddings`` out) and the older /api/embeddings (one ``prompt``, one ``embedding``).

Both call the core embeddings entry point (``services.embeddings.embed``) on the instance the model name
selects; aliases such as ``text-embedding-3-small`` select ``defaults.embedding_binding``.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Depends, Request

from lollms_server.api import byok
from lollms_server.api.deps import current_services
from lollms_server.api.ollama.auth import require_ollama_key
from lollms_server.api.ollama.errors import ERROR_RESPONSES, OllamaRoute
from lollms_server.api.ollama.models import OllamaEmbeddingsRequest, OllamaEmbedRequest
from lollms_server.api.ollama.names import resolve
from lollms_server.core.embeddings import EmbeddingResult
from lollms_server.core.services import Services

router = APIRouter(prefix="/api", tags=["ollama"], route_class=OllamaRoute, dependencies=[Depends(require_ollama_key)],
                   responses=ERROR_RESPONSES)


async def _embed(request: Request, services: Services, model: str, texts: list[str], dimensions: int | None) -> EmbeddingResult:
    ref = await resolve(services, model, "embedding")
    return await services.embeddings.embed(texts, binding_name=ref.binding_name, model_name=ref.model_name,
                                           dimensions=dimensions, credentials=byok.credentials_from_headers(request.headers))


@router.post("/embed", summary="Embeddings of one text or a list of texts (Ollama)")
async def embed(body: OllamaEmbedRequest, request: Request, services: Services = Depends(current_services)) -> dict[str, Any]:
    started = time.perf_counter_ns()
    texts = [body.input] if isinstance(body.input, str) else list(body.input)
    result = await _embed(request, services, body.model, texts, body.dimensions)
    return {"model": body.model, "embeddings": result.vectors, "total_duration": time.perf_counter_ns() - started,
            "load_duration": 0, "prompt_eval_count": result.prompt_tokens}


@router.post("/embeddings", summary="Embedding of one prompt (Ollama's older endpoint)")
async def embeddings(body: OllamaEmbeddingsRequest, request: Request, services: Services = Depends(current_services)) -> dict[str, Any]:
    result = await _embed(request, services, body.model, [body.prompt], None)
    return {"embedding": result.vectors[0]}
