"""Extensions: code that plugs routes, static UI, tools, filters and bindings into the server.

An extension is a folder with ``__init__.py`` in ``zoos/extensions/`` or the personal extensions folder,
or a module an installed package declares in the entry-point group ``lollms_server.extensions``. It
defines ``install(ctx)`` (run once at start-up, before binding instances load) and optionally
``async start(ctx)`` / ``async stop(ctx)``, a ``Valves`` pydantic model, ``__version__`` and a docstring.

Through ``ctx`` (an ``ExtensionContext``) it registers:

- routes under ``/ext/<name>/`` (``ctx.add_route``, ``ctx.get``, ``ctx.post``), authenticated like the API
  unless registered with ``public=True``;
- static files (``ctx.add_static("ui")`` -> ``/ext/<name>/ui/...``, public) and a UI module the web UI
  imports (``ctx.ui_module = "ui/index.js"``);
- tools (``ctx.add_tool(fn)``: name, description and JSON schema from the signature and docstring; the
  tool loop calls them as ``<extension>.<function>``);
- filters (``ctx.add_filter(obj)``) and binding types (``ctx.add_binding(folder)``);
- and it calls models through ``ctx.llm`` (see ``llm_access.py``).

A name registered twice (extension, tool, filter, route) is refused at start-up with a message naming
both owners; a broken extension is listed with its error in ``GET /api/v1/list_extensions`` and never
stops the server.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from pydantic import BaseModel

from lollms_server.core.llm_access import LLMAccess
from lollms_server.core.plugin_settings import PluginSettings
from lollms_server.core.plugins import (
    LoadErrors, describe, entry_points_of, import_folder, load_entry_point, subfolders,
)
from lollms_server.core.valves import build

if TYPE_CHECKING:
    from lollms_server.core.services import Services

log = logging.getLogger("lollms_server.extensions")
EXTENSIONS_GROUP = "lollms_server.extensions"
ZOO_PACKAGE = "lollms_zoo_extensions"
PERSONAL_PACKAGE = "lollms_personal_extensions"


@dataclass
class RouteSpec:
    path: str
    endpoint: Callable[..., Any]
    methods: list[str]
    public: bool
    options: dict[str, Any]


@dataclass
class ExtensionContext:
    """What an extension's ``install(ctx)`` sees. Everything it registers is recorded for listing."""

    name: str
    path: Path | None
    manager: "ExtensionManager"
    valves_model: type[BaseModel] | None = None
    ui_module: str | None = None
    routes: list[RouteSpec] = field(default_factory=list)
    statics: dict[str, Path] = field(default_factory=dict)
    tools: list[str] = field(default_factory=list)
    filters: list[str] = field(default_factory=list)
    bindings: list[str] = field(default_factory=list)
    llm: LLMAccess = field(init=False)
    log: logging.Logger = field(init=False)

    def __post_init__(self) -> None:
        self.llm = LLMAccess(self.manager.require_services, self.name)
        self.log = logging.getLogger(f"lollms_server.ext.{self.name}")

    # ---- HTTP ------------------------------------------------------------------------------------
    def add_route(self, path: str, endpoint: Callable[..., Any], *, methods: Sequence[str] = ("GET",),
                  public: bool = False, **options: Any) -> None:
        """``endpoint`` (a FastAPI-style function) at ``/ext/<name>/<path>``."""
        clean = "/" + path.strip("/")
        for m in methods:
            for r in self.routes:
                if r.path == clean and m.upper() in r.methods:
                    raise ValueError(f"extension '{self.name}' registers {m.upper()} /ext/{self.name}{clean} twice")
        self.routes.append(RouteSpec(clean, endpoint, [m.upper() for m in methods], public, options))

    def get(self, path: str, endpoint: Callable[..., Any], **kw: Any) -> None:
        self.add_route(path, endpoint, methods=("GET",), **kw)

    def post(self, path: str, endpoint: Callable[..., Any], **kw: Any) -> None:
        self.add_route(path, endpoint, methods=("POST",), **kw)

    def add_static(self, folder: str = "ui", url_path: str | None = None) -> None:
        """Serve ``<extension folder>/<folder>`` at ``/ext/<name>/<url_path or folder>/`` (no auth: no secrets there)."""
        if self.path is None:
            raise ValueError("add_static needs an extension that lives in a folder")
        base = (self.path / folder).resolve()
        if self.path.resolve() not in base.parents or not base.is_dir():
            raise ValueError(f"static folder '{folder}' must be an existing folder inside the extension")
        self.statics["/" + (url_path or folder).strip("/")] = base

    # ---- registries ------------------------------------------------------------------------------
    def add_tool(self, fn: Callable[..., Any], name: str | None = None) -> str:
        """Register ``fn`` as the tool ``<extension>.<name>``; returns the full name."""
        full = f"{self.name}.{name or fn.__name__}"
        self.manager.require_functions().register(full, fn, owner=f"extension '{self.name}'")
        self.tools.append(full)
        return full

    def add_filter(self, obj: Any, name: str | None = None) -> str:
        spec = self.manager.require_filters().register(obj, name=name, source=f"extension '{self.name}'")
        self.filters.append(spec.name)
        return spec.name

    def add_binding(self, folder: str | Path) -> str:
        """A binding type folder (``__init__.py`` + ``binding_card.yaml``) inside the extension."""
        base = Path(folder) if Path(folder).is_absolute() or self.path is None else self.path / folder
        type_name = str(self.manager.require_services_parts().registry.add_folder(base, f"extension '{self.name}'"))
        self.bindings.append(type_name)
        return type_name

    # ---- settings --------------------------------------------------------------------------------
    @property
    def valves(self) -> BaseModel | None:
        return self.manager.valves.get(self.name)

    @property
    def services(self) -> "Services":
        return self.manager.require_services()


