"""Code-running personality: write (or take) a Python program and run it in the sandbox.

Disabled by default (``executes_code: true`` in config.yaml). See lollms_server.core.sandbox for what is
enforced and where.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, AsyncIterator

from lollms_server.core.sandbox import SandboxLimits, SandboxUnavailable, run_python

CODE_BLOCK = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)```", re.DOTALL)
LIMIT_KEYS = ("timeout", "cpu_seconds", "memory_mb", "max_file_mb", "max_open_files", "require_network_namespace")


def _code_in(text: str) -> str | None:
    blocks = [b.strip() for b in CODE_BLOCK.findall(text or "") if b.strip()]
    return "\n\n".join(blocks) if blocks else None


def _limits(context: dict[str, Any], params: dict[str, Any]) -> SandboxLimits:
    """The limits of config.yaml's ``sandbox`` section; a request may only lower the time limit."""
    personality = context.get("personality")
    extra = (personality.config.model_extra or {}) if personality is not None else {}
    limits = SandboxLimits(**{k: v for k, v in (extra.get("sandbox") or {}).items() if k in LIMIT_KEYS})
    asked = params.get("sandbox_timeout")
    if isinstance(asked, (int, float)) and not isinstance(asked, bool) and 0 < asked < limits.timeout:
        limits = dataclasses.replace(limits, timeout=float(asked), cpu_seconds=max(1, min(limits.cpu_seconds, int(asked) + 1)))
    return limits


async def run_workflow(prompt: str, params: dict[str, Any], context: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
    binding = context.get("binding")
    personality = context.get("personality")

    async def stream() -> AsyncIterator[dict[str, Any]]:
        code = _code_in(prompt)
        written_by = "user"
        if code is None:
            if binding is None:
                yield {"type": "error", "content": "send the program in a ```python block, or configure a text binding to write it"}
                return
            yield {"type": "info", "content": "writing the program"}
            answer = await binding.complete(
                f"Write a Python 3 program for this request. Reply with one ```python code block only.\n\nRequest: {prompt}",
                system_prompt=personality.conditioning if personality else None,
                params={"max_tokens": int(params.get("max_tokens") or 400), "temperature": params.get("temperature", 0.2)},
            )
            code = _code_in(answer) or answer.strip()
            written_by = context.get("binding_name") or "model"
        yield {"type": "info", "content": "running the program in the sandbox"}
        try:
            result = await run_python(code, _limits(context, params))
        except SandboxUnavailable as exc:
            yield {"type": "error", "content": f"the code was not run: {exc}"}
            return
        status = "timed out" if result.timed_out else f"exit code {result.exit_code}"
        report = f"```python\n{code}\n```\n\nOutput ({status}):\n```\n{result.stdout}{result.stderr}```"
        yield {"type": "chunk", "content": report}
        yield {"type": "final", "content": [
            {"type": "text", "data": report, "metadata": {"written_by": written_by}},
            {"type": "json", "data": {"code": code, "stdout": result.stdout, "stderr": result.stderr,
                                      "exit_code": result.exit_code, "timed_out": result.timed_out,
                                      "network_isolated": result.network_isolated, "files": result.files}},
        ]}

    return stream()
