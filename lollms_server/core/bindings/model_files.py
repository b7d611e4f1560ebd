"""Where local bindings find their model files: a sub-folder of the configured models folder."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from lollms_server.core.errors import BadRequestError, NotFoundError, UnavailableError
from lollms_server.core.paths import (
    PROJECT_ROOT,
    PathEscapeError,
    resolve_config_path,
    resolve_inside,
    stays_inside,
)


class Named(Protocol):
    @property
    def name(self) -> str: ...


N = TypeVar("N", bound=Named)


def models_subfolder(models_folder: str | None, kind: str) -> Path:
    """``<models_folder>/<kind>``; models_folder is relative to the project and defaults to ``models``."""
    base = resolve_config_path(models_folder, PROJECT_ROOT) or PROJECT_ROOT / "models"
    return base / kind


def path_inside(folder: Path, relative: str, what: str) -> Path:
    """``folder/relative`` resolved; 400 ("<what> is not allowed") when it would leave the folder."""
    try:
        return resolve_inside(folder, relative)
    except PathEscapeError as exc:
        raise BadRequestError(f"{what} is not allowed: {exc}") from None


def marked_subfolders(folder: Path, marker: str) -> list[Path]:
    """The visible sub-folders of ``folder`` that hold a ``marker`` file, sorted by name (none leaving it)."""
    if not folder.is_dir():
        return []
    return [sub for sub in sorted(folder.iterdir())
            if sub.is_dir() and not sub.name.startswith(".") and (sub / marker).is_file()
            and stays_inside(folder, sub / marker)]


def marked_subfolder(folder: Path, name: str, marker: str) -> Path | None:
    """The sub-folder ``name`` when it holds a ``marker`` file, else None; 400 when ``name`` leaves the folder."""
    target = path_inside(folder, name, f"model name '{name}'")
    found = target != folder.resolve() and (target / marker).is_file() and stays_inside(folder, target / marker)
    return target if found else None


def shipped_first(shipped: N | None, local: list[N]) -> list[N]:
    """The shipped model followed by the local ones; a local model of the same name hides the shipped one."""
    local_names = {m.name for m in local}
    return ([shipped] if shipped and shipped.name not in local_names else []) + local


@dataclass(frozen=True)
class ModelFolder:
    """A model stored as one folder (save_pretrained layout) recognised by a marker file."""

    name: str
    folder: Path

    @property
    def key(self) -> str:
        return str(self.folder)

    def read_json(self, file: str) -> dict[str, Any]:
        data = json.loads((self.folder / file).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}

    def size(self) -> int:
        return sum(p.stat().st_size for p in self.folder.rglob("*") if p.is_file())


def list_model_folders(folder: Path, marker: str) -> list[ModelFolder]:
    return [ModelFolder(sub.name, sub) for sub in marked_subfolders(folder, marker)]


def find_model_folder(folder: Path, name: str | None, marker: str, what: str) -> ModelFolder:
    """The model folder ``name`` (the first one when None); 400 on escaping names, 404 when unknown.

    ``what`` names the kind of model in messages ("Diffusers model", "MusicGen model"…).
    """
    if not name:
        found = list_model_folders(folder, marker)
        if not found:
            raise UnavailableError(f"no {what} installed: put save_pretrained folders in {folder}")
        return found[0]
    if "/" in name or "\\" in name:
        raise BadRequestError(f"model name '{name}' is not allowed: use a folder name from {folder.name}/, not a path")
    target = marked_subfolder(folder, name, marker)
    if target is not None:
        return ModelFolder(name, target)
    known = ", ".join(p.name for p in list_model_folders(folder, marker)) or "none"
    raise NotFoundError(f"{what} '{name}' not found (available: {known})")
