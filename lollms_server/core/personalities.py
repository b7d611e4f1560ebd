"""Personalities: a folder with config.yaml (+ assets/, + optional scripts/workflow.py).

Folders are found in the zoo, in installed packages (entry-point group ``lollms_server.personalities``)
and in the personal folder; later sources replace earlier ones of the same name. Standard LOLLMS
personality zoos load unchanged: they nest personalities in category folders
(``<category>/<personality>/config.yaml``). A personality directly in a root is named by its folder;
a nested one by its path, ``<category>/<personality>`` (as LOLLMS names them), and may also be asked for
by its bare folder name while that name is unambiguous.
"""

from __future__ import annotations

import functools
import importlib.metadata
import logging
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lollms_server.core import plugins
from lollms_server.core.errors import NotFoundError, echo
from lollms_server.core.paths import PathEscapeError, resolve_inside
from lollms_server.core.workflows import Workflow, load_workflow

log = logging.getLogger("lollms_server.personalities")

CONFIG_FILE = "config.yaml"
MAX_DEPTH = 4  # category folders nested deeper than this are not searched
_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# config.yaml keys of LOLLMS personalities mapped to generation parameters
_PARAM_KEYS = {
    "model_temperature": "temperature",
    "model_n_predicts": "max_tokens",
    "model_top_k": "top_k",
    "model_top_p": "top_p",
    "model_repeat_penalty": "repeat_penalty",
    "model_repeat_last_n": "repeat_last_n",
}
# text fields that real files sometimes write as a list of lines
_TEXT_FIELDS = ("personality_conditioning", "personality_description", "description", "welcome_message",
                "user_message_prefix", "ai_message_prefix", "link_text", "disclaimer", "language", "author", "name")
_LIST_FIELDS = ("tags", "dependencies", "anti_prompts")


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
    link_text: str | None = None
    category: str | None = None
    language: str | None = None
    tags: list[str] = Field(default_factory=list)
    icon: str | None = None
    script_path: str | None = None
    dependencies: list[str] = Field(default_factory=list)
    anti_prompts: list[str] = Field(default_factory=list, description="Stop sequences of the personality.")
    disclaimer: str | None = None
    executes_code: bool = Field(default=False, description="True if the workflow runs generated code.")
    parameters: dict[str, Any] = Field(default_factory=dict)
    binding_name: str | None = None
    model_name: str | None = None
    functions: list[str] = Field(
        default_factory=list,
        description="Server-side functions (module.function) this personality may use; offered when a request names none.")
    tool_choice: str | None = Field(
        default=None, description="auto, required or none: how the first round offers the functions (a request's tool_choice wins).")


def normalise_config(raw: dict[str, Any]) -> dict[str, Any]:
    """Accept the variants real LOLLMS files use: lists of lines for texts, a list for ``category``…"""
    data = dict(raw)
    for key in _TEXT_FIELDS:
        value = data.get(key)
        if isinstance(value, list):
            data[key] = "\n".join(str(v) for v in value if v is not None)
        elif value is not None and not isinstance(value, str):
            data[key] = str(value)
    category = data.get("category")
    if isinstance(category, list):
        names = [str(c) for c in category if c is not None]
        data["category"] = names[0] if names else None
        data["tags"] = [*(_as_list(data.get("tags"))), *names[1:]]
    elif category is not None and not isinstance(category, str):
        data["category"] = str(category)
    for key in _LIST_FIELDS:
        if key in data:
            data[key] = _as_list(data[key])
    if data.get("icon") is not None and not isinstance(data["icon"], str):
        data["icon"] = None
    return data


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value if v is not None and str(v) != ""]
    return [str(value)] if str(value) else []