@dataclass
class Extension:
    name: str
    source: str
    module: types.ModuleType
    ctx: ExtensionContext
    version: str | None
    description: str
    started: bool = False

    def info(self) -> dict[str, Any]:
        c = self.ctx
        return {
            "name": self.name, "version": self.version, "description": self.description, "source": self.source,
            "routes": [{"path": f"/ext/{self.name}{r.path}", "methods": r.methods, "public": r.public} for r in c.routes],
            "static": [f"/ext/{self.name}{p}/" for p in c.statics],
            "ui_module": f"/ext/{self.name}/{c.ui_module.lstrip('/')}" if c.ui_module else None,
            "tools": list(c.tools), "filters": list(c.filters), "bindings": list(c.bindings), "started": self.started,
        }


class ExtensionManager:
    def __init__(self, folders: list[tuple[Path, str]], settings: PluginSettings, disabled: Sequence[str] = ()) -> None:
        self.folders = folders
        self.settings = settings
        self.disabled = set(disabled)
        self.extensions: dict[str, Extension] = {}
        self.errors = LoadErrors()
        self.valves: dict[str, BaseModel] = {}
        self._services: "Services | None" = None
        self._parts: Any = None  # registry/functions/filters before Services exists

    @property
    def load_errors(self) -> dict[str, str]:
        return dict(self.errors.errors)

    # ---- wiring ----------------------------------------------------------------------------------
    def attach(self, parts: Any) -> None:
        """Managers extensions register into (binding registry, functions, filters) before start-up ends."""
        self._parts = parts

    def bind(self, services: "Services") -> None:
        self._services = services

    def require_services(self) -> "Services":
        if self._services is None:
            raise RuntimeError("the server is still starting: ctx.llm and ctx.services work from start() and requests on")
        return self._services

    def require_services_parts(self) -> Any:
        if self._parts is None:
            raise RuntimeError("extension registries are not ready")
        return self._parts

    def require_functions(self) -> Any:
        return self.require_services_parts().functions

    def require_filters(self) -> Any:
        return self.require_services_parts().filters

    # ---- discovery and install -------------------------------------------------------------------
    def candidates(self) -> list[tuple[str, str, Callable[[], tuple[types.ModuleType, Path | None]]]]:
        """(name, source, loader) for every extension found; a personal folder replaces a zoo one of that name."""
        found: dict[str, tuple[str, Callable[[], tuple[types.ModuleType, Path | None]]]] = {}
        out: list[tuple[str, str, Callable[[], tuple[types.ModuleType, Path | None]]]] = []
        for base, source in self.folders:
            package = ZOO_PACKAGE if source == "zoo" else PERSONAL_PACKAGE
            for folder in subfolders(base):
                if not (folder / "__init__.py").is_file():
                    continue
                found[folder.name] = (source, functools.partial(_load_folder, folder, package))
        for ep in entry_points_of(EXTENSIONS_GROUP):
            if ep.name in found:
                self.errors.add(ep.name, f"extension name '{ep.name}' is used twice: by the {found[ep.name][0]} folder "
                                         f"and by installed package entry point '{ep.value}'; rename one")
                found.pop(ep.name)
                continue

            def load(e: Any = ep) -> tuple[types.ModuleType, Path | None]:
                obj = load_entry_point(e)
                mod = obj if isinstance(obj, types.ModuleType) else inspect.getmodule(obj)
                if mod is None:
                    raise ValueError(f"entry point '{e.value}' is not a module")
                file = getattr(mod, "__file__", None)
                return mod, Path(file).parent if file else None

            found[ep.name] = ("package", load)
        for name in sorted(found):
            if name in self.disabled:
                continue
            out.append((name, found[name][0], found[name][1]))
        return out

    def install_all(self) -> None:
        for name, source, loader in self.candidates():
            self.errors.attempt(name, functools.partial(self._install, name, source, loader))
            if name in self.errors.errors:
                log.error("extension %s not loaded: %s", name, self.errors.errors[name])

    def _install(self, name: str, source: str, loader: Callable[[], tuple[types.ModuleType, Path | None]]) -> None:
        module, path = loader()
        install = getattr(module, "install", None)
        if not callable(install):
            raise ValueError(f"extension '{name}' has no install(ctx) function")
        valves_model = getattr(module, "Valves", None)
        if valves_model is not None:
            if not (inspect.isclass(valves_model) and issubclass(valves_model, BaseModel)):
                raise ValueError(f"extension '{name}': Valves must be a pydantic BaseModel class")
            self.valves[name] = build(valves_model, self.settings.entry("extensions", name).get("valves"),
                                      where=f"valves of extension '{name}'")
        ctx = ExtensionContext(name, path, self, valves_model)
        ctx.ui_module = getattr(module, "UI_MODULE", None)
        try:
            result = install(ctx)
            if inspect.isawaitable(result):
                raise ValueError("install(ctx) must be a plain function (use async start(ctx) for async work)")
        except BaseException:
            self._undo(ctx)
            self.valves.pop(name, None)
            raise
        doc = (inspect.getdoc(module) or "").strip().split("\n\n")[0]
        version = getattr(module, "__version__", None) or getattr(module, "VERSION", None)
        self.extensions[name] = Extension(name, source, module, ctx, str(version) if version else None, doc)

    def _undo(self, ctx: ExtensionContext) -> None:
        """Remove what a failed install registered, so a broken extension leaves nothing behind."""
        parts = self._parts
        if parts is None:
            return
        for tool in ctx.tools:
            parts.functions.functions.pop(tool, None)
        for f in ctx.filters:
            parts.filters.filters.pop(f, None)
        for b in ctx.bindings:
            parts.registry.remove(b)

    # ---- life cycle ------------------------------------------------------------------------------
    async def start_all(self) -> None:
        for ext in list(self.extensions.values()):
            start = getattr(ext.module, "start", None)
            if not callable(start):
                ext.started = True
                continue
            try:
                await _maybe_await(start(ext.ctx))
                ext.started = True
            except Exception as exc:  # a failing start marks the extension, the server goes on
                self.errors.add(ext.name, f"start failed: {describe(exc)}")
                log.error("extension %s failed to start: %s", ext.name, describe(exc))

    async def stop_all(self) -> None:
        for ext in reversed(list(self.extensions.values())):
            stop = getattr(ext.module, "stop", None)
            if ext.started and callable(stop):
                try:
                    await asyncio.wait_for(_maybe_await(stop(ext.ctx)), 10)
                except Exception as exc:
                    log.warning("extension %s did not stop cleanly: %s", ext.name, describe(exc))
            ext.started = False

    def get(self, name: str) -> Extension:
        ext = self.extensions.get(name)
        if ext is None:
            from lollms_server.core.errors import NotFoundError

            raise NotFoundError(f"extension '{name}' not found (loaded: {', '.join(sorted(self.extensions)) or 'none'})")
        return ext


def _load_folder(folder: Path, package: str) -> tuple[types.ModuleType, Path | None]:
    return import_folder(folder, package), folder


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


