"""The wizard's part for filters and extensions: ``--set filter.NAME.…`` and ``--set extension.NAME.FIELD=…``.

Settings go to the same file the server reads (``extensions.settings_file``), validated by each plugin's own
Valves model and encrypted with the configuration's key when there is one::

    --set filter.pii_redaction.enabled=true
    --set filter.pii_redaction.applies_globally=false  --set filter.pii_redaction.bindings=local,remote
    --set filter.word_limit.valves.max_prompt_words=500
    --set extension.web_fetch.enabled=true
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from lollms_server.core.extensions import ExtensionManager
from lollms_server.core.filters import FilterManager
from lollms_server.core.paths import ZOOS_DIR, resolve_config_path, resolve_project_path
from lollms_server.core.plugin_settings import PluginSettings
from lollms_server.core.valves import ValvesError, apply_update, plain

FILTER_PREFIX, EXTENSION_PREFIX = "filter", "extension"
_SCOPE_KEYS = {"enabled": "enabled", "applies_globally": "global", "personalities": "personalities", "bindings": "bindings"}


class PluginSettingError(Exception):
    pass


def _value(text: str) -> Any:
    """JSON when it parses (numbers, true/false, lists, null), else the text itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


class PluginSettingsDraft:
    """Pending changes to the plugin settings of one configuration folder; ``save`` writes them."""

    def __init__(self, config_dir: Path, values: dict[str, Any], key: bytes | None) -> None:
        ext = values.get("extensions") or {}
        path = resolve_config_path(str(ext.get("settings_file") or "plugin_settings.yaml"), config_dir)
        assert path is not None
        self.settings = PluginSettings(path, key)
        self.settings.load()
        self._ext_cfg = ext
        self._filters: FilterManager | None = None
        self._valves_models: dict[str, type[BaseModel]] | None = None
        self.dirty = False

    def _sources(self, zoo: str, key: str) -> list[tuple[Path, str]]:
        personal = resolve_project_path(str(self._ext_cfg.get(key) or f"personal_{zoo}"))
        return [(ZOOS_DIR / zoo, "zoo")] + ([(personal, "personal")] if personal else [])

    def filters(self) -> FilterManager:
        if self._filters is None:
            self._filters = FilterManager(self._sources("filters", "filters_folder"), self.settings)
            self._filters.discover()
        return self._filters

    def extension_valves(self) -> dict[str, type[BaseModel]]:
        """Valves models of the extensions (their modules are imported; install() is not run)."""
        if self._valves_models is None:
            found: dict[str, type[BaseModel]] = {}
            manager = ExtensionManager(self._sources("extensions", "extensions_folder"), self.settings)
            for name, _source, loader in manager.candidates():
                try:
                    module, _ = loader()
                except Exception:  # a broken extension has no valves to set; the server reports it
                    continue
                model = getattr(module, "Valves", None)
                if isinstance(model, type) and issubclass(model, BaseModel):
                    found[name] = model
            self._valves_models = found
        return self._valves_models

    def apply(self, parts: list[str], text: str) -> None:
        kind = parts[0]
        if kind == FILTER_PREFIX:
            self._apply_filter(parts[1:], text)
        elif kind == EXTENSION_PREFIX:
            self._apply_extension(parts[1:], text)
        else:  # pragma: no cover - the caller dispatches on the prefix
            raise PluginSettingError(f"unknown prefix '{kind}'")
        self.dirty = True

    def _apply_filter(self, rest: list[str], text: str) -> None:
        usage = "filter.NAME.(enabled|applies_globally|personalities|bindings)=… or filter.NAME.valves.FIELD=…"
        if len(rest) < 2:
            raise PluginSettingError(f"expected {usage}")
        fm = self.filters()
        name = rest[0]
        if name not in fm.filters:
            raise PluginSettingError(f"filter.{name}: no such filter (found: {', '.join(sorted(fm.filters)) or 'none'})")
        entry = self.settings.entry("filters", name)
        if rest[1] == "valves" and len(rest) == 3:
            spec = fm.get(name)
            try:
                new = apply_update(spec.valves_model, fm.valves(name), {rest[2]: _value(text)}, where=f"filter.{name}.valves")
            except ValvesError as exc:
                raise PluginSettingError(str(exc)) from None
            fm.set_valves(name, new)
            entry["valves"] = plain(new)
        elif len(rest) == 2 and rest[1] in _SCOPE_KEYS:
            value: Any = _value(text)
            if rest[1] in ("personalities", "bindings"):
                value = [v.strip() for v in text.split(",") if v.strip()]
            elif not isinstance(value, bool):
                raise PluginSettingError(f"filter.{name}.{rest[1]}: expected true or false")
            entry[_SCOPE_KEYS[rest[1]]] = value
        else:
            raise PluginSettingError(f"expected {usage}")
        self.settings.data["filters"][name] = entry

    def _apply_extension(self, rest: list[str], text: str) -> None:
        if len(rest) != 2:
            raise PluginSettingError("expected extension.NAME.FIELD=value (a field of the extension's Valves)")
        name, field = rest
        models = self.extension_valves()
        if name not in models:
            raise PluginSettingError(f"extension.{name}: no extension with valves of that name (found: {', '.join(sorted(models)) or 'none'})")
        entry = self.settings.entry("extensions", name)
        try:
            current = models[name].model_validate(entry.get("valves") or {})
            new = apply_update(models[name], current, {field: _value(text)}, where=f"extension.{name}")
        except (ValvesError, ValueError) as exc:
            raise PluginSettingError(str(exc)) from None
        entry["valves"] = plain(new)
        self.settings.data["extensions"][name] = entry

    def save(self) -> Path | None:
        if not self.dirty:
            return None
        from lollms_server.core.guarded_config import save_guarded_atomic
        from lollms_server.core.plugin_settings import SETTINGS_SCHEMA

        save_guarded_atomic(self.settings.path, SETTINGS_SCHEMA, self.settings.data, self.settings.key, backup=False)
        self.dirty = False
        return self.settings.path