@dataclass
class Personality:
    name: str
    path: Path
    config: PersonalityConfig
    workflow: Workflow | None = None
    icon_path: Path | None = None
    params: dict[str, Any] = field(default_factory=dict)
    missing_dependencies: list[str] = field(default_factory=list)

    @property
    def folder_name(self) -> str:
        """The personality's name (kept under its old name for callers of the first API)."""
        return self.name

    @property
    def is_scripted(self) -> bool:
        return self.workflow is not None

    @property
    def conditioning(self) -> str | None:
        return (self.config.personality_conditioning or "").strip() or None

    def info(self) -> dict[str, Any]:
        c = self.config
        return {
            "name": self.name,
            "author": c.author,
            "version": None if c.version is None else str(c.version),
            "description": (c.personality_description or c.description or "").strip() or None,
            "category": c.category,
            "language": c.language,
            "tags": list(c.tags),
            "icon": c.icon,
            "is_scripted": self.is_scripted,
            "path": str(self.path),
            "welcome_message": c.welcome_message,
            "missing_dependencies": list(self.missing_dependencies),
        }


def _generation_params(config: PersonalityConfig) -> dict[str, Any]:
    extra = config.model_extra or {}
    params = {target: extra[src] for src, target in _PARAM_KEYS.items() if extra.get(src) is not None}
    if config.anti_prompts:
        params["stop"] = list(config.anti_prompts)
    params.update(config.parameters)
    return params


def _normalise_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_versions() -> dict[str, str]:
    """Installed distributions (normalised name -> version), read from the ``.dist-info``/``.egg-info``
    folder names on ``sys.path``: one directory listing per folder, no metadata file opened."""
    found: dict[str, str] = {}
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            stem, dot, ext = name.rpartition(".")
            if dot and ext in ("dist-info", "egg-info") and "-" in stem:
                dist, _, version = stem.partition("-")
                found.setdefault(_normalise_name(dist), version.split("-")[0])
    return found


def missing_dependencies(requirements: list[str], installed: dict[str, str] | None = None) -> list[str]:
    """Requirements (pip syntax) that are not installed. Nothing is ever installed at run time.

    ``installed`` (see installed_versions) answers quickly; without it each name is looked up."""
    if not requirements:
        return []
    from packaging.requirements import InvalidRequirement, Requirement  # only personalities that declare some

    missing: list[str] = []
    for text in requirements:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            missing.append(f"{text} (not a valid requirement)")
            continue
        version = installed.get(_normalise_name(req.name)) if installed is not None else None
        if version is None:
            try:
                version = importlib.metadata.version(req.name) if installed is None else None
            except importlib.metadata.PackageNotFoundError:
                version = None
        if version is None:
            missing.append(text)
        elif req.specifier and not req.specifier.contains(version, prereleases=True):
            missing.append(f"{text} (installed: {version})")
    return missing


def _entry_point_folder(ep: importlib.metadata.EntryPoint) -> Path:
    return plugins.object_folder(plugins.load_entry_point(ep))


def find_personality_folders(root: Path) -> list[tuple[str, Path]]:
    """``(name, folder)`` of every personality below ``root``: its own folder name at the top level,
    ``category/.../folder`` when nested. A folder holding config.yaml is not searched further."""
    found: list[tuple[str, Path]] = []

    def walk(folder: Path, prefix: str, depth: int) -> None:
        for sub in plugins.subfolders(folder):
            name = f"{prefix}{sub.name}"
            if (sub / CONFIG_FILE).is_file():
                found.append((name, sub))
            elif depth < MAX_DEPTH:
                walk(sub, f"{name}/", depth + 1)

    if (root / CONFIG_FILE).is_file():
        return [(root.name, root)]
    walk(root, "", 1)
    return found


