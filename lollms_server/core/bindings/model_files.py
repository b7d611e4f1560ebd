"""Where local bindings find their model files: a sub-folder of the configured models folder."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, TypeVar

from lollms_server.core.errors import BadRequestError
from lollms_server.core.paths import (
    PROJECT_ROOT,
    PathEscapeError,
    resolve_config_path,
    resolve_inside,
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
    """The visible sub-folders of ``folder`` that hold a ``marker`` file, sorted by name."""
    if not folder.is_dir():
        return []
    return [sub for sub in sorted(folder.iterdir())
            if sub.is_dir() and not sub.name.startswith(".") and (sub / marker).is_file()]


def marked_subfolder(folder: Path, name: str, marker: str) -> Path | None:
    """The sub-folder ``name`` when it holds a ``marker`` file, else None; 400 when ``name`` leaves the folder."""
    target = path_inside(folder, name, f"model name '{name}'")
    return target if target != folder.resolve() and (target / marker).is_file() else None


def shipped_first(shipped: N | None, local: list[N]) -> list[N]:
    """The shipped model followed by the local ones; a local model of the same name hides the shipped one."""
    local_names = {m.name for m in local}
    return ([shipped] if shipped and shipped.name not in local_names else []) + local
