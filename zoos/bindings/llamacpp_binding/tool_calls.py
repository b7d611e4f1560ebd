"""Tool calling on llama.cpp: the model's own chat template when it knows tools, and a grammar always.

- If the model's chat template renders ``tools`` (and is the template in use), the tools go to the
  template, so the model sees them the way it was trained; if the template wraps calls in
  ``<tool_call>...</tool_call>`` (Hermes / Qwen style), the grammar keeps that wrapper.
- Otherwise the tools are described in the system prompt, and earlier calls and results are written
  as plain turns the template can render.
- In both cases llama.cpp samples under a grammar built from the tools' JSON schemas: a call is
  ``{"name": <one of the tools>, "arguments": <that tool's parameters>}``, one call per answer (tiny
  models asked for lists repeat themselves), strings bounded to 512 characters unless the schema bounds
  them, so even a tiny model emits calls that parse and validate. With ``tool_choice: auto`` the
  grammar also allows plain text that does not start with ``{``, ``[`` or ``<``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from lollms_server.core.bindings.base import GenerationTask, StreamEvent
from lollms_server.core.tools import ToolCall, ToolSpec, call_event

MAX_STRING_CHARS = 512  # grammar bound on strings the schema leaves unbounded (small models loop inside strings)
_TAG_OPEN, _TAG_CLOSE = "<tool_call>", "</tool_call>"


def _bounded(schema: Any) -> Any:
    """A copy of a JSON schema where every string without maxLength (and enum/const/pattern) gets one."""
    if isinstance(schema, list):
        return [_bounded(x) for x in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _bounded(v) for k, v in schema.items()}
    if out.get("type") == "string" and not ({"maxLength", "enum", "const", "pattern", "format"} & set(out)):
        out["maxLength"] = MAX_STRING_CHARS
    return out


def _call_schema(tool: ToolSpec) -> dict[str, Any]:
    params = _bounded(tool.parameters) if tool.parameters.get("type") == "object" else {"type": "object", "properties": {}}
    return {"type": "object", "properties": {"name": {"const": tool.name}, "arguments": params},
            "required": ["name", "arguments"], "additionalProperties": False}


def calls_schema(tools: list[ToolSpec]) -> dict[str, Any]:
    """One call per answer: small models asked for lists of calls tend to repeat themselves."""
    return _call_schema(tools[0]) if len(tools) == 1 else {"anyOf": [_call_schema(t) for t in tools]}


def _tools_prompt(tools: list[ToolSpec], required: bool) -> str:
    lines = ["You can call these functions:"]
    for t in tools:
        lines.append(f"- {t.name}: {t.description or t.name}. Parameters (JSON schema): {json.dumps(t.parameters)}")
    shape = '{"name": "<function>", "arguments": {...}}'
    how = f"To call a function, answer with JSON only: {shape}."
    if not required:
        how += " Otherwise answer the user normally in text."
    return "\n".join(lines + [how, "A function's result comes back in a later message."])


@dataclass
class ToolSetup:
    """What one job needs to offer tools: built on the event loop, applied on the worker thread."""

    tools: list[ToolSpec]
    required: bool

    def template_tools(self, llm: Any) -> tuple[bool, bool]:
        """(the chat template in use renders tools, it wraps calls in <tool_call> tags)."""
        if getattr(llm, "chat_format", None) != "chat_template.default":
            return False, False
        template = str((getattr(llm, "metadata", None) or {}).get("tokenizer.chat_template") or "")
        return ("tools" in template), (_TAG_OPEN in template)

    def grammar_text(self, tagged: bool) -> str:
        from llama_cpp.llama_grammar import json_schema_to_gbnf

        gbnf = json_schema_to_gbnf(json.dumps(calls_schema(self.tools)))
        lines = [("toolcalls ::=" + ln[len("root ::="):]) if ln.startswith("root ::=") else ln for ln in gbnf.splitlines()]
        call = f'"{_TAG_OPEN}" toolcalls "{_TAG_CLOSE}"' if tagged else "toolcalls"
        if self.required:
            root = f"root ::= {call}"
        else:  # free text must not start like a call, so the parser can tell them apart
            first = '[^{\\[<\\x00]' if tagged else '[^{\\[\\x00]'
            root = f"root ::= {call} | freetext\nfreetext ::= {first} [^\\x00]*"
        return root + "\n" + "\n".join(lines)

    def prepare(self, llm: Any, messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Any], bool]:
        """On the worker thread: (messages, extra create_chat_completion kwargs, tagged)."""
        from llama_cpp.llama_grammar import LlamaGrammar

        renders_tools, tagged = self.template_tools(llm)
        extra: dict[str, Any] = {}
        if renders_tools:
            extra["tools"] = [t.openai() for t in self.tools]
            extra["tool_choice"] = "required" if self.required else "auto"
            out = [_for_tool_template(m) for m in messages]
        else:
            tagged = False
            out = _plain_turns(messages, _tools_prompt(self.tools, self.required))
        extra["grammar"] = LlamaGrammar.from_string(self.grammar_text(tagged), verbose=False)
        return out, extra, tagged


def _for_tool_template(m: dict[str, Any]) -> dict[str, Any]:
    """Tool-aware templates read arguments as objects (as Transformers passes them)."""
    if not m.get("tool_calls"):
        return m
    calls = [{**c, "function": {**c["function"], "arguments": json.loads(c["function"]["arguments"] or "{}")}}
             for c in m["tool_calls"]]
    return {**m, "content": m.get("content") or "", "tool_calls": calls}


def plain_history(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Earlier calls as the JSON the grammar produces and results as user turns, so any template renders them."""
    if not any(m.get("tool_calls") or m.get("role") == "tool" for m in messages):
        return messages
    return _plain_turns(messages, None)


