"""Functions: ``async def`` functions in .py files, named ``module.function``, with JSON schemas."""

from __future__ import annotations

import importlib.util
import inspect
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable

import docstring_parser
from pydantic import ConfigDict, ValidationError, create_model

log = logging.getLogger("lollms_server.functions")


@dataclass
class FunctionInfo:
    name: str
    fn: Callable[..., Awaitable[Any]]
    description: str
    schema: dict[str, Any]
    args_model: Any


def _build(name: str, fn: Callable[..., Awaitable[Any]]) -> FunctionInfo:
    doc = docstring_parser.parse(inspect.getdoc(fn) or "")
    param_docs = {p.arg_name: p.description for p in doc.params}
    fields: dict[str, Any] = {}
    for pname, param in inspect.signature(fn).parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        annotation = Any if param.annotation is inspect.Parameter.empty else param.annotation
        default = ... if param.default is inspect.Parameter.empty else param.default
        from pydantic import Field

        fields[pname] = (annotation, Field(default, description=param_docs.get(pname)))
    model = create_model(f"{name.replace('.', '_')}_args", __config__=ConfigDict(extra="forbid"), **fields)
    description = " ".join(x for x in (doc.short_description, doc.long_description) if x) or name
    schema = model.model_json_schema()
    schema.pop("title", None)
    return FunctionInfo(name=name, fn=fn, description=description, schema=schema, args_model=model)


class FunctionManager:
    def __init__(self, folders: list[Path]) -> None:
        self.folders = folders
        self.functions: dict[str, FunctionInfo] = {}
        self.load_errors: dict[str, str] = {}

    def discover(self) -> None:
        for base in self.folders:
            if not base.is_dir():
                continue
            for file in sorted(base.glob("*.py")):
                if file.name.startswith("_"):
                    continue
                self._load_file(file)

    def _load_file(self, file: Path) -> None:
        mod_name = f"lollms_functions_{file.stem}"
        try:
            spec = importlib.util.spec_from_file_location(mod_name, file)
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot import {file}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[mod_name] = module
            spec.loader.exec_module(module)
            for attr, obj in inspect.getmembers(module, inspect.iscoroutinefunction):
                if attr.startswith("_") or obj.__module__ != mod_name:
                    continue
                name = f"{file.stem}.{attr}"
                self.functions[name] = _build(name, obj)
        except Exception as exc:  # a broken functions file never stops the server
            self.load_errors[file.stem] = f"{type(exc).__name__}: {exc}"
            log.error("functions file %s not loaded: %s", file, self.load_errors[file.stem])

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