class PersonalityManager:
    def __init__(self, sources: list[tuple[Path, str]], overrides: dict[str, Any], *, entry_points: bool = True) -> None:
        self.sources = sources  # (folder, "zoo" | "personal")
        self.overrides = overrides
        self.use_entry_points = entry_points
        self.personalities: dict[str, Personality] = {}
        self.disabled: dict[str, Path] = {}
        self._errors = plugins.LoadErrors()
        self._installed: dict[str, str] = {}

    @property
    def load_errors(self) -> dict[str, str]:
        return self._errors.errors

    def _enabled(self, name: str, config: PersonalityConfig) -> bool:
        for key in (name, name.rsplit("/", 1)[-1]):
            override = self.overrides.get(key)
            if isinstance(override, dict) and "enabled" in override:
                return bool(override["enabled"])
        return not config.executes_code  # code-executing personalities are off unless enabled explicitly

    def roots(self) -> list[tuple[Path, str | None]]:
        """Folders to search, in order: zoo, installed packages, personal (``(folder, entry point name)``)."""
        out: list[tuple[Path, str | None]] = [(f, None) for f, src in self.sources if src == "zoo"]
        if self.use_entry_points:
            for ep in plugins.entry_points_of(plugins.PERSONALITIES_GROUP):
                folder = self._errors.attempt(f"{ep.name} (entry point)", functools.partial(_entry_point_folder, ep))
                if folder is not None:
                    out.append((folder, ep.name))
        out.extend((f, None) for f, src in self.sources if src != "zoo")
        return out

    def discover(self) -> None:
        self._installed = installed_versions()
        for base, ep_name in self.roots():
            if not base.is_dir():
                if ep_name is not None:
                    self._errors.add(f"{ep_name} (entry point)", f"folder {base} does not exist")
                continue
            for name, folder in find_personality_folders(base):
                if ep_name is not None and folder == base:
                    name = ep_name
                self._load(name, folder)

    def _load(self, name: str, folder: Path) -> None:
        try:
            raw = yaml.load((folder / CONFIG_FILE).read_text(encoding="utf-8"), Loader=_YAML_LOADER) or {}
            if not isinstance(raw, dict):
                raise ValueError(f"{CONFIG_FILE} must be a mapping")
            raw.setdefault("name", folder.name)
            config = PersonalityConfig.model_validate(normalise_config(raw))
            if not self._enabled(name, config):
                self.disabled[name] = folder
                self.personalities.pop(name, None)
                return
            missing = missing_dependencies(config.dependencies, self._installed)
            workflow = None
            if config.script_path:
                if missing:  # confirm through package metadata before refusing a workflow
                    missing = missing_dependencies(config.dependencies)
                if missing:
                    raise ValueError(
                        f"its workflow needs packages that are not installed: {', '.join(missing)}; install them "
                        f"with venv/bin/pip install {' '.join(repr(m.split(' (')[0]) for m in missing)} and restart")
                workflow = load_workflow(folder, config.script_path, name)
            self.personalities[name] = Personality(
                name=name, path=folder, config=config, workflow=workflow, icon_path=self._icon(folder, config),
                params=_generation_params(config), missing_dependencies=missing,
            )
            self._errors.clear(name)
        except (PathEscapeError, ValidationError, ValueError, OSError, yaml.YAMLError, ImportError, TypeError,
                SyntaxError, plugins.PluginLoadError) as exc:
            self.personalities.pop(name, None)
            self._errors.add(name, plugins.describe(exc))
            log.error("personality '%s' not loaded: %s", name, self.load_errors[name])

    @staticmethod
    def _icon(folder: Path, config: PersonalityConfig) -> Path | None:
        if not config.icon:
            return None
        for base in (folder / "assets", folder):
            try:
                candidate = resolve_inside(base, config.icon)
            except PathEscapeError:
                return None
            if candidate.is_file():
                return candidate
        return None

    def get(self, name: str) -> Personality:
        p = self.personalities.get(name)
        if p is not None:
            return p
        if name in self.disabled:
            raise NotFoundError(f"personality '{echo(name)}' is disabled in personalities_config")
        by_folder = [n for n in self.personalities if n.rsplit("/", 1)[-1] == name]
        if len(by_folder) == 1:
            return self.personalities[by_folder[0]]
        if by_folder:
            raise NotFoundError(f"personality '{echo(name)}' is ambiguous; use one of: {', '.join(sorted(by_folder))}")
        raise NotFoundError(f"personality '{echo(name)}' not found")
