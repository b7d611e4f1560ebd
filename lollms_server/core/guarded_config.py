"""One loader for every ConfigGuard file (main config and binding instances).

ConfigGuard hides load errors and silently resets invalid values to defaults. This module reads the
file through ConfigGuard's own handlers, validates the raw values strictly against the schema, and
only then lets ConfigGuard apply them (migration of older files included). Any problem raises
``ConfigFileError`` naming the file, the key and what is wrong.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from lollms_server.core.configguard_import import import_configguard

os.environ.setdefault("CONFIGMASTER_LOG_LEVEL", "ERROR")
import_configguard()  # without its console logging library (see there)

from configguard import ConfigGuard  # noqa: E402
from configguard.exceptions import ConfigGuardError  # noqa: E402
from configguard.handlers import get_handler  # noqa: E402
from configguard.handlers.base import LoadResult, StorageHandler  # noqa: E402
from configguard.handlers.yaml_handler import YamlHandler  # noqa: E402
from packaging.version import InvalidVersion, Version  # noqa: E402

from lollms_server.core.file_modes import restrict_to_owner  # noqa: E402

if TYPE_CHECKING:
    from cryptography.fernet import Fernet

_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "list": (list,),
}


class ConfigFileError(Exception):
    """A configuration file cannot be used as it is."""

    def __init__(self, path: Path, problem: str, key: str | None = None) -> None:
        self.path = path
        self.key = key
        self.problem = problem
        where = f"{path}" + (f", key '{key}'" if key else "")
        super().__init__(f"{where}: {problem}")


@dataclass
class LoadedConfig:
    path: Path
    guard: ConfigGuard
    values: dict[str, Any]
    file_version: str | None
    migrated: bool
    raw: dict[str, Any]  # what the file itself says, before defaults are filled in


def fernet(key: bytes) -> "Fernet":
    """The Fernet of ``key`` (cryptography is imported by the first configuration that is encrypted, not at
    every start: core/configguard_import.py)."""
    from cryptography.fernet import Fernet

    return Fernet(key)


def key_bytes(key: str | bytes | None) -> bytes | None:
    """Normalise and check a Fernet key; None when no key is set."""
    if not key:
        return None
    raw = key.strip().encode() if isinstance(key, str) else key.strip()
    try:
        fernet(raw)
    except (ValueError, TypeError) as exc:
        raise ValueError("the encryption key is not a valid Fernet key (32 url-safe base64 bytes)") from exc
    return raw


def schema_version(schema: Mapping[str, Any]) -> str:
    return str(schema.get("__version__", "0.0.0"))


def _check_value(path: Path, key: str, definition: Mapping[str, Any], value: Any) -> None:
    type_name = str(definition.get("type"))
    if value is None:
        if not definition.get("nullable", False):
            raise ConfigFileError(path, "must not be empty (null)", key)
        return
    allowed = _TYPES.get(type_name)
    if allowed is None:
        return
    if type_name in ("int", "float") and isinstance(value, bool):
        raise ConfigFileError(path, f"must be a number ({type_name}), got a boolean", key)
    if not isinstance(value, allowed):
        raise ConfigFileError(path, f"must be of type {type_name}, got {type(value).__name__} {value!r}", key)
    options = definition.get("options")
    if options and value not in options:
        raise ConfigFileError(path, f"must be one of {options}, got {value!r}", key)
    lo, hi = definition.get("min_val"), definition.get("max_val")
    if lo is not None and value < lo:
        raise ConfigFileError(path, f"must be >= {lo}, got {value}", key)
    if hi is not None and value > hi:
        raise ConfigFileError(path, f"must be <= {hi}, got {value}", key)


def validate_values(
    path: Path, schema: Mapping[str, Any], values: Mapping[str, Any], *, allow_unknown: bool, prefix: str = ""
) -> None:
    """Strictly check ``values`` against a ConfigGuard schema level."""
    for key, value in values.items():
        full = f"{prefix}{key}"
        definition = schema.get(key)
        if definition is None:
            if allow_unknown:
                continue
            known = ", ".join(k for k in schema if k != "__version__")
            raise ConfigFileError(path, f"unknown setting (known here: {known})", full)
        if definition.get("type") == "section":
            sub = definition.get("schema", {})
            if value is None:
                if sub and not definition.get("nullable", False):
                    raise ConfigFileError(path, "must be a section (mapping), got null (is the file damaged?)", full)
                continue
            if not isinstance(value, Mapping):
                raise ConfigFileError(path, f"must be a section (mapping), got {type(value).__name__}", full)
            if sub:
                validate_values(path, sub, value, allow_unknown=allow_unknown, prefix=f"{full}.")
            continue
        _check_value(path, full, definition, value)


def read_raw(path: Path, key: bytes | None = None) -> tuple[str | None, dict[str, Any]]:
    """Read a config file through ConfigGuard's handler for its extension: (file version, values)."""
    result = _read_file(path, key)
    version = result.get("version")
    return (str(version) if version is not None else None), dict(result["values"])


