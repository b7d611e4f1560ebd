"""ConfigDraft: every change the wizard makes, held in memory until one atomic save.

Nothing touches the disk before ``ConfigDraft.save()``; cancelling simply drops the draft. Saving
validates everything first (main config, cross-field rules, every changed instance), then writes
instance files and finally the main config, each through ``save_guarded_atomic`` (temp file,
validate, replace, ``.bak`` of the previous file).
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lollms_server.core.bindings.registry import BindingRegistry, BindingType
from lollms_server.core.config import (
    ENCRYPTION_KEY_ENV,
    check_main_values,
    _resolve_paths,
    resolve_encryption_key,
)
from lollms_server.core.config_schema import MAIN_SCHEMA, MODALITIES
from lollms_server.core.guarded_config import (
    ConfigFileError,
    backup_file,
    load_guarded,
    read_raw,
    save_guarded_atomic,
    validate_values,
)
from lollms_server.core.paths import find_main_config

FORMAT_EXTENSIONS: dict[str, str] = {"yaml": ".yaml", "json": ".json", "toml": ".toml", "sqlite": ".db"}


class DraftError(Exception):
    """A change the wizard cannot make (message is meant for the operator)."""


@dataclass
class InstanceDraft:
    """One binding instance as the wizard holds it."""

    name: str
    type_name: str
    values: dict[str, Any]
    file: Path | None = None
    encrypted: bool = False
    locked: bool = False  # encrypted and no key to read it: kept untouched
    dirty: bool = False


@dataclass
class KeyFileToWrite:
    path: Path
    key: bytes


def empty_main_values() -> dict[str, Any]:
    """MAIN_SCHEMA defaults as a plain nested dict."""
    out: dict[str, Any] = {}
    for section, definition in MAIN_SCHEMA.items():
        if section == "__version__":
            continue
        out[section] = {k: copy.deepcopy(d.get("default")) for k, d in (definition.get("schema") or {}).items()}
    return out


def file_is_encrypted(path: Path) -> bool:
    try:
        return path.read_bytes()[:6] == b"gAAAAA"
    except OSError:
        return False


@dataclass
class ConfigDraft:
    config_dir: Path
    main_file: Path
    values: dict[str, Any]
    exists: bool
    instances: dict[str, InstanceDraft] = field(default_factory=dict)
    removed: dict[str, InstanceDraft] = field(default_factory=dict)
    encryption_key: bytes | None = field(default=None, repr=False)
    key_file_to_write: KeyFileToWrite | None = field(default=None, repr=False)
    registry: BindingRegistry = field(default_factory=BindingRegistry)
    notes: list[str] = field(default_factory=list)

    # ---- construction --------------------------------------------------------------------------
    @classmethod
    def open(cls, config_dir: Path, fmt: str = "yaml") -> ConfigDraft:
        """Load the existing configuration of ``config_dir``, or start a new one in format ``fmt``."""
        config_dir = config_dir.expanduser().resolve()
        try:
            existing = find_main_config(config_dir) if config_dir.is_dir() else None
        except FileExistsError as exc:
            raise DraftError(str(exc)) from exc
        if existing is None:
            if fmt not in FORMAT_EXTENSIONS:
                raise DraftError(f"unknown format '{fmt}' (choose from {', '.join(FORMAT_EXTENSIONS)})")
            draft = cls(config_dir, config_dir / f"main_config{FORMAT_EXTENSIONS[fmt]}", empty_main_values(), False)
            draft.encryption_key = _env_key()
            draft.rediscover()
            draft._encrypt_plain_instances()
            return draft
        try:
            loaded = load_guarded(existing, MAIN_SCHEMA)
        except ConfigFileError as exc:
            raise DraftError(f"the existing configuration cannot be used: {exc}") from exc
        draft = cls(config_dir, existing, copy.deepcopy(loaded.values), True)
        try:
            draft.encryption_key = resolve_encryption_key(loaded.values, existing, draft.resolved_paths())
        except ConfigFileError as exc:
            draft.notes.append(f"encryption key not available: {exc}")
        draft.rediscover()
        draft._load_instances()
        draft._encrypt_plain_instances()
        return draft

    def _encrypt_plain_instances(self) -> None:
        """With a key, every instance file the server reads must be encrypted: plain ones are rewritten."""
        if os.environ.get(ENCRYPTION_KEY_ENV) and self.encryption_key is None:
            self.notes.append(f"{ENCRYPTION_KEY_ENV} is set but cannot be used (not a valid Fernet key?): "
                              "instance files are left as they are, in plain text")
            return
        if self.encryption_key is None:
            return
        for rec in self.instances.values():
            if rec.file is None or rec.encrypted:
                continue
            if rec.locked:
                self.notes.append(f"instance '{rec.name}' stays in plain text: it cannot be read as a valid instance file")
                continue
            rec.dirty = True
            self.notes.append(f"instance '{rec.name}' is in plain text: it will be encrypted with the configured key")

    def resolved_paths(self):  # type: ignore[no-untyped-def]
        return _resolve_paths(self.values, self.config_dir)

    @property
    def fmt_extension(self) -> str:
        return self.main_file.suffix

    @property
    def instance_dir(self) -> Path:
        return self.resolved_paths().instance_bindings_dir

    def rediscover(self) -> None:
        """Discover binding types from the zoo and personal folders named in ``paths``."""
        registry = BindingRegistry()
        registry.discover(self.resolved_paths().bindings_sources)
        self.registry = registry

    def _load_instances(self) -> None:
        from lollms_server.core.bindings.manager import find_instance_file

        for name, type_name in (self.values.get("bindings_map") or {}).items():
            rec = InstanceDraft(name=name, type_name=str(type_name), values={})
            self.instances[name] = rec
            try:
                rec.file = find_instance_file(self.instance_dir, name)
            except ConfigFileError as exc:
                self.notes.append(str(exc))
                rec.locked = True
                continue
            if rec.file is None:
                self.notes.append(f"instance '{name}': no file yet in {self.instance_dir}; it will be written on save")
                rec.values = {"type": rec.type_name, "binding_instance_name": name}
                rec.dirty = True
                continue
            rec.encrypted = file_is_encrypted(rec.file)
            btype = self.registry.types.get(rec.type_name)
            try:
                key = self.encryption_key if rec.encrypted else None  # a plain file is read as it is
                if btype is not None:
                    rec.values = load_guarded(rec.file, btype.card.full_instance_schema(), key).values
                else:
                    rec.values = read_raw(rec.file, key)[1]
                    self.notes.append(f"instance '{name}': binding type '{rec.type_name}' is not installed")
            except ConfigFileError as exc:
                rec.locked = True
                self.notes.append(f"instance '{name}' is kept as it is: {exc}")

    # ---- queries -------------------------------------------------------------------------------
    def binding_type(self, type_name: str) -> BindingType | None:
        return self.registry.types.get(type_name)

    def instances_for(self, modality: str) -> list[str]:
        """Instance names whose binding type declares ``modality`` in its generation_types."""
        out = []
        for name, rec in sorted(self.instances.items()):
            btype = self.binding_type(rec.type_name)
            if btype is not None and modality in btype.card.generation_types:
                out.append(name)
        return out

    def secret_fields(self, rec: InstanceDraft) -> set[str]:
        btype = self.binding_type(rec.type_name)
        return btype.card.secret_fields() if btype else set()

    def has_secret_values(self, rec: InstanceDraft) -> bool:
        return any(rec.values.get(k) not in (None, "", []) for k in self.secret_fields(rec))

    # ---- changes -------------------------------------------------------------------------------
    def set_instance(self, name: str, type_name: str, values: dict[str, Any]) -> InstanceDraft:
        btype = self.binding_type(type_name)
        if btype is None:
            raise DraftError(f"binding type '{type_name}' is not installed")
        full = {"type": type_name, "binding_instance_name": name, **values}
        schema = btype.card.full_instance_schema()
        try:
            validate_values(Path(f"{name}{self.fmt_extension}"), _body(schema), full, allow_unknown=False)
        except ConfigFileError as exc:
            raise DraftError(f"instance '{name}': {exc.problem}" + (f" (key '{exc.key}')" if exc.key else "")) from exc
        rec = self.instances.get(name) or self.removed.pop(name, None)
        if rec is None or rec.type_name != type_name:
            rec = InstanceDraft(name=name, type_name=type_name, values={}, file=rec.file if rec else None,
                                encrypted=rec.encrypted if rec else False)
        rec.values, rec.dirty, rec.locked = full, True, False
        self.instances[name] = rec
        self.values.setdefault("bindings_map", {})[name] = type_name
        return rec

    def remove_instance(self, name: str) -> None:
        rec = self.instances.pop(name, None)
        if rec is None:
            raise DraftError(f"no instance named '{name}'")
        if rec.file is not None:
            self.removed[name] = rec
        (self.values.get("bindings_map") or {}).pop(name, None)
        defaults = self.values.setdefault("defaults", {})
        for m in MODALITIES:
            if defaults.get(f"{m}_binding") == name:
                defaults[f"{m}_binding"] = None

    def set_new_encryption_key(self, key: bytes, *, key_file: Path | None, store_in_config: bool = False) -> None:
        """Use ``key`` from now on; every instance file is (re-)encrypted with it on save."""
        locked = [n for n, r in self.instances.items() if r.locked and r.encrypted]
        if locked:
            raise DraftError(f"cannot change the key: instances {', '.join(locked)} are encrypted with a key we do not have")
        security = self.values.setdefault("security", {})
        if key_file is not None:
            resolved = key_file.expanduser().resolve()
            if resolved == self.config_dir or self.config_dir in resolved.parents:
                raise DraftError("keep the key file outside the configuration folder (it protects the files in it)")
            if resolved.exists():
                raise DraftError(f"{resolved} already exists; choose a new file name")
            self.key_file_to_write = KeyFileToWrite(resolved, key)
            security["encryption_key_file"] = str(resolved)
            security["encryption_key"] = None
        else:
            self.key_file_to_write = None
            security["encryption_key_file"] = None
            security["encryption_key"] = key.decode() if store_in_config else None
        self.encryption_key = key
        for rec in self.instances.values():  # the server reads every instance file with the key
            if not rec.locked:
                rec.dirty = True

    # ---- saving --------------------------------------------------------------------------------
    def check(self) -> list[str]:
        """Validate everything; return warnings (raise DraftError on errors)."""
        try:
            validate_values(self.main_file, _body(MAIN_SCHEMA), self.values, allow_unknown=False)
            check_main_values(self.main_file, self.values)
        except ConfigFileError as exc:
            raise DraftError(str(exc)) from exc
        warnings: list[str] = []
        for rec in self.instances.values():
            if rec.locked or not rec.dirty:
                continue
            btype = self.binding_type(rec.type_name)
            if btype is None:
                raise DraftError(f"instance '{rec.name}': binding type '{rec.type_name}' is not installed")
            if self.will_encrypt(rec) and self.encryption_key is None:
                raise DraftError(f"instance '{rec.name}' is encrypted but no encryption key is set")
            if self.has_secret_values(rec) and self.encryption_key is None:
                warnings.append(f"instance '{rec.name}' holds a secret but no encryption key is set: it is stored in plain text")
        if not (self.values.get("security") or {}).get("allowed_api_keys"):
            warnings.append("no API key: authentication is off (anyone who can reach the port can use the server)")
        return warnings

    def will_encrypt(self, rec: InstanceDraft) -> bool:
        """With a key set, the server decrypts every instance file, so every file is written encrypted."""
        return rec.encrypted or self.encryption_key is not None

    def save(self) -> list[Path]:
        """Write every change; returns the files written."""
        self.check()
        written: list[Path] = []
        if self.key_file_to_write is not None:
            kf = self.key_file_to_write
            kf.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(kf.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(kf.key.decode() + "\n")
            written.append(kf.path)
            self.key_file_to_write = None
        inst_dir = self.instance_dir
        for rec in self.instances.values():
            if rec.locked or not rec.dirty:
                continue
            btype = self.binding_type(rec.type_name)
            assert btype is not None
            target = rec.file if rec.file is not None and rec.file.parent == inst_dir else inst_dir / f"{rec.name}{self.fmt_extension}"
            encrypt = self.will_encrypt(rec)
            save_guarded_atomic(target, btype.card.full_instance_schema(), rec.values,
                                self.encryption_key if encrypt else None)
            rec.file, rec.encrypted, rec.dirty = target, encrypt, False
            written.append(target)
        for name, rec in list(self.removed.items()):
            if rec.file is not None and rec.file.exists() and name not in self.instances:
                backup_file(rec.file, self.encryption_key)  # encrypted when a key is set
                rec.file.unlink()
            self.removed.pop(name)
        save_guarded_atomic(self.main_file, MAIN_SCHEMA, self.values)
        self.exists = True
        written.append(self.main_file)
        return written


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k != "__version__"}


def _env_key() -> bytes | None:
    from lollms_server.core.guarded_config import key_bytes

    try:
        return key_bytes(os.environ.get(ENCRYPTION_KEY_ENV))
    except ValueError:
        return None
