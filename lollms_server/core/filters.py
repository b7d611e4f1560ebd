"""Filters: ``inlet`` before the binding, ``stream`` on every chunk, ``outlet`` after (Open WebUI's model).

A filter is a class named ``Filter`` in a ``.py`` file of ``zoos/filters/`` or the personal filters
folder, an object an extension registers, or one an installed package declares (entry-point group
``lollms_server.filters``). Its methods take ``(data, ctx)`` and may be sync or async:

- ``inlet(request: FilterRequest, ctx) -> FilterRequest | None`` — edit the conversation or parameters;
  raise ``FilterRejected("why")`` to refuse the request with a 400.
- ``stream(event: dict, ctx) -> dict | None`` — each text chunk ``{"type": "chunk", "content", "thoughts"}``;
  return None to drop it. At the end of a stream it gets ``{"type": "flush", "content": ""}`` and may
  return held-back text.
- ``outlet(outputs: list[dict], ctx) -> list[dict] | None`` — the final outputs (JSON and stream).

``ctx`` carries ``valves`` (the filter's ``Valves`` model), ``user_valves`` (its ``UserValves`` for the
calling API key id), ``request_id``, ``key_id``, ``surface`` and a per-request ``state`` dict.
Filters are off until enabled (API or settings file), then apply globally or to chosen personalities and
binding instances, ordered by their ``priority`` valve. A filter that raises fails the request with a
clear error (424, or an ``error`` event in a stream) or is skipped, as its ``on_error`` valve says.
"""

from __future__ import annotations

import functools
import inspect
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from pydantic import BaseModel

from lollms_server.core.errors import BadRequestError, LollmsError
from lollms_server.core.plugin_settings import PluginSettings
from lollms_server.core.plugins import LoadErrors, describe, entry_points_of, import_file, load_entry_point
from lollms_server.core.secrets import REDACTOR
from lollms_server.core.valves import FilterValves, ValvesError, build

if TYPE_CHECKING:
    from lollms_server.core.bindings.base import GenerationTask
    from lollms_server.core.telemetry import Caller

log = logging.getLogger("lollms_server.filters")
FILTERS_GROUP = "lollms_server.filters"
HOOKS: tuple[str, ...] = ("inlet", "stream", "outlet")


class FilterRejected(Exception):
    """Raised by a filter to refuse a request on purpose: the client gets a 400 with this message."""


class FilterFailedError(LollmsError):
    """A filter raised unexpectedly (and its on_error valve says 'error')."""

    status_code = 424


@dataclass
class FilterRequest:
    """What ``inlet`` may change: messages (``role``/``content`` dicts, system first) and parameters."""

    messages: list[dict[str, str]]
    params: dict[str, Any]
    generation_type: str
    model: str | None
    binding: str | None
    personality: str | None


@dataclass
class FilterContext:
    valves: BaseModel
    user_valves: BaseModel | None
    request_id: str
    key_id: str | None
    surface: str
    state: dict[str, Any] = field(default_factory=dict)


@dataclass
class FilterSpec:
    name: str
    obj: Any
    source: str
    description: str
    valves_model: type[BaseModel]
    user_valves_model: type[BaseModel] | None

    @property
    def hooks(self) -> list[str]:
        return [h for h in HOOKS if callable(getattr(self.obj, h, None))]


def spec_of(obj: Any, name: str | None, source: str) -> FilterSpec:
    """Check a filter object (an instance or a class to instantiate) and describe it."""
    if inspect.isclass(obj):
        obj = obj()
    fname = str(name or getattr(obj, "name", "") or "").strip()
    if not fname or not fname.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"a filter needs a name of letters, digits, '_' or '-' (got {fname!r})")
    valves = getattr(obj, "Valves", None) or FilterValves
    user_valves = getattr(obj, "UserValves", None)
    for label, model in (("Valves", valves), ("UserValves", user_valves)):
        if model is not None and not (inspect.isclass(model) and issubclass(model, BaseModel)):
            raise ValueError(f"filter '{fname}': {label} must be a pydantic BaseModel class")
    if not any(callable(getattr(obj, h, None)) for h in HOOKS):
        raise ValueError(f"filter '{fname}' defines none of {', '.join(HOOKS)}")
    module = inspect.getmodule(type(obj))
    doc = getattr(obj, "description", None) or inspect.getdoc(type(obj)) or (inspect.getdoc(module) if module else "") or ""
    return FilterSpec(fname, obj, source, doc.strip().split("\n\n")[0], valves, user_valves)


