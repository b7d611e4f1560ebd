"""The interactive wizard: folder and format, preset, then a menu over every section, review, save."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import questionary
import yaml
from questionary import Choice

from lollms_server.core.config_schema import MAIN_SCHEMA, MODALITIES
from lollms_server.core.guarded_config import ConfigFileError
from lollms_server.core.paths import DEFAULT_CONFIG_DIR
from lollms_server.core.secrets import mask_values, secret_keys
from lollms_server.wizard.draft import FORMAT_EXTENSIONS, ConfigDraft, DraftError
from lollms_server.wizard.forms import (
    BACK,
    NOT_SET,
    ask_field,
    confirm,
    edit_fields,
    note,
    select,
    show_value,
)
from lollms_server.wizard.instances import ask_preset_instance, instances_menu
from lollms_server.wizard.presets_flow import (
    DEFAULT_PRESET,
    apply_preset,
    available_presets,
)
from lollms_server.wizard.security import key_source, offer_encryption, security_menu

SAVE, CANCEL = "__save__", "__cancel__"
SIMPLE_SECTIONS = ("server", "paths", "resource_manager", "webui", "logging")


class Cancelled(Exception):
    pass


def choose_preset(draft: ConfigDraft, *, allow_none: bool) -> None:
    presets = available_presets(draft.registry)
    choices = [Choice(f"{p.name}: {p.description}", p.name) for p in presets]
    choices.append(Choice("No preset (start empty)" if allow_none else "Back", BACK))
    default = next((c for c in choices if c.value == DEFAULT_PRESET), None)
    picked = select("Preset", choices, default=default)
    if picked == BACK:
        return
    try:
        added = apply_preset(draft, picked, ask_preset_instance)
    except (KeyError, DraftError) as exc:
        note(f"Preset not applied: {exc}", style="fg:ansired")
        return
    note(f"Preset '{picked}': instances {', '.join(added)}.")
    keys = (draft.values.get("security") or {}).get("allowed_api_keys") or []
    if len(keys) == 1 and not draft.exists:
        note("An API key was generated (shown once; clients send it in the X-API-Key header):", style="bold")
        note(f"  {keys[0]}", style="fg:ansigreen bold")
    offer_encryption(draft)


def defaults_menu(draft: ConfigDraft) -> None:
    defaults = draft.values.setdefault("defaults", {})
    schema = MAIN_SCHEMA["defaults"]["schema"]
    while True:
        choices = [Choice(f"{m}: {defaults.get(f'{m}_binding') or '(none)'}", f"{m}_binding") for m in MODALITIES]
        choices += [Choice(f"{k} = {defaults.get(k)}", k) for k in ("default_context_size", "default_max_output_tokens")]
        choices.append(Choice("Done", BACK))
        picked = select("Default instance per generation type", choices)
        if picked == BACK:
            return
        if picked.endswith("_binding"):
            modality = picked.removesuffix("_binding")
            candidates = draft.instances_for(modality)
            if not candidates:
                note(f"No configured instance supports '{modality}' (add one under Binding instances).", style="fg:ansiyellow")
            options = [Choice(n, n) for n in candidates] + [Choice("(none)", NOT_SET)]
            current = next((c for c in options if c.value == (defaults.get(picked) or NOT_SET)), None)
            chosen = select(f"Default for {modality}", options, default=current)
            defaults[picked] = None if chosen == NOT_SET else chosen
        else:
            defaults[picked] = ask_field(picked, schema[picked], defaults.get(picked))


def _personality_folders(draft: ConfigDraft) -> dict[str, bool]:
    """Personality folder name -> enabled now (override, else off only for code-executing ones)."""
    overrides = draft.values.get("personalities_config") or {}
    found: dict[str, bool] = {}
    for base in draft.resolved_paths().personalities_dirs:
        if not base.is_dir():
            continue
        for folder in sorted(p for p in base.iterdir() if (p / "config.yaml").is_file() and not p.name.startswith((".", "_"))):
            try:
                raw = yaml.safe_load((folder / "config.yaml").read_text(encoding="utf-8")) or {}
            except (OSError, yaml.YAMLError):
                raw = {}
            override = overrides.get(folder.name)
            if isinstance(override, dict) and "enabled" in override:
                found[folder.name] = bool(override["enabled"])
            else:
                found[folder.name] = not (isinstance(raw, dict) and raw.get("executes_code"))
    return found


def personalities_menu(draft: ConfigDraft) -> None:
    found = _personality_folders(draft)
    if not found:
        note("No personalities found in the personality folders.", style="fg:ansiyellow")
        return
    enabled = questionary.checkbox(
        "Enabled personalities (space toggles, Enter confirms)",
        choices=[Choice(name, name, checked=on) for name, on in found.items()],
    ).unsafe_ask()
    config = draft.values.setdefault("personalities_config", {})
    for name, was_on in found.items():
        now_on = name in enabled
        if now_on != was_on:
            config[name] = {**(config.get(name) or {}), "enabled": now_on}


def edit_section(draft: ConfigDraft, section: str) -> None:
    schema = MAIN_SCHEMA[section]["schema"]
    note(MAIN_SCHEMA[section].get("help", ""), style="fg:ansibrightblack")
    draft.values[section] = edit_fields(section, schema, dict(draft.values.get(section) or {}))
    if section == "paths":
        draft.rediscover()


def review(draft: ConfigDraft) -> bool:
    """Show what will be written; True when the operator confirms saving and it worked."""
    masked = mask_values(draft.values, secret_keys(MAIN_SCHEMA))
    note(f"Main configuration: {draft.main_file}", style="bold")
    for section, values in masked.items():
        note(f"  {section}: {values}")
    note(f"Encryption key: {key_source(draft)}", style="bold")
    note("Binding instances:", style="bold")
    for name, rec in sorted(draft.instances.items()):
        shown = mask_values(rec.values, draft.secret_fields(rec))
        state = "encrypted" if draft.will_encrypt(rec) else "plain"
        note(f"  {name} ({rec.type_name}, {state}{', changed' if rec.dirty else ''}): {shown}")
    for name in draft.removed:
        note(f"  {name}: removed (file kept as .bak)")
    try:
        warnings = draft.check()
    except DraftError as exc:
        note(f"Cannot save yet: {exc}", style="fg:ansired bold")
        return False
    for w in warnings:
        note(f"Warning: {w}", style="fg:ansiyellow")
    if not confirm("Save this configuration?", default=True):
        return False
    try:
        written = draft.save()
    except (DraftError, ConfigFileError, OSError) as exc:  # report, keep the draft, let the operator fix it
        note(f"Not saved: {exc}", style="fg:ansired bold")
        return False
    for path in written:
        note(f"wrote {path}", style="fg:ansigreen")
    note(f"Start the server with: lollms-server serve --config-dir {draft.config_dir}", style="bold")
    return True


def main_menu(draft: ConfigDraft) -> bool:
    """Loop over the sections; True when saved, False when cancelled."""
    last: Any = SAVE
    while True:
        sec = draft.values
        choices = [
            Choice(f"Server: {sec['server'].get('host')}:{sec['server'].get('port')}", "server"),
            Choice("Paths", "paths"),
            Choice(f"Security: {len(sec['security'].get('allowed_api_keys') or [])} API key(s)", "security"),
            Choice(f"Defaults: text = {sec['defaults'].get('ttt_binding') or '(none)'}", "defaults"),
            Choice(f"Binding instances ({len(draft.instances)})", "instances"),
            Choice("Apply a preset", "preset"),
            Choice(f"Resource manager: {sec['resource_manager'].get('gpu_strategy')}", "resource_manager"),
            Choice(f"Web UI: {show_value(sec['webui'].get('enable_ui'), False)}", "webui"),
            Choice(f"Logging: {sec['logging'].get('log_level')}", "logging"),
            Choice("Personalities (enable / disable)", "personalities"),
            Choice("Review and save", SAVE),
            Choice("Cancel (discard all changes)", CANCEL),
        ]
        picked = select("Configuration", choices, default=next(c for c in choices if c.value == last))
        last = picked
        if picked == SAVE:
            if review(draft):
                return True
        elif picked == CANCEL:
            if confirm("Discard all changes?", default=True):
                return False
        elif picked in SIMPLE_SECTIONS:
            edit_section(draft, picked)
        elif picked == "security":
            security_menu(draft)
        elif picked == "defaults":
            defaults_menu(draft)
        elif picked == "instances":
            instances_menu(draft)
            offer_encryption(draft)
        elif picked == "preset":
            choose_preset(draft, allow_none=False)
        elif picked == "personalities":
            personalities_menu(draft)


def open_draft(config_dir: Path | None, fmt: str) -> ConfigDraft:
    if config_dir is None:
        answer = questionary.path("Configuration folder", default=str(DEFAULT_CONFIG_DIR), only_directories=True).unsafe_ask()
        config_dir = Path(str(answer)).expanduser().resolve()
    probe = ConfigDraft.open(config_dir, fmt)
    if probe.exists:
        note(f"Editing {probe.main_file}")
        for n in probe.notes:
            note(f"Note: {n}", style="fg:ansiyellow")
        return probe
    note(f"No configuration in {config_dir} yet: let's create one.")
    fmt = select("Main configuration file format", [Choice(f"{f} ({ext})", f) for f, ext in FORMAT_EXTENSIONS.items()],
                 default=fmt if fmt in FORMAT_EXTENSIONS else None)
    draft = ConfigDraft.open(config_dir, fmt)
    choose_preset(draft, allow_none=True)
    return draft


def run_interactive(config_dir: Path | None, fmt: str = "yaml") -> int:
    note("lollms_server configuration wizard (Ctrl+C cancels at any time; nothing is written before you save)",
         style="bold")
    try:
        draft = open_draft(config_dir, fmt)
        saved = main_menu(draft)
    except KeyboardInterrupt:
        note("\nCancelled: nothing was changed.", style="fg:ansiyellow")
        return 130
    except DraftError as exc:
        note(f"Cannot continue: {exc}", style="fg:ansired")
        return 2
    if not saved:
        note("Cancelled: nothing was changed.", style="fg:ansiyellow")
        return 1
    return 0
