"""Where Diffusers pipelines are: one save_pretrained folder each in <models_folder>/diffusers_models/."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lollms_server.core.bindings.model_files import (
    marked_subfolder,
    marked_subfolders,
    models_subfolder,
)
from lollms_server.core.errors import BadRequestError, NotFoundError, UnavailableError

INDEX_FILE = "model_index.json"


@dataclass(frozen=True)
class PipelineFolder:
    name: str
    folder: Path

    @property
    def key(self) -> str:
        return str(self.folder)

    def index(self) -> dict[str, Any]:
        data = json.loads((self.folder / INDEX_FILE).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}

    def size(self) -> int:
        return sum(p.stat().st_size for p in self.folder.rglob("*") if p.is_file())


def diffusers_folder(models_folder: str | None) -> Path:
    return models_subfolder(models_folder, "diffusers_models")


def list_pipelines(folder: Path) -> list[PipelineFolder]:
    return [PipelineFolder(sub.name, sub) for sub in marked_subfolders(folder, INDEX_FILE)]


def find_pipeline(folder: Path, name: str | None) -> PipelineFolder:
    """The pipeline folder ``name`` (or the first one when None); 400 on escaping names, 404 when unknown."""
    if not name:
        found = list_pipelines(folder)
        if not found:
            raise UnavailableError(f"no Diffusers model installed: put save_pretrained folders in {folder}")
        return found[0]
    if "/" in name or "\\" in name:
        raise BadRequestError(f"model name '{name}' is not allowed: use a folder name from {folder.name}/, not a path")
    target = marked_subfolder(folder, name, INDEX_FILE)
    if target is not None:
        return PipelineFolder(name, target)
    known = ", ".join(p.name for p in list_pipelines(folder)) or "none"
    raise NotFoundError(f"Diffusers model '{name}' not found (available: {known})")
