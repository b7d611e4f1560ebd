"""Tools of a request, and the server-side tool loop of ``/api/v1/generate`` with ``functions``.

``plan_tools`` turns a request's client ``tools`` / server ``functions`` into the task's ``ToolSpec``s.
``run_tool_loop`` then drives the binding: the model proposes calls, the arguments are checked, the
functions run, their results (or errors) go back to the model as ``tool`` turns, for at most
``max_tool_rounds`` rounds; the last round offers no tools so the model must answer in text.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lollms_server.core.bindings.base import Binding, GenerationTask, Message
from lollms_server.core.errors import BadRequestError, FeatureNotSupportedError, NotFoundError
from lollms_server.core.outputs import standardize_result
from lollms_server.core.tools import (
    ToolCall,
    ToolChoice,
    ToolSpec,
    call_event,
    calls_of_metadata,
    function_tool_name,
    parse_tools,
    result_event,
)

if TYPE_CHECKING:
    from lollms_server.core.contract import GenerateRequest
    from lollms_server.core.functions import FunctionManager
    from lollms_server.core.personalities import Personality

log = logging.getLogger("lollms_server.tools")

DEFAULT_TOOL_ROUNDS = 4
MAX_TOOL_ROUNDS = 10
MAX_RESULT_CHARS = 16_000  # a function result longer than this is cut before it goes back to the model


@dataclass
class ToolPlan:
    tools: list[ToolSpec] = field(default_factory=list)
    choice: ToolChoice = field(default_factory=ToolChoice)
    parallel: bool = True
    server_functions: dict[str, str] = field(default_factory=dict)  # tool name -> module.function
    max_rounds: int = DEFAULT_TOOL_ROUNDS

    @property
    def server_side(self) -> bool:
        return bool(self.server_functions)


def _function_names(req: "GenerateRequest", personality: "Personality | None") -> list[str]:
    allowed = list(getattr(personality.config, "functions", None) or []) if personality else []
    asked = list(req.functions or [])
    if asked and personality is not None and allowed:
        refused = [n for n in asked if n not in allowed]
        if refused:
            raise BadRequestError(
                f"personality '{personality.folder_name}' may not use {', '.join(refused)} (it declares: {', '.join(allowed)})")
    return asked or allowed


def plan_tools(req: "GenerateRequest", personality: "Personality | None", functions: "FunctionManager",
               params: dict[str, Any]) -> ToolPlan:
    """Tools and tool choice of a request; 400 for unknown functions or malformed tools."""
    names = _function_names(req, personality)
    if names and req.tools:
        raise BadRequestError("give either 'functions' (run by the server) or 'tools' (run by the client), not both")
    rounds = params.pop("max_tool_rounds", None)
    if rounds is not None and (isinstance(rounds, bool) or not isinstance(rounds, int) or not 1 <= rounds <= MAX_TOOL_ROUNDS):
        raise BadRequestError(f"parameters.max_tool_rounds must be an integer from 1 to {MAX_TOOL_ROUNDS}")
    plan = ToolPlan(parallel=req.parallel_tool_calls is not False, max_rounds=rounds or DEFAULT_TOOL_ROUNDS)
    if names:
        for name in names:
            info = functions.functions.get(name)
            if info is None:
                raise NotFoundError(f"function '{name}' not found (see /api/v1/list_functions)")
            tool_name = function_tool_name(name)
            plan.server_functions[tool_name] = name
            plan.tools.append(ToolSpec(tool_name, info.description, info.schema))
    else:
        plan.tools = parse_tools(req.tools)
    choice = req.tool_choice
    if choice is None and personality is not None and plan.server_side:
        choice = getattr(personality.config, "tool_choice", None)
    plan.choice = ToolChoice.parse(choice, plan.tools)
    return plan


def check_tool_support(binding: Binding, binding_name: str | None, model_name: str | None, plan: ToolPlan) -> None:
    """400 not_supported when tools would be offered to a binding that cannot take them."""
    if not plan.tools or plan.choice.mode == "none":
        return
    if not binding.supports_tool_calls(model_name):
        raise FeatureNotSupportedError(
            f"binding '{binding_name}'" + (f" with model '{model_name}'" if model_name else "")
            + " does not support tool calling; choose another model, or send tool_choice 'none'", param="tools")


def _result_text(ok: bool, value: Any) -> str:
    if not ok:
        text = json.dumps({"error": str(value)}, ensure_ascii=False)
    else:
        try:
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            text = str(value)
    return text[:MAX_RESULT_CHARS]


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return str(value)


async def run_tool_loop(binding: Binding, task: GenerationTask, plan: ToolPlan,
                        functions: "FunctionManager") -> AsyncIterator[dict[str, Any]]:
    """Stream events of the whole loop: text chunks, function_call (call and result) events, info."""
    usage_total: dict[str, int] = {}
    first_choice = plan.choice
    for round_no in range(plan.max_rounds + 1):
        last = round_no == plan.max_rounds
        task.tool_choice = ToolChoice("none") if last else (first_choice if round_no == 0 else ToolChoice("auto"))
        calls: list[ToolCall] = []
        text_parts: list[str] = []
        async for ev in binding.generate_stream(task):
            kind = ev.get("type", "chunk") if isinstance(ev, dict) else "chunk"
            if kind == "function_call" and isinstance(ev.get("content"), dict) and ev["content"].get("status", "call") == "call":
                call = ToolCall.from_record(ev["content"])
                calls.append(call)
            elif kind == "final":
                for out in standardize_result(ev.get("content")):
                    calls.extend(calls_of_metadata(out.metadata))
                    if out.type == "text" and out.data:
                        text_parts.append(str(out.data))
                        yield {"type": "chunk", "content": str(out.data)}
            else:
                if kind == "chunk" and isinstance(ev.get("content"), str):
                    text_parts.append(ev["content"])
                yield ev
        if task.usage:
            for k, v in task.usage.items():
                usage_total[k] = usage_total.get(k, 0) + v
        if not calls or task.cancel.cancelled:
            break
        task.messages.append(Message("assistant", "".join(text_parts), tool_calls=calls))
        for call in calls:
            function = plan.server_functions.get(call.name)
            shown = function or call.name
            yield call_event(ToolCall(shown, call.arguments, call.id))
            if function is None:
                ok, value = False, f"unknown function '{call.name}' (offered: {', '.join(plan.server_functions)})"
            else:
                ok, value = await functions.execute_function(function, call.arguments)
            log.info("request %s: %s(%s) -> %s", task.request_id, shown, call.arguments_json[:200], "ok" if ok else value)
            yield result_event(call.id, shown, _jsonable(value) if ok else None, None if ok else str(value))
            task.messages.append(Message("tool", _result_text(ok, value), tool_call_id=call.id, name=call.name))
    if usage_total:
        task.usage = usage_total
