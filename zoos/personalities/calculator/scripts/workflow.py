"""Scripted personality: exact arithmetic through a function, phrasing through the text binding."""

from __future__ import annotations

import re
from typing import Any, AsyncIterator

EXPRESSION = re.compile(r"[-+*/().%\d\s^]{3,}")


def _find_expression(prompt: str) -> str | None:
    candidates = [m.group(0).strip() for m in EXPRESSION.finditer(prompt)]
    candidates = [c for c in candidates if any(ch.isdigit() for ch in c) and any(op in c for op in "+-*/%^")]
    return max(candidates, key=len) if candidates else None


async def run_workflow(prompt: str, params: dict[str, Any], context: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
    functions = context["function_manager"]
    binding = context.get("binding")

    async def stream() -> AsyncIterator[dict[str, Any]]:
        expression = _find_expression(prompt)
        if expression is None:
            yield {"type": "final", "content": [{"type": "text", "data": "I did not find any arithmetic to compute."}]}
            return
        yield {"type": "info", "content": f"evaluating {expression}"}
        ok, result = await functions.execute_function("math_tools.evaluate", {"expression": expression})
        if not ok:
            yield {"type": "error", "content": str(result)}
            return
        yield {"type": "function_call", "content": {"name": "math_tools.evaluate", "arguments": {"expression": expression}, "result": result}}
        answer = f"{expression} = {result}"
        phrased = None
        if binding is not None:
            phrased = await binding.complete(
                f"State this result in one sentence: {answer}",
                system_prompt=context["personality"].conditioning if context.get("personality") else None,
                params={"max_tokens": min(int(params.get("max_tokens") or 64), 64), "temperature": 0.2},
            )
        yield {"type": "chunk", "content": answer}
        outputs = [{"type": "text", "data": answer, "metadata": {"expression": expression, "result": result}}]
        if phrased:
            outputs.append({"type": "text", "data": phrased, "metadata": {"phrased_by": context.get("binding_name")}})
        yield {"type": "final", "content": outputs}

    return stream()
