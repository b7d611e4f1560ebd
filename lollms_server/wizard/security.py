"""Security in the wizard: API keys (generate, add, list masked, revoke) and the encryption key."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet
from questionary import Choice

from lollms_server.core.config import ENCRYPTION_KEY_ENV
from lollms_server.core.guarded_config import key_bytes
from lollms_server.core.presets import new_api_key
from lollms_server.wizard.draft import ConfigDraft, DraftError
from lollms_server.wizard.forms import BACK, confirm, note, select, text

DEFAULT_KEY_FILE = Path("~/.config/lollms_server/encryption.key")


def generate_encryption_key() -> bytes:
    return Fernet.generate_key()


def masked_key(key: str) -> str:
    """Enough of a key to recognise it, never enough to use it."""
    if len(key) <= 8:
        return "*" * len(key)
    return f"{key[:4]}…{key[-4:]} ({len(key)} chars)"


def key_source(draft: ConfigDraft) -> str:
    security = draft.values.get("security") or {}
    if draft.key_file_to_write is not None:
        return f"new key, to be written to {draft.key_file_to_write.path} on save"
    if os.environ.get(ENCRYPTION_KEY_ENV):
        return f"environment variable {ENCRYPTION_KEY_ENV}"
    if security.get("encryption_key_file"):
        return f"key file {security['encryption_key_file']}"
    if security.get("encryption_key"):
        return "stored in the main configuration (not recommended)"
    if draft.encryption_key is not None:
        return f"new key (keep it in {ENCRYPTION_KEY_ENV})"
    return "none: secrets in instance files are stored in plain text"


def api_keys_menu(draft: ConfigDraft) -> None:
    security = draft.values.setdefault("security", {})
    while True:
        keys: list[str] = list(security.get("allowed_api_keys") or [])
        note(f"API keys: {len(keys)} configured" + ("" if keys else " (authentication is OFF)"))
        action = select("API keys", [
            Choice("Generate a new API key", "generate"),
            Choice("Add an API key you already have (hidden input)", "add"),
            Choice("List API keys (masked)", "list"),
            Choice("Revoke an API key", "revoke", disabled=None if keys else "no keys"),
            Choice("Done", BACK),
        ])
        if action == BACK:
            return
        if action == "generate":
            key = new_api_key()
            keys.append(key)
            note("New API key (shown once; clients send it in the X-API-Key header):", style="bold")
            note(f"  {key}", style="fg:ansigreen bold")
        elif action == "add":
            import questionary

            def valid(answer: str, taken: list[str] = keys) -> bool | str:
                if len(answer.strip()) < 12:
                    return "use at least 12 characters"
                return "this key is already configured" if answer.strip() in taken else True

            keys.append(str(questionary.password("API key", validate=valid).unsafe_ask()).strip())
        elif action == "list":
            for i, k in enumerate(keys, 1):
                note(f"  {i}. {masked_key(str(k))}")
        elif action == "revoke":
            picked = select("Revoke which key?", [Choice(masked_key(str(k)), i) for i, k in enumerate(keys)]
                            + [Choice("Cancel", BACK)])
            if picked != BACK:
                keys.pop(picked)
                if not keys:
                    note("No API key left: authentication will be OFF.", style="fg:ansiyellow")
        security["allowed_api_keys"] = keys


def encryption_menu(draft: ConfigDraft) -> None:
    note(f"Encryption key: {key_source(draft)}")
    note("With a key set, every binding instance file is encrypted with it (whole file).", style="fg:ansibrightblack")
    action = select("Encryption key", [
        Choice("Generate a new encryption key", "generate"),
        Choice("Use a key I already have (hidden input)", "enter"),
        Choice("Back", BACK),
    ])
    if action == BACK:
        return
    if action == "generate":
        key = generate_encryption_key()
    else:
        import questionary

        def valid(answer: str) -> bool | str:
            try:
                key_bytes(answer)
            except ValueError as exc:
                return str(exc)
            return True if answer.strip() else "enter a key"

        entered = key_bytes(str(questionary.password("Fernet key", validate=valid).unsafe_ask()))
        assert entered is not None
        key = entered
    _store_key(draft, key, show=action == "generate")


def _store_key(draft: ConfigDraft, key: bytes, *, show: bool) -> None:
    where = select("Where will the key be kept?", [
        Choice(f"In the environment variable {ENCRYPTION_KEY_ENV} (you set it where the server runs)", "env"),
        Choice("In a key file outside the configuration folder (security.encryption_key_file)", "file"),
        Choice("In the main configuration file (not recommended: key beside what it protects)", "config"),
    ])
    try:
        if where == "file":
            path = text("Key file path", default=str(DEFAULT_KEY_FILE.expanduser()),
                        validate=lambda a: True if a.strip() else "enter a path")
            draft.set_new_encryption_key(key, key_file=Path(path.strip()))
            note(f"The key will be written to {draft.key_file_to_write.path if draft.key_file_to_write else path} "
                 "(mode 600) when you save. Back it up: without it the encrypted files cannot be read.")
        else:
            draft.set_new_encryption_key(key, key_file=None, store_in_config=where == "config")
            if where == "env":
                note("Set this before starting the server (and keep a copy in a safe place):", style="bold")
                note(f"  export {ENCRYPTION_KEY_ENV}={key.decode() if show else '<your key>'}", style="fg:ansigreen bold")
    except DraftError as exc:
        note(f"Not changed: {exc}", style="fg:ansired")


def security_menu(draft: ConfigDraft) -> None:
    while True:
        keys = (draft.values.get("security") or {}).get("allowed_api_keys") or []
        action = select("Security", [
            Choice(f"API keys ({len(keys)})", "api"),
            Choice(f"Encryption key ({key_source(draft)})", "enc"),
            Choice("Done", BACK),
        ])
        if action == BACK:
            return
        if action == "api":
            api_keys_menu(draft)
        else:
            encryption_menu(draft)


def offer_encryption(draft: ConfigDraft) -> None:
    """After secrets were entered without a key: offer to create one."""
    if (draft.encryption_key is None and any(draft.has_secret_values(r) for r in draft.instances.values())
            and confirm("An instance holds a secret. Generate an encryption key so it is encrypted at rest?", default=True)):
        _store_key(draft, generate_encryption_key(), show=True)
