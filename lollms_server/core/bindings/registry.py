"""Discovery of binding types: the zoo, installed packages (entry points) and the personal folder.

A binding type is a folder with ``__init__.py`` + ``binding_card.yaml``. Zoo types are imported as
``lollms_zoo_bindings.<folder>``, personal ones as ``lollms_personal_bindings.<folder>``; a package
installed with pip declares its binding in the entry-point group ``lollms_server.bindings`` (the entry
point's name is the type name, its value the module whose folder holds the card).

Later sources replace earlier ones by type name: zoo < entry points < personal (a personal type may
subclass the zoo one: ``zoo_module("dummy_binding").DummyBinding``). When a replacing type fails to load,
the type it would have replaced is withdrawn too, so its instances fail visibly instead of silently
running other code. Two folders of one source declaring the same type name is an error for that type.

A folder's card is read at discovery; its Python module is imported when the type is first needed
(``get(name)``: the binding instances of the configuration, at start-up) or listed (``types``,
``load_errors``: every type is imported then, so a listing shows each type that imports and why another
does not). Start-up thus imports only the modules of the types its instances use; a broken module of a
type an instance uses is reported at start-up, that of an unused type when the types are first listed.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import logging
import sys
import threading
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lollms_server.core import plugins
from lollms_server.core.bindings.base import Binding, is_spec_style
from lollms_server.core.bindings.capabilities import CapabilityMismatch, reconcile
from lollms_server.core.bindings.card import BindingCard, CardError, load_card

log = logging.getLogger("lollms_server.bindings")

ZOO_PACKAGE = "lollms_zoo_bindings"
PERSONAL_PACKAGE = "lollms_personal_bindings"
EXTENSION_PACKAGE = "lollms_extension_bindings"
CARD_FILE = "binding_card.yaml"


@dataclass
class BindingType:
    card: BindingCard
    cls: type[Binding]
    folder: Path
    source: str  # "zoo", "entry_point" or "personal"
    style: str = "typed"  # "typed" (generate(task)) or "spec" (generate(prompt, params, request_info, ...))


class _Deferred:
    """A folder binding type whose card is read and whose module is not imported yet."""

    __slots__ = ("card", "folder", "source", "package", "replaces")

    def __init__(self, card: BindingCard, folder: Path, source: str, package: str, replaces: str | None) -> None:
        self.card = card
        self.folder = folder
        self.source = source
        self.package = package
        self.replaces = replaces  # the source of the type of the same name it replaced, if any


def zoo_module(folder_name: str) -> types.ModuleType:
    """The imported zoo binding module ``folder_name`` (for personal bindings that extend it)."""
    name = f"{ZOO_PACKAGE}.{folder_name}"
    if name in sys.modules:
        return sys.modules[name]
    from lollms_server.core.paths import ZOOS_DIR

    return plugins.import_folder(ZOOS_DIR / "bindings" / folder_name, ZOO_PACKAGE)


def find_binding_class(module: types.ModuleType, type_name: str) -> type[Binding]:
    """The concrete Binding subclass of ``module`` whose ``binding_type_name`` is ``type_name``."""
    candidates = [
        obj for _, obj in inspect.getmembers(module, inspect.isclass)
        if issubclass(obj, Binding) and not inspect.isabstract(obj) and getattr(obj, "binding_type_name", "") == type_name
    ]
    own = [c for c in candidates if c.__module__ == module.__name__]
    chosen = own or candidates
    if not chosen:
        raise ImportError(f"no concrete Binding subclass with binding_type_name = '{type_name}' in {module.__file__}")
    return chosen[-1]


def _card_name_guess(card_path: Path, fallback: str) -> str:
    """The type name a broken card or folder was meant to declare (to withdraw what it replaces)."""
    try:
        import yaml

        raw = yaml.safe_load(card_path.read_text(encoding="utf-8"))
        if isinstance(raw, dict) and isinstance(raw.get("type_name"), str):
            return str(raw["type_name"])
    except Exception:  # noqa: BLE001 - only a guess for the error report
        pass
    return fallback


class BindingRegistry:
    """All discovered binding types, plus why any failed to load."""

    def __init__(self) -> None:
        self._types: dict[str, BindingType] = {}
        self._load_errors: dict[str, str] = {}
        self._deferred: dict[str, _Deferred] = {}  # folder types not imported yet (see the module's docstring)
        self._importing = threading.RLock()  # a listing (in a worker thread) and a lookup may import at once

    @property
    def types(self) -> dict[str, BindingType]:
        """Every binding type that loaded (imports the modules of the types not imported yet)."""
        self.import_all()
        return self._types

    @property
    def load_errors(self) -> dict[str, str]:
        """Why each type that did not load failed (imports the modules of the types not imported yet)."""
        self.import_all()
        return self._load_errors

    def get(self, name: str) -> BindingType | None:
        """The binding type ``name`` (its module imported now if it was not yet), None when it did not load."""
        if name in self._deferred:
            with self._importing:
                entry = self._deferred.pop(name, None)
                if entry is not None:
                    self._import(entry)
        return self._types.get(name)

    def error_of(self, name: str) -> str | None:
        """Why the type ``name`` did not load (after ``get(name)``), None when nothing was recorded."""
        return self._load_errors.get(name)

    def known(self) -> int:
        """How many binding types were found (imported or not)."""
        return len(self._types) + len(self._deferred)

    def has_deferred(self) -> bool:
        """Whether some found type's module is not imported yet."""
        return bool(self._deferred)

    def import_all(self) -> None:
        if not self._deferred:
            return
        with self._importing:
            while self._deferred:
                self._import(self._deferred.pop(next(iter(self._deferred))))

    def discover(self, folders: list[tuple[Path, str]], *, entry_points: bool = True) -> None:
        """Scan ``(folder, source)`` pairs; installed entry points come after the zoo, before personal."""
        ordered = sorted(folders, key=lambda f: 0 if f[1] == "zoo" else 2)
        done_eps = not entry_points
        for base, source in ordered:
            if source != "zoo" and not done_eps:
                self.discover_entry_points()
                done_eps = True
            self._discover_folder(base, source)
        if not done_eps:
            self.discover_entry_points()

    def _discover_folder(self, base: Path, source: str) -> None:
        package = ZOO_PACKAGE if source == "zoo" else PERSONAL_PACKAGE
        seen_here: dict[str, Path] = {}
        for folder in plugins.subfolders(base):
            card_path = folder / CARD_FILE
            if not (folder / "__init__.py").is_file() or not card_path.is_file():
                continue
            try:
                card = load_card(card_path)
            except CardError as exc:
                self._failed(_card_name_guess(card_path, folder.name), source, str(exc))
                continue
            name = card.type_name
            if name in seen_here:
                self._failed(name, source, f"duplicate binding type '{name}' in {seen_here[name]} and {folder}")
                continue
            seen_here[name] = folder
            replaces = self._withdraw(name)
            if replaces is not None:
                log.info("%s binding type '%s' replaces the %s one", source, name, replaces)
            self._load_errors.pop(name, None)
            self._deferred[name] = _Deferred(card, folder, source, package, replaces)

    def _import(self, entry: _Deferred) -> None:
        name = entry.card.type_name
        try:
            cls = find_binding_class(plugins.import_folder(entry.folder, entry.package), name)
        except Exception as exc:  # a broken binding never stops the server
            self._failed(name, entry.source, f"{entry.source} binding '{name}' failed to import: {plugins.describe(exc)}",
                         entry.replaces)
            return
        self._register(BindingType(card=entry.card, cls=cls, folder=entry.folder, source=entry.source), entry.replaces)

    def discover_entry_points(self) -> None:
        for ep in plugins.entry_points_of(plugins.BINDINGS_GROUP):
            try:
                btype = self._from_entry_point(ep)
            except Exception as exc:
                self._failed(ep.name, "entry_point", plugins.describe(exc))
                continue
            self._register(btype)

    def _from_entry_point(self, ep: importlib.metadata.EntryPoint) -> BindingType:
        obj: Any = plugins.load_entry_point(ep)
        folder = plugins.object_folder(obj)
        card_path = folder / CARD_FILE
        if not card_path.is_file():
            raise plugins.PluginLoadError(
                f"{plugins.entry_point_label(ep)}: no {CARD_FILE} in {folder} (ship it as package data beside the module)")
        try:
            card = load_card(card_path)
        except CardError as exc:
            raise plugins.PluginLoadError(f"{plugins.entry_point_label(ep)}: {exc}") from exc
        if card.type_name != ep.name:
            raise plugins.PluginLoadError(
                f"{plugins.entry_point_label(ep)}: the entry point name must equal the card's type_name '{card.type_name}'")
        if inspect.isclass(obj) and issubclass(obj, Binding):
            if getattr(obj, "binding_type_name", "") != card.type_name:
                raise plugins.PluginLoadError(
                    f"{plugins.entry_point_label(ep)}: class {obj.__name__} has binding_type_name "
                    f"'{getattr(obj, 'binding_type_name', '')}', the card says '{card.type_name}'")
            cls: type[Binding] = obj
        elif isinstance(obj, types.ModuleType):
            cls = find_binding_class(obj, card.type_name)
        else:
            raise plugins.PluginLoadError(f"{plugins.entry_point_label(ep)}: must name a module or a Binding subclass")
        return BindingType(card=card, cls=cls, folder=folder, source="entry_point")

    def add_folder(self, folder: Path, owner: str) -> str:
        """One binding type folder an extension brings; raises (naming both owners) when its name is taken."""
        card = load_card(folder / CARD_FILE)
        name = card.type_name
        taken = self._types.get(name) or self._deferred.get(name)
        if taken is not None:
            raise ValueError(f"binding type '{name}' is registered twice: by the {taken.source} "
                             f"binding folder and by {owner}")
        cls = find_binding_class(plugins.import_folder(folder, EXTENSION_PACKAGE), name)
        self._register(BindingType(card=card, cls=cls, folder=folder, source=owner))
        if name in self._load_errors:
            raise ValueError(self._load_errors.pop(name))
        return name

    def remove(self, name: str) -> None:
        """Forget the type ``name`` (what a failed extension install registered)."""
        self._types.pop(name, None)
        self._deferred.pop(name, None)

    def _register(self, btype: BindingType, replaced: str | None = None) -> None:
        name = btype.card.type_name
        previous = self._withdraw(name) or replaced
        try:
            reconcile(btype.card, btype.cls)
        except CapabilityMismatch as exc:
            self._failed(name, btype.source, str(exc), previous)
            return
        btype.style = "spec" if is_spec_style(btype.cls) else "typed"
        btype.cls.generation_parameters = tuple(btype.card.parameters)
        if previous is not None and replaced is None:
            log.info("%s binding type '%s' replaces the %s one", btype.source, name, previous)
        self._load_errors.pop(name, None)
        self._types[name] = btype

    def _withdraw(self, name: str) -> str | None:
        """Drop the type ``name`` found so far (imported or not); the source it came from, if any."""
        replaced: BindingType | _Deferred | None = self._types.pop(name, None) or self._deferred.pop(name, None)
        return replaced.source if replaced is not None else None

    def _failed(self, name: str, source: str, message: str, replaced: str | None = None) -> None:
        replaced = self._withdraw(name) or replaced
        if replaced is not None:
            message += f" (the {replaced} type of the same name is not used instead)"
        self._load_errors[name] = message
        log.error("binding type '%s' unavailable: %s", name, message)