class _AlreadyRead(StorageHandler):
    """Gives ConfigGuard the content ``_read_file`` already parsed, so a load reads and parses the file once."""

    def __init__(self, result: LoadResult) -> None:
        super().__init__(None)
        self._result = result

    def load(self, filepath: Path) -> LoadResult:
        return self._result

    def save(self, filepath: Path, data: dict[str, Any], mode: str = "values") -> None:
        raise ConfigGuardError("a loaded configuration is not saved through its reader (use save_guarded_atomic)")


def _read_file(path: Path, key: bytes | None) -> LoadResult:
    if not path.is_file():
        raise ConfigFileError(path, "file not found")
    if path.stat().st_size == 0:
        raise ConfigFileError(path, "the file is empty (0 bytes); restore it from a backup or recreate it")
    try:
        handler = get_handler(path, fernet=fernet(key) if key else None)
        result = (_read_yaml_values(path, key) if isinstance(handler, YamlHandler) else None) or handler.load(path)
    except ConfigGuardError as exc:
        hint = " (is it encrypted? set LOLLMS_ENCRYPTION_KEY)" if key is None and looks_encrypted(path) else ""
        raise ConfigFileError(path, f"cannot be read: {exc}{hint}") from exc
    except Exception as exc:  # parser errors of yaml/toml/json/sqlite surface here
        raise ConfigFileError(path, f"cannot be parsed: {exc}") from exc
    if not isinstance(result.get("values"), Mapping):
        raise ConfigFileError(path, "does not hold a mapping of settings")
    return result


_FULL_FORMATS = (("__version__", "__schema__", "__settings__"), ("version", "schema", "values"))


def _read_yaml_values(path: Path, key: bytes | None) -> LoadResult | None:
    """A YAML file in the values format (``__version__`` + settings, as every save writes it) parsed with
    libyaml: the same result as ConfigGuard's handler, which parses in pure Python (a tenth of a start-up
    went into the main config and instance files). None for anything else — another layout, a file that does
    not parse or decrypt —, which ConfigGuard's handler then reads and reports as always."""
    import yaml

    try:
        raw = path.read_bytes()
        data = yaml.load((fernet(key).decrypt(raw) if key else raw).decode("utf-8"), Loader=yaml.CSafeLoader)
    except Exception:  # noqa: BLE001 - the handler reads it again and says what is wrong
        return None
    if not isinstance(data, dict) or any(all(k in data for k in keys) for keys in _FULL_FORMATS):
        return None
    version = data.get("__version__")
    return {"version": None if version is None else str(version), "schema": None,
            "values": {k: v for k, v in data.items() if k != "__version__"}}


def looks_encrypted(path: Path) -> bool:
    """Whether a file holds a Fernet token (ConfigGuard's whole-file encryption)."""
    try:
        return path.read_bytes()[:6] == b"gAAAAA"
    except OSError:
        return False


