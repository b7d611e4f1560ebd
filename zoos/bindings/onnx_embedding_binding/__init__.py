"""onnx_embedding_binding: sentence embeddings on this machine (onnxruntime + tokenizers), in batches."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from lollms_server.core.bindings.base import BindingResult, GenerationTask
from lollms_server.core.bindings.local_models import LocalModelBinding
from lollms_server.core.embeddings import EmbeddingResult
from lollms_server.core.errors import BadRequestError, FeatureNotSupportedError

from .engine import OnnxEmbedder, embed_batches, load_embedder
from .models import EmbeddingFiles, all_models, embeddings_folder, find_model


class OnnxEmbeddingBinding(LocalModelBinding[EmbeddingFiles, OnnxEmbedder]):
    binding_type_name: ClassVar[str] = "onnx_embedding_binding"
    required_packages: ClassVar[dict[str, str]] = {"onnxruntime": "onnxruntime", "tokenizers": "tokenizers", "numpy": "numpy"}
    install_hint: ClassVar[str] = "install the 'embeddings' extra"
    cache_thread_prefix: ClassVar[str] = "embed"

    def __init__(self, config: dict[str, Any], resource_manager: Any) -> None:
        super().__init__(config, resource_manager)
        self.folder = embeddings_folder(config.get("models_folder"))
        self.max_length = int(config.get("max_length") or 256)
        self.batch_size = int(config.get("batch_size") or 32)
        self.threads = config.get("threads") or None
        self.normalize = bool(config.get("normalize", True))

    def load_files(self, files: EmbeddingFiles) -> OnnxEmbedder:
        return load_embedder(files, self.max_length, self.threads)

    def check_install(self) -> None:
        """The default model is looked for at the first request (or now, with preload_default_model)."""

    async def startup(self) -> None:
        await super().startup()
        if self.default_model and self.config.get("preload_default_model"):
            files = await asyncio.to_thread(self.find_files, None)
            async with self.cache.use(files):
                pass

    def find_files(self, model_name: str | None) -> EmbeddingFiles:
        name = model_name or self.default_model
        if not name:
            raise BadRequestError(f"no model named and instance '{self.instance_name}' has no default_model")
        return find_model(self.folder, name)

    async def list_available_models(self) -> list[dict[str, Any]]:
        models = await asyncio.to_thread(all_models, self.folder)
        return [{"name": m.name, "format": "onnx", "model_type": "embed",
                 "details": {"loaded": self.cache.get(m) is not None}} for m in models]

    async def get_model_info(self, model_name: str | None = None) -> dict[str, Any]:
        files = await asyncio.to_thread(self.find_files, model_name)
        loaded = self.cache.get(files)
        return {"model_name": files.name, "model_type": "embed", "context_size": self.max_length,
                "max_output_tokens": None, "supports_vision": False, "supports_audio": False,
                "details": {"format": "onnx", "loaded": loaded is not None,
                            "dimensions": loaded.model.dimensions if loaded else None}}

    async def embed(self, texts: list[str], *, model_name: str | None = None, dimensions: int | None = None,
                    credentials: dict[str, str] | None = None) -> EmbeddingResult:
        files = await asyncio.to_thread(self.find_files, model_name)
        async with self.cache.use(files) as entry:
            native = entry.model.dimensions
            if dimensions is not None and dimensions != native:
                raise FeatureNotSupportedError(
                    f"model '{files.name}' gives {native}-dimensional vectors and cannot shorten them (omit dimensions)")
            vectors, tokens = await entry.call(embed_batches, entry.model, texts, self.batch_size, self.normalize)
        return EmbeddingResult(vectors=vectors, model=files.name, prompt_tokens=tokens)

    async def tokenize(self, text: str, *, add_bos: bool = False, add_eos: bool = False,
                       model_name: str | None = None) -> list[int]:
        """The model's own token ids (special tokens such as [CLS] / [SEP] only when asked for)."""
        files = await asyncio.to_thread(self.find_files, model_name)
        async with self.cache.use(files) as entry:
            enc = await entry.call(lambda: entry.model.tokenizer.encode(text, add_special_tokens=add_bos or add_eos))
        return list(enc.ids)

    async def detokenize(self, tokens: list[int], *, model_name: str | None = None) -> str:
        files = await asyncio.to_thread(self.find_files, model_name)
        async with self.cache.use(files) as entry:
            size = entry.model.tokenizer.get_vocab_size()
            bad = [t for t in tokens if not 0 <= t < size]
            if bad:
                raise BadRequestError(f"token ids {bad[:5]} are outside the model's vocabulary (0..{size - 1})")
            return str(await entry.call(lambda: entry.model.tokenizer.decode(tokens, skip_special_tokens=True)))

    async def generate(self, task: GenerationTask) -> BindingResult:
        raise FeatureNotSupportedError(f"binding '{self.instance_name}' only computes embeddings (/v1/embeddings, /api/v1/embed)")
