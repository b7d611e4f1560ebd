"""Services: the one object holding every manager of a running server (built at start-up)."""

from __future__ import annotations

import asyncio
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from lollms_server.core.bindings.manager import BindingManager
from lollms_server.core.bindings.registry import BindingRegistry
from lollms_server.core.config import ServerConfig
from lollms_server.core.embeddings import EmbeddingService
from lollms_server.core.extensions import ExtensionManager
from lollms_server.core.filters import FilterManager
from lollms_server.core.functions import FunctionManager
from lollms_server.core.metrics import Metrics
from lollms_server.core.generation import GenerationService
from lollms_server.core.job_runner import JobRunner
from lollms_server.core.jobs import JobService, JobSettings, JobStore
from lollms_server.core.jobs_memory import MemoryJobStore
from lollms_server.core.personalities import PersonalityManager
from lollms_server.core.resources import ResourceManager
from lollms_server.core.paths import PROJECT_ROOT, ZOOS_DIR, resolve_config_path, resolve_project_path
from lollms_server.core.plugin_settings import PluginSettings
from lollms_server.core.redis_conn import key_prefix, redis_url, shared_state_enabled
from lollms_server.core.secrets import REDACTOR
from lollms_server.core.telemetry import Telemetry, build_telemetry

log = logging.getLogger("lollms_server")


@dataclass
class Services:
    config: ServerConfig
    registry: BindingRegistry
    bindings: BindingManager
    personalities: PersonalityManager
    functions: FunctionManager
    resources: ResourceManager
    telemetry: Telemetry = field(default_factory=Telemetry)
    filters: FilterManager | None = None
    extensions: ExtensionManager | None = None
    jobs: JobService | None = None
    generation: GenerationService = field(init=False)
    embeddings: EmbeddingService = field(init=False)

    def __post_init__(self) -> None:
        self.generation = GenerationService(self.config, self.bindings, self.personalities, self.functions, self.resources,
                                            self.telemetry, self.filters)
        self.embeddings = EmbeddingService(self.config, self.bindings)


def register_host_paths(config: ServerConfig) -> None:
    """Clients see folders relative to the config or project folder, other configured folders by their key."""
    bases = (config.paths.config_dir, PROJECT_ROOT)
    labelled: list[tuple[str, Path]] = [("models_folder", config.paths.models_dir)]
    labelled += [("personalities_folder", d) for d in config.paths.personalities_dirs]
    labelled += [("functions_folder", d) for d in config.paths.functions_dirs]
    labelled += [("bindings_folder", d) for d, _ in config.paths.bindings_sources]
    labelled.append(("instance_bindings_folder", config.paths.instance_bindings_dir))
    resolved_bases = [b.resolve() for b in bases]  # (each resolve() reads the file system)
    for label, folder in labelled:
        resolved = folder.resolve()
        if not any(resolved == b or b in resolved.parents for b in resolved_bases):
            REDACTOR.add_path_root(folder, f"<{label}>")
    for base in bases:
        REDACTOR.add_path_root(base, "")
    REDACTOR.add_path_root(Path(sys.prefix), "<python>")
    REDACTOR.add_path_root(Path.home(), "~")


