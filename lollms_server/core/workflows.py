"""Workflows of scripted personalities: loading ``run_workflow``, the context it receives, calling it,
and what its errors become (``workflow_failure``).

``async def run_workflow(prompt, params, context)`` gets a ``WorkflowContext``: typed attributes, and
also a read-only mapping (``context["binding"]``, ``context.get("config")``) as the specification shows.
Bindings reached through the context (``context.binding``, ``binding_manager.get_binding(name)``) are
``WorkflowBinding`` handles: they accept both the typed call ``generate(task)`` and the specification's
``generate(prompt=..., params=..., request_info=..., multimodal_data=...)``, for bindings of either style.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, AsyncIterator, Awaitable, Callable

from lollms_server.core import plugins
from lollms_server.core.bindings.base import Binding, GenerationTask, Message, task_from_spec_call
from lollms_server.core.contract import InputData, OutputData
from lollms_server.core.errors import BackendError, LollmsError, NotSupportedError
from lollms_server.core.paths import resolve_inside
from lollms_server.core.secrets import REDACTOR

if TYPE_CHECKING:
    from lollms_server.core.bindings.manager import BindingManager
    from lollms_server.core.config import ServerConfig
    from lollms_server.core.functions import FunctionManager
    from lollms_server.core.personalities import Personality
    from lollms_server.core.resources import ResourceManager

Workflow = Callable[[str, dict[str, Any], Any], Awaitable[Any]]


# ---- loading -----------------------------------------------------------------------------------
def workflow_module_name(personality: str) -> str:
    return "lollms_personality_" + re.sub(r"\W", "_", personality)


def load_workflow(folder: Path, script_rel: str, personality: str) -> Workflow:
    """``run_workflow`` of the script ``script_rel`` inside ``folder``; raises with a clear message."""
    script = resolve_inside(folder, script_rel)
    if not script.is_file():
        raise FileNotFoundError(f"script_path '{script_rel}' does not exist")
    module = plugins.import_file(script, workflow_module_name(personality))
    fn = getattr(module, "run_workflow", None)
    if fn is None or not inspect.iscoroutinefunction(fn):
        raise TypeError(f"{script_rel} must define 'async def run_workflow(prompt, params, context)'")
    return fn  # type: ignore[no-any-return]


# ---- what a workflow sees ----------------------------------------------------------------------
class Section(Mapping[str, Any]):
    """One config section: ``section.key`` and ``section["key"]`` (nested mappings are Sections too)."""

    def __init__(self, name: str, values: Mapping[str, Any]) -> None:
        self._name = name
        self._values = dict(values)

    def __getitem__(self, key: str) -> Any:
        value = self._values[key]
        return Section(f"{self._name}.{key}", value) if isinstance(value, Mapping) else value

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_"):
            raise AttributeError(key)
        try:
            return self[key]
        except KeyError:
            raise AttributeError(f"config section '{self._name}' has no key '{key}'") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Section({self._name!r}, keys={sorted(self._values)})"


class ConfigView(Section):
    """The main configuration for workflows: ``config.defaults.tti_binding``, ``config["paths"]``, plus the
    helpers of ServerConfig (``default_binding(type)``, ``section(name)``)."""

    def __init__(self, config: "ServerConfig") -> None:
        super().__init__("config", config.values)
        self._config = config

    def __getattr__(self, key: str) -> Any:
        if not key.startswith("_") and key in self._values:
            return self[key]
        return getattr(self._config, key)


class WorkflowBinding:
    """A binding as workflows use it: both call styles, the spec's LLM helpers, attributes passed through."""

    def __init__(self, binding: Binding, name: str | None = None) -> None:
        self._binding = binding
        self._name = name or binding.instance_name

    @property
    def binding(self) -> Binding:
        return self._binding

    def __getattr__(self, key: str) -> Any:
        return getattr(self._binding, key)

    def _task(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> GenerationTask:
        if args and isinstance(args[0], GenerationTask):
            return args[0]
        if isinstance(kwargs.get("task"), GenerationTask):
            return kwargs["task"]
        names = ("prompt", "params", "request_info", "multimodal_data")
        call = dict(zip(names, args))
        call.update({k: v for k, v in kwargs.items() if k in names})
        unknown = set(kwargs) - set(names)
        if unknown or "prompt" not in call:
            raise TypeError("generate() takes a GenerationTask, or prompt=, params=, request_info=, multimodal_data="
                            + (f" (unexpected: {', '.join(sorted(unknown))})" if unknown else ""))
        return task_from_spec_call(self._binding, str(call["prompt"]), dict(call.get("params") or {}),
                                   call.get("request_info"), call.get("multimodal_data"))

    async def generate(self, *args: Any, **kwargs: Any) -> Any:
        """``generate(task)`` returns what the binding returns; the spec call returns text (str) for a plain
        text answer, else a list of output dicts, as the specification describes."""
        task = self._task(args, kwargs)
        result = await self._binding.generate(task)
        if isinstance(args[0] if args else kwargs.get("task"), GenerationTask):
            return result
        return _spec_result(result)

    async def generate_stream(self, *args: Any, **kwargs: Any) -> AsyncIterator[dict[str, Any]]:
        task = self._task(args, kwargs)
        async for event in self._binding.generate_stream(task):
            yield event

    async def complete(self, prompt: str, **kwargs: Any) -> str:
        return await self._binding.complete(prompt, **kwargs)


def _spec_result(result: Any) -> Any:
    from lollms_server.core.outputs import standardize_result

    if isinstance(result, str):
        return result
    outputs = standardize_result(result)
    if len(outputs) == 1 and outputs[0].type == "text" and not outputs[0].thoughts:
        return outputs[0].data
    return [o.model_dump() for o in outputs]


class WorkflowBindings:
    """``binding_manager`` as workflows see it: ``get_binding(name)`` gives a WorkflowBinding."""

    def __init__(self, manager: "BindingManager") -> None:
        self._manager = manager

    def get_binding(self, name: str) -> WorkflowBinding:
        return WorkflowBinding(self._manager.get(name), name)

    def __getattr__(self, key: str) -> Any:
        return getattr(self._manager, key)


@dataclass(frozen=True)
class WorkflowContext(Mapping[str, Any]):
    """What ``run_workflow(prompt, params, context)`` receives; also readable as ``context["key"]``."""

    binding: WorkflowBinding | None
    binding_name: str | None
    config: ConfigView
    function_manager: "FunctionManager"
    binding_manager: WorkflowBindings
    resource_manager: "ResourceManager"
    personality: "Personality | None"
    input_data: list[InputData]
    messages: list[Message]
    request_info: dict[str, Any]
    task: GenerationTask
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def conversation(self) -> list[Message]:
        return self.messages

    def _keys(self) -> list[str]:
        return [f.name for f in fields(self) if f.name != "extra"] + ["conversation", *self.extra]

    def __getitem__(self, key: str) -> Any:
        if key in self.extra:
            return self.extra[key]
        if key in self._keys():
            return getattr(self, key)
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())


