"""Binding instances in the wizard: add, edit, remove, test; forms come from each card's instance_schema."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from questionary import Choice

from lollms_server.core.bindings.registry import BindingType
from lollms_server.core.presets import PresetInstance
from lollms_server.core.resources import ResourceManager
from lollms_server.core.secrets import REDACTOR, collect_secret_values
from lollms_server.wizard.draft import ConfigDraft, DraftError, InstanceDraft
from lollms_server.wizard.forms import (
    BACK,
    ask_field,
    confirm,
    edit_fields,
    note,
    select,
    text,
)

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
FIXED_FIELDS = ("type", "binding_instance_name")


def _schema_default(definition: dict[str, Any]) -> Any:
    return definition.get("default")


def ask_preset_instance(draft: ConfigDraft, inst: PresetInstance, fields: list[str], values: dict[str, Any]) -> dict[str, Any]:
    """Ask only what a preset instance needs (its ``ask`` fields and secrets)."""
    btype = draft.binding_type(inst.type_name)
    assert btype is not None
    schema = btype.card.instance_schema
    out = dict(values)
    if fields:
        note(f"Instance '{inst.name}' ({btype.card.display_name or inst.type_name}):", style="bold")
    for key in fields:
        out[key] = ask_field(key, schema[key], out.get(key, _schema_default(schema[key])))
    return out


def describe(draft: ConfigDraft, rec: InstanceDraft) -> str:
    flags = []
    if rec.encrypted or draft.will_encrypt(rec):
        flags.append("encrypted")
    if rec.locked:
        flags.append("cannot be read: kept as is")
    if draft.binding_type(rec.type_name) is None:
        flags.append("type not installed")
    if rec.dirty:
        flags.append("changed")
    return f"{rec.name} ({rec.type_name})" + (f" [{', '.join(flags)}]" if flags else "")


_SOURCE_LABELS = {"personal": " (personal)", "entry_point": " (installed package)"}


def _type_choice(btype: BindingType) -> Choice:
    card = btype.card
    kinds = ", ".join(card.generation_types) or "?"
    label = f"{card.type_name}: {card.display_name or ''} [{kinds}]" + _SOURCE_LABELS.get(btype.source, "")
    params = ", ".join(p.name for p in card.parameters)  # the generation parameters the card declares
    description = (card.description or "").strip()[:200] + (f" Generation parameters: {params}." if params else "")
    return Choice(label, value=card.type_name, description=description.strip() or None)


def add_instance(draft: ConfigDraft) -> None:
    if not draft.registry.types:
        note("No binding types were discovered.", style="fg:ansired")
        return
    choices = [_type_choice(b) for _, b in sorted(draft.registry.types.items())] + [Choice("Cancel", BACK)]
    type_name = select("Binding type", choices)
    if type_name == BACK:
        return
    btype = draft.registry.types[type_name]
    base = type_name.removesuffix("_binding")
    suggestion = next(n for n in (base, *(f"{base}_{i}" for i in range(2, 100))) if n not in draft.instances)

    def valid_name(answer: str) -> bool | str:
        if not NAME_PATTERN.match(answer):
            return "letters, digits, '_' or '-' (max 64), starting with a letter or digit"
        return f"'{answer}' already exists" if answer in draft.instances else True

    name = text("Instance name (also its file name)", default=suggestion, validate=valid_name)
    schema = btype.card.instance_schema
    values: dict[str, Any] = {}
    needed = sorted(btype.card.secret_fields() & set(schema)) + [
        k for k, d in schema.items()
        if k != "__version__" and isinstance(d, dict) and k not in btype.card.secret_fields() and k in ("base_url", "host")
    ]
    for key in needed:
        values[key] = ask_field(key, schema[key], schema[key].get("default"))
    if confirm("Review the other settings now?", default=False):
        values = edit_fields(f"{name} settings", schema, {**_defaults(schema), **values}, skip=FIXED_FIELDS)
    _store(draft, name, type_name, values)


def _defaults(schema: dict[str, Any]) -> dict[str, Any]:
    return {k: d.get("default") for k, d in schema.items() if k != "__version__" and isinstance(d, dict)}


def _store(draft: ConfigDraft, name: str, type_name: str, values: dict[str, Any]) -> None:
    try:
        draft.set_instance(name, type_name, {k: v for k, v in values.items() if k not in FIXED_FIELDS})
        note(f"Instance '{name}' will be saved with the configuration.")
    except DraftError as exc:
        note(f"Not changed: {exc}", style="fg:ansired")


def edit_instance(draft: ConfigDraft, rec: InstanceDraft) -> None:
    btype = draft.binding_type(rec.type_name)
    if btype is None or rec.locked:
        note("This instance cannot be edited here (type not installed, or file not readable).", style="fg:ansiyellow")
        return
    schema = btype.card.instance_schema
    values = edit_fields(f"{rec.name} settings", schema, {**_defaults(schema), **rec.values}, skip=FIXED_FIELDS)
    if values != {**_defaults(schema), **rec.values}:
        _store(draft, rec.name, rec.type_name, values)


async def probe_instance(btype: BindingType, values: dict[str, Any]) -> tuple[bool, str, list[str], str | None]:
    """Start the instance as the server would, run its health check, list its models, stop it.

    The last item says why a request naming no model could not be served (state ``no_model``), or None.
    """
    binding = btype.cls(dict(values), ResourceManager("none"))
    try:
        await binding.startup()
        ok, message = await binding.health_check()
        models = [str(m.get("name")) for m in await binding.list_available_models()] if ok else []
        problem = await binding.model_problem() if ok else None
        return ok, message, models, problem
    finally:
        await binding.shutdown()


def run_instance_test(draft: ConfigDraft, rec: InstanceDraft) -> bool:
    btype = draft.binding_type(rec.type_name)
    if btype is None or rec.locked:
        note("Cannot test: type not installed or file not readable.", style="fg:ansired")
        return False
    REDACTOR.add(*collect_secret_values(rec.values, btype.card.secret_fields()))
    note(f"Testing '{rec.name}': startup, health check, model list...")
    try:
        ok, message, models, no_model = asyncio.run(probe_instance(btype, rec.values))
    except Exception as exc:  # noqa: BLE001 - the point of the test is to show any failure
        note(f"FAILED: {REDACTOR.redact(f'{type(exc).__name__}: {exc}')}", style="fg:ansired")
        return False
    if not ok:
        note(f"FAILED: health check: {REDACTOR.redact(message)}", style="fg:ansired")
        return False
    if no_model:
        note(f"NO MODEL: it starts, but cannot serve requests yet: {REDACTOR.redact(no_model)}", style="fg:ansiyellow")
        return False
    note(f"OK: {REDACTOR.redact(message)}; {len(models)} model(s): {', '.join(models[:20]) or 'none listed'}",
         style="fg:ansigreen")
    return True


def instance_actions(draft: ConfigDraft, rec: InstanceDraft) -> None:
    action = select(describe(draft, rec), [
        Choice("Edit settings", "edit"), Choice("Test (start, health check, list models)", "test"),
        Choice("Remove", "remove"), Choice("Back", BACK),
    ])
    if action == "edit":
        edit_instance(draft, rec)
    elif action == "test":
        run_instance_test(draft, rec)
    elif action == "remove" and confirm(f"Remove '{rec.name}' (its file is kept as .bak on save)?", default=False):
        draft.remove_instance(rec.name)


def instances_menu(draft: ConfigDraft) -> None:
    while True:
        choices = [Choice(describe(draft, r), name) for name, r in sorted(draft.instances.items())]
        choices += [Choice("Add an instance", "__add__"), Choice("Done", BACK)]
        picked = select("Binding instances", choices)
        if picked == BACK:
            return
        if picked == "__add__":
            add_instance(draft)
        else:
            instance_actions(draft, draft.instances[picked])
