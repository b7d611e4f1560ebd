"""Tool calling: tool schemas, tool choice, tool calls, and how they travel between surfaces and bindings.

Internally a tool is an OpenAI *function tool* (name, description, JSON-schema parameters). Every surface
(OpenAI chat, Responses, Ollama, /api/v1 ``functions``) translates its wire format into ``ToolSpec`` /
``ToolChoice`` on the ``GenerationTask`` and reads back ``ToolCall``s.

How a binding returns tool calls (one shape for every binding):

- **not streamed** (``generate``): a text output whose ``metadata["tool_calls"]`` is a list of
  ``ToolCall.record()`` dicts (``tool_call_output(text, calls)`` builds it);
- **streamed** (``generate_stream``): one event per call, ``call_event(call)`` =
  ``{"type": "function_call", "content": {"id", "name", "arguments": <dict>, "status": "call"}}``,
  emitted once the call is complete (surfaces split the arguments into pieces themselves).

When the server itself runs a function (``/api/v1/generate`` with ``functions``) it emits
``result_event(...)`` = ``{"type": "function_call", "content": {"id", "name", "result", "error",
"status": "result"}}``. The final output's first text item carries ``metadata["tool_calls"]`` =
``[{"id", "name", "arguments", "result", "error"}]`` (``result``/``error`` null when nobody ran it).
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from lollms_server.core.errors import BadRequestError

ToolMode = Literal["auto", "none", "required"]
TOOL_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MAX_TOOLS = 128


@dataclass(frozen=True)
class ToolSpec:
    """One function the model may call (OpenAI function-tool shape)."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    strict: bool = False

    def openai(self) -> dict[str, Any]:
        """``{"type": "function", "function": {...}}`` as the OpenAI chat API takes it."""
        fn: dict[str, Any] = {"name": self.name, "description": self.description, "parameters": self.parameters}
        if self.strict:
            fn["strict"] = True
        return {"type": "function", "function": fn}

    @classmethod
    def parse(cls, raw: Any, where: str = "tools") -> "ToolSpec":
        """From an OpenAI chat tool ``{"type": "function", "function": {...}}`` or a flat Responses-API tool
        ``{"type": "function", "name", "parameters"}``; 400 naming ``where`` when malformed."""
        if not isinstance(raw, dict):
            raise BadRequestError(f"{where} must be an object such as {{\"type\": \"function\", \"function\": {{\"name\": ...}}}}")
        kind = raw.get("type", "function")
        if kind != "function":
            raise BadRequestError(f"{where}.type '{kind}' is not supported; only function tools are")
        fn: dict[str, Any] = raw["function"] if isinstance(raw.get("function"), dict) else raw
        name = fn.get("name")
        if not isinstance(name, str) or not TOOL_NAME_RE.match(name):
            raise BadRequestError(f"{where}.function.name must be 1-64 letters, digits, '_', '-' or '.' (got {name!r})")
        params = fn.get("parameters")
        if params is None:
            params = {"type": "object", "properties": {}}
        if not isinstance(params, dict):
            raise BadRequestError(f"{where}.function.parameters must be a JSON schema object")
        description = fn.get("description") or ""
        if not isinstance(description, str):
            raise BadRequestError(f"{where}.function.description must be a string")
        return cls(name=name, description=description, parameters=params, strict=bool(fn.get("strict")))


def parse_tools(raw: Any, where: str = "tools") -> list[ToolSpec]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise BadRequestError(f"{where} must be a list of function tools")
    if len(raw) > MAX_TOOLS:
        raise BadRequestError(f"{where}: at most {MAX_TOOLS} tools per request")
    tools = [ToolSpec.parse(t, f"{where}[{i}]") for i, t in enumerate(raw)]
    names = [t.name for t in tools]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup:
        raise BadRequestError(f"{where}: the function name '{dup}' is given twice")
    return tools


@dataclass(frozen=True)
class ToolChoice:
    """auto (model decides), none (no call), required (at least one call); ``name`` forces that function."""

    mode: ToolMode = "auto"
    name: str | None = None

    @classmethod
    def parse(cls, raw: Any, tools: list[ToolSpec], where: str = "tool_choice") -> "ToolChoice":
        """From ``"auto"|"none"|"required"``, ``{"type": "function", "function": {"name"}}`` (chat) or
        ``{"type": "function", "name"}`` (Responses)."""
        if raw is None:
            return cls("auto")
        if isinstance(raw, str):
            if raw not in ("auto", "none", "required"):
                raise BadRequestError(f"{where} must be 'auto', 'none', 'required' or a named function, got {raw!r}")
            choice = cls(raw)  # type: ignore[arg-type]
        elif isinstance(raw, dict) and raw.get("type") == "function":
            fn: dict[str, Any] = raw["function"] if isinstance(raw.get("function"), dict) else raw
            name = fn.get("name")
            if not isinstance(name, str) or not name:
                raise BadRequestError(f"{where}.function.name is required")
            choice = cls("required", name)
        else:
            raise BadRequestError(f"{where} must be 'auto', 'none', 'required' or {{\"type\": \"function\", \"function\": {{\"name\": ...}}}}")
        if choice.mode == "required" and not tools:
            raise BadRequestError(f"{where} asks for a tool call but no tools are given")
        if choice.name and choice.name not in {t.name for t in tools}:
            raise BadRequestError(f"{where} names function '{choice.name}', which is not in tools")
        return choice

    def openai(self) -> Any:
        if self.name:
            return {"type": "function", "function": {"name": self.name}}
        return self.mode