@dataclass
class WorkflowServices:
    """The managers a workflow context is built from."""

    config: "ServerConfig"
    bindings: "BindingManager"
    functions: "FunctionManager"
    resources: "ResourceManager"


def build_context(services: WorkflowServices, task: GenerationTask, binding: Binding | None, binding_name: str | None,
                  personality: "Personality | None") -> WorkflowContext:
    return WorkflowContext(
        binding=WorkflowBinding(binding, binding_name) if binding is not None else None,
        binding_name=binding_name,
        config=ConfigView(services.config),
        function_manager=services.functions,
        binding_manager=WorkflowBindings(services.bindings),
        resource_manager=services.resources,
        personality=personality,
        input_data=task.inputs,
        messages=task.messages,
        request_info={
            "request_id": task.request_id,
            "generation_type": task.generation_type,
            "model_name": task.model_name,
            "binding_name": binding_name,
            "personality": personality.name if personality else None,
        },
        task=task,
    )


# ---- calling -----------------------------------------------------------------------------------
class WorkflowError(BackendError):
    """A workflow raised something other than a LollmsError (500, naming the personality)."""


def workflow_failure(personality: "Personality", exc: BaseException) -> LollmsError:
    """The LollmsError a workflow's exception becomes: LollmsErrors keep their status,
    NotImplementedError is 501, anything else a 500 that names the personality."""
    if isinstance(exc, LollmsError):
        return exc
    name = personality.name
    if isinstance(exc, NotImplementedError):
        return NotSupportedError(REDACTOR.redact(f"workflow of personality '{name}': not implemented: {exc}"))
    return WorkflowError(REDACTOR.redact(f"workflow of personality '{name}' failed: {type(exc).__name__}: {exc}"))


async def _guarded(personality: "Personality", events: AsyncIterator[Any]) -> AsyncIterator[Any]:
    try:
        async for event in events:
            yield event
    except Exception as exc:
        raise workflow_failure(personality, exc) from exc
    finally:
        close = getattr(events, "aclose", None)
        if close is not None:
            await close()


async def call_workflow(personality: "Personality", task: GenerationTask, context: WorkflowContext) -> Any:
    """Run the personality's workflow: its result (str, dict, list) or an async iterator of stream events.

    ``params`` are the merged generation parameters plus, as in the specification, ``system_message``
    (the personality's conditioning), which spec-style ``binding.generate(prompt=..., params=params)``
    calls pass on as the system prompt."""
    assert personality.workflow is not None
    params = dict(task.params)
    if personality.conditioning:
        params.setdefault("system_message", personality.conditioning)
    try:
        result = await personality.workflow(task.prompt, params, context)
    except Exception as exc:
        raise workflow_failure(personality, exc) from exc
    return _guarded(personality, result) if is_event_stream(result) else result


def is_event_stream(result: Any) -> bool:
    """Whether a workflow returned a stream of events (an async generator or iterator) rather than a result."""
    return inspect.isasyncgen(result) or hasattr(result, "__aiter__")


async def workflow_events(personality: "Personality", task: GenerationTask,
                          context: WorkflowContext) -> AsyncIterator[Any]:
    """The workflow's output as stream events (a non-streaming result becomes one ``final`` event)."""
    result = await call_workflow(personality, task, context)
    if is_event_stream(result):
        async for event in result:
            yield event
    else:
        yield {"type": "final", "content": result}


def outputs_of(result: Any) -> list[OutputData]:
    from lollms_server.core.outputs import standardize_result

    return standardize_result(result)