@dataclass
class ActiveFilter:
    spec: FilterSpec
    ctx: FilterContext
    skipped: bool = False

    @property
    def on_error(self) -> str:
        return str(getattr(self.ctx.valves, "on_error", "error"))

    @property
    def priority(self) -> int:
        return int(getattr(self.ctx.valves, "priority", 0))


async def _call(fn: Any, *args: Any) -> Any:
    result = fn(*args)
    if inspect.isawaitable(result):
        result = await result
    return result


class FilterManager:
    def __init__(self, folders: list[tuple[Path, str]], settings: PluginSettings) -> None:
        self.folders = folders
        self.settings = settings
        self.filters: dict[str, FilterSpec] = {}
        self.errors = LoadErrors()
        self._valves: dict[str, BaseModel] = {}

    @property
    def load_errors(self) -> dict[str, str]:
        return dict(self.errors.errors)

    # ---- discovery -------------------------------------------------------------------------------
    def discover(self) -> None:
        for folder, source in self.folders:
            if not folder.is_dir():
                continue
            for file in sorted(folder.glob("*.py")):
                if file.name.startswith("_"):
                    continue
                module = self.errors.attempt(file.stem, functools.partial(import_file, file, f"lollms_{source}_filters_{file.stem}"))
                if module is None:
                    continue
                cls = getattr(module, "Filter", None)
                if cls is None:
                    self.errors.add(file.stem, f"{file.name} has no class named Filter")
                    continue
                self._attempt_register(cls, file.stem, source)
        for ep in entry_points_of(FILTERS_GROUP):
            obj = self.errors.attempt(ep.name, functools.partial(load_entry_point, ep))
            if obj is not None:
                self._attempt_register(getattr(obj, "Filter", obj), ep.name, "package")

    def _attempt_register(self, obj: Any, name: str, source: str) -> None:
        try:
            self.register(obj, name=name, source=source)
        except Exception as exc:  # one broken filter never stops the others
            self.errors.add(name, describe(exc))
            log.error("filter %s not loaded: %s", name, describe(exc))

    def register(self, obj: Any, *, name: str | None = None, source: str = "extension") -> FilterSpec:
        """Add a filter; a name already taken fails, naming both sources."""
        spec = spec_of(obj, name, source)
        if spec.name in self.filters:
            other = self.filters[spec.name]
            if source == "personal" and other.source == "zoo":  # a personal filter replaces the zoo one
                log.info("personal filter %s replaces the zoo one", spec.name)
            else:
                raise ValueError(f"filter name '{spec.name}' is registered twice: by {other.source} and by {source}")
        self.filters[spec.name] = spec
        self._valves[spec.name] = build(spec.valves_model, self.settings.entry("filters", spec.name).get("valves"),
                                        where=f"valves of filter '{spec.name}'")
        return spec

    # ---- configuration ---------------------------------------------------------------------------
    def get(self, name: str) -> FilterSpec:
        spec = self.filters.get(name)
        if spec is None:
            from lollms_server.core.errors import NotFoundError

            raise NotFoundError(f"filter '{name}' not found (known: {', '.join(sorted(self.filters)) or 'none'})")
        return spec

    def valves(self, name: str) -> BaseModel:
        return self._valves[name]

    def set_valves(self, name: str, values: BaseModel) -> None:
        self._valves[name] = values

    def user_valves(self, spec: FilterSpec, key_id: str | None) -> BaseModel | None:
        if spec.user_valves_model is None:
            return None
        stored = (self.settings.entry("filters", spec.name).get("user_valves") or {}).get(key_id or "", {})
        try:
            return build(spec.user_valves_model, stored, where=f"user valves of filter '{spec.name}'")
        except ValvesError as exc:
            log.warning("%s; using the defaults", exc)
            return spec.user_valves_model()

    def scope(self, name: str) -> dict[str, Any]:
        entry = self.settings.view("filters", name)
        return {
            "enabled": bool(entry.get("enabled", False)),
            "global": bool(entry.get("global", True)),
            "personalities": [str(p) for p in entry.get("personalities") or []],
            "bindings": [str(b) for b in entry.get("bindings") or []],
        }

    def applies(self, name: str, personality: str | None, binding: str | None) -> bool:
        entry = self.settings.view("filters", name)  # (read in place: this runs for every filter of every request)
        if not entry.get("enabled", False):
            return False
        if entry.get("global", True):
            return True
        return (personality is not None and personality in (str(p) for p in entry.get("personalities") or [])) or (
            binding is not None and binding in (str(b) for b in entry.get("bindings") or []))

    # ---- one request -----------------------------------------------------------------------------
    def for_request(self, caller: "Caller", request_id: str, personality: str | None, binding: str | None) -> list[ActiveFilter]:
        active = [
            ActiveFilter(spec, FilterContext(self._valves[spec.name], self.user_valves(spec, caller.key_id), request_id,
                                             caller.key_id, caller.surface))
            for spec in self.filters.values() if self.applies(spec.name, personality, binding)
        ]
        return sorted(active, key=lambda f: (f.priority, f.spec.name))


