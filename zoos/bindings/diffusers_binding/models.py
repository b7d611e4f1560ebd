"""Where Diffusers pipelines are: one save_pretrained folder each in <models_folder>/diffusers_models/."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lollms_server.core.errors import BadRequestError, NotFoundError, UnavailableError
from lollms_server.core.paths import PROJECT_ROOT, PathEscapeError, resolve_config_path, resolve_inside

INDEX_FILE = "model_index.json"


@dataclass(frozen=True)
class PipelineFolder:
    name: str
    folder: Path

    def index(self) -> dict[str, Any]:
        data = json.loads((self.folder / INDEX_FILE).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}

    def size(self) -> int:
        return sum(p.stat().st_size for p in self.folder.rglob("*") if p.is_file())


def diffusers_folder(models_folder: str | None) -> Path:
    base = resolve_config_path(models_folder, PROJECT_ROOT) or PROJECT_ROOT / "models"
    return base / "diffusers_models"


def list_pipelines(folder: Path) -> list[PipelineFolder]:
    if not folder.is_dir():
        return []
    return [PipelineFolder(sub.name, sub) for sub in sorted(folder.iterdir())
            if sub.is_dir() and not sub.name.startswith(".") and (sub / INDEX_FILE).is_file()]


def find_pipeline(folder: Path, name: str | None) -> PipelineFolder:
    """The pipeline folder ``name`` (or the first one when None); 400 on escaping names, 404 when unknown."""
    if not name:
        found = list_pipelines(folder)
        if not found:
            raise UnavailableError(f"no Diffusers model installed: put save_pretrained folders in {folder}")
        return found[0]
    if "/" in name or "\\" in name:
        raise BadRequestError(f"model name '{name}' is not allowed: use a folder name from {folder.name}/, not a path")
    try:
        target = resolve_inside(folder, name)
    except PathEscapeError as exc:
        raise BadRequestError(f"model name '{name}' is not allowed: {exc}") from None
    if target != folder.resolve() and (target / INDEX_FILE).is_file():
        return PipelineFolder(name, target)
    known = ", ".join(p.name for p in list_pipelines(folder)) or "none"
    raise NotFoundError(f"Diffusers model '{name}' not found (available: {known})")