@dataclass
class ToolCall:
    """A call the model proposed. ``arguments`` is the decoded JSON object."""

    name: str
    arguments: dict[str, Any]
    id: str = field(default_factory=lambda: new_call_id())

    @property
    def arguments_json(self) -> str:
        return json.dumps(self.arguments, ensure_ascii=False)

    def record(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "arguments": self.arguments}

    def openai(self) -> dict[str, Any]:
        """As in an OpenAI assistant message: arguments as a JSON string."""
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments_json}}

    @classmethod
    def from_record(cls, raw: Any) -> "ToolCall":
        """From ``{"id", "name", "arguments"}`` or OpenAI's ``{"id", "function": {"name", "arguments": str}}``."""
        if not isinstance(raw, dict):
            raise BadRequestError("a tool call must be an object with id, name and arguments")
        fn: dict[str, Any] = raw["function"] if isinstance(raw.get("function"), dict) else raw
        name = fn.get("name")
        if not isinstance(name, str) or not name:
            raise BadRequestError("a tool call needs a function name")
        return cls(name=name, arguments=decode_arguments(fn.get("arguments")), id=str(raw.get("id") or new_call_id()))


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def decode_arguments(raw: Any) -> dict[str, Any]:
    """Arguments given as a JSON string or an object -> dict (400 when not a JSON object)."""
    if raw is None or raw == "":
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise BadRequestError(f"tool call arguments are not valid JSON: {exc.msg}") from None
    if not isinstance(raw, dict):
        raise BadRequestError("tool call arguments must be a JSON object")
    return raw


# ---- the shapes bindings and the pipeline exchange -------------------------------------------------
def call_event(call: ToolCall) -> dict[str, Any]:
    """The stream event a binding yields for a call the model proposed."""
    return {"type": "function_call", "content": {**call.record(), "status": "call"}}


def result_event(call_id: str, name: str, result: Any = None, error: str | None = None) -> dict[str, Any]:
    """The stream event the server emits once it ran a function."""
    return {"type": "function_call",
            "content": {"id": call_id, "name": name, "result": result, "error": error, "status": "result"}}


def tool_call_output(text: str, calls: list[ToolCall], metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """The non-streamed result of a binding whose answer holds tool calls."""
    return {"type": "text", "data": text, "metadata": {**(metadata or {}), "tool_calls": [c.record() for c in calls]}}


def calls_of_metadata(metadata: dict[str, Any] | None) -> list[ToolCall]:
    """The tool calls recorded in an output's metadata (as bindings or the pipeline put them)."""
    raw = (metadata or {}).get("tool_calls") or []
    return [ToolCall.from_record(r) for r in raw if isinstance(r, dict)]


class CallRecorder:
    """Collects function_call events into the final ``tool_calls`` record (calls, then their results)."""

    def __init__(self) -> None:
        self._records: dict[str, dict[str, Any]] = {}

    def add(self, content: Any) -> None:
        if not isinstance(content, dict) or not content.get("id"):
            return
        rec = self._records.setdefault(str(content["id"]), {
            "id": str(content["id"]), "name": content.get("name"), "arguments": {}, "result": None, "error": None})
        if content.get("status") == "result":
            rec["result"] = content.get("result")
            rec["error"] = content.get("error")
        else:
            rec["arguments"] = content.get("arguments") if isinstance(content.get("arguments"), dict) else {}
        if content.get("name"):
            rec["name"] = content["name"]

    def add_calls(self, calls: list[dict[str, Any]]) -> None:
        for c in calls:
            if isinstance(c, dict):
                self.add({**c, "status": "call"})
                if c.get("result") is not None or c.get("error") is not None:
                    self.add({**c, "status": "result"})

    def records(self) -> list[dict[str, Any]]:
        return list(self._records.values())


def function_tool_name(function_name: str) -> str:
    """The name a server-side function has towards the model (``module.function`` -> ``module__function``).

    Providers such as OpenAI accept only ``[A-Za-z0-9_-]`` in tool names.
    """
    return function_name.replace(".", "__")