async def build_services(config: ServerConfig, metrics: Metrics | None = None, *, run_jobs: bool | None = None) -> Services:
    """Every manager, started. ``run_jobs``: run jobs in this process (None: as ``jobs.run_locally`` says)."""
    REDACTOR.add(config.api_keys)
    register_host_paths(config)
    for warning in config.security_warnings():
        log.warning("SECURITY: %s", warning)
    if config.encryption_key:
        REDACTOR.add(config.encryption_key.decode())
    REDACTOR.add(config.section("metrics").get("token"))
    rm = config.section("resource_manager")
    resources = build_resource_manager(rm)
    await resources.start()
    registry = BindingRegistry()
    personalities = PersonalityManager(config.paths.personalities_sources, config.section("personalities_config"))
    functions = FunctionManager(config.paths.functions_dirs)
    ext_cfg = config.section("extensions")
    settings = plugin_settings(config)
    filters = FilterManager(_sources(ext_cfg, "filters", "filters_folder"), settings)
    extensions = ExtensionManager(_sources(ext_cfg, "extensions", "extensions_folder"), settings,
                                  [str(n) for n in ext_cfg.get("disabled") or []])
    extensions.attach(SimpleNamespace(functions=functions, filters=filters, registry=registry))

    def scan() -> None:
        settings.load()
        registry.discover(config.paths.bindings_sources)
        personalities.discover()
        functions.discover()
        filters.discover()
        if ext_cfg.get("enabled", True):
            extensions.install_all()  # before instances load: extensions may bring binding types

    await asyncio.to_thread(scan)
    bindings = BindingManager(
        registry, config.bindings_map, config.paths.instance_bindings_dir, resources, config.encryption_key
    )
    await bindings.load_all()
    telemetry = build_telemetry(config, metrics)
    await telemetry.start()
    services = Services(config, registry, bindings, personalities, functions, resources, telemetry, filters, extensions)
    bindings.attach_services(services)
    log.info(
        "ready: %d binding types, %d/%d instances, %d personalities, %d functions",
        registry.known(), sum(1 for r in bindings.instances.values() if r.binding), len(bindings.instances),
        len(personalities.personalities), len(functions.functions),
    )
    if telemetry.metrics is not None:
        telemetry.metrics.watch(services)
    extensions.bind(services)
    await extensions.start_all()
    services.jobs = build_job_service(config, services, run_jobs)
    await services.jobs.start()
    return services


def build_job_service(config: ServerConfig, services: Services, run_jobs: bool | None = None) -> JobService:
    """Jobs in this process, or in Redis with ``resource_manager.backend: redis`` (shared by every replica)."""
    settings = JobSettings.from_section(config.section("jobs"))
    rm = config.section("resource_manager")
    if shared_state_enabled(rm):
        from lollms_server.core.jobs_redis import RedisJobStore

        store: JobStore = RedisJobStore(redis_url(rm), settings, prefix=f"{key_prefix(rm)}:jobs")
        runs = settings.run_locally if run_jobs is None else run_jobs
    else:
        store, runs = MemoryJobStore(settings), True  # nobody else could run them
    return JobService(store, settings, JobRunner(store, services, settings) if runs else None)


def build_resource_manager(rm: dict[str, Any]) -> ResourceManager:
    """The ResourceManager with the slot store ``resource_manager.backend`` names (memory or redis)."""
    strategy, limit = rm.get("gpu_strategy", "semaphore"), int(rm.get("gpu_limit", 1))
    timeout, max_queue = float(rm.get("queue_timeout", 120)), int(rm.get("max_queue", 512))
    backend = str(rm.get("backend") or "memory")
    if backend == "memory":
        return ResourceManager(strategy, limit, timeout, max_queue)
    if backend != "redis":
        raise ValueError(f"resource_manager.backend: unknown backend '{backend}' (memory or redis)")
    url = redis_url(rm)
    from lollms_server.core.redis_slots import RedisSlotStore

    probe = ResourceManager(strategy, limit, timeout, max_queue)  # the limit the strategy gives (None for 'none')
    store = RedisSlotStore(url, probe.limit or 1, probe.max_queue, float(rm.get("lease_seconds", 10)),
                           prefix=f"{key_prefix(rm)}:slots")
    return ResourceManager(strategy, limit, timeout, max_queue, store=store if probe.limit else None)


def plugin_settings(config: ServerConfig) -> PluginSettings:
    name = str(config.section("extensions").get("settings_file") or "plugin_settings.yaml")
    path = resolve_config_path(name, config.paths.config_dir)
    assert path is not None
    return PluginSettings(path, config.encryption_key)


def _sources(ext_cfg: dict[str, Any], zoo_folder: str, personal_key: str) -> list[tuple[Path, str]]:
    personal = resolve_project_path(str(ext_cfg.get(personal_key) or f"personal_{zoo_folder}"))
    return [(ZOOS_DIR / zoo_folder, "zoo")] + ([(personal, "personal")] if personal else [])


async def close_services(services: Services) -> None:
    """Stop in reverse order of start: bindings, then the ledger (its queue is written out)."""
    try:
        if services.jobs is not None:  # first: running jobs finish or go back to the queue while bindings still work
            await services.jobs.close()
        if services.extensions is not None:
            await services.extensions.stop_all()
        await services.bindings.shutdown()
    finally:
        await services.telemetry.close()
        await services.resources.close()
