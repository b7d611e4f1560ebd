"""Binding instances: one file per instance in the instance bindings folder, selected by bindings_map."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lollms_server.core.bindings.base import Binding
from lollms_server.core.bindings.parameters import GenerationParameter
from lollms_server.core.bindings.registry import BindingRegistry, BindingType
from lollms_server.core.bindings.spec_style import SpecBindingAdapter
from lollms_server.core.errors import NotFoundError, UnavailableError, echo
from lollms_server.core.guarded_config import ConfigFileError, load_guarded, looks_encrypted
from lollms_server.core.paths import CONFIG_EXTENSIONS
from lollms_server.core.resources import ResourceManager
from lollms_server.core.secrets import REDACTOR, collect_secret_values, mask_values

log = logging.getLogger("lollms_server.bindings")


@dataclass
class InstanceRecord:
    name: str
    type_name: str
    file: Path | None = None
    values: dict[str, Any] = field(default_factory=dict)
    binding: Binding | None = None
    error: str | None = None
    no_model: str | None = None  # loaded, but a request naming no model cannot be served: why, and the fix

    @property
    def state(self) -> str:
        """``active``, ``no_model`` (loaded, no usable default model) or ``error`` (failed to load)."""
        if self.binding is None:
            return "error"
        return "no_model" if self.no_model else "active"

    @property
    def state_detail(self) -> str | None:
        return self.error if self.binding is None else self.no_model

    def masked(self, secrets: set[str]) -> dict[str, Any]:
        return mask_values(self.values, secrets) if self.values else {"type": self.type_name, "binding_instance_name": self.name}


def find_instance_file(folder: Path, name: str) -> Path | None:
    found = [folder / f"{name}{ext}" for ext in CONFIG_EXTENSIONS if (folder / f"{name}{ext}").is_file()]
    if len(found) > 1:
        raise ConfigFileError(found[0], f"several files for instance '{name}': {', '.join(p.name for p in found)}")
    return found[0] if found else None


class BindingManager:
    def __init__(
        self,
        registry: BindingRegistry,
        bindings_map: dict[str, str],
        instance_dir: Path,
        resource_manager: ResourceManager,
        encryption_key: bytes | None = None,
    ) -> None:
        self.registry = registry
        self.bindings_map = dict(bindings_map)
        self.instance_dir = instance_dir
        self.resource_manager = resource_manager
        self._key = encryption_key
        self.instances: dict[str, InstanceRecord] = {}

    # ---- loading -------------------------------------------------------------------------------
    async def load_all(self) -> None:
        await asyncio.gather(*(self._load_one(name, t) for name, t in self.bindings_map.items()))

    def _read_instance(self, name: str, btype: BindingType) -> tuple[Path, dict[str, Any]]:
        file = find_instance_file(self.instance_dir, name)
        if file is None:
            raise ConfigFileError(self.instance_dir / f"{name}.yaml", "instance file not found")
        schema = btype.card.full_instance_schema()
        try:
            loaded = load_guarded(file, schema, self._key)
        except ConfigFileError:
            if self._key is None or looks_encrypted(file):
                raise
            loaded = load_guarded(file, schema, None)  # a plain file beside encrypted ones still loads
            log.warning("instance file %s is not encrypted although an encryption key is set; "
                        "save it again with the wizard to encrypt it", file)
        values = loaded.values
        if values.get("type") and values["type"] != btype.card.type_name:
            raise ConfigFileError(file, f"is '{values['type']}' but bindings_map says '{btype.card.type_name}'", "type")
        if values.get("binding_instance_name") and values["binding_instance_name"] != name:
            raise ConfigFileError(file, f"must equal the file name '{name}'", "binding_instance_name")
        values["type"] = btype.card.type_name
        values["binding_instance_name"] = name
        return file, values

    async def _load_one(self, name: str, type_name: str) -> None:
        rec = InstanceRecord(name=name, type_name=type_name)
        self.instances[name] = rec
        btype = self.registry.get(type_name)
        if btype is None:
            why = self.registry.error_of(type_name) or "no such binding type was discovered"
            rec.error = f"binding type '{type_name}' unavailable: {why}"
            log.error("instance '%s': %s", name, rec.error)
            return
        try:
            rec.file, rec.values = await asyncio.to_thread(self._read_instance, name, btype)
            REDACTOR.add(*collect_secret_values(rec.values, btype.card.secret_fields()))
            binding: Binding = btype.cls(dict(rec.values), self.resource_manager)
            if btype.style == "spec":
                binding = SpecBindingAdapter(binding, supports_streaming=btype.card.supports_streaming)
            await binding.startup()
            ok, message = await binding.health_check()
            if not ok:
                raise RuntimeError(f"health check failed: {message}")
            rec.binding = binding
            rec.no_model = await self._model_problem(binding)
            if rec.no_model:
                log.warning("binding instance '%s' (%s) has no usable model: %s", name, type_name, rec.no_model)
            else:
                log.info("binding instance '%s' (%s) ready", name, type_name)
        except Exception as exc:  # one broken instance never stops the server
            rec.error = REDACTOR.redact(f"{type(exc).__name__}: {exc}" if not isinstance(exc, ConfigFileError) else str(exc))
            log.error("binding instance '%s' failed to load: %s", name, rec.error)

    def attach_services(self, services: Any) -> None:
        """Hand the running services to every loaded instance; one that refuses them is marked broken."""
        for rec in self.instances.values():
            if rec.binding is None:
                continue
            try:
                rec.binding.attach_services(services)
            except Exception as exc:  # one broken instance never stops the server
                rec.error = REDACTOR.redact(f"{type(exc).__name__}: {exc}")
                rec.binding = None
                log.error("binding instance '%s' failed to load: %s", rec.name, rec.error)

    @staticmethod
    async def _model_problem(binding: Binding) -> str | None:
        try:
            problem = await binding.model_problem()
        except Exception as exc:  # a binding that cannot tell is treated as ready; requests will say more
            log.debug("model_problem() of '%s' failed: %s", binding.instance_name, REDACTOR.redact(str(exc)))
            return None
        return REDACTOR.redact(problem) if problem else None

    async def shutdown(self) -> None:
        for rec in self.instances.values():
            if rec.binding is not None:
                try:
                    await rec.binding.shutdown()
                except Exception as exc:
                    log.warning("instance '%s' did not shut down cleanly: %s", rec.name, REDACTOR.redact(str(exc)))

    # ---- lookup --------------------------------------------------------------------------------
    def get(self, name: str) -> Binding:
        rec = self.instances.get(name)
        if rec is None:
            raise NotFoundError(f"binding instance '{echo(name)}' not found (configured: {', '.join(sorted(self.instances)) or 'none'})")
        if rec.binding is None:
            raise UnavailableError(f"binding instance '{name}' failed to load: {rec.error}")
        return rec.binding

    def secrets_of(self, rec: InstanceRecord) -> set[str]:
        btype = self.registry.get(rec.type_name)
        return btype.card.secret_fields() if btype else set()

    def masked_instances(self, only_active: bool = False, *, with_parameters: bool = False) -> dict[str, dict[str, Any]]:
        """Instance settings with secrets masked; ``with_parameters`` adds ``parameters`` where this
        instance's generation-parameter defaults differ from its type's."""
        out: dict[str, dict[str, Any]] = {}
        for name, rec in sorted(self.instances.items()):
            if only_active and rec.binding is None:
                continue
            out[name] = rec.masked(self.secrets_of(rec))
            btype = self.registry.get(rec.type_name)
            own = btype.card.instance_parameters(rec.values) if with_parameters and btype and rec.values else None
            if own is not None:
                out[name]["parameters"] = own
            runtime = rec.binding.runtime_info() if rec.binding is not None else {}
            if runtime:
                out[name]["runtime"] = runtime
        return out

    def declared_parameters(self, name: str) -> list[GenerationParameter]:
        rec = self.instances.get(name)
        btype = self.registry.get(rec.type_name) if rec else None
        return btype.card.parameters if btype else []

    def states(self) -> dict[str, dict[str, str | None]]:
        """Every configured instance: its state (active, no_model, error) and the reason / fix in words."""
        return {name: {"state": rec.state, "detail": rec.state_detail} for name, rec in sorted(self.instances.items())}

    def load_errors(self) -> dict[str, str]:
        errors = {name: rec.error for name, rec in self.instances.items() if rec.error}
        return {**self.registry.load_errors, **errors}
