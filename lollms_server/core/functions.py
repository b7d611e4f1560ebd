"""Functions: ``async def`` functions in .py files, named ``module.function``, with JSON schemas."""

from __future__ import annotations

import asyncio
import functools
import importlib.metadata
import inspect
import logging
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable

from pydantic import ConfigDict, ValidationError, create_model

from lollms_server.core import plugins
from lollms_server.core.file_cache import TextCache

log = logging.getLogger("lollms_server.functions")


@dataclass
class FunctionInfo:
    name: str
    fn: Callable[..., Awaitable[Any]]
    description: str
    schema: dict[str, Any]
    args_model: Any


# what docstring_parser reads in each docstring, by the docstring's text (core/file_cache.py): the parser, its
# import and its patterns cost a start-up more than the functions themselves
_DOCS = TextCache("function_docstrings")


def parse_docstring(text: str) -> dict[str, Any]:
    """``short`` and ``long`` description and ``params`` (argument -> description) of a docstring."""

    def parse() -> dict[str, Any]:
        import docstring_parser

        doc = docstring_parser.parse(text)
        return {"short": doc.short_description, "long": doc.long_description,
                "params": {p.arg_name: p.description for p in doc.params}}

    return _DOCS.get_for(text, parse)


def _build(name: str, fn: Callable[..., Awaitable[Any]]) -> FunctionInfo:
    doc = parse_docstring(inspect.getdoc(fn) or "")
    param_docs: dict[str, Any] = doc["params"]
    fields: dict[str, Any] = {}
    for pname, param in inspect.signature(fn).parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        annotation = Any if param.annotation is inspect.Parameter.empty else param.annotation
        default = ... if param.default is inspect.Parameter.empty else param.default
        from pydantic import Field

        fields[pname] = (annotation, Field(default, description=param_docs.get(pname)))
    model = create_model(f"{name.replace('.', '_')}_args", __config__=ConfigDict(extra="forbid"), **fields)
    description = " ".join(x for x in (doc["short"], doc["long"]) if x) or name
    schema = model.model_json_schema()
    schema.pop("title", None)
    return FunctionInfo(name=name, fn=fn, description=description, schema=schema, args_model=model)


class FunctionManager:
    """Functions from the functions folders and from installed packages (entry-point group
    ``lollms_server.functions``: a module, whose public async functions are named ``<entry point>.<name>``)."""

    def __init__(self, folders: list[Path], *, entry_points: bool = True) -> None:
        self.folders = folders
        self.use_entry_points = entry_points
        self.functions: dict[str, FunctionInfo] = {}
        self._owners: dict[str, str] = {}
        self._errors = plugins.LoadErrors()

    @property
    def load_errors(self) -> dict[str, str]:
        """Function files or packages that failed to load, with the reason."""
        return self._errors.errors

    def discover(self) -> None:
        if self.use_entry_points:
            for ep in plugins.entry_points_of(plugins.FUNCTIONS_GROUP):
                self._errors.attempt(f"{ep.name} (entry point)", functools.partial(self._add_entry_point, ep))
        for base in self.folders:
            if not base.is_dir():
                continue
            for file in sorted(base.glob("*.py")):
                if file.name.startswith("_"):
                    continue
                self._errors.attempt(file.stem, functools.partial(self._add_file, file))
        for stem, message in self.load_errors.items():
            log.error("functions '%s' not loaded: %s", stem, message)

    def _add_entry_point(self, ep: importlib.metadata.EntryPoint) -> None:
        self._add_module(ep.name, plugins.load_entry_point(ep))

    def _add_file(self, file: Path) -> None:
        self._add_module(file.stem, plugins.import_file(file, f"lollms_functions_{file.stem}"))

    def _add_module(self, prefix: str, module: Any) -> None:
        if not isinstance(module, types.ModuleType):
            raise plugins.PluginLoadError(f"'{prefix}' must be a module of async functions, not {type(module).__name__}")
        found = {
            f"{prefix}.{attr}": obj for attr, obj in inspect.getmembers(module, inspect.iscoroutinefunction)
            if not attr.startswith("_") and obj.__module__ == module.__name__
        }
        built = {name: _build(name, fn) for name, fn in found.items()}  # all or nothing per module
        self.functions.update(built)

    def register(self, name: str, fn: Callable[..., Any], *, owner: str) -> FunctionInfo:
        """Add one function under ``name`` (extensions' tools); a sync function runs in a worker thread.

        A name already taken fails, naming both owners."""
        if name in self.functions:
            other = self._owners.get(name, "the functions folders")
            raise ValueError(f"tool name '{name}' is registered twice: by {other} and by {owner}")
        target: Callable[..., Awaitable[Any]]
        if inspect.iscoroutinefunction(fn):
            target = fn
        else:
            @functools.wraps(fn)
            async def target(*args: Any, **kwargs: Any) -> Any:
                return await asyncio.to_thread(fn, *args, **kwargs)
        info = _build(name, target)
        self.functions[name] = info
        self._owners[name] = owner
        return info

    def list_names(self) -> list[str]:
        return sorted(self.functions)

    def tool_schemas(self) -> dict[str, dict[str, Any]]:
        return {n: {"description": f.description, "parameters": f.schema} for n, f in sorted(self.functions.items())}

    async def execute_function(self, name: str, arguments: dict[str, Any] | None = None) -> tuple[bool, Any]:
        """Call ``module.function`` with checked arguments. Returns (success, result or error message)."""
        info = self.functions.get(name)
        if info is None:
            return False, f"function '{name}' not found"
        try:
            args = info.args_model.model_validate(arguments or {})
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}" for e in exc.errors())
            return False, f"invalid arguments for '{name}': {problems}"
        try:
            kwargs = {k: getattr(args, k) for k in info.args_model.model_fields}
            return True, await info.fn(**kwargs)
        except Exception as exc:
            log.warning("function %s failed: %s", name, exc)
            return False, f"function '{name}' failed: {type(exc).__name__}: {exc}"