def _plain_turns(messages: list[dict[str, Any]], tools_prompt: str | None) -> list[dict[str, Any]]:
    """Messages for a template that knows no tools: calls as the JSON the grammar produces, results as user turns."""
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.get("tool_calls"):
            calls = [{"name": c["function"]["name"], "arguments": json.loads(c["function"]["arguments"] or "{}")}
                     for c in m["tool_calls"]]
            out.append({"role": "assistant", "content": json.dumps(calls if len(calls) > 1 else calls[0])})
        elif m.get("role") == "tool":
            out.append({"role": "user", "content": f"Result of {m.get('name') or 'the function'}: {m.get('content')}"})
        else:
            out.append({**m, "content": m.get("content") or ""})
    if tools_prompt is None:
        return out
    if out and out[0].get("role") == "system":
        out[0] = {**out[0], "content": f"{out[0]['content']}\n\n{tools_prompt}"}
    else:
        out.insert(0, {"role": "system", "content": tools_prompt})
    return out


def setup_for(task: GenerationTask) -> ToolSetup | None:
    tools = task.offered_tools()
    if not tools:
        return None
    return ToolSetup(tools, task.tool_choice.mode == "required")


def looks_like_call(text: str) -> bool:
    """Whether generated text (so far) is heading for a call rather than plain text."""
    head = text.lstrip()
    return head.startswith("{") or head.startswith("[") or head.startswith(_TAG_OPEN[: max(1, min(len(head), len(_TAG_OPEN)))])


def parse_calls(text: str, tools: list[ToolSpec]) -> list[ToolCall] | None:
    """The calls in a grammar-constrained answer; None when it is plain text (or a call cut short)."""
    body = text.strip()
    if body.startswith(_TAG_OPEN):
        body = body[len(_TAG_OPEN):]
        body = body[: body.rfind(_TAG_CLOSE)] if _TAG_CLOSE in body else body
    if not body.startswith(("{", "[")):
        return None
    try:
        data = json.loads(body)
    except json.JSONDecodeError:
        return None
    items = data if isinstance(data, list) else [data]
    names = {t.name for t in tools}
    calls: list[ToolCall] = []
    for item in items:
        if not isinstance(item, dict) or item.get("name") not in names or not isinstance(item.get("arguments", {}), dict):
            return None
        calls.append(ToolCall(name=str(item["name"]), arguments=dict(item.get("arguments") or {})))
    return calls or None


class HeldText:
    """Streamed text held back while it may still become a tool call (only when tools are offered), so a call
    never goes out as text chunks; at the end it is the call events, or the text after all."""

    def __init__(self, setup: ToolSetup | None) -> None:
        self.setup = setup
        self.held: list[str] | None = [] if setup else None

    def feed(self, piece: str) -> str:
        """What can go out now: the piece, nothing while the text may still be a call, or all the text held
        once it clearly is none."""
        if self.held is None:
            return piece
        self.held.append(piece)
        so_far = "".join(self.held)
        if so_far.strip() and not looks_like_call(so_far):
            self.held = None
            return so_far
        return ""

    def events(self, meta: dict[str, Any]) -> list[StreamEvent]:
        """At the end of the stream: the calls in the held text, or the text itself as a chunk."""
        if self.held is None or self.setup is None:
            return []
        text = "".join(self.held)
        calls = parse_calls(text, self.setup.tools)
        if calls:
            return [call_event(c) for c in calls]
        return [{"type": "chunk", "content": text, "metadata": meta}] if text else []
