"""Valves and scopes of filters and extensions, in one configuration file beside the main config.

The file (``extensions.settings_file``, default ``plugin_settings.yaml``) goes through the same guarded
loader as every other config file: strict on load, atomic on save, whole-file Fernet encryption when the
server has an encryption key. Layout::

    filters:
      <filter name>: {enabled, global, personalities: [], bindings: [], valves: {}, user_valves: {<key id>: {}}}
    extensions:
      <extension name>: {valves: {}}

Secret valve fields are masked in every API answer (see ``valves.py``); on disk they are only in clear
when no encryption key is configured (the server warns at start-up then).
"""

from __future__ import annotations

import asyncio
import copy
import logging
from pathlib import Path
from typing import Any, Mapping

from lollms_server.core.guarded_config import load_guarded, looks_encrypted, save_guarded_atomic

log = logging.getLogger("lollms_server.plugins")

SETTINGS_SCHEMA: dict[str, Any] = {
    "__version__": "1.0.0",
    "filters": {"type": "section", "help": "Filter name -> {enabled, global, personalities, bindings, valves, user_valves}.",
                "schema": {}},
    "extensions": {"type": "section", "help": "Extension name -> {valves}.", "schema": {}},
}


class PluginSettings:
    """In-memory copy of the settings file; ``save`` writes it atomically off the event loop."""

    def __init__(self, path: Path, key: bytes | None) -> None:
        self.path = path
        self.key = key
        self.data: dict[str, dict[str, Any]] = {"filters": {}, "extensions": {}}
        self._lock = asyncio.Lock()

    @property
    def encrypted(self) -> bool:
        return self.key is not None

    def load(self) -> None:
        """Read the file if it exists (a broken file stops start-up with a message naming it)."""
        if not self.path.is_file():
            return
        loaded = load_guarded(self.path, SETTINGS_SCHEMA, self.key)
        for section in ("filters", "extensions"):
            values = loaded.values.get(section) or {}
            self.data[section] = {str(k): dict(v) for k, v in values.items() if isinstance(v, dict)}
        if self.key is None and not looks_encrypted(self.path):
            log.warning("%s is stored in clear: set an encryption key to protect secret valves", self.path.name)

    def entry(self, section: str, name: str) -> dict[str, Any]:
        return copy.deepcopy(self.data[section].get(name) or {})

    def view(self, section: str, name: str) -> Mapping[str, Any]:
        """The stored entry itself, for reading only: ``update`` replaces ``data`` and never changes it in place,
        so the per-request path reads it without a deep copy."""
        return self.data[section].get(name) or {}

    async def update(self, section: str, name: str, entry: dict[str, Any]) -> None:
        async with self._lock:
            new = copy.deepcopy(self.data)
            new[section][name] = copy.deepcopy(entry)
            await asyncio.to_thread(save_guarded_atomic, self.path, SETTINGS_SCHEMA, new, self.key, backup=False)
            self.data = new
