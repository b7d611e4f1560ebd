"""Embeddings: one entry point, ``EmbeddingService.embed``, in front of every binding that declares "embed".

A binding computes embeddings when ``"embed"`` is in its ``generation_types`` (class attribute and card)
and it implements ``Binding.embed(texts, *, model_name, dimensions, credentials)``. The default instance
is ``defaults.embedding_binding`` in the main configuration. Surfaces (/v1/embeddings, /api/v1/embed,
Ollama's /api/embed) translate their bodies into one ``embed`` call and ``EmbeddingResult`` back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from lollms_server.core.errors import BadRequestError, FeatureNotSupportedError, LollmsError, BackendError
from lollms_server.core.secrets import REDACTOR

if TYPE_CHECKING:
    from lollms_server.core.bindings.base import Binding
    from lollms_server.core.bindings.manager import BindingManager
    from lollms_server.core.config import ServerConfig

EMBED = "embed"
MAX_INPUTS = 2048  # texts per request (OpenAI's own limit)
MAX_TEXT_CHARS = 100_000  # per text; longer texts are refused rather than silently cut here


@dataclass
class EmbeddingResult:
    """``vectors[i]`` embeds ``texts[i]``; ``model`` is the model that computed them."""

    vectors: list[list[float]]
    model: str
    prompt_tokens: int = 0


def can_embed(binding: "Binding") -> bool:
    return EMBED in binding.generation_types


class EmbeddingService:
    def __init__(self, config: "ServerConfig", bindings: "BindingManager") -> None:
        self.config = config
        self.bindings = bindings

    def default_binding_name(self) -> str | None:
        value = self.config.defaults.get("embedding_binding")
        return str(value) if value else None

    def resolve(self, binding_name: str | None) -> tuple[str, "Binding"]:
        """The instance that will embed: ``binding_name`` or ``defaults.embedding_binding``."""
        name = binding_name or self.default_binding_name()
        if not name:
            raise BadRequestError("no binding named and no defaults.embedding_binding configured")
        binding = self.bindings.get(name)
        if not can_embed(binding):
            raise FeatureNotSupportedError(
                f"binding '{name}' does not compute embeddings (it does: {', '.join(sorted(binding.generation_types))})")
        return name, binding

    async def embed(self, texts: list[str], *, binding_name: str | None = None, model_name: str | None = None,
                    dimensions: int | None = None, credentials: dict[str, str] | None = None) -> EmbeddingResult:
        """Embed ``texts`` (in order) on one binding instance. 400 on empty or oversized input."""
        if not texts:
            raise BadRequestError("input must hold at least one text")
        if len(texts) > MAX_INPUTS:
            raise BadRequestError(f"at most {MAX_INPUTS} texts per request (got {len(texts)})")
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise BadRequestError(f"input[{i}] must be a string")
            if len(t) > MAX_TEXT_CHARS:
                raise BadRequestError(f"input[{i}] is longer than {MAX_TEXT_CHARS} characters")
        if dimensions is not None and dimensions < 1:
            raise BadRequestError("dimensions must be at least 1")
        name, binding = self.resolve(binding_name)
        try:
            result = await binding.embed(list(texts), model_name=model_name,
                                         dimensions=dimensions, credentials=credentials)
        except LollmsError:
            raise
        except Exception as exc:  # a backend bug becomes a clear error, never a crash
            raise BackendError(REDACTOR.redact(f"embedding failed on '{name}': {type(exc).__name__}: {exc}")) from exc
        if len(result.vectors) != len(texts):
            raise BackendError(f"binding '{name}' returned {len(result.vectors)} vectors for {len(texts)} texts")
        return result
