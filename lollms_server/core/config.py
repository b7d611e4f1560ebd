"""The main configuration: loaded strictly through ConfigGuard, with resolved folders and keys."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from lollms_server.core.apikeys import ApiKeyConfigError, KeyRing, parse_keys
from lollms_server.core.config_schema import LOG_LEVELS, MAIN_SCHEMA, MODALITIES
from lollms_server.core.aliases import merged_aliases
from lollms_server.core.guarded_config import ConfigFileError, key_bytes, load_guarded
from lollms_server.core.request_limits import RequestLimits
from lollms_server.core.paths import PROJECT_ROOT, find_main_config, resolve_config_path, resolve_project_path

ENCRYPTION_KEY_ENV = "LOLLMS_ENCRYPTION_KEY"


@dataclass(frozen=True)
class ResolvedPaths:
    config_dir: Path
    instance_bindings_dir: Path
    personalities_dirs: list[Path]
    personalities_sources: list[tuple[Path, str]]
    bindings_sources: list[tuple[Path, str]]
    functions_dirs: list[Path]
    models_dir: Path


@dataclass
class ServerConfig:
    """Validated main configuration plus everything derived from it."""

    file: Path
    values: dict[str, Any]
    paths: ResolvedPaths
    encryption_key: bytes | None = field(repr=False, default=None)
    migrated_from: str | None = None

    def section(self, name: str) -> dict[str, Any]:
        return dict(self.values.get(name) or {})

    @functools.cached_property
    def key_ring(self) -> KeyRing:
        """The configured API keys (names, ids, limits); validated at load time."""
        return KeyRing(parse_keys(self.section("security").get("allowed_api_keys") or []))

    @property
    def api_keys(self) -> list[str]:
        return [k.key for k in self.key_ring.keys]

    @functools.cached_property
    def limits(self) -> RequestLimits:
        """Parsed once: every request reads them (a config reload builds a new ServerConfig)."""
        return RequestLimits.from_section(self.section("server"))

    @property
    def keyless_loopback_surfaces(self) -> list[str]:
        return [str(s) for s in self.section("security").get("keyless_loopback_surfaces") or []]

    @functools.cached_property
    def model_aliases(self) -> dict[str, str]:
        """Alias -> generation type or model id (built-in aliases plus the ``model_aliases`` section); merged once
        (the OpenAI surface asks on every request; a config reload builds a new ServerConfig)."""
        return merged_aliases(self.section("model_aliases"))

    @property
    def bindings_map(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in self.section("bindings_map").items()}

    @property
    def defaults(self) -> dict[str, Any]:
        return self.section("defaults")

    def default_binding(self, generation_type: str) -> str | None:
        value = self.defaults.get(f"{generation_type}_binding")
        return str(value) if value else None

    @property
    def auth_enabled(self) -> bool:
        return bool(self.api_keys)

    def security_warnings(self) -> list[str]:
        """What this configuration deliberately leaves open (shown at start-up and in /health)."""
        warnings: list[str] = []
        if not self.auth_enabled:
            warnings.append(
                f"authentication is OFF ({REQUIRED_KEY} is [] in {self.file.name}): anyone who can reach the port can use the server"
            )
        origins = [str(o).strip() for o in self.section("server").get("allowed_origins") or []]
        if "*" in origins:
            warnings.append(
                "CORS allows every origin (server.allowed_origins contains '*'): any web page a user opens can call the server"
            )
        return warnings

    def personality_enabled(self, folder_name: str) -> bool:
        override = self.section("personalities_config").get(folder_name)
        if isinstance(override, dict):
            return bool(override.get("enabled", True))
        return True


def _resolve_paths(values: dict[str, Any], config_dir: Path) -> ResolvedPaths:
    p = values.get("paths") or {}

    def rp(key: str) -> Path | None:
        return resolve_project_path(p.get(key))

    def pair(example_key: str, personal_key: str) -> list[Path]:
        return [x for x in (rp(example_key), rp(personal_key)) if x is not None]

    inst = resolve_config_path(p.get("instance_bindings_folder") or "bindings", config_dir)
    assert inst is not None
    return ResolvedPaths(
        config_dir=config_dir,
        instance_bindings_dir=inst,
        personalities_dirs=pair("example_personalities_folder", "personalities_folder"),
        personalities_sources=[(d, src) for d, src in ((rp("example_personalities_folder"), "zoo"), (rp("personalities_folder"), "personal")) if d],
        bindings_sources=[(d, src) for d, src in ((rp("example_bindings_folder"), "zoo"), (rp("bindings_folder"), "personal")) if d],
        functions_dirs=pair("example_functions_folder", "functions_folder"),
        models_dir=rp("models_folder") or PROJECT_ROOT / "models",
    )


def resolve_encryption_key(values: dict[str, Any], file: Path, paths: ResolvedPaths) -> bytes | None:
    """Key from env LOLLMS_ENCRYPTION_KEY, else security.encryption_key_file, else security.encryption_key."""
    security = values.get("security") or {}
    env_key = os.environ.get(ENCRYPTION_KEY_ENV)
    try:
        if env_key:
            return key_bytes(env_key)
        key_file = security.get("encryption_key_file")
        if key_file:
            kp = resolve_config_path(str(key_file), file.parent)
            assert kp is not None
            inst = paths.instance_bindings_dir.resolve()
            if kp.parent.resolve() == inst or inst in kp.resolve().parents:
                raise ConfigFileError(
                    file, "the key file must not be stored beside the instance files it protects",
                    "security.encryption_key_file",
                )
            if not kp.is_file():
                raise ConfigFileError(file, f"key file {kp} does not exist", "security.encryption_key_file")
            return key_bytes(kp.read_text(encoding="utf-8"))
        return key_bytes(security.get("encryption_key"))
    except ValueError as exc:
        raise ConfigFileError(file, str(exc), "security.encryption_key") from exc


REQUIRED_KEY = "security.allowed_api_keys"
# The sections every main config has had since the first version (the spec's MAIN_SCHEMA, less the
# nullable personalities_config); later sections (usage, metrics, extensions…) may be absent: defaults.
REQUIRED_SECTIONS: tuple[str, ...] = (
    "server", "paths", "security", "defaults", "bindings_map", "resource_manager", "webui", "logging",
)
AUTH_HINT = "list the accepted keys, or write allowed_api_keys: [] to turn authentication off on purpose"


def check_complete(path: Path, raw: Mapping[str, Any], *, migrated: bool) -> None:
    """Refuse a main config that is empty, truncated or missing what decides authentication.

    Authentication is off only when a readable file says so (``allowed_api_keys: []``), never because
    the section is missing or damaged. A file of the current version must also hold every section a
    valid file has always had (one missing means the file was cut or damaged); an older file is
    migrated, so only ``security`` is required from it.
    """
    if not raw:
        raise ConfigFileError(path, "holds no settings (empty or truncated file); restore it from a backup or recreate it")
    security = raw.get("security")
    if not isinstance(security, Mapping):
        raise ConfigFileError(path, f"section missing (is the file truncated?); {AUTH_HINT}", "security")
    if "allowed_api_keys" not in security:
        raise ConfigFileError(path, f"setting missing; {AUTH_HINT}", REQUIRED_KEY)
    if migrated:
        return
    missing = [name for name in REQUIRED_SECTIONS if name not in raw]
    if missing:
        raise ConfigFileError(
            path, f"section missing (is the file truncated?); a complete file has: {', '.join(missing)}", missing[0]
        )


def check_main_values(path: Path, values: Mapping[str, Any]) -> None:
    """Checks across fields that the schema alone cannot express."""
    bmap = values.get("bindings_map") or {}
    for k, v in bmap.items():
        if not isinstance(v, str) or not v:
            raise ConfigFileError(path, "must map to a binding type name (a string)", f"bindings_map.{k}")
    defaults = values.get("defaults") or {}
    for m in MODALITIES:
        name = defaults.get(f"{m}_binding")
        if name and name not in bmap:
            raise ConfigFileError(
                path, f"names instance '{name}', which is not a key of bindings_map", f"defaults.{m}_binding"
            )
    emb = defaults.get("embedding_binding")
    if emb and emb not in bmap:
        raise ConfigFileError(path, f"names instance '{emb}', which is not a key of bindings_map", "defaults.embedding_binding")
    origins = (values.get("server") or {}).get("allowed_origins") or []
    for i, origin in enumerate(origins):
        if not isinstance(origin, str):
            raise ConfigFileError(path, f"must be a string origin such as 'http://localhost:9601', got {origin!r}",
                                  f"server.allowed_origins[{i}]")
    if any(str(o).strip().lower() == "null" for o in origins):
        raise ConfigFileError(path, "the 'null' origin is not allowed (it matches sandboxed pages)", "server.allowed_origins")
    try:
        parse_keys((values.get("security") or {}).get("allowed_api_keys") or [])
    except ApiKeyConfigError as exc:
        raise ConfigFileError(path, str(exc), f"{REQUIRED_KEY}[{exc.index}]") from exc
    level = (values.get("logging") or {}).get("log_level")
    if level is not None and str(level).upper() not in LOG_LEVELS:
        raise ConfigFileError(path, f"must be one of {', '.join(LOG_LEVELS)} (any case), got {level!r}", "logging.log_level")
    workers = (values.get("server") or {}).get("workers", 1)
    if isinstance(workers, int) and workers > 1:
        raise ConfigFileError(
            path, f"is {workers}, but only 1 worker is supported: a process holds its loaded models and its "
            "requests. Set 1; to use more cores or machines, run several servers with resource_manager.backend: "
            "redis (Redis shares slots, queue, jobs, ledger and limits) behind a load balancer (README: Deployment)",
            "server.workers")
    surfaces = (values.get("security") or {}).get("keyless_loopback_surfaces") or []
    for surface in surfaces:
        if surface not in ("openai", "ollama"):
            raise ConfigFileError(path, f"unknown surface {surface!r}; use 'ollama' and/or 'openai'",
                                  "security.keyless_loopback_surfaces")
    for alias, target in (values.get("model_aliases") or {}).items():
        if target is not None and not isinstance(target, str):
            raise ConfigFileError(path, "must be a generation type (ttt, tti, tts, stt, embedding) or a model id (a string)",
                                  f"model_aliases.{alias}")
    for name, override in (values.get("personalities_config") or {}).items():
        if override is not None and not isinstance(override, dict):
            raise ConfigFileError(path, "must be a mapping such as {enabled: false}", f"personalities_config.{name}")


def load_server_config(config_dir: Path) -> ServerConfig:
    """Load ``main_config.*`` from ``config_dir``; raise ConfigFileError on any problem."""
    config_dir = config_dir.resolve()
    try:
        file = find_main_config(config_dir)
    except FileExistsError as exc:
        raise ConfigFileError(config_dir, str(exc)) from exc
    if file is None:
        raise ConfigFileError(
            config_dir / "main_config.yaml",
            "no main configuration found; run 'lollms-server init' (or the wizard) to create one",
        )
    loaded = load_guarded(file, MAIN_SCHEMA)
    check_complete(file, loaded.raw, migrated=loaded.migrated)
    check_main_values(file, loaded.values)
    paths = _resolve_paths(loaded.values, config_dir)
    key = resolve_encryption_key(loaded.values, file, paths)
    return ServerConfig(
        file=file, values=loaded.values, paths=paths, encryption_key=key,
        migrated_from=loaded.file_version if loaded.migrated else None,
    )