def _failure(f: ActiveFilter, hook: str, exc: BaseException) -> FilterFailedError:
    message = REDACTOR.redact(f"filter '{f.spec.name}' failed in {hook}: {describe(exc)}")
    log.warning("%s (request %s)", message, f.ctx.request_id)
    return FilterFailedError(f"{message}; set its on_error valve to 'skip' to ignore it")


def _usable(f: ActiveFilter, hook: str) -> Optional[Any]:
    fn = getattr(f.spec.obj, hook, None)
    return fn if callable(fn) and not f.skipped else None


async def run_inlet(filters: list[ActiveFilter], task: "GenerationTask", info: dict[str, Any]) -> None:
    """Apply every inlet to the task's conversation and parameters (errors surface before any response)."""
    if not any(_usable(f, "inlet") for f in filters):
        return
    req = FilterRequest(messages=[{"role": m.role, "content": m.content} for m in task.messages], params=dict(task.params),
                        **info)
    for f in filters:
        fn = _usable(f, "inlet")
        if fn is None:
            continue
        try:
            out = await _call(fn, req, f.ctx)
        except FilterRejected as exc:
            raise BadRequestError(f"refused by filter '{f.spec.name}': {exc}") from exc
        except Exception as exc:
            if f.on_error == "skip":
                f.skipped = True
                _failure(f, "inlet", exc)
                continue
            raise _failure(f, "inlet", exc) from exc
        if isinstance(out, FilterRequest):
            req = out
    _apply_request(task, req)


def _apply_request(task: "GenerationTask", req: FilterRequest) -> None:
    from lollms_server.core.bindings.base import Message

    old = task.messages
    new: list[Message] = []
    for i, m in enumerate(req.messages):
        role = m.get("role")
        if role not in ("system", "user", "assistant"):
            raise BadRequestError(f"a filter produced a message with role {role!r}")
        images = old[i].images if i < len(old) and old[i].role == role else []
        new.append(Message(role, str(m.get("content") or ""), images))  # type: ignore[arg-type]
    task.messages = new
    task.system_prompt = next((m.content for m in new if m.role == "system"), None)
    task.prompt = next((m.content for m in reversed(new) if m.role == "user"), "")
    task.params = dict(req.params)


async def run_stream(filters: list[ActiveFilter], event: dict[str, Any]) -> dict[str, Any] | None:
    """One chunk event through every stream hook; None = dropped. Raises FilterFailedError per on_error."""
    for f in filters:
        fn = _usable(f, "stream")
        if fn is None:
            continue
        try:
            out = await _call(fn, dict(event), f.ctx)
        except Exception as exc:
            if f.on_error == "skip":
                f.skipped = True
                _failure(f, "stream", exc)
                continue
            raise _failure(f, "stream", exc) from exc
        if out is None:
            return None
        event = out
    return event


async def run_flush(filters: list[ActiveFilter]) -> str:
    """Text the stream hooks held back, asked for at the end of a stream."""
    tail = ""
    for f in filters:
        fn = _usable(f, "stream")
        if fn is None:
            continue
        event = {"type": "flush", "content": tail}
        try:
            out = await _call(fn, event, f.ctx)
        except Exception as exc:
            if f.on_error == "skip":
                f.skipped = True
                continue
            raise _failure(f, "stream", exc) from exc
        tail = str((out or {}).get("content") or "") if isinstance(out, dict) else tail
    return tail


async def run_outlet(filters: list[ActiveFilter], outputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for f in filters:
        fn = _usable(f, "outlet")
        if fn is None:
            continue
        try:
            out = await _call(fn, [dict(o) for o in outputs], f.ctx)
        except Exception as exc:
            if f.on_error == "skip":
                f.skipped = True
                _failure(f, "outlet", exc)
                continue
            raise _failure(f, "outlet", exc) from exc
        if isinstance(out, list):
            outputs = out
    return outputs
