"""Finding extension code: entry points of installed packages, and folders or files imported as modules.

Bindings, personalities, functions (and any other kind of extension) come from three places: the zoo
shipped with the server, packages installed with pip that declare an entry point, and the operator's
personal folders. This module only finds and imports code; each manager decides what a loaded object
means. Nothing here swallows an error: every failure is returned or recorded under a name, so the
caller can show it through the API (``load_errors``).

Entry-point groups (declare them in your package's ``pyproject.toml``)::

    [project.entry-points."lollms_server.bindings"]
    my_binding = "my_package.my_binding"          # a module/package whose folder holds binding_card.yaml
    [project.entry-points."lollms_server.personalities"]
    my_personas = "my_package.personas"           # a package folder holding personality folders
    [project.entry-points."lollms_server.functions"]
    my_tools = "my_package.tools"                 # a module: its public async functions -> my_tools.<name>
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import inspect
import os
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeVar

BINDINGS_GROUP = "lollms_server.bindings"
PERSONALITIES_GROUP = "lollms_server.personalities"
FUNCTIONS_GROUP = "lollms_server.functions"

T = TypeVar("T")


class PluginLoadError(Exception):
    """Extension code could not be found or imported; the message says which and why."""


@dataclass
class LoadErrors:
    """Named load failures of one kind of extension (shown as ``load_errors`` by the API)."""

    errors: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, message: str) -> None:
        self.errors[name] = message

    def clear(self, name: str) -> None:
        self.errors.pop(name, None)

    def attempt(self, name: str, fn: Callable[[], T]) -> T | None:
        """Run ``fn``; on any exception record ``name: <Type>: <message>`` and return None."""
        try:
            result = fn()
        except Exception as exc:  # one broken extension never stops the others
            self.errors[name] = describe(exc)
            return None
        self.errors.pop(name, None)
        return result


def describe(exc: BaseException) -> str:
    """``Type: message`` of an exception (PluginLoadError messages stand alone)."""
    if isinstance(exc, PluginLoadError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


# ---- entry points ------------------------------------------------------------------------------
_SCAN: tuple[tuple[tuple[str, float], ...], list[importlib.metadata.EntryPoint]] | None = None


def _path_state() -> tuple[tuple[str, float], ...]:
    """sys.path with each folder's modification time: changes when a package is installed or removed."""
    state = []
    for entry in sys.path:
        try:
            state.append((entry, os.stat(entry or ".").st_mtime))
        except OSError:
            state.append((entry, -1.0))
    return tuple(state)


def _all_entry_points() -> list[importlib.metadata.EntryPoint]:
    """Every installed entry point (in sys.path order), read once per state of sys.path: one metadata
    scan for all groups."""
    global _SCAN
    state = _path_state()
    if _SCAN is None or _SCAN[0] != state:
        _SCAN = (state, [ep for dist in importlib.metadata.distributions() for ep in dist.entry_points])
    return _SCAN[1]


def entry_points_of(group: str) -> list[importlib.metadata.EntryPoint]:
    """Entry points of ``group`` in the installed distributions, one per name (first found), by name."""
    seen: dict[str, importlib.metadata.EntryPoint] = {}
    for ep in _all_entry_points():
        if ep.group == group:
            seen.setdefault(ep.name, ep)
    return [seen[n] for n in sorted(seen)]


def entry_point_label(ep: importlib.metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    where = f" (package {dist.name})" if dist is not None and getattr(dist, "name", None) else ""
    return f"entry point '{ep.name} = {ep.value}' of group '{ep.group}'{where}"


def load_entry_point(ep: importlib.metadata.EntryPoint) -> Any:
    """The object an entry point names; PluginLoadError (naming the entry point) if it cannot load."""
    try:
        return ep.load()
    except Exception as exc:
        raise PluginLoadError(f"{entry_point_label(ep)} failed to import: {describe(exc)}") from exc


def object_folder(obj: Any) -> Path:
    """The folder an entry-point object stands for.

    A package -> its folder; a module or a class -> the folder of its file; a ``str``/``Path`` -> that
    folder; a callable without arguments -> the folder it returns.
    """
    if isinstance(obj, (str, Path)):
        return Path(obj)
    if isinstance(obj, types.ModuleType):
        paths = list(getattr(obj, "__path__", []) or [])
        if paths:
            return Path(paths[0])
        if obj.__file__:
            return Path(obj.__file__).parent
        raise PluginLoadError(f"module '{obj.__name__}' has no file or folder")
    if inspect.isclass(obj):
        file = inspect.getfile(obj)
        return Path(file).parent
    if callable(obj):
        return object_folder(obj())
    raise PluginLoadError(f"cannot tell which folder {obj!r} stands for (give a module, a class or a path)")


# ---- folders and files -------------------------------------------------------------------------
def ensure_namespace(name: str) -> None:
    """Create an empty package ``name`` in ``sys.modules`` (parent of imported folders)."""
    if name not in sys.modules:
        pkg = types.ModuleType(name)
        pkg.__path__ = []  # type: ignore[attr-defined]
        sys.modules[name] = pkg


def import_folder(folder: Path, package: str) -> types.ModuleType:
    """Import ``folder`` (with ``__init__.py``) as the package ``<package>.<folder name>``.

    Relative imports inside the folder work. On failure nothing stays in ``sys.modules`` and the
    exception propagates (use ``LoadErrors.attempt`` to collect it).
    """
    ensure_namespace(package)
    mod_name = f"{package}.{folder.name}"
    return _exec(mod_name, folder / "__init__.py", [str(folder)])


def import_file(file: Path, module_name: str) -> types.ModuleType:
    """Import one ``.py`` file as the module ``module_name`` (replacing a previous import of that name)."""
    return _exec(module_name, file, None)


def _exec(mod_name: str, file: Path, search: list[str] | None) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(mod_name, file, submodule_search_locations=search)
    if spec is None or spec.loader is None:
        raise PluginLoadError(f"cannot import {file}")
    module = importlib.util.module_from_spec(spec)
    previous = sys.modules.get(mod_name)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        if previous is not None:
            sys.modules[mod_name] = previous
        else:
            sys.modules.pop(mod_name, None)
        raise
    return module


def subfolders(base: Path) -> list[Path]:
    """Visible subfolders of ``base`` (no ``_x``/``.x``), sorted; empty when ``base`` is not a folder."""
    if not base.is_dir():
        return []
    return sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))
