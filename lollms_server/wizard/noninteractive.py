"""Wizard for scripts: --preset, --set section.key=value, --yes; nothing is asked."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from lollms_server.core.config_schema import MAIN_SCHEMA
from lollms_server.core.guarded_config import ConfigFileError
from lollms_server.wizard.draft import ConfigDraft, DraftError
from lollms_server.wizard.forms import parse_and_check
from lollms_server.wizard.plugin_settings import EXTENSION_PREFIX, FILTER_PREFIX, PluginSettingError, PluginSettingsDraft
from lollms_server.wizard.presets_flow import (
    DEFAULT_PRESET,
    apply_preset,
    available_presets,
)
from lollms_server.wizard.security import generate_encryption_key

INSTANCE_PREFIX = "instance"


class SettingError(Exception):
    """A --set argument that cannot be applied (message says what to fix)."""


def _sections() -> list[str]:
    return [k for k in MAIN_SCHEMA if k != "__version__"]


def apply_setting(draft: ConfigDraft, assignment: str, plugins: PluginSettingsDraft | None = None) -> None:
    """Apply one ``section.key=value`` (typed by the schema) to the draft."""
    if "=" not in assignment:
        raise SettingError(f"'{assignment}': expected section.key=value")
    dotted, text = assignment.split("=", 1)
    parts = [p for p in dotted.strip().split(".")]
    if len(parts) < 2 or not all(parts):
        raise SettingError(f"'{dotted}': expected section.key (sections: {', '.join(_sections())}, {INSTANCE_PREFIX}.NAME.field, "
                           f"{FILTER_PREFIX}.NAME.…, {EXTENSION_PREFIX}.NAME.field)")
    section = parts[0]
    if section in (FILTER_PREFIX, EXTENSION_PREFIX):
        if plugins is None:
            raise SettingError(f"'{dotted}': filter and extension settings need an existing configuration")
        try:
            plugins.apply(parts, text)
        except PluginSettingError as exc:
            raise SettingError(str(exc)) from None
        return
    if section == INSTANCE_PREFIX:
        _set_instance_field(draft, parts[1:], text)
        return
    definition = MAIN_SCHEMA.get(section)
    if section == "__version__" or not isinstance(definition, dict):
        raise SettingError(f"'{dotted}': unknown section '{section}' (known: {', '.join(_sections())}, {INSTANCE_PREFIX})")
    sub_schema: dict[str, Any] = definition.get("schema") or {}
    values = draft.values.setdefault(section, {})
    if section == "bindings_map":
        _set_binding_map(draft, parts[1:], text)
        return
    if section == "personalities_config":
        if len(parts) != 3 or parts[2] != "enabled":
            raise SettingError(f"'{dotted}': expected personalities_config.NAME.enabled=true|false")
        values[parts[1]] = {**(values.get(parts[1]) or {}), "enabled": _typed(dotted, {"type": "bool"}, text)}
        return
    if len(parts) != 2 or parts[1] not in sub_schema:
        raise SettingError(f"'{dotted}': unknown key (known in {section}: {', '.join(sub_schema)})")
    values[parts[1]] = _typed(dotted, sub_schema[parts[1]], text)


def _typed(dotted: str, definition: dict[str, Any], text: str) -> Any:
    try:
        return parse_and_check(dotted, definition, text)
    except ValueError as exc:
        raise SettingError(f"'{dotted}': {exc}") from None


def _set_binding_map(draft: ConfigDraft, rest: list[str], text: str) -> None:
    if len(rest) != 1:
        raise SettingError("expected bindings_map.INSTANCE=binding_type (empty value removes the instance)")
    name, type_name = rest[0], text.strip()
    try:
        if not type_name:
            draft.remove_instance(name)
        elif name in draft.instances and draft.instances[name].type_name == type_name:
            return
        else:
            draft.set_instance(name, type_name, {})
    except DraftError as exc:
        known = ", ".join(sorted(draft.registry.types))
        raise SettingError(f"bindings_map.{name}: {exc} (installed types: {known})") from None


def _set_instance_field(draft: ConfigDraft, rest: list[str], text: str) -> None:
    if len(rest) != 2:
        raise SettingError(f"expected {INSTANCE_PREFIX}.NAME.field=value")
    name, key = rest
    rec = draft.instances.get(name)
    if rec is None:
        raise SettingError(f"{INSTANCE_PREFIX}.{name}: no such instance (configured: {', '.join(sorted(draft.instances)) or 'none'})")
    if rec.locked:
        raise SettingError(f"{INSTANCE_PREFIX}.{name}: the instance file cannot be read (encrypted without its key?)")
    btype = draft.binding_type(rec.type_name)
    assert btype is not None
    schema = btype.card.instance_schema
    if key not in schema or key == "__version__":
        raise SettingError(f"{INSTANCE_PREFIX}.{name}.{key}: unknown field (known: {', '.join(k for k in schema if k != '__version__')})")
    value = _typed(f"{INSTANCE_PREFIX}.{name}.{key}", schema[key], text)
    try:
        draft.set_instance(name, rec.type_name, {**rec.values, key: value})
    except DraftError as exc:
        raise SettingError(str(exc)) from None


def list_presets(draft: ConfigDraft) -> int:
    for preset in available_presets(draft.registry):
        mark = " (default)" if preset.name == DEFAULT_PRESET else ""
        print(f"{preset.name}{mark}: {preset.description}")
    return 0


def run_noninteractive(args: argparse.Namespace, config_dir: Path) -> int:
    try:
        draft = ConfigDraft.open(config_dir, args.format)
    except DraftError as exc:
        print(f"lollms-server wizard: {exc}", file=sys.stderr)
        return 2
    if args.list_presets:
        return list_presets(draft)
    for note in draft.notes:
        print(f"note: {note}", file=sys.stderr)
    preset = args.preset or (None if draft.exists else DEFAULT_PRESET)
    try:
        if preset:
            added = apply_preset(draft, preset)
            print(f"preset '{preset}': instances {', '.join(added) or 'none'}")
        plugins = PluginSettingsDraft(draft.config_dir, draft.values, draft.encryption_key) if draft.exists else None
        for assignment in args.set or []:
            apply_setting(draft, assignment, plugins)
        if args.new_encryption_key_file:
            key = generate_encryption_key()
            draft.set_new_encryption_key(key, key_file=Path(args.new_encryption_key_file))
        for warning in draft.check():
            print(f"warning: {warning}", file=sys.stderr)
        written = draft.save()
        plugin_file = plugins.save() if plugins is not None else None
        if plugin_file is not None:
            written.append(plugin_file)
    except (KeyError, SettingError, DraftError, ConfigFileError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) else str(exc)
        print(f"lollms-server wizard: {message}; nothing was changed", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}")
    return 0

