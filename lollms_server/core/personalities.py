"""Personalities: a folder with config.yaml (+ assets/, + optional scripts/workflow.py)."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import inspect
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable

import yaml
from packaging.requirements import InvalidRequirement, Requirement
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lollms_server.core.errors import NotFoundError
from lollms_server.core.paths import PathEscapeError, resolve_inside

log = logging.getLogger("lollms_server.personalities")

# config.yaml keys of LoLLMs personalities mapped to generation parameters
_PARAM_KEYS = {
    "model_temperature": "temperature",
    "model_n_predicts": "max_tokens",
    "model_top_k": "top_k",
    "model_top_p": "top_p",
    "model_repeat_penalty": "repeat_penalty",
    "model_repeat_last_n": "repeat_last_n",
}

Workflow = Callable[[str, dict[str, Any], dict[str, Any]], Awaitable[Any]]


class PersonalityConfig(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    author: str | None = None
    version: str | int | float | None = None
    personality_description: str | None = None
    description: str | None = None
    personality_conditioning: str | None = None
    welcome_message: str | None = None
    user_message_prefix: str | None = None
    ai_message_prefix: str | None = None
    category: str | None = None
    language: str | None = None
    tags: list[str] = Field(default_factory=list)
    icon: str | None = None
    script_path: str | None = None
    dependencies: list[str] = Field(default_factory=list)
    disclaimer: str | None = None
    executes_code: bool = Field(default=False, description="True if the workflow runs generated code.")
    parameters: dict[str, Any] = Field(default_factory=dict)
    binding_name: str | None = None
    model_name: str | None = None
    functions: list[str] = Field(
        default_factory=list,
        description="Server-side functions (module.function) this personality may use; offered when a request names none.")


@dataclass
class Personality:
    folder_name: str
    path: Path
    config: PersonalityConfig
    workflow: Workflow | None = None
    icon_path: Path | None = None
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def is_scripted(self) -> bool:
        return self.workflow is not None

    @property
    def conditioning(self) -> str | None:
        return (self.config.personality_conditioning or "").strip() or None

    def info(self) -> dict[str, Any]:
        c = self.config
        return {
            "name": self.folder_name,
            "author": c.author,
            "version": None if c.version is None else str(c.version),
            "description": (c.personality_description or c.description or "").strip() or None,
            "category": c.category,
            "language": c.language,
            "tags": list(c.tags),
            "icon": c.icon,
            "is_scripted": self.is_scripted,
            "path": str(self.path),
        }


def _generation_params(config: PersonalityConfig) -> dict[str, Any]:
    extra = config.model_extra or {}
    params = {target: extra[src] for src, target in _PARAM_KEYS.items() if extra.get(src) is not None}
    params.update(config.parameters)
    return params


def missing_dependencies(requirements: list[str]) -> list[str]:
    """Requirements (pip syntax) that are not installed. Nothing is ever installed at run time."""
    missing: list[str] = []
    for text in requirements:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            missing.append(f"{text} (not a valid requirement)")
            continue
        try:
            installed = importlib.metadata.version(req.name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(text)
            continue
        if req.specifier and not req.specifier.contains(installed, prereleases=True):
            missing.append(f"{text} (installed: {installed})")
    return missing


def _load_workflow(folder: Path, script_rel: str, module_name: str) -> Workflow:
    script = resolve_inside(folder, script_rel)
    if not script.is_file():
        raise FileNotFoundError(f"script_path '{script_rel}' does not exist")
    spec = importlib.util.spec_from_file_location(module_name, script)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {script}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    fn = getattr(module, "run_workflow", None)
    if fn is None or not inspect.iscoroutinefunction(fn):
        raise TypeError(f"{script_rel} must define 'async def run_workflow(prompt, params, context)'")
    return fn  # type: ignore[no-any-return]


class PersonalityManager:
    def __init__(self, folders: list[Path], overrides: dict[str, Any]) -> None:
        self.folders = folders
        self.overrides = overrides
        self.personalities: dict[str, Personality] = {}
        self.disabled: dict[str, Path] = {}
        self.load_errors: dict[str, str] = {}

    def _enabled(self, name: str, config: PersonalityConfig) -> bool:
        override = self.overrides.get(name)
        if isinstance(override, dict) and "enabled" in override:
            return bool(override["enabled"])
        return not config.executes_code  # code-executing personalities are off unless enabled explicitly

    def discover(self) -> None:
        for base in self.folders:
            if not base.is_dir():
                continue
            for folder in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
                if (folder / "config.yaml").is_file():
                    self._load(folder)

    def _load(self, folder: Path) -> None:
        name = folder.name
        try:
            raw = yaml.safe_load((folder / "config.yaml").read_text(encoding="utf-8")) or {}
            if not isinstance(raw, dict):
                raise ValueError("config.yaml must be a mapping")
            raw.setdefault("name", name)
            config = PersonalityConfig.model_validate(raw)
            if not self._enabled(name, config):
                self.disabled[name] = folder
                self.personalities.pop(name, None)
                return
            missing = missing_dependencies(config.dependencies)
            if missing:
                raise ValueError(
                    f"needs packages that are not installed: {', '.join(missing)}; install them with "
                    f"venv/bin/pip install {' '.join(repr(m.split(' (')[0]) for m in missing)} and restart"
                )
            workflow = None
            if config.script_path:
                workflow = _load_workflow(folder, config.script_path, f"lollms_personality_{name}")
            icon = None
            if config.icon:
                try:
                    candidate = resolve_inside(folder / "assets", config.icon)
                    icon = candidate if candidate.is_file() else None
                except PathEscapeError:
                    icon = None
            self.personalities[name] = Personality(
                folder_name=name, path=folder, config=config, workflow=workflow, icon_path=icon,
                params=_generation_params(config),
            )
            self.load_errors.pop(name, None)
        except (PathEscapeError, ValidationError, ValueError, OSError, yaml.YAMLError, ImportError, TypeError,
                SyntaxError) as exc:
            self.load_errors[name] = f"{type(exc).__name__}: {exc}"
            log.error("personality '%s' not loaded: %s", name, self.load_errors[name])

    def get(self, name: str) -> Personality:
        p = self.personalities.get(name)
        if p is None:
            if name in self.disabled:
                raise NotFoundError(f"personality '{name}' is disabled in personalities_config")
            raise NotFoundError(f"personality '{name}' not found")
        return p