def apply_aliases(path: Path, schema: Mapping[str, Any], raw: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """Rename settings written under another name a schema field accepts (its ``aliases``, e.g. the names
    of the reference implementation) to the field's own name. Giving both names is an error."""
    names = {str(a): k for k, d in schema.items() if isinstance(d, Mapping) for a in d.get("aliases") or []}
    out = dict(raw)
    used = False
    for alias, canonical in names.items():
        if alias in out and alias not in schema:
            if canonical in out:
                raise ConfigFileError(path, f"is another name of '{canonical}', which is also set; keep one", alias)
            out[canonical] = out.pop(alias)
            used = True
    return out, used


def load_guarded(path: Path, schema: Mapping[str, Any], key: bytes | None = None) -> LoadedConfig:
    """Load and strictly validate ``path`` against ``schema``; migrate older versions in memory."""
    result = _read_file(path, key)
    file_version = str(result["version"]) if result.get("version") is not None else None
    raw, renamed = apply_aliases(path, schema, result["values"])
    instance_version = schema_version(schema)
    migrated = False
    if file_version is not None:
        try:
            newer = Version(file_version) > Version(instance_version)
            older = Version(file_version) < Version(instance_version)
        except InvalidVersion as exc:
            raise ConfigFileError(path, f"invalid version '{file_version}'", "__version__") from exc
        if newer:
            raise ConfigFileError(
                path, f"file version {file_version} is newer than this server's schema {instance_version}", "__version__"
            )
        migrated = older
    body = {k: v for k, v in schema.items() if k != "__version__"}
    validate_values(path, body, raw, allow_unknown=migrated)
    guard = ConfigGuard(dict(schema), handler=_AlreadyRead(result))
    try:
        if renamed:  # the file's own names differ from the schema's: apply the renamed values
            guard.import_config(raw, ignore_unknown=migrated)
        else:
            guard.load(path)  # ConfigGuard's own version handling and migration, on the content read above
    except (ConfigGuardError, FileNotFoundError) as exc:
        raise ConfigFileError(path, str(exc)) from exc
    return LoadedConfig(
        path=path, guard=guard, values=guard.get_config_dict(), file_version=file_version, migrated=migrated, raw=raw
    )


# config, instance, backup and key files are readable by their owner only (core.file_modes)
_TEMP_MARK = ".saving-"


def _temp_dir_prefix(path: Path) -> str:
    return f".{path.name}{_TEMP_MARK}"


def remove_stale_temp_dirs(path: Path) -> None:
    """Remove what an interrupted save of ``path`` left (killed between writing and renaming)."""
    if path.parent.is_dir():
        for left in path.parent.glob(_temp_dir_prefix(path) + "*"):
            shutil.rmtree(left, ignore_errors=True)


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (mode 0600) through a temp file in the same folder, then rename."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        restrict_to_owner(tmp_name)
        os.replace(tmp_name, path)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)


def backup_file(path: Path, key: bytes | None) -> Path:
    """Copy ``path`` to ``path.bak`` (0600); when the new file is encrypted, the backup is encrypted too."""
    data = path.read_bytes()
    if key is not None and not looks_encrypted(path):
        data = fernet(key).encrypt(data)  # same whole-file format ConfigGuard writes
    backup = path.with_name(path.name + ".bak")
    write_private(backup, data)
    return backup


def save_guarded_atomic(
    path: Path, schema: Mapping[str, Any], values: Mapping[str, Any], key: bytes | None = None,
    *, backup: bool = True,
) -> None:
    """Validate ``values`` then write them to ``path`` atomically, mode 0600, keeping a backup.

    The new file is written in a private temp folder beside ``path`` (mode 0700, so nobody else can read
    it meanwhile), checked by reading it back, then renamed over ``path``. The temp folder is removed on
    every exit path, and one left by a killed save is removed at the next save.
    """
    body = {k: v for k, v in schema.items() if k != "__version__"}
    validate_values(path, body, values, allow_unknown=False)
    guard = ConfigGuard(dict(schema), encryption_key=key)
    try:
        guard.import_config(dict(values), ignore_unknown=False)
    except ConfigGuardError as exc:
        raise ConfigFileError(path, str(exc)) from exc
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_dirs(path)
    work = Path(tempfile.mkdtemp(prefix=_temp_dir_prefix(path), dir=path.parent))
    try:
        tmp = work / path.name
        guard.save(tmp, mode="values")
        restrict_to_owner(tmp)
        load_guarded(tmp, schema, key)
        if backup and path.exists():
            backup_file(path, key)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
