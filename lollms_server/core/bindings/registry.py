"""Discovery of binding types: folders with ``__init__.py`` + ``binding_card.yaml``.

Zoo types are imported as ``lollms_zoo_bindings.<folder>``, personal ones as
``lollms_personal_bindings.<folder>``. A personal type with the same ``type_name`` as a zoo type
replaces it (and may subclass it: ``zoo_module("dummy_binding").DummyBinding``). Two folders of the
same source declaring one type name is a start-up error for that type, reported in ``load_errors``.
"""

from __future__ import annotations

import importlib.util
import inspect
import logging
import sys
import types
from dataclasses import dataclass
from pathlib import Path

from lollms_server.core.bindings.base import Binding
from lollms_server.core.bindings.card import BindingCard, CardError, load_card

log = logging.getLogger("lollms_server.bindings")

ZOO_PACKAGE = "lollms_zoo_bindings"
PERSONAL_PACKAGE = "lollms_personal_bindings"


@dataclass
class BindingType:
    card: BindingCard
    cls: type[Binding]
    folder: Path
    source: str  # "zoo" or "personal"


def _ensure_namespace(name: str) -> None:
    if name not in sys.modules:
        pkg = types.ModuleType(name)
        pkg.__path__ = []  # type: ignore[attr-defined]
        sys.modules[name] = pkg


def zoo_module(folder_name: str) -> types.ModuleType:
    """The imported zoo binding module ``folder_name`` (for personal bindings that extend it)."""
    name = f"{ZOO_PACKAGE}.{folder_name}"
    if name in sys.modules:
        return sys.modules[name]
    from lollms_server.core.paths import ZOOS_DIR

    return _import_folder(ZOOS_DIR / "bindings" / folder_name, ZOO_PACKAGE)


def _import_folder(folder: Path, package: str) -> types.ModuleType:
    _ensure_namespace(package)
    mod_name = f"{package}.{folder.name}"
    spec = importlib.util.spec_from_file_location(
        mod_name, folder / "__init__.py", submodule_search_locations=[str(folder)]
    )
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {folder}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(mod_name, None)
        raise
    return module


def _find_class(module: types.ModuleType, type_name: str) -> type[Binding]:
    candidates = [
        obj for _, obj in inspect.getmembers(module, inspect.isclass)
        if issubclass(obj, Binding) and not inspect.isabstract(obj) and getattr(obj, "binding_type_name", "") == type_name
    ]
    own = [c for c in candidates if c.__module__ == module.__name__]
    chosen = own or candidates
    if not chosen:
        raise ImportError(f"no concrete Binding subclass with binding_type_name = '{type_name}' in {module.__file__}")
    return chosen[-1]


class BindingRegistry:
    """All discovered binding types, plus why any failed to load."""

    def __init__(self) -> None:
        self.types: dict[str, BindingType] = {}
        self.load_errors: dict[str, str] = {}

    def discover(self, folders: list[tuple[Path, str]]) -> None:
        """Scan ``(folder, source)`` pairs in order; later sources override earlier ones by type name."""
        for base, source in folders:
            if not base.is_dir():
                continue
            package = ZOO_PACKAGE if source == "zoo" else PERSONAL_PACKAGE
            seen_here: dict[str, Path] = {}
            for folder in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))):
                card_path = folder / "binding_card.yaml"
                if not (folder / "__init__.py").is_file() or not card_path.is_file():
                    continue
                self._register_folder(folder, card_path, source, package, seen_here)

    def _register_folder(
        self, folder: Path, card_path: Path, source: str, package: str, seen_here: dict[str, Path]
    ) -> None:
        try:
            card = load_card(card_path)
        except CardError as exc:
            self.load_errors[folder.name] = str(exc)
            log.error("binding card rejected: %s", exc)
            return
        name = card.type_name
        if name in seen_here:
            self.load_errors[name] = f"duplicate binding type '{name}' in {seen_here[name]} and {folder}"
            self.types.pop(name, None)
            log.error(self.load_errors[name])
            return
        seen_here[name] = folder
        try:
            module = _import_folder(folder, package)
            cls = _find_class(module, name)
        except Exception as exc:  # a broken binding never stops the server
            self.load_errors[name] = f"{source} binding '{name}' failed to import: {type(exc).__name__}: {exc}"
            log.error(self.load_errors[name])
            return
        if name in self.types:
            log.info("personal binding type '%s' overrides the zoo one", name)
        self.load_errors.pop(name, None)
        self.types[name] = BindingType(card=card, cls=cls, folder=folder, source=source)
