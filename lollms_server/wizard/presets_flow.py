"""Presets in the wizard: which ones can be offered, and applying one to a draft."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lollms_server.core.bindings.registry import BindingRegistry
from lollms_server.core.presets import PRESETS, Preset, PresetInstance, new_api_key
from lollms_server.wizard.draft import ConfigDraft

DEFAULT_PRESET = "offline_local"

# asks the operator for the fields of one preset instance; returns the values to store
AskInstance = Callable[[ConfigDraft, PresetInstance, list[str], dict[str, Any]], dict[str, Any]]


def missing_types(preset: Preset, registry: BindingRegistry) -> list[str]:
    """Binding types the preset needs (non-optional instances) that are not discovered."""
    return sorted({i.type_name for i in preset.instances if not i.optional and i.type_name not in registry.types})


def available_presets(registry: BindingRegistry) -> list[Preset]:
    """Presets whose required binding types all exist, default first."""
    found = [p for p in PRESETS.values() if not missing_types(p, registry)]
    return sorted(found, key=lambda p: (p.name != DEFAULT_PRESET, list(PRESETS).index(p.name)))


def fields_to_ask(draft: ConfigDraft, inst: PresetInstance) -> list[str]:
    """The preset's ``ask`` fields that this binding's card really has (secrets are asked hidden)."""
    btype = draft.binding_type(inst.type_name)
    if btype is None:
        return []
    return [k for k in inst.ask if k in btype.card.instance_schema]


def preset_error(name: str, registry: BindingRegistry) -> str | None:
    preset = PRESETS.get(name)
    if preset is None:
        known = ", ".join(p.name for p in available_presets(registry)) or "none"
        return f"unknown preset '{name}' (available here: {known})"
    missing = missing_types(preset, registry)
    if missing:
        return f"preset '{name}' needs binding types that are not installed: {', '.join(missing)}"
    return None


def apply_preset(draft: ConfigDraft, name: str, ask: AskInstance | None = None) -> list[str]:
    """Add the preset's instances, set the defaults it names; returns the instance names added."""
    problem = preset_error(name, draft.registry)
    if problem:
        raise KeyError(problem)
    preset = PRESETS[name]
    added: list[str] = []
    defaults = draft.values.setdefault("defaults", {})
    for inst in preset.instances:
        btype = draft.binding_type(inst.type_name)
        if btype is None:  # optional and missing
            continue
        schema = btype.card.instance_schema
        values = {k: v for k, v in inst.values.items() if k in schema}
        existing = draft.instances.get(inst.name)
        if existing is not None and existing.type_name == inst.type_name:
            values = {k: v for k, v in existing.values.items() if k not in ("type", "binding_instance_name")}
        if ask is not None:
            values = ask(draft, inst, fields_to_ask(draft, inst), values)
        draft.set_instance(inst.name, inst.type_name, values)
        added.append(inst.name)
        for modality in inst.active_defaults():
            defaults[f"{modality}_binding"] = inst.name
    security = draft.values.setdefault("security", {})
    if not security.get("allowed_api_keys"):
        security["allowed_api_keys"] = [new_api_key()]
    return added
